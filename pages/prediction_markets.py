"""Prediction markets: search Polymarket, chart an outcome's probability and read its book.

Polymarket's public data only (Gamma search, CLOB history and books, the market WebSocket for
the optional live panel): no key, and nothing here can trade. Search results stay in the
session until the next search, the history is cached for a minute, the book is read when asked
for, and the page reruns by itself only while the live panel is switched on.
"""

import html
from datetime import UTC, datetime, timedelta
from typing import NoReturn

import plotly.graph_objects as go
import polars as pl
import streamlit as st

from core.errors import InvalidInput
from core.ingest.base import SourceError, SourceUnavailable
from core.ingest.meter import QuotaPause, public_meter
from core.ingest.polymarket import VENUE, BookSnapshot, Market, PolymarketSource
from core.ingest.polymarket_ws import PolymarketPrices
from pages._shared.accounts import settings
from pages._shared.auth import require_role
from pages._shared.format import (
    DOWN,
    PALETTE,
    UP,
    integer,
    md_escape,
    num,
    pct,
    plural,
    show_table,
    wait,
)

require_role("viewer")
RESULTS_KEY = "pm_results"
BOOK_KEY = "pm_book"
RANGES = {
    "Last 6 hours (1-minute bars)": (timedelta(hours=6), "1m"),
    "Last day (1-minute bars)": (timedelta(days=1), "1m"),
    "Last week (hourly bars)": (timedelta(days=7), "1h"),
    "Last month (hourly bars)": (timedelta(days=30), "1h"),
    "Last 3 months (daily bars)": (timedelta(days=90), "1d"),
    "Last year (daily bars)": (timedelta(days=365), "1d"),
}
BOOK_LEVELS = 15
# what a Polymarket call raises on purpose; each is shown in words
PROBLEMS = (SourceError, SourceUnavailable, QuotaPause, InvalidInput)

cfg = settings()
source = PolymarketSource(settings=cfg, timeout_s=10)


def meter_caption() -> None:
    """How much of the per-IP request budget this server has used (every user shares it)."""
    quota = VENUE.quota
    assert quota is not None
    used, left = public_meter(VENUE).used()
    st.caption(
        f"Polymarket requests from this server in the current {quota.window_s}-second window: "
        f"{integer(used)} of {integer(quota.limit)}, shared by everyone here (resets in "
        f"{wait(left)})."
    )


def failed(exc: Exception, doing: str) -> None:
    """Say what went wrong in words; the technical cause folded away."""
    if isinstance(exc, SourceUnavailable):
        st.warning(
            f"{md_escape(str(exc))}. Search, charts and order books need Polymarket's public "
            "API, so this page cannot show them now.",
            icon=":material/cloud_off:",
        )
    elif isinstance(exc, QuotaPause):
        st.warning(
            f"{md_escape(str(exc))}. Everyone on this server shares Polymarket's per-IP limit."
        )
    else:
        st.error(f"Could not {doing}: {md_escape(str(exc))}")
    detail = getattr(exc, "detail", "")
    if detail:
        with st.expander("Details"):
            st.code(detail, language=None, wrap_lines=True)


def stop() -> NoReturn:
    meter_caption()
    st.stop()


@st.cache_data(ttl=60, max_entries=64, show_spinner="Loading the probability history …")
def history(
    _source: PolymarketSource,
    clob_url: str,
    token: str,
    timeframe: str,
    since: datetime,
    until: datetime,
) -> pl.DataFrame:
    """Bars of one outcome (cached for a minute per URL, token, timeframe and range)."""
    return _source.fetch_bars(token, timeframe, since, until)


def _stop_client(client: PolymarketPrices) -> None:
    client.stop(timeout=2)


@st.cache_resource(max_entries=8, ttl=900, show_spinner=False, on_release=_stop_client)
def live_client(url: str, token: str) -> PolymarketPrices:
    """One market WebSocket per outcome token, shared by every session that watches it."""
    return PolymarketPrices([token], url)


def prices_text(m: Market) -> str:
    return " · ".join(
        f"{o} {pct(p, 1)}" for o, p in zip(m.outcomes, m.outcome_prices, strict=False)
    )


