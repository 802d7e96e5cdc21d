"""Order-book figures and the live book section of Live Market: depth chart (cumulative size
by price), top-20 ladder, and a Bookmap-style heatmap of resting size by price and time with
trades on top. Figures take plain levels (best first), so live and replayed books share them."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import plotly.graph_objects as go
import polars as pl
import streamlit as st

from core.data.schema import TRADES
from core.ingest.live_book import BookView
from core.ingest.service import IngestService
from pages._shared.format import DOWN, MISSING, UP, integer, md_escape

Levels = Sequence[tuple[float, float]]
LADDER_ROWS = 20
HEAT_ROWS = 100
"""Price buckets of the heatmap (its columns are the book's samples: at most ~1,200)."""
MAX_TRADES = 3000
"""Trades drawn on the heatmap at most (the latest)."""
BUY, SELL, OTHER = UP, DOWN, "#9b9b9b"
HEAT_COLOURS = [
    [0.0, "#0d0887"],
    [0.25, "#6a00a8"],
    [0.5, "#b12a90"],
    [0.75, "#e16462"],
    [1.0, "#fcce25"],
]
"""Plasma, from little resting size (dark blue) to much (yellow); empty cells stay blank."""


def _cumulative(levels: Levels) -> tuple[list[float], list[float]]:
    prices = [float(p) for p, _ in levels]
    totals = np.cumsum([float(q) for _, q in levels]).tolist() if levels else []
    return prices, totals


def depth_figure(bids: Levels, asks: Levels, title: str) -> go.Figure:
    """Cumulative size by price: bids stepping down from the best bid, asks up from the best
    ask; the mid as a dashed line."""
    fig = go.Figure()
    for name, levels, colour in (("bids", bids, UP), ("asks", asks, DOWN)):
        prices, totals = _cumulative(levels)
        fig.add_trace(
            go.Scatter(
                x=prices,
                y=totals,
                name=name,
                mode="lines",
                line={"shape": "hv", "color": colour},
                fill="tozeroy",
                hovertemplate="price %{x}<br>cumulative size %{y}<extra>" + name + "</extra>",
            )
        )
    if bids and asks:
        mid = (float(bids[0][0]) + float(asks[0][0])) / 2
        fig.add_vline(x=mid, line_dash="dash", line_color="#9b9b9b")
        fig.add_annotation(x=mid, y=1, yref="paper", text=f"mid {price_text(mid)}", showarrow=False)
    fig.update_layout(
        title=html.escape(title),
        height=360,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        xaxis_title="price",
        yaxis_title="cumulative size",
        uirevision="keep",
        transition={"duration": 0},
    )
    return fig


def ladder_frame(bids: Levels, asks: Levels, rows: int = LADDER_ROWS) -> pl.DataFrame:
    """The top `rows` levels side by side, best first: bid total, bid size, bid | ask, ask
    size, ask total (totals are cumulative from the best level); None where a side ends."""
    _, bid_total = _cumulative(bids[:rows])
    _, ask_total = _cumulative(asks[:rows])

    def col(values: Sequence[float]) -> list[float | None]:
        out: list[float | None] = [float(v) for v in values]
        return out + [None] * (rows - len(out))

    return pl.DataFrame(
        {
            "bid total": col(bid_total),
            "bid size": col([q for _, q in bids[:rows]]),
            "bid": col([p for p, _ in bids[:rows]]),
            "ask": col([p for p, _ in asks[:rows]]),
            "ask size": col([q for _, q in asks[:rows]]),
            "ask total": col(ask_total),
        },
        schema={c: pl.Float64 for c in LADDER_COLUMNS},
    )


LADDER_COLUMNS = ("bid total", "bid size", "bid", "ask", "ask size", "ask total")


def show_ladder(bids: Levels, asks: Levels, key: str) -> None:
    tips = {
        "bid total": "Cumulative bid size from the best bid to this level",
        "ask total": "Cumulative ask size from the best ask to this level",
    }
    st.dataframe(
        ladder_frame(bids, asks),
        hide_index=True,
        width="stretch",
        key=key,
        column_config={
            c: st.column_config.NumberColumn(c, help=tips.get(c), width="small")
            for c in LADDER_COLUMNS
        },
    )


def price_text(value: float | None) -> str:
    """A price or a spread as the venue quotes it: up to 10 significant figures, no padding."""
    return MISSING if value is None else f"{value:,.10g}"


def heat_grid(
    history: Sequence[BookView], rows: int = HEAT_ROWS
) -> tuple[list[datetime], np.ndarray, np.ndarray]:
    """(times, bucket mid prices, size[bucket, time]): resting size of both sides summed in
    `rows` equal price buckets spanning every level seen in `history`."""
    times = [v.ts for v in history]
    prices = np.array([p for v in history for p, _ in (*v.bids, *v.asks)], dtype=float)
    sizes = np.array([q for v in history for _, q in (*v.bids, *v.asks)], dtype=float)
    cols = np.repeat(np.arange(len(history)), [len(v.bids) + len(v.asks) for v in history])
    grid = np.zeros((rows, len(history)))
    if prices.size == 0:
        return times, np.zeros(rows), grid
    lo, hi = float(prices.min()), float(prices.max())
    width = (hi - lo) / rows or 1.0
    bucket = np.minimum(((prices - lo) / width).astype(int), rows - 1)
    np.add.at(grid, (bucket, cols), sizes)
    centres = lo + (np.arange(rows) + 0.5) * width
    return times, centres, grid


def heatmap_figure(history: Sequence[BookView], trades: pl.DataFrame, title: str) -> go.Figure:
    """Resting size by price and time (both sides, brighter = more), the best bid and ask, and
    the trades as dots sized by amount (green buys, red sells, grey side unknown)."""
    times, centres, grid = heat_grid(history)
    positive = grid[grid > 0]
    top = float(np.percentile(positive, 99)) if positive.size else 1.0
    fig = go.Figure(
        go.Heatmap(
            x=times,
            y=centres,
            z=np.where(grid > 0, grid, np.nan),  # no resting size: not drawn
            zmin=0,
            zmax=top,
            colorscale=HEAT_COLOURS,
            colorbar={"title": {"text": "resting size"}},
            name="book",
            hovertemplate="%{x}<br>price %{y}<br>size %{z}<extra></extra>",
        )
    )
    for name, side in (("best bid", "bids"), ("best ask", "asks")):
        best = [getattr(v, side)[0][0] if getattr(v, side) else None for v in history]
        fig.add_trace(
            go.Scatter(x=times, y=best, name=name, mode="lines", line={"color": "#ffffff"})
        )
    if trades.height:
        shown = trades.tail(MAX_TRADES)
        amount = shown["amount"].to_numpy()
        scale = float(amount.max()) or 1.0
        colours = [BUY if s == "buy" else SELL if s == "sell" else OTHER for s in shown["side"]]
        fig.add_trace(
            go.Scatter(
                x=shown["ts"].to_list(),
                y=shown["price"].to_list(),
                name="trades",
                mode="markers",
                marker={
                    "color": colours,
                    "size": (4 + 12 * np.sqrt(amount / scale)).tolist(),
                    "line": {"width": 0.5, "color": "#000000"},
                },
                customdata=shown["amount"].to_list(),
                hovertemplate="%{x}<br>trade %{y} × %{customdata}<extra></extra>",
            )
        )
    fig.update_layout(
        title=html.escape(title),
        height=460,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        showlegend=False,
        yaxis_title="price",
        uirevision="keep",
        transition={"duration": 0},
    )
    return fig


def live_book_section(service: IngestService, venue: str, symbol: str, label: str) -> None:
    """The live book of `symbol` on `venue`: stream health, depth chart, ladder, heatmap.
    Drawn from the fragment that refreshes Live Market every second."""
    book = service.live_book(venue, symbol)
    if book is None:
        return
    st.subheader("Order book")
    status = next((s for s in service.stream_status(venue, symbol) if s.key.kind == "book"), None)
    view = book.view(LADDER_ROWS)
    if status is not None:
        st.caption(
            f"Book stream {md_escape(status.key.name)}: {status.state}, "
            f"{integer(book.updates)} updates, {integer(status.resyncs)} resyncs"
            + (f", sequence {view.seq}" if view is not None else "")
            + (f". Last error: {md_escape(status.last_error)}" if status.last_error else "")
        )
    if view is None or not (view.bids or view.asks):
        st.info("Waiting for the first book…")
        return
    best_bid = view.bids[0][0] if view.bids else None
    best_ask = view.asks[0][0] if view.asks else None
    st.caption(
        f"Book at {view.ts:%H:%M:%S}.{view.ts.microsecond // 1000:03d} UTC · best bid "
        f"{price_text(best_bid)} · best ask {price_text(best_ask)} · "
        f"spread {price_text(view.spread)}{label}"
    )
    depth_col, ladder_col = st.columns([1, 1])
    depth_col.plotly_chart(
        depth_figure(view.bids, view.asks, f"Depth · {symbol}{label}"), key="live_depth"
    )
    with ladder_col:
        show_ladder(view.bids, view.asks, key="live_ladder")
    history = book.history()
    if not history:
        return
    span = (history[0].ts, history[-1].ts)
    store = service.store
    trades = (
        store.get_trades(symbol, span[0], span[1] + timedelta(microseconds=1), venue=venue)
        if store is not None
        else pl.DataFrame(schema=TRADES)
    )
    st.plotly_chart(
        heatmap_figure(history, trades, f"Liquidity heatmap · {symbol}{label}"),
        key="live_heatmap",
    )
    st.caption(
        f"Resting size of the top {book.history_depth} levels a side, sampled every "
        f"{book.sample_us / 1e6:g} s over the last {len(history)} samples, in "
        f"{HEAT_ROWS} price buckets; colour capped at the 99th percentile. "
        f"{integer(min(trades.height, MAX_TRADES))} trades drawn (green buy, red sell)."
    )
