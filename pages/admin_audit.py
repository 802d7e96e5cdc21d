"""Admin / Audit log: every security-relevant event, filtered by user, action, outcome and day."""

import datetime as dt

import streamlit as st

from lakehouse import LakehouseError
from pages._shared.account_view import AUDIT_ACTIONS, action_words, audit_table, md_escape
from pages._shared.accounts import get_auth, get_client
from pages._shared.auth import require_role
from pages._shared.format import integer, plural

admin = require_role("admin")
auth, client = get_auth(), get_client()

st.title("Audit log")
st.caption(
    f"Sign-ins, account changes, key use and maintenance, newest first. Records older than "
    f"{plural(client.audit_retention_days, 'day')} are removed by maintenance.",
    help="Records name a user by a random account id. While the account exists the table "
    "shows its name; an erased account, or a name typed at sign-in that has no account, shows "
    "the start of its pseudonymous id.",
)

today = dt.datetime.now(dt.UTC).date()
action_col, outcome_col, user_col = st.columns(3)
action = action_col.selectbox(
    "Action",
    AUDIT_ACTIONS,
    format_func=action_words,
    index=None,
    placeholder="any action",
    accept_new_options=True,
)
outcome = outcome_col.selectbox(
    "Outcome", ["success", "failure", "denied", "error"], index=None, placeholder="any outcome"
)
typed_user = user_col.text_input(
    "User",
    max_chars=64,
    placeholder="any user (a username or an id)",
    help="A username (any case) or an account id. A name without an account finds the "
    "sign-in attempts made with it.",
).strip()
days_col, limit_col = st.columns(2)
days = days_col.date_input(
    "Days (UTC)", value=(today - dt.timedelta(days=6), today), max_value=today
)
limit = limit_col.number_input("At most this many rows", 10, 100_000, 1000, step=100)

if not (isinstance(days, tuple) and len(days) == 2):
    st.caption("Pick a start and an end day.")
    st.stop()
try:
    user_id = None
    if typed_user:
        user_id, kind = client.audit_user(typed_user, acting_user=admin)
        if kind == "no account":
            st.caption(
                f"No account named {md_escape(typed_user)}: showing the sign-in attempts "
                "made with that name."
            )
    records = client.query_audit(
        acting_user=admin,
        user_id=user_id,
        action=action,
        outcome=outcome,
        start=days[0],
        end=days[1],
        limit=int(limit),
    )
    names = {u.user_id: u.username for u in auth.list_users(admin)}
    erased = client.tombstones(acting_user=admin)["user_id"].to_list()
except LakehouseError as exc:
    st.error(f"Cannot read the audit log: {md_escape(str(exc))}")
    st.stop()
capped = records.height >= int(limit)
st.metric("Matching records", integer(records.height) + ("+" if capped else ""))
if capped:
    st.caption(
        f"Showing the newest {plural(int(limit), 'record')}; narrow the filters or raise the "
        "limit to see older ones."
    )
details = st.toggle(
    "Show ids and raw details",
    key="audit_details",
    help="Adds who carried each action out, the event and user ids, the browser's full user "
    "agent and the record's JSON details.",
)
frame, config = audit_table(records, names, erased, details=details)
st.dataframe(frame, column_config=config, hide_index=True)
