"""Recorded books on Live Market: replay a book at any recorded instant (also after a
restart: the store's files, not the live streams), and its microstructure over a window."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, time, timedelta

import plotly.graph_objects as go
import polars as pl
import streamlit as st
from plotly.subplots import make_subplots

from core.data.books import EVERY
from core.data.store import MarketStore
from core.errors import InvalidInput
from pages._shared.book_view import LADDER_ROWS, depth_figure, price_text, show_ladder
from pages._shared.format import DOWN, MISSING, PALETTE, UP, integer, md_escape, num

WINDOWS: dict[str, int | None] = {
    "Last 5 minutes": 5,
    "Last 15 minutes": 15,
    "Last 60 minutes": 60,
    "Custom range": None,
}
MAX_SAMPLES = 20_000
"""Most samples one chart draws; a longer window needs a coarser interval."""
REPLAY_DEPTH = 50
MEASURES = (
    "**Mid**: (best bid + best ask) / 2. **Microprice**: the best prices weighted by the size "
    "on the other side, (ask × bid size + bid × ask size) / (bid size + ask size); it leans "
    "toward the side more likely to move. **Spread**: best ask − best bid. **Depth within "
    "10/50 bps**: resting size within 10 or 50 basis points of the mid on each side. "
    "**Imbalance**: (bid size − ask size) / (bid size + ask size) at the best levels, in −1..1. "
    "**OFI** (order-flow imbalance, Cont, Kukanov and Stoikov 2014): net size added at the "
    "best bid minus the best ask over each interval; positive is buying pressure."
)


def parse_instant(day: date, text: str) -> datetime:
    """`day` at the UTC time of day `text` (HH:MM, HH:MM:SS or HH:MM:SS.ffffff)."""
    try:
        clock = time.fromisoformat(text.strip())
    except ValueError:
        raise InvalidInput("time must be HH:MM:SS in UTC, e.g. 14:03:27 or 14:03:27.250") from None
    if clock.tzinfo is not None:
        raise InvalidInput("time is UTC: leave out the offset")
    return datetime.combine(day, clock, UTC)


def pick_recorded(store: MarketStore, prefer: tuple[str, str] | None) -> pl.DataFrame | None:
    """The recorded book chosen by the user: one coverage row (venue, symbol, first, last),
    or None (with a message) when nothing was recorded."""
    cov = store.books.coverage()
    if cov.height == 0:
        st.info(
            "No recorded order book yet. Books are recorded while a book stream runs (the "
            "demo venue streams one per symbol) and can be replayed after a restart."
        )
        return None
    keys = list(zip(cov["venue"], cov["symbol"], strict=True))
    index = keys.index(prefer) if prefer in keys else 0
    venue, symbol = st.selectbox(
        "Recorded book",
        keys,
        index=index,
        format_func=lambda k: f"{k[1]} on {k[0]}",
        key="recorded_book",
    )
    row = cov.filter(pl.col("venue") == venue, pl.col("symbol") == symbol)
    first, last = row["first"][0], row["last"][0]
    st.caption(f"Recorded from {first:%Y-%m-%d %H:%M:%S} to {last:%Y-%m-%d %H:%M:%S} UTC.")
    return row


def _instant_inputs(prefix: str, default: datetime, first: datetime, last: datetime) -> datetime:
    """A date and a UTC time; the defaults are set once per book, so a live recording moving
    on does not reset what the user typed."""
    day_key, time_key = f"{prefix}_day", f"{prefix}_time"
    st.session_state.setdefault(day_key, default.date())
    st.session_state.setdefault(time_key, f"{default:%H:%M:%S.%f}")
    day_col, time_col = st.columns(2)
    day = day_col.date_input(
        "Date (UTC)", min_value=first.date(), max_value=last.date(), key=day_key
    )
    text = time_col.text_input(
        "Time (UTC)", key=time_key, help="HH:MM:SS, with a fraction of a second if you like"
    )
    if not isinstance(day, date):
        raise InvalidInput("pick a date")
    return parse_instant(day, text)


def _to_latest(prefix: str, store: MarketStore, venue: str, symbol: str) -> None:
    """The Latest button: the end of the recording as it is now (it grows while live)."""
    cov = store.books.coverage().filter(pl.col("venue") == venue, pl.col("symbol") == symbol)
    if cov.height:
        last = cov["last"][0]
        st.session_state[f"{prefix}_day"] = last.date()
        st.session_state[f"{prefix}_time"] = f"{last:%H:%M:%S.%f}"


def replay_section(store: MarketStore, row: pl.DataFrame, label: str) -> None:
    """The recorded book at a chosen instant (default: the latest), replayed by store.book_at."""
    venue, symbol, first, last = row.row(0)
    prefix = f"replay:{venue}:{symbol}"
    st.button(
        "Latest", key=f"{prefix}_latest", on_click=_to_latest, args=(prefix, store, venue, symbol)
    )
    try:
        at = _instant_inputs(prefix, last, first, last)
        book = store.book_at(venue, symbol, at, depth=REPLAY_DEPTH)
    except InvalidInput as exc:
        st.warning(md_escape(str(exc)))
        return
    bids, asks = book.bids.rows(), book.asks.rows()
    mid = price_text(book.mid)
    st.caption(
        f"{md_escape(symbol)} on {md_escape(venue)}{label} at {book.ts:%Y-%m-%d %H:%M:%S.%f} "
        f"UTC: sequence {book.seq}, mid {mid}, {integer(len(bids))} bid and "
        f"{integer(len(asks))} ask levels shown."
    )
    if at > last:
        st.caption("That is after the recording ends: the book as it was last recorded.")
    depth_col, ladder_col = st.columns([1, 1])
    depth_col.plotly_chart(
        depth_figure(bids, asks, f"Replayed depth · {symbol}{label}"), key="replay_depth"
    )
    with ladder_col:
        show_ladder(bids[:LADDER_ROWS], asks[:LADDER_ROWS], key="replay_ladder")


def _short(value: object) -> str:
    return MISSING if not isinstance(value, int | float) else f"{value:,.6g}"


def features_figure(frame: pl.DataFrame, title: str) -> go.Figure:
    """Mid and microprice, spread, depth within 10/50 bps each side, imbalance and OFI."""
    fig = make_subplots(
        rows=5,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.03,
        row_heights=[0.3, 0.15, 0.25, 0.15, 0.15],
    )
    ts = frame["ts"].to_list()

    def line(col: str, row: int, colour: str, dash: str | None = None) -> None:
        fig.add_trace(
            go.Scatter(
                x=ts,
                y=frame[col].to_list(),
                name=col,
                mode="lines",
                line={"color": colour, "dash": dash},
            ),
            row=row,
            col=1,
        )

    line("mid", 1, PALETTE[0])
    line("microprice", 1, PALETTE[1])
    line("spread", 2, PALETTE[2])
    line("depth_bid_10bps", 3, UP)
    line("depth_ask_10bps", 3, DOWN)
    line("depth_bid_50bps", 3, UP, "dot")
    line("depth_ask_50bps", 3, DOWN, "dot")
    line("imbalance", 4, PALETTE[4])
    ofi = frame["ofi"].fill_nan(None).to_list()
    fig.add_trace(
        go.Bar(
            x=ts,
            y=ofi,
            name="ofi",
            marker_color=[UP if (v or 0) >= 0 else DOWN for v in ofi],
        ),
        row=5,
        col=1,
    )
    for row, name in enumerate(["price", "spread", "depth", "imbalance", "OFI"], start=1):
        fig.update_yaxes(title_text=name, row=row, col=1)
    fig.update_layout(
        title=html.escape(title),
        height=900,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h"},
        transition={"duration": 0},
    )
    return fig


def _window(row: pl.DataFrame) -> tuple[datetime, datetime] | None:
    venue, symbol, first, last = row.row(0)
    choice = st.radio("Window", list(WINDOWS), horizontal=True, key="micro_window")
    minutes = WINDOWS[choice]
    if minutes is not None:
        start = max(first, last - timedelta(minutes=minutes))
        if start > last - timedelta(minutes=minutes):
            st.caption(f"The recording starts at {first:%H:%M:%S} UTC: the window is shorter.")
        return start, last + timedelta(microseconds=1)
    prefix = f"micro:{venue}:{symbol}"
    st.caption("From")
    start = _instant_inputs(f"{prefix}_from", max(first, last - timedelta(minutes=15)), first, last)
    st.caption("To")
    end = _instant_inputs(f"{prefix}_to", last, first, last)
    return start, end


def microstructure_section(store: MarketStore, row: pl.DataFrame, label: str) -> None:
    """Features of the recorded book (store.book_features) over a chosen window."""
    venue, symbol = row["venue"][0], row["symbol"][0]
    every = st.selectbox(
        "Sampling interval",
        list(EVERY),
        index=list(EVERY).index("1s"),
        key="micro_every",
        help="One sample per interval: the book after every change up to that instant.",
    )
    try:
        window = _window(row)
        if window is None:
            return
        start, end = window
        if end <= start:
            raise InvalidInput("the end must be after the start")
        samples = (end - start) / timedelta(microseconds=EVERY[every])
        if samples > MAX_SAMPLES:
            raise InvalidInput(
                f"that is {integer(samples)} samples; pick a coarser interval or a shorter "
                f"window (at most {integer(MAX_SAMPLES)})"
            )
        frame = store.book_features(venue, symbol, start, end, every)
    except InvalidInput as exc:
        st.warning(md_escape(str(exc)))
        return
    if frame.height == 0:
        st.info("No samples in that window.")
        return
    spread, imb = frame["spread"].fill_nan(None), frame["imbalance"].fill_nan(None)
    a, b, c, d = st.columns(4)
    a.metric("Samples", integer(frame.height))
    b.metric("Mean spread", _short(spread.mean()))
    c.metric("Mean imbalance", num(imb.mean(), 3))
    d.metric("Net OFI", _short(frame["ofi"].fill_nan(None).sum()))
    title = f"Microstructure · {symbol}{label} · every {every}"
    st.plotly_chart(features_figure(frame, title), key="micro_chart")
    st.caption(MEASURES)
