"""Register: create an account (new accounts get the viewer role; an admin can promote them)."""

import streamlit as st

from lakehouse import LakehouseError
from pages._shared.accounts import get_auth
from pages._shared.auth import client_info, device_cookie, require_role, sign_in
from pages._shared.format import md_escape

require_role(None)

st.title("Create an HFThot account")
st.caption(
    "Passwords need at least 8 characters (up to 128); common passwords are refused. "
    "New accounts start as viewers."
)

with st.form("register"):
    username = st.text_input("Username", max_chars=32, autocomplete="username")
    email = st.text_input("Email", max_chars=254, autocomplete="email")
    password = st.text_input(
        "Password", type="password", max_chars=128, autocomplete="new-password"
    )
    repeat = st.text_input(
        "Repeat password", type="password", max_chars=128, autocomplete="new-password"
    )
    submitted = st.form_submit_button("Create account", type="primary")

if submitted:
    ip, agent = client_info()
    if password != repeat:
        st.error("The two passwords differ; type the same password twice.")
    else:
        try:
            get_auth().register(username, email, password)
            login = get_auth().login_with_device(
                username,
                password,
                ip=ip,
                user_agent=agent,
                device=device_cookie(),
            )
        except LakehouseError as exc:
            st.error(f"Could not create the account: {md_escape(str(exc))}")
        else:
            sign_in(login)
            st.rerun()
