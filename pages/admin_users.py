"""Admin / Users: every account with its role and state, live sessions, erasure tombstones."""

import polars as pl
import streamlit as st

from lakehouse import ROLES, LakehouseError
from pages._shared.account_view import flash, md_escape, sessions_frame, show_flash, users_frame
from pages._shared.accounts import get_auth, get_client
from pages._shared.auth import require_role

admin = require_role("admin")
auth, client = get_auth(), get_client()

st.title("Users")
show_flash()
users = auth.list_users(admin)
st.dataframe(users_frame(users), hide_index=True)

by_id = {u.user_id: u for u in users}
st.subheader("Change an account")
target_id = st.selectbox(
    "Account",
    list(by_id),
    format_func=lambda uid: f"{by_id[uid].username} ({by_id[uid].role})",
    index=None,
    placeholder="Choose an account",
)
if target_id is not None:
    target = by_id[target_id]
    role_col, state_col = st.columns(2)
    with role_col:
        role = st.selectbox(
            "Role", ROLES, index=ROLES.index(target.role), key=f"role_{target.user_id}"
        )
        if st.button("Apply role", disabled=role == target.role):
            try:
                auth.set_role(admin, target.user_id, role)
            except LakehouseError as exc:
                st.error(f"Role not changed: {md_escape(str(exc))}")
            else:
                flash(f"{md_escape(target.username)} is now {role}.")
                st.rerun()
    with state_col:
        st.write("Disabled" if target.disabled else "Enabled")
        label = "Enable account" if target.disabled else "Disable account (logs it out)"
        if st.button(label):
            try:
                auth.disable_user(admin, target.user_id, not target.disabled)
            except LakehouseError as exc:
                st.error(f"Account not changed: {md_escape(str(exc))}")
            else:
                state = "enabled" if target.disabled else "disabled"
                flash(f"{md_escape(target.username)} is {state}.")
                st.rerun()

st.subheader("Live sessions")
sessions = auth.list_all_sessions(admin)
if sessions:
    table = sessions_frame(sessions, current=admin.session_id)
    owners = pl.Series("user", [s["username"] for s in sessions])
    st.dataframe(table.insert_column(0, owners), hide_index=True)
    end = st.selectbox(
        "End a session",
        [s["session_id"] for s in sessions],
        format_func=lambda sid: next(
            f"{s['username']} · {sid[:8]}" for s in sessions if s["session_id"] == sid
        ),
        index=None,
        placeholder="Choose a session",
    )
    if st.button("End session", disabled=end is None) and end is not None:
        try:
            auth.revoke_session(admin, end)
        except LakehouseError as exc:
            st.error(f"Session not ended: {md_escape(str(exc))}")
        else:
            flash("Session ended.")
            st.rerun()
else:
    st.caption("No live sessions.")

st.subheader("Erasures")
stones = client.tombstones(acting_user=admin)
if stones.height:
    st.dataframe(stones, hide_index=True)
else:
    st.caption("No account has been erased.")
