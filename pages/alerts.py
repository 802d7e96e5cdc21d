"""Alerts: rules on a series or a saved query, the inbox of firings, and webhook deliveries.

The page only reads and writes records; the evaluator thread (started with the app) decides
when a rule fires."""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from core.alerts import AlertRule, Alerts
from core.alerts import rules as r
from core.data.catalog import SeriesRef
from core.errors import HftError
from lakehouse import LakehouseError, User
from pages._shared.account_view import flash, show_flash
from pages._shared.auth import require_role
from pages._shared.format import md_escape, plural, show_table
from pages._shared.services import get_services

SHOWN_ONCE_KEY = "alerts_new_secret"
DIRECTION_LABELS = {"any": "either way", "up": "upwards", "down": "downwards"}


def direction_label(value: str) -> str:
    return DIRECTION_LABELS[value]


user = require_role("analyst")
services = get_services()
alerts: Alerts = services.alerts

st.title("Alerts")
st.caption(
    "Rules are checked by a background thread whenever new bars land (series rules) or "
    f"every {services.settings.alert_query_interval_s:g} s (saved queries). A rule fires "
    "when its condition starts to hold, then waits out its cool-down."
)
show_flash()
shown = st.session_state.pop(SHOWN_ONCE_KEY, None)
if isinstance(shown, str):
    st.warning(
        "The webhook signing secret, shown only this once. Your receiver checks "
        '`X-HFThot-Signature: sha256=HMAC-SHA256(secret, X-HFThot-Timestamp + "." + body)`.',
        icon=":material/key:",
    )
    st.code(shown, language=None)


def rule_names(rules: list[AlertRule]) -> dict[str, str]:
    return {rule.rule_id: rule.name for rule in rules}


def inbox(me: User) -> None:
    events = alerts.events(me)
    unread = sum(e.unread for e in events)
    left, right = st.columns([3, 1])
    left.markdown(f"**{plural(unread, 'unread alert')}**, newest first.")
    if right.button("Mark all read", disabled=unread == 0, icon=":material/done_all:"):
        alerts.mark_read(me, "all")
        st.rerun()
    if not events:
        st.info("No alert has fired yet.", icon=":material/notifications_off:")
        return
    names = rule_names(alerts.rules(me))
    frame = pl.DataFrame(
        {
            "new": ["●" if e.unread else "" for e in events],
            "fired": [e.ts for e in events],
            "rule": [names.get(e.rule_id, "(deleted rule)") for e in events],
            "message": [e.message for e in events],
            "value": [e.value for e in events],
            "bar": [e.data_ts for e in events],
        },
        schema_overrides={"value": pl.Float64},
    )
    show_table(frame, times=("fired", "bar"), sig=("value",), labels={"bar": "Bar time (UTC)"})


def status_text(rule: AlertRule) -> tuple[str, str | None]:
    status = alerts.status.get(rule.rule_id)
    if not rule.enabled:
        return "disabled", None
    if status is None or (status.checked_at is None and status.error is None):
        return "waiting for data", None
    if status.error:
        return "error", status.error
    return "ok", None


def rules_table(me: User) -> None:
    rules = alerts.rules(me)
    if not rules:
        st.info("No rules yet. Create one in the New rule tab.", icon=":material/rule:")
        return
    rows: list[dict[str, Any]] = []
    for rule in rules:
        state, error = status_text(rule)
        status = alerts.status.get(rule.rule_id)
        rows.append(
            {
                "name": rule.name,
                "status": state,
                "watches": rule.target,
                "rule": r.describe(rule.kind, rule.params),
                "cool-down (s)": rule.cooldown_s,
                "webhook": rule.webhook_url is not None,
                "last fired": rule.last_fired_at,
                "last checked": status.checked_at if status else None,
                "last error": error,
            }
        )
    show_table(pl.DataFrame(rows), times=("last fired", "last checked"), ints=("cool-down (s)",))
    for row in rows:
        if row["last error"]:
            st.error(f"{md_escape(row['name'])}: {md_escape(row['last error'])}")
    evaluator = alerts.evaluator
    if not evaluator.running:
        st.warning("The alert evaluator is not running in this server process.")
    elif evaluator.last_error:
        st.error(f"The last evaluator pass failed: {md_escape(evaluator.last_error)}")
    elif evaluator.last_pass_at is not None:
        st.caption(
            f"Evaluator: {evaluator.ticks:,} passes, "
            f"the last at {evaluator.last_pass_at:%H:%M:%S} UTC."
        )
    labels = {rule.rule_id: f"{rule.name} ({rule.target})" for rule in rules}
    chosen = st.selectbox("Rule", list(labels), format_func=labels.__getitem__)
    rule = next(x for x in rules if x.rule_id == chosen)
    a, b, c = st.columns(3)
    if rule.enabled and a.button("Disable", icon=":material/pause:"):
        alerts.disable(me, rule.rule_id)
        flash(f"Disabled {rule.name}.")
        st.rerun()
    if not rule.enabled and a.button("Enable", icon=":material/play_arrow:"):
        alerts.enable(me, rule.rule_id)
        flash(f"Enabled {rule.name}.")
        st.rerun()
    sure = c.checkbox("Yes, delete it", key=f"alerts_delete_ok_{rule.rule_id}")
    if b.button("Delete", disabled=not sure, icon=":material/delete:"):
        alerts.delete_rule(me, rule.rule_id)
        flash(f"Deleted {rule.name}; its past alerts stay in the inbox.")
        st.rerun()