def results_table(markets: list[Market]) -> None:
    frame = pl.DataFrame(
        {
            "question": [m.question for m in markets],
            "prices": [prices_text(m) for m in markets],
            "volume": [m.volume for m in markets],
            "liquidity": [m.liquidity for m in markets],
            "end_date": [m.end_date for m in markets],
        },
        schema={
            "question": pl.String,
            "prices": pl.String,
            "volume": pl.Float64,
            "liquidity": pl.Float64,
            "end_date": pl.Datetime("us", "UTC"),
        },
    )
    show_table(
        frame,
        money={"volume": 0, "liquidity": 0},
        times=["end_date"],
        labels={"prices": "Outcome prices", "volume": "Volume (USDC)", "end_date": "Ends (UTC)"},
        help={"prices": "The last price of each outcome: the market's implied probability."},
    )


def probability_chart(bars: pl.DataFrame, outcome: str, span: str) -> None:
    ts = bars["ts"].to_list()
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=ts,
            y=(bars["low"] * 100).to_list(),
            mode="lines",
            line={"width": 0, "shape": "hv"},
            hoverinfo="skip",
            showlegend=False,
        )
    )
    fig.add_trace(
        go.Scatter(
            x=ts,
            y=(bars["high"] * 100).to_list(),
            mode="lines",
            line={"width": 0, "shape": "hv"},
            fill="tonexty",
            fillcolor="rgba(41, 181, 232, 0.18)",
            name="Low to high in the bar",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=ts,
            y=(bars["close"] * 100).to_list(),
            mode="lines",
            line={"color": PALETTE[0], "width": 2, "shape": "hv"},
            name=html.escape(outcome),  # Plotly renders a subset of HTML in names and titles
            hovertemplate="%{x|%Y-%m-%d %H:%M} UTC: %{y:.1f}%<extra></extra>",
        )
    )
    fig.update_layout(
        title=html.escape(f"{outcome}: probability, {span[0].lower()}{span[1:]}"),
        height=400,
        margin={"t": 40, "b": 10},
        legend={"orientation": "h"},
        yaxis={"range": [0, 100], "ticksuffix": "%", "title": "Probability"},
        xaxis={"title": "UTC"},
    )
    st.plotly_chart(fig, width="stretch", key="pm_chart")


def book_view(book: BookSnapshot) -> None:
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Best bid", pct(book.best_bid, 1))
    c2.metric("Best ask", pct(book.best_ask, 1))
    c3.metric("Spread", pct(book.spread, 1))
    c4.metric("Mid", pct(book.mid, 1))
    tick = f"; tick {num(book.tick_size)}" if book.tick_size else ""
    st.caption(
        f"Book at {book.ts:%Y-%m-%d %H:%M:%S} UTC{tick}. Prices are in USDC per share (1 pays "
        "out when the outcome happens), so they read as probabilities; sizes are shares."
    )
    fig = go.Figure()
    for name, colour in (("bids", UP), ("asks", DOWN)):
        side = book.side(name).head(BOOK_LEVELS * 2)
        fig.add_trace(
            go.Scatter(
                x=(side["price"] * 100).to_list(),
                y=side["cumulative"].to_list(),
                mode="lines",
                line={"shape": "hv", "color": colour},
                fill="tozeroy",
                name=name.capitalize(),
                hovertemplate="%{x:.1f}%: %{y:,.0f} shares<extra></extra>",
            )
        )
    fig.update_layout(
        title="Depth: shares available up to each price",
        height=300,
        margin={"t": 40, "b": 10},
        legend={"orientation": "h"},
        xaxis={"ticksuffix": "%", "title": "Price"},
        yaxis={"title": "Shares"},
    )
    st.plotly_chart(fig, width="stretch", key="pm_depth")
    left, right = st.columns(2)
    for col, name in ((left, "bids"), (right, "asks")):
        with col:
            st.markdown(f"**{name.capitalize()}** (best first, top {BOOK_LEVELS})")
            show_table(
                book.side(name).head(BOOK_LEVELS),
                pct={"price": 1},
                money={"size": 2, "cumulative": 2},
                labels={"cumulative": "Shares up to here"},
            )


@st.fragment(run_every=2.0)
def live_panel(url: str, token: str) -> None:
    try:
        client = live_client(url, token)
    except InvalidInput as exc:  # a misconfigured HFT_POLYMARKET_WS_URL
        st.error(f"Cannot follow the live feed: {md_escape(str(exc))}")
        return
    quote, state = client.snapshot(token), client.status()
    c1, c2, c3 = st.columns(3)
    c1.metric("Live best bid", pct(quote.best_bid, 1))
    c2.metric("Live best ask", pct(quote.best_ask, 1))
    c3.metric("Last trade", pct(quote.last_trade_price, 1))
    if state.connected:
        when = f"; last change {quote.updated:%H:%M:%S} UTC" if quote.updated else ""
        st.caption(
            f"Live from Polymarket's market feed: {plural(state.messages, 'message')}{when}."
        )
    else:
        reason = state.last_error or "connecting"
        st.warning(f"Not connected to Polymarket's live feed ({md_escape(reason)}); retrying.")


