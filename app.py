"""HFThot: router only. Page config, the auth gate, then the pages this role may see."""

import streamlit as st

from pages._shared.auth import current_user
from pages._shared.navigation import build_pages

st.set_page_config(page_title="HFThot", page_icon="assets/logo.svg", layout="wide")
user = current_user()
st.navigation(build_pages(user.role if user else None)).run()
