"""Small display helpers for the account pages (tables, flash messages, escaping)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl
import streamlit as st

from lakehouse import PROVIDER_NAMES, User
from lakehouse.quotas import alert_level
from pages._shared.format import md_escape as md_escape  # re-exported: the one escaping helper

_FLASH_KEY = "_hfthot_flash"


def flash(message: str) -> None:
    """Show `message` as a success note after the next rerun."""
    st.session_state[_FLASH_KEY] = message


def show_flash() -> None:
    message = st.session_state.pop(_FLASH_KEY, None)
    if isinstance(message, str):
        st.success(message)


def sessions_frame(sessions: Sequence[Mapping[str, Any]], current: str | None) -> pl.DataFrame:
    """One row per live session; the browser's own session is marked."""
    return pl.DataFrame(
        {
            "this browser": [s["session_id"] == current for s in sessions],
            "session": [s["session_id"][:8] for s in sessions],
            "signed in": [s["created_at"] for s in sessions],
            "last seen": [s["last_seen_at"] for s in sessions],
            "expires": [s["expires_at"] for s in sessions],
            "IP": [s.get("ip") or "" for s in sessions],
            "browser": [s.get("user_agent") or "" for s in sessions],
        },
        schema={
            "this browser": pl.Boolean,
            "session": pl.String,
            "signed in": pl.Datetime("us", "UTC"),
            "last seen": pl.Datetime("us", "UTC"),
            "expires": pl.Datetime("us", "UTC"),
            "IP": pl.String,
            "browser": pl.String,
        },
    )


def quota_level(q: Mapping[str, Any]) -> float | None:
    """The alert level a provider's quota has reached in its window: 0.95, 0.80 or None."""
    return alert_level(int(q["queries_done"]), int(q["limit"]))


def quota_frame(keys: Mapping[str, Mapping[str, Any]]) -> pl.DataFrame:
    """One row per stored key: the hint (last 4 characters) and the quota state."""
    rows = list(keys.items())
    return pl.DataFrame(
        {
            "provider": [PROVIDER_NAMES.get(p, p) for p, _ in rows],
            "key": [q["key_hint"] for _, q in rows],
            "queries done": [int(q["queries_done"]) for _, q in rows],
            "remaining": [int(q["queries_remaining"]) for _, q in rows],
            "limit": [int(q["limit"]) for _, q in rows],
            "per": [q["window"] for _, q in rows],
        },
        schema={
            "provider": pl.String,
            "key": pl.String,
            "queries done": pl.Int64,
            "remaining": pl.Int64,
            "limit": pl.Int64,
            "per": pl.String,
        },
    )


def users_frame(users: Sequence[User]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "username": [u.username for u in users],
            "email": [u.email for u in users],
            "role": [u.role for u in users],
            "disabled": [u.disabled for u in users],
            "created": [u.created_at for u in users],
            "id": [u.user_id for u in users],
        },
        schema={
            "username": pl.String,
            "email": pl.String,
            "role": pl.String,
            "disabled": pl.Boolean,
            "created": pl.Datetime("us", "UTC"),
            "id": pl.String,
        },
    )


AUDIT_ACTIONS = [
    "login",
    "logout",
    "register",
    "change_password",
    "revoke_session",
    "revoke_other_sessions",
    "set_role",
    "disable_user",
    "enable_user",
    "api_key_change",
    "api_key_delete",
    "api_key_reveal",
    "quota_alert",
    "consent",
    "export",
    "erase",
    "restore",
    "maintain",
]
