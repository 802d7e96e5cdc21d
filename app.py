"""HFThot: router only. Page config, then the page list, then run the chosen page."""

import streamlit as st

from pages._shared.navigation import build_pages

st.set_page_config(page_title="HFThot", page_icon="assets/logo.svg", layout="wide")
st.navigation(build_pages()).run()
