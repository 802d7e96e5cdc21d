"""The page list handed to st.navigation."""

from __future__ import annotations

import streamlit as st
from streamlit.navigation.page import StreamlitPage


def build_pages() -> dict[str, list[StreamlitPage]]:
    return {
        "Portal": [
            st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        ],
    }
