"""My account: who I am, my open sessions, change my password, my access tokens for the API,
log out elsewhere."""

import datetime as dt

import streamlit as st

from lakehouse import SCOPES, LakehouseError
from pages._shared.account_view import (
    flash,
    md_escape,
    scope_label,
    scopes_beyond_role,
    session_label,
    sessions_table,
    show_flash,
    token_label,
    tokens_table,
)
from pages._shared.accounts import get_auth, settings
from pages._shared.auth import current_token, require_role, sign_out
from pages._shared.format import plural, wait

user = require_role("viewer")
auth = get_auth()

st.title("My account")
show_flash()
name_col, email_col, role_col = st.columns(3)
# Metric values render markdown: user text goes through md_escape to show as typed.
name_col.metric("Username", md_escape(user.username))
email_col.metric("Email", md_escape(user.email))
role_col.metric("Role", user.role)
st.caption(f"Member since {user.created_at:%Y-%m-%d %H:%M} UTC.")

st.subheader("Sessions")
sessions = auth.list_sessions(user.user_id)
st.caption(
    f"You are signed in on {plural(len(sessions), 'browser')}. End any you do not recognise.",
    help=f"A session ends when you log out, {wait(settings().session_ttl_hours * 3600)} after "
    f"signing in, or after {wait(settings().session_idle_minutes * 60)} without activity.",
)
details = st.toggle("Show session ids and full browser strings", key="session_details")
frame, config = sessions_table(sessions, current=user.session_id, details=details)
st.dataframe(frame, column_config=config, hide_index=True)
others = {s["session_id"]: s for s in sessions if s["session_id"] != user.session_id}
end_col, all_col = st.columns(2)
with end_col:
    choice = st.selectbox(
        "End one session",
        list(others),
        format_func=lambda sid: session_label(others[sid]),
        index=None,
        placeholder="Choose a session" if others else "No other sessions",
        disabled=not others,
    )
    if st.button("End this session", disabled=choice is None) and choice is not None:
        try:
            auth.revoke_session(user, choice)
        except LakehouseError as exc:
            st.error(f"Could not end the session: {md_escape(str(exc))}")
        else:
            flash("Session ended.")
            st.rerun()
with all_col:
    st.write("")
    if st.button("Log out everywhere else", disabled=not others):
        n = auth.revoke_other_sessions(current_token() or "")
        flash(f"Ended {plural(n, 'other session')}.")
        st.rerun()

st.subheader("Change password")
with st.form("change_password", clear_on_submit=True):
    old = st.text_input("Current password", type="password", autocomplete="current-password")
    new = st.text_input("New password", type="password", autocomplete="new-password")
    again = st.text_input("Repeat new password", type="password", autocomplete="new-password")
    change = st.form_submit_button("Change password")
if change:
    if new != again:
        st.error("The two new passwords differ; type the same password twice.")
    else:
        try:
            auth.change_password(current_token() or "", old, new)
        except LakehouseError as exc:
            st.error(f"Password not changed: {md_escape(str(exc))}")
        else:
            flash("Password changed. Your other sessions were logged out.")
            st.rerun()

st.subheader("Access tokens")
st.caption(
    "A personal access token lets a script or notebook use HFThot as you, within the scopes "
    "you pick and your role. Send it as `Authorization: Bearer <token>` to the API under "
    "`/api/v1/`, or use it from Python with `from core.client import Client`."
)
with st.form("create_token", clear_on_submit=True):
    token_name = st.text_input("Token name", max_chars=60, placeholder="e.g. research notebook")
    scopes = st.multiselect(
        "Scopes",
        list(SCOPES),
        default=["market:read"],
        format_func=scope_label,
        help="What the token may do. Your role still applies on every call.",
    )
    days = st.number_input("Expires in (days)", min_value=1, max_value=365, value=30, step=1)
    token_pw = st.text_input(
        "Your password (asked again to create a token)", type="password", key="token_pw"
    )
    create = st.form_submit_button("Create token")
if create:
    try:
        new_token = auth.create_access_token(
            user.user_id, token_name, scopes, int(days), password=token_pw
        )
    except LakehouseError as exc:
        st.error(f"Token not created: {md_escape(str(exc))}")
    else:
        st.success(f"Token {md_escape(token_name.strip())} created.")
        st.warning(
            "Copy this token now: it will not be shown again. Store it like a password.",
            icon=":material/key:",
        )
        st.code(new_token, language=None)
        beyond = scopes_beyond_role(user, scopes)
        if beyond:
            st.info(
                f"Your role ({user.role}) does not allow {', '.join(beyond)} yet; the token is "
                "refused for it until an administrator gives you that role."
            )
tokens = auth.list_access_tokens(user.user_id)
if tokens:
    now = dt.datetime.now(dt.UTC)
    frame, config = tokens_table(tokens, now)
    st.dataframe(frame, column_config=config, hide_index=True)
    live = {t.token_id: t for t in tokens if t.status(now) == "active"}
    pick = st.selectbox(
        "Revoke a token",
        list(live),
        format_func=lambda tid: token_label(live[tid]),
        index=None,
        placeholder="Choose a token" if live else "No live tokens",
        disabled=not live,
    )
    if st.button("Revoke token", disabled=pick is None) and pick is not None:
        try:
            auth.revoke_access_token(user.user_id, pick)
        except LakehouseError as exc:
            st.error(f"Could not revoke the token: {md_escape(str(exc))}")
        else:
            flash(f"Token {md_escape(live[pick].name)} revoked; it no longer works.")
            st.rerun()
else:
    st.caption("You have no access tokens yet.")

st.subheader("Log out")
st.caption(f"Ends this session for {md_escape(user.username)} on the server and clears the cookie.")
st.button("Log out of this session", on_click=sign_out, key="account_logout")
