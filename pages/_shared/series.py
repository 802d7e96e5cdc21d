"""The market picker every analysis page shares."""

from __future__ import annotations

import polars as pl
import streamlit as st

from core.data.catalog import SeriesRef, list_series, load_series
from core.data.store import MarketStore
from pages._shared.engine import get_engine


def _store() -> MarketStore:
    return get_engine().store


def _load(venue: str, symbol: str, timeframe: str) -> pl.DataFrame:
    # No st.cache_data here: the store's hot tier already caches whole-series reads under
    # keys that carry the data version (so live series stay fresh) within a byte budget,
    # and a hit costs microseconds instead of an unpickled copy.
    return load_series(SeriesRef(venue, symbol, timeframe), _store())


def pick_series(
    key: str, label: str = "Market", default: str = "SP500"
) -> tuple[SeriesRef, pl.DataFrame]:
    """A selectbox of every series; returns the choice and its bars (BARS schema)."""
    refs = list_series(_store())
    index = next((i for i, r in enumerate(refs) if r.symbol == default), 0)
    ref = st.selectbox(label, refs, index=index, format_func=lambda r: r.label, key=key)
    return ref, _load(ref.venue, ref.symbol, ref.timeframe)


def pick_many(
    key: str, label: str = "Markets", defaults: tuple[str, ...] = ("SP500", "NASDAQ")
) -> list[tuple[SeriesRef, pl.DataFrame]]:
    """A multiselect of series; returns each choice with its bars."""
    refs = list_series(_store())
    chosen = [r for r in refs if r.symbol in defaults]
    picked = st.multiselect(label, refs, default=chosen, format_func=lambda r: r.label, key=key)
    return [(r, _load(r.venue, r.symbol, r.timeframe)) for r in picked]
