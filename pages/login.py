"""Sign in: username and password; a success keeps the session in an HttpOnly cookie and
returns to the page the visitor asked for first (or Home)."""

import streamlit as st

from pages._shared.auth import require_role, sign_in_form

require_role(None)

st.title("Sign in to HFThot")
sign_in_form()
st.page_link("pages/register.py", label="No account yet? Create one", icon=":material/person_add:")
