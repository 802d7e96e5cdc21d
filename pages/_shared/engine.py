"""The engine singleton: built once per Streamlit process."""

from __future__ import annotations

import streamlit as st

from core.engine import Engine, build_engine


@st.cache_resource(show_spinner="Starting the engine…")
def get_engine() -> Engine:
    return build_engine()