def kind_fields(kind: str) -> dict[str, Any]:
    """The form inputs of one rule kind, as the parameters they become."""
    if kind == "price_cross":
        level = st.number_input("Level", value=100.0, format="%.6g")
        direction = st.selectbox("Direction", r.DIRECTIONS, format_func=direction_label)
        return {"level": float(level), "direction": direction}
    if kind == "pct_move":
        window = st.number_input("Window (bars)", min_value=1, max_value=10_000, value=5)
        pct = st.number_input("Threshold (%)", min_value=0.001, value=2.0, format="%.3f")
        return {"window": int(window), "threshold_pct": float(pct)}
    if kind == "zscore":
        window = st.number_input("Window (bars)", min_value=3, max_value=10_000, value=20)
        bound = st.number_input("Bound (±z)", min_value=0.01, value=2.0, format="%.2f")
        return {"window": int(window), "bound": float(bound)}
    if kind == "indicator_cross":
        fast = st.selectbox("Fast line", r.LINES)
        fast_n = st.number_input("Fast period (SMA/EMA)", min_value=2, value=10)
        slow = st.selectbox("Slow line", r.LINES[1:])
        slow_n = st.number_input("Slow period", min_value=2, value=20)
        direction = st.selectbox("Direction", r.DIRECTIONS, format_func=direction_label)
        return {
            "fast": fast,
            "fast_n": 1 if fast == "close" else int(fast_n),
            "slow": slow,
            "slow_n": int(slow_n),
            "direction": direction,
        }
    if kind == "regime_change":
        n_states = st.number_input("States", min_value=2, max_value=5, value=2)
        history = st.number_input("History (bars) to fit on", min_value=50, value=500)
        seed = st.number_input("Seed", min_value=0, value=0)
        return {"n_states": int(n_states), "history": int(history), "seed": int(seed)}
    rows = st.number_input("Read at most (rows)", min_value=1, max_value=10_000, value=100)
    return {"max_rows": int(rows)}


def series_options() -> list[tuple[str, str, str]]:
    try:
        cov = services.engine.coverage().filter(pl.col("kind") == "bars")
    except (HftError, OSError):
        return []
    return sorted({(v, s, t) for v, s, t in cov.select("venue", "symbol", "timeframe").rows()})


def new_rule(me: User) -> None:
    kind = st.selectbox("Kind", r.KINDS, format_func=r.KIND_TITLES.__getitem__)
    series = series_options() if kind != "query_rows" else []
    queries = services.queries.list(me) if kind == "query_rows" else []
    with st.form("alerts_new_rule"):
        name = st.text_input("Name", max_chars=100)
        target: Any = None
        if kind == "query_rows":
            labels = {q.query_id: f"{q.name} ({q.owner or 'gone'})" for q in queries}
            target = st.selectbox("Saved query", list(labels), format_func=labels.__getitem__)
            if not queries:
                st.caption("Save a query on the SQL Explorer page first.")
        else:
            target = st.selectbox("Series", series, format_func=lambda x: SeriesRef(*x).label)
        params = kind_fields(kind)
        cooldown = st.number_input(
            "Cool-down (s)", min_value=0, max_value=7 * 86400, value=300, step=60
        )
        url = st.text_input("Webhook URL (optional)", placeholder="https://hooks.example.com/…")
        submitted = st.form_submit_button("Create rule", type="primary")
    if not submitted:
        return
    if target is None:
        st.error("Pick a saved query." if kind == "query_rows" else "Pick a series.")
        return
    series_args: dict[str, Any] = (
        {"query_id": target}
        if kind == "query_rows"
        else {"venue": target[0], "symbol": target[1], "timeframe": target[2]}
    )
    try:
        created = alerts.create_rule(
            me, name, kind, params, cooldown_s=int(cooldown), webhook_url=url or None,
            **series_args,
        )  # fmt: skip
    except (HftError, LakehouseError, ValueError) as exc:
        st.error(f"Not created: {md_escape(str(exc))}")
        return
    if created.secret:
        st.session_state[SHOWN_ONCE_KEY] = created.secret
    flash(f"Created {created.rule.name}.")
    st.rerun()


def deliveries(me: User) -> None:
    rows = alerts.deliveries(me)
    if not rows:
        st.info("No webhook has been sent yet.", icon=":material/send:")
        return
    names = rule_names(alerts.rules(me))
    dead = sum(d.status == "dead_letter" for d in rows)
    if dead:
        st.warning(f"{plural(dead, 'dead letter')}: deliveries given up after their retries.")
    frame = pl.DataFrame(
        {
            "time": [d.ts for d in rows],
            "rule": [names.get(d.rule_id, "(deleted rule)") for d in rows],
            "event": [d.event_id[:8] for d in rows],
            "attempt": [d.attempt for d in rows],
            "status": [d.status for d in rows],
            "HTTP": [d.http_status for d in rows],
            "error": [d.error for d in rows],
        },
        schema_overrides={"HTTP": pl.Int64},
    )
    show_table(frame, times=("time",), ints=("attempt", "HTTP"), labels={"HTTP": "HTTP"})


unread_now = alerts.unread_count(user)
tabs = st.tabs(
    [f"Inbox ({unread_now})" if unread_now else "Inbox", "Rules", "New rule", "Deliveries"]
)
with tabs[0]:
    inbox(user)
with tabs[1]:
    rules_table(user)
with tabs[2]:
    new_rule(user)
with tabs[3]:
    deliveries(user)
