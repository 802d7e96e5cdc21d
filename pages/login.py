"""Sign in: username and password; a success keeps the session in an HttpOnly cookie."""

import streamlit as st

from lakehouse import AuthError, LakehouseError, Throttled
from pages._shared.accounts import get_auth
from pages._shared.auth import client_info, device_cookie, require_role, sign_in
from pages._shared.format import md_escape

require_role(None)

st.title("Sign in to HFThot")

with st.form("login"):
    username = st.text_input("Username", max_chars=32, autocomplete="username")
    password = st.text_input(
        "Password", type="password", max_chars=128, autocomplete="current-password"
    )
    submitted = st.form_submit_button("Sign in", type="primary")

if submitted:
    ip, agent = client_info()
    try:
        login = get_auth().login_with_device(
            username,
            password,
            ip=ip,
            user_agent=agent,
            device=device_cookie(),
        )
    except Throttled as exc:
        st.error(f"Sign-in paused: {md_escape(str(exc))}.")
    except AuthError:
        st.error("Invalid username or password.")
    except LakehouseError as exc:
        st.error(f"Could not sign in: {md_escape(str(exc))}")
    else:
        sign_in(login)
        st.rerun()

st.caption("No account yet? Open **Register** in the menu.")
