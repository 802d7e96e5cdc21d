"""Admin / Audit log: every security-relevant event, filtered by user, action, outcome and day."""

import datetime as dt

import streamlit as st

from lakehouse import LakehouseError
from pages._shared.account_view import AUDIT_ACTIONS, md_escape
from pages._shared.accounts import get_client
from pages._shared.auth import require_role

admin = require_role("admin")
client = get_client()

st.title("Audit log")
st.caption(
    "User ids are pseudonymous account ids (a keyed hash for unknown usernames). "
    "Records older than the retention period are removed by maintenance."
)

today = dt.datetime.now(dt.UTC).date()
action_col, outcome_col, user_col = st.columns(3)
action = action_col.selectbox(
    "Action", AUDIT_ACTIONS, index=None, placeholder="any action", accept_new_options=True
)
outcome = outcome_col.selectbox(
    "Outcome", ["success", "failure", "denied", "error"], index=None, placeholder="any outcome"
)
user_id = user_col.text_input("User id", max_chars=64, placeholder="any user").strip()
days_col, limit_col = st.columns(2)
days = days_col.date_input(
    "Days (UTC)", value=(today - dt.timedelta(days=6), today), max_value=today
)
limit = limit_col.number_input("At most this many rows", 10, 100_000, 1000, step=100)

if not (isinstance(days, tuple) and len(days) == 2):
    st.caption("Pick a start and an end day.")
    st.stop()
try:
    records = client.query_audit(
        acting_user=admin,
        user_id=user_id or None,
        action=action,
        outcome=outcome,
        start=days[0],
        end=days[1],
        limit=int(limit),
    )
except LakehouseError as exc:
    st.error(f"Cannot read the audit log: {md_escape(str(exc))}")
    st.stop()
st.metric("Matching records", records.height)
st.dataframe(records, hide_index=True)
