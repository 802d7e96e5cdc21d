"""Live Market: candles with volume, the last trade, the stream's health and the live order
book (depth, ladder, heatmap), refreshed live; then recorded books: replay and microstructure."""

import streamlit as st

from core.ingest.demo_venue import VENUE as DEMO
from core.ingest.venues import VENUES
from pages._shared.auth import require_role
from pages._shared.book_replay import microstructure_section, pick_recorded, replay_section
from pages._shared.book_view import live_book_section
from pages._shared.engine import get_engine
from pages._shared.format import MISSING, md_escape, money, num
from pages._shared.live import SIMULATED_NOTE, candles_figure, get_ingest

require_role("viewer")

TIMEFRAMES = ["1m", "5m", "15m", "1h"]
service = get_ingest()


def title_of(venue: str) -> str:
    return VENUES[venue].title if venue in VENUES else venue


st.title("Live Market")
venues = [v for v in service.venues() if service.live_symbols_of(v)]
venue: str | None = None
symbol: str | None = None
timeframe = TIMEFRAMES[0]
if not venues:
    st.info("No live subscriptions yet. Add one on the Data page (or enable HFT_DEMO_VENUE).")
else:
    pick_venue, pick_symbol, pick_tf = st.columns(3)
    venue = pick_venue.selectbox("Venue", venues, format_func=title_of)
    symbol = pick_symbol.selectbox("Symbol", service.live_symbols_of(venue))
    timeframe = pick_tf.selectbox("Timeframe", TIMEFRAMES)
    if service.is_simulated(venue):
        st.warning(SIMULATED_NOTE, icon=":material/science:")
    elif VENUES.get(venue) is not None and VENUES[venue].key_required:
        st.caption(
            f"Real market data from {title_of(venue)} over its WebSocket, with the key of the "
            "user who subscribed. Candles come from its 1-minute bars, or are built from its "
            "trades."
        )


def simulated_label(name: str) -> str:
    return " (SIMULATED)" if service.is_simulated(name) or name == DEMO else ""


@st.fragment(run_every=1.0)
def live_view(venue: str, symbol: str, timeframe: str) -> None:
    bars = service.live_bars(venue, symbol, timeframe)
    trade = service.last_trade(venue, symbol)
    streams = service.stream_status(venue, symbol)
    last_col, spread_col, lag_col, rate_col = st.columns(4)
    if trade:
        last_col.metric(
            "Last trade",
            money(trade["price"]),
            help=md_escape(f"{num(trade['amount'])} ({trade['side'] or 'side unknown'})"),
        )
        ts = trade["ts"]
        last_col.caption(f"Last trade at {ts:%H:%M:%S}.{ts.microsecond // 1000:03d} UTC")
    else:
        last_col.metric("Last trade", MISSING)
    quote = service.spread(venue, symbol)
    if quote:
        where = "quote stream" if quote["source"] == "quotes" else "order book"
        spread_col.metric(
            "Spread",
            money(quote["spread"]),
            help=f"best bid {money(quote['bid'])} / best ask {money(quote['ask'])}, "
            f"from the {where}",
        )
    else:
        spread_col.metric("Spread", "not known", help="No quote or book stream for this symbol.")
    lags = [s.lag_s for s in streams if s.lag_s is not None]
    lag_col.metric("Stream lag", f"{min(lags):.2f} s" if lags else MISSING)
    rate_col.metric("Messages/s", money(sum(s.rate_per_s for s in streams), 1))
    down = [s for s in streams if not s.connected]
    for s in down:
        why = s.last_error or "waiting for data"
        line = (
            f"{s.key.name}: {why}"
            if why.startswith(s.state)
            else f"{s.key.name} is {s.state}: {why}"
        )
        st.error(md_escape(line))
    label = simulated_label(venue)
    if bars.is_empty() and not service.streams_candles(venue, symbol):
        kinds = ", ".join(sorted({s.key.kind for s in streams}))
        st.info(
            md_escape(
                f"No candle stream for {symbol} (streamed: {kinds}). Subscribe to its ohlcv "
                "stream on the Data page to chart candles."
            )
        )
    elif bars.is_empty():
        st.info("Waiting for the first candles…")
    else:
        title = f"{symbol} · {title_of(venue)}{label} · {timeframe}"
        st.plotly_chart(candles_figure(bars.tail(240), title), key="live_chart")
        last = bars.row(-1, named=True)
        st.caption(
            f"Last candle {last['ts']:%H:%M} UTC: open {money(last['open'])} "
            f"high {money(last['high'])} low {money(last['low'])} close {money(last['close'])} "
            f"volume {num(last['volume'])}"
        )
    live_book_section(service, venue, symbol, label)


if venue is not None and symbol is not None:
    live_view(venue, symbol, timeframe)

st.header("Recorded books")
store = get_engine().store
recorded = pick_recorded(store, (venue, symbol) if venue and symbol else None)
if recorded is not None:
    label = simulated_label(recorded["venue"][0])
    replay_tab, micro_tab = st.tabs(["Replay a recorded book", "Microstructure"])
    with replay_tab:
        replay_section(store, recorded, label)
    with micro_tab:
        microstructure_section(store, recorded, label)
