"""Store widgets shared by pages: tier statistics and data coverage."""

from __future__ import annotations

import polars as pl
import streamlit as st

from core.engine import Engine
from pages._shared.format import header, human_bytes, md_escape


def _us(value: object) -> str:
    return "–" if value is None else f"{float(value):,.1f} µs"  # type: ignore[arg-type]


def _rate(value: object) -> str:
    return "–" if value is None else f"{float(value) * 100:.1f} %"  # type: ignore[arg-type]


def tier_statistics(engine: Engine) -> None:
    """Hit rate, p50 latencies and bytes of the hot, warm, rollup and analytics tiers."""
    stats = engine.tier_stats()
    hot, warm = stats["hot"], stats["warm"]
    st.subheader("Storage tiers")
    a, b, c, d = st.columns(4)
    a.metric(
        "Hot hit rate", _rate(hot["hit_rate"]), help=f"{hot['hits']} hits, {hot['misses']} misses"
    )
    b.metric("Hot hit p50", _us(hot["p50_us"]))
    c.metric("Warm read p50", _us(warm["p50_us"]))
    d.metric("Warm bytes", human_bytes(warm["bytes"]), help=f"{warm['files']} Parquet files")
    rows = [
        {
            "tier": name,
            "hits": s["hits"],
            "misses": s["misses"],
            "hit rate": _rate(s["hit_rate"]),
            "p50": _us(s["p50_us"]),
            "p95": _us(s["p95_us"]),
            "bytes": "–" if s.get("bytes") is None else human_bytes(s["bytes"]),
        }
        for name, s in stats.items()
    ]
    st.dataframe(pl.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(
        f"Hot tier: {hot['policy']} cache of {human_bytes(hot['capacity_bytes'])}, "
        f"{hot['entries']} entries. Counters and latencies are measured in this process "
        "since it started."
    )


def data_coverage(engine: Engine) -> None:
    """First, last and row count of every stored series."""
    st.subheader("Data coverage")
    cov = engine.coverage()
    if cov.height == 0:
        st.info("The market store is empty.")
        return
    shown = cov.select(
        "venue",
        "symbol",
        "source",
        "timeframe",
        "first",
        "last",
        "rows",
        "kind",
        "files",
        pl.col("bytes").map_elements(human_bytes, return_dtype=pl.String).alias("size"),
    )
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={c: header(c) for c in shown.columns},
    )
    st.caption(
        "Venue `bundled` is real daily history shipped inside Python packages and imported on "
        "first start: skfolio (BSD-3-Clause; adjusted closes of 20 S&P 500 stocks, the index "
        "and 5 factor ETFs, for research and examples, not for trading), arch (NCSA) and "
        "backtesting (AGPL-3.0). A series marked *closes only* has open = high = low = close "
        "and no volume. Venue `demo` is SIMULATED: a price model on this server."
    )
    if engine.bundled_error:
        st.warning(md_escape(engine.bundled_error))
