"""Admin / Users: every account with its role and state, live sessions, erasure tombstones."""

import streamlit as st

from lakehouse import ROLES, LakehouseError
from pages._shared.account_view import (
    erasures_table,
    flash,
    md_escape,
    session_label,
    sessions_table,
    show_flash,
    users_table,
)
from pages._shared.accounts import get_auth, get_client
from pages._shared.auth import require_role
from pages._shared.format import plural

admin = require_role("admin")
auth, client = get_auth(), get_client()

st.title("Users")
show_flash()
users = auth.list_users(admin)
disabled = sum(u.disabled for u in users)
st.caption(
    f"{plural(len(users), 'account')}"
    + (f", {plural(disabled, 'disabled account')}" if disabled else "")
    + ". New accounts start as viewers; give a role below.",
    help="Roles: viewer (Home, the live market and their own account), analyst (also the "
    "Data page, the SQL explorer and the analysis pages), admin (also the Admin pages).",
)
details = st.toggle("Show ids and full browser strings", key="user_details")
frame, config = users_table(users, details=details)
st.dataframe(frame, column_config=config, hide_index=True)

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
        icon = ":material/check_circle:" if target.disabled else ":material/block:"
        if st.button(
            label,
            icon=icon,
            help="A disabled account cannot sign in and its sessions end at once; "
            "enable it again at any time.",
        ):
            try:
                auth.disable_user(admin, target.user_id, not target.disabled)
            except LakehouseError as exc:
                st.error(f"Account not changed: {md_escape(str(exc))}")
            else:
                state = "enabled" if target.disabled else "disabled"
                flash(f"{md_escape(target.username)} is {state}.")
                st.rerun()

st.subheader("Live sessions")
st.caption(
    "Signed-in browsers right now: not logged out, not expired and not idle too long.",
)
sessions = auth.list_all_sessions(admin)
if sessions:
    frame, config = sessions_table(sessions, admin.session_id, owners=True, details=details)
    st.dataframe(frame, column_config=config, hide_index=True)
    by_session = {s["session_id"]: s for s in sessions}
    end = st.selectbox(
        "End a session",
        list(by_session),
        format_func=lambda sid: session_label(by_session[sid]),
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
    st.caption(
        "An erased account leaves only this record: its random id, when, and who erased it. "
        "Its data leaves the disk at the next maintenance."
    )
    frame, config = erasures_table(stones, {u.user_id: u.username for u in users})
    st.dataframe(frame, column_config=config, hide_index=True)
else:
    st.caption("No account has been erased.")
