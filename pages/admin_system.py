"""Admin / System: the engine's version and native module, the data directory and its disk,
the live streams, the storage tiers and every stored series."""

import streamlit as st

from pages._shared import market_view
from pages._shared.auth import require_role
from pages._shared.engine import get_engine
from pages._shared.format import human_bytes, md_escape
from pages._shared.live import stream_status_if_running

require_role("admin")
engine = get_engine()
facts = engine.facts()

st.title("System")
st.caption("How this HFThot server is doing: for administrators.")

version, native_col, disk = st.columns(3)
version.metric("Engine version", facts.version)
if facts.native.loaded:
    native_col.metric("Native module", "loaded", help=f"core._native {facts.native.version}")
else:
    native_col.metric("Native module", "missing")
disk.metric("Free disk", human_bytes(facts.disk.free_bytes))

if facts.native.loaded:
    st.success(
        f"Rust extension core._native {facts.native.version} loaded "
        f"({facts.native.build_profile} build, {md_escape(str(facts.native.path))})."
    )
else:
    st.error(f"Rust extension not loaded: {md_escape(str(facts.native.error))}")

st.subheader("Data directory")
st.text(str(facts.data_dir))
st.caption(
    f"{human_bytes(facts.disk.free_bytes)} free of {human_bytes(facts.disk.total_bytes)} "
    "on this file system."
)

st.subheader("Market streams")
stream_status_if_running()

market_view.tier_statistics(engine)
market_view.data_coverage(engine)
