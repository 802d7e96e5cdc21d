"""The market picker every analysis page shares: a market and how many recent bars to use."""

from __future__ import annotations

import polars as pl
import streamlit as st

from core.data.catalog import SeriesRef, list_series, load_series
from core.data.store import MarketStore
from pages._shared.engine import get_engine


def _store() -> MarketStore:
    return get_engine().store


def _load(ref: SeriesRef, last: int) -> pl.DataFrame:
    # No st.cache_data here: the store's hot tier caches these tail reads under keys that
    # carry the data version (so live series stay fresh) within a byte budget, and a hit
    # is a zero-copy slice instead of an unpickled copy.
    return load_series(ref, _store(), last=last)


def _window(key: str, default: int, maximum: int) -> int:
    return int(
        st.number_input(
            "Use the last N bars",
            min_value=10,
            max_value=maximum,
            value=default,
            step=1000 if default >= 10_000 else 252,
            key=key,
            help="Only the newest N bars are read and analysed.",
        )
    )


# Default windows: 15,000 bars (about ten days of minutes, all of a daily history) for
# one-market pages, 2,520 for baskets. Both fit the hot tier's smallest cached tail
# (TAIL_MIN = 16,384 rows), so every page's default read of a market is one shared entry.


def pick_series(
    key: str,
    label: str = "Market",
    default: str = "SP500",
    *,
    last_key: str,
    last: int = 15_000,
    max_last: int = 200_000,
) -> tuple[SeriesRef, pl.DataFrame]:
    """A selectbox of every series and a window size; returns the choice and its newest bars."""
    refs = list_series(_store())
    index = next((i for i, r in enumerate(refs) if r.symbol == default), 0)
    c1, c2 = st.columns([3, 1])
    with c1:
        ref = st.selectbox(label, refs, index=index, format_func=lambda r: r.label, key=key)
    with c2:
        n = _window(last_key, last, max_last)
    return ref, _load(ref, n)


def pick_many(
    key: str,
    label: str = "Markets",
    defaults: tuple[str, ...] = ("SP500", "NASDAQ"),
    *,
    last_key: str,
    last: int = 2520,
    max_last: int = 500_000,
) -> tuple[list[tuple[SeriesRef, pl.DataFrame]], int]:
    """A multiselect of series and a window size; each choice with its newest bars, and N."""
    refs = list_series(_store())
    chosen = [r for r in refs if r.symbol in defaults]
    c1, c2 = st.columns([3, 1])
    with c1:
        picked = st.multiselect(label, refs, default=chosen, format_func=lambda r: r.label, key=key)
    with c2:
        n = _window(last_key, last, max_last)
    return [(r, _load(r, n)) for r in picked], n
