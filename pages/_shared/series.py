"""The market picker every analysis page shares: a market and how many recent bars to use."""

from __future__ import annotations

import polars as pl
import streamlit as st

from core.data import bundled
from core.data.catalog import SeriesRef, list_series, load_series
from core.data.store import MarketStore
from pages._shared.engine import get_engine

CUSTOM = "Pick markets yourself"


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


def _labels(refs: list[SeriesRef]) -> dict[SeriesRef, str]:
    """Each series with its source and date range: "AAPL · Apple (AAPL), daily 1990-2022 ·
    skfolio (BSD-3-Clause) · closes only"; "BTC/USDT · demo (SIMULATED) · 1m · 2026-01-02 to
    2026-01-03" for stored series."""
    ranges = {
        (r["venue"], r["symbol"], r["timeframe"]): (r["first"], r["last"])
        for r in _store().coverage().iter_rows(named=True)
        if r["kind"] == "bars"
    }
    labels: dict[SeriesRef, str] = {}
    for ref in refs:
        ds = bundled.DATASETS.get(ref.symbol) if ref.venue == bundled.VENUE else None
        if ds is not None:
            labels[ref] = f"{ref.symbol} · {ds.label}"
            continue
        venue = f"{ref.venue} (SIMULATED)" if ref.venue == "demo" else ref.venue
        first, last = ranges.get((ref.venue, ref.symbol, ref.timeframe), (None, None))
        span = f" · {first:%Y-%m-%d} to {last:%Y-%m-%d}" if first and last else ""
        labels[ref] = f"{ref.symbol} · {venue} · {ref.timeframe}{span}"
    return labels


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
    labels = _labels(refs)
    index = next((i for i, r in enumerate(refs) if r.symbol == default), 0)
    c1, c2 = st.columns([3, 1])
    with c1:
        ref = st.selectbox(label, refs, index=index, format_func=labels.__getitem__, key=key)
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
    """A basket choice, a multiselect of series and a window size; each choice with its
    newest bars, and N. Choosing a named basket (bundled.BASKETS, e.g. the 20 S&P 500
    stocks) fills the multiselect with its series."""
    refs = list_series(_store())
    labels = _labels(refs)
    chosen = [r for r in refs if r.symbol in defaults]

    def fill_basket() -> None:
        name = st.session_state[f"{key}_basket"]
        if name in bundled.BASKETS:
            members = bundled.BASKETS[name]
            st.session_state[key] = [
                r for r in refs if r.venue == bundled.VENUE and r.symbol in members
            ]

    st.selectbox(
        "Basket",
        [CUSTOM, *bundled.BASKETS],
        key=f"{key}_basket",
        on_change=fill_basket,
        help="A named basket of bundled real history fills the market list below; "
        "you can still add or remove markets.",
    )
    c1, c2 = st.columns([3, 1])
    with c1:
        picked = st.multiselect(
            label,
            refs,
            default=chosen,
            format_func=labels.__getitem__,
            key=key,
        )
    with c2:
        n = _window(last_key, last, max_last)
    return [(r, _load(r, n)) for r in picked], n
