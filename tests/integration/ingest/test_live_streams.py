"""The real ccxt.pro Binance client against the loopback demo venue, with faults injected."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import polars as pl
import pytest

from core.ingest.ccxt_ws import StreamKey, StreamManager, VenueConfig
from core.ingest.demo_venue import DemoVenue
from core.ingest.service import wait_for
from core.ingest.sim import PriceModel


class Sink:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.trades: list[pl.DataFrame] = []
        self.final_bars: list[pl.DataFrame] = []

    def on_trades(self, key: StreamKey, frame: pl.DataFrame) -> None:
        with self.lock:
            self.trades.append(frame)

    def on_bars(self, key: StreamKey, frame: pl.DataFrame, final: bool) -> None:
        if final:
            with self.lock:
                self.final_bars.append(frame)

    def trade_ids(self) -> list[int]:
        with self.lock:
            frames = list(self.trades)
        if not frames:
            return []
        return pl.concat(frames)["trade_id"].cast(pl.Int64).to_list()


@pytest.fixture
def venue() -> Iterator[DemoVenue]:
    markets = {
        "BTC/USDT": PriceModel(s0=42_000.0, trades_per_s=25.0),
        "ETH/USDT": PriceModel(s0=2_300.0, trades_per_s=10.0),
    }
    v = DemoVenue(markets, seed=11, history_minutes=30, tick_s=0.05).start()
    yield v
    v.stop()


@pytest.fixture
def sink() -> Sink:
    return Sink()


def manager(venue: DemoVenue, sink: Sink, watchdog_s: float = 30.0) -> StreamManager:
    m = StreamManager(
        sink.on_trades, sink.on_bars, watchdog_s=watchdog_s, backoff_initial_s=0.3, history_s=900
    )
    m.add_venue(VenueConfig("demo", "binance", venue.ccxt_urls(), simulated=True))
    return m.start()


def status(m: StreamManager, key: StreamKey):  # type: ignore[no-untyped-def]
    return next(s for s in m.status() if s.key == key)


def assert_contiguous(ids: list[int]) -> None:
    assert ids, "no trades received"
    assert len(ids) == len(set(ids)), "duplicate trades"
    ordered = sorted(ids)
    missing = sorted(set(range(ordered[0], ordered[-1] + 1)) - set(ordered))
    assert not missing, f"gap: {len(missing)} trade(s) missing, first {missing[:5]}"


def test_drop_reconnects_and_backfills_without_gaps_or_duplicates(
    venue: DemoVenue, sink: Sink
) -> None:
    m = manager(venue, sink)
    try:
        trades = m.subscribe("demo", "BTC/USDT", "trades")
        bars = m.subscribe("demo", "BTC/USDT", "ohlcv", "1m")
        assert wait_for(lambda: len(sink.trade_ids()) >= 40, 20)
        assert wait_for(lambda: status(m, bars).connected, 20)
        before = max(sink.trade_ids())
        assert venue.drop() >= 2
        assert wait_for(lambda: status(m, trades).reconnects >= 1, 10)
        # the venue kept trading while we were away; wait for trades well past the drop
        assert wait_for(lambda: max(sink.trade_ids()) > before + 60, 20)
        st = status(m, trades)
        assert st.connected, st
        assert st.backfilled > 0, st
        assert_contiguous(sink.trade_ids())
        live = m.live_bars(bars)
        assert status(m, bars).reconnects >= 1
    finally:
        m.stop()
    # bars: initial REST history plus live candles, one per minute, no holes, no repeats
    ts = live["ts"]
    assert live.height >= 10
    assert ts.n_unique() == live.height
    assert (ts.diff().drop_nulls().dt.total_seconds() == 60).all()


def test_stall_trips_the_watchdog_then_the_stream_recovers(venue: DemoVenue, sink: Sink) -> None:
    m = manager(venue, sink, watchdog_s=1.0)
    try:
        key = m.subscribe("demo", "BTC/USDT", "trades")
        assert wait_for(lambda: len(sink.trade_ids()) >= 20, 20)
        venue.stall(3.0)
        assert wait_for(lambda: status(m, key).watchdog_trips >= 1, 10)
        after_stall = max(sink.trade_ids())
        assert wait_for(lambda: max(sink.trade_ids()) > after_stall + 50, 20)
        st = status(m, key)
        assert st.connected
        assert "watchdog" in st.last_error
        assert_contiguous(sink.trade_ids())
    finally:
        m.stop()


def test_malformed_frames_are_counted_and_skipped(venue: DemoVenue, sink: Sink) -> None:
    m = manager(venue, sink)
    try:
        key = m.subscribe("demo", "ETH/USDT", "trades")
        assert wait_for(lambda: len(sink.trade_ids()) >= 10, 20)
        venue.send_malformed(5, symbol="ETH/USDT")
        assert wait_for(lambda: status(m, key).malformed >= 5, 10)
        count = len(sink.trade_ids())
        assert wait_for(lambda: len(sink.trade_ids()) >= count + 20, 20)
        st = status(m, key)
        assert st.connected
        assert st.reconnects == 0
        assert_contiguous(sink.trade_ids())
    finally:
        m.stop()


def test_burst_loses_nothing(venue: DemoVenue, sink: Sink) -> None:
    m = manager(venue, sink)
    try:
        m.subscribe("demo", "BTC/USDT", "trades")
        assert wait_for(lambda: len(sink.trade_ids()) >= 10, 20)
        start = max(sink.trade_ids())
        venue.burst("BTC/USDT", 3000)
        assert wait_for(lambda: max(sink.trade_ids()) >= start + 3000, 30)
        assert_contiguous(sink.trade_ids())
    finally:
        m.stop()


def test_unsubscribe_stops_the_stream(venue: DemoVenue, sink: Sink) -> None:
    m = manager(venue, sink)
    try:
        key = m.subscribe("demo", "ETH/USDT", "trades")
        assert wait_for(lambda: len(sink.trade_ids()) >= 5, 20)
        assert m.unsubscribe(key)
        assert key not in m.stream_keys()
        assert wait_for(lambda: not venue.peers, 5)
    finally:
        m.stop()


def test_quotes_give_the_spread(venue: DemoVenue, sink: Sink) -> None:
    m = manager(venue, sink)
    try:
        key = m.subscribe("demo", "BTC/USDT", "quotes")
        assert wait_for(lambda: status(m, key).last_quote is not None, 20)
        quote = status(m, key).last_quote
        assert quote is not None
        assert 0 < quote["ask"] - quote["bid"] < 0.001 * quote["bid"]
    finally:
        m.stop()