st.title("Prediction markets")
st.caption(
    "Polymarket's public market data: an outcome's price is what the market thinks its chance "
    "is. Read-only: this page never trades and needs no key."
)

with st.form("pm_search"):
    q_col, a_col = st.columns([3, 1], vertical_alignment="bottom")
    query = q_col.text_input(
        "Search markets",
        key="pm_query",
        placeholder="fed rates, bitcoin, election …",
        help="Leave empty to list the markets with the most volume in the last 24 hours.",
    )
    open_only = a_col.checkbox("Open markets only", value=True, key="pm_open")
    searched = st.form_submit_button("Search", type="primary")

if searched or RESULTS_KEY not in st.session_state:
    try:
        with st.spinner("Asking Polymarket …"):
            found = source.search(query, limit=30, active_only=open_only)
    except PROBLEMS as exc:
        st.session_state.pop(RESULTS_KEY, None)
        failed(exc, "search Polymarket")
        stop()
    st.session_state[RESULTS_KEY] = {"query": query.strip(), "markets": found}
    st.session_state.pop(BOOK_KEY, None)

results = st.session_state[RESULTS_KEY]
markets: list[Market] = results["markets"]
what = f"for “{results['query']}”" if results["query"] else "with the most volume in 24 hours"
if not markets:
    st.info(f"No markets {md_escape(what)}. Try other words, or include closed markets.")
    stop()
st.subheader(md_escape(f"{plural(len(markets), 'market')} {what}"))
results_table(markets)

by_id = {m.id: m for m in markets}
market = by_id[
    st.selectbox("Market", list(by_id), format_func=lambda i: by_id[i].question, key="pm_market")
]
ends = f"; ends {market.end_date:%Y-%m-%d %H:%M} UTC" if market.end_date else ""
state = "closed" if market.closed else "open"
event = f"{market.event}; " if market.event and market.event != market.question else ""
st.caption(md_escape(f"{event}{state}{ends}; outcome prices {prices_text(market)}"))
if not market.token_ids:
    st.info("This market has no order book on Polymarket, so there is no history or book to show.")
    stop()

o_col, r_col = st.columns(2)
outcome = o_col.radio("Outcome", market.outcomes, horizontal=True, key="pm_outcome")
span = r_col.selectbox("Range", list(RANGES), index=2, key="pm_range")
token = market.token_of(outcome)
st.caption(
    "To store this outcome's history, start a Polymarket job on the Data page with this token id:"
)
st.code(token, language=None)
length, timeframe = RANGES[span]
until = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
if market.closed and market.end_date is not None:
    until = min(until, market.end_date + timedelta(days=2))
try:
    bars = history(source, source.clob_url, token, timeframe, until - length, until)
except PROBLEMS as exc:
    failed(exc, "read the price history")
else:
    if bars.is_empty():
        st.info(
            "No prices in this range. Polymarket keeps only 12-hour points for resolved "
            "markets: pick a range with daily bars."
        )
    else:
        first, last = bars["open"][0], bars["close"][-1]
        m1, m2, m3, m4 = st.columns(4)
        m1.metric("Last", pct(last, 1))
        m2.metric(
            "Change", f"{(last - first) * 100:+.1f} pts", help="Percentage points over the range."
        )
        m3.metric("High", pct(bars["high"].max(), 1))
        m4.metric("Low", pct(bars["low"].min(), 1))
        probability_chart(bars, outcome, span)
        st.caption(
            f"{plural(bars.height, 'bar')}: the line is the last price in each bar, the band its "
            "lowest and highest. Polymarket publishes no volume with this history."
        )

st.subheader("Order book")
if st.button("Load the order book", key="pm_book_load"):
    try:
        with st.spinner("Reading the order book …"):
            st.session_state[BOOK_KEY] = source.book(token)
    except PROBLEMS as exc:
        st.session_state.pop(BOOK_KEY, None)
        failed(exc, "read the order book")
book = st.session_state.get(BOOK_KEY)
if isinstance(book, BookSnapshot) and book.token_id == token:
    book_view(book)
else:
    st.caption("The book is read when you ask for it.")

if st.toggle(
    "Live best bid and ask",
    key="pm_live",
    help="Follows Polymarket's market WebSocket and refreshes every 2 seconds while on.",
):
    live_panel(VENUE.url("ws", cfg), token)
meter_caption()
