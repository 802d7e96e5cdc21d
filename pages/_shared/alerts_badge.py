"""The alerts evaluator started once per process, the unread badge in the sidebar, and a
toast on any page for firings that arrived since this browser session last looked.

Both reads are cheap: the inbox is cached on the events table's version, so a rerun with no
new firing costs one directory listing."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from core.alerts import Alerts
from lakehouse import User
from pages._shared.format import md_escape
from pages._shared.services import get_services

SEEN_KEY = "hfthot_alerts_seen_at"
MAX_TOASTS = 3


@st.cache_resource(show_spinner=False)
def get_alerts() -> Alerts:
    """The process-wide alerts, with the evaluator thread running (Services.close stops it)."""
    return get_services().alerts.start()


def alerts_badge(user: User | None) -> None:
    """For analysts and admins: '(n unread)' under the user menu and a toast per new firing."""
    if user is None or not user.has_role("analyst"):
        return
    alerts = get_services().alerts
    try:
        unread = alerts.unread_count(user)
        seen = st.session_state.get(SEEN_KEY)
        now = alerts.store.now()
        fresh = alerts.events(user, since=seen, limit=MAX_TOASTS) if seen else []
    except Exception:
        return
    if not isinstance(seen, dt.datetime) or fresh:
        st.session_state[SEEN_KEY] = max([now, *(e.ts for e in fresh)])
    for event in reversed(fresh):
        st.toast(md_escape(event.message[:300]), icon=":material/notifications_active:")
    if unread:
        with st.sidebar:
            st.page_link(
                "pages/alerts.py",
                label=f"Alerts: {unread} unread",
                icon=":material/notifications_active:",
            )
