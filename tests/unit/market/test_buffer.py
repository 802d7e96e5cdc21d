"""The one live buffer (core.data.buffer): what the store and live ingestion share."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.data.buffer import LiveBuffer
from core.data.schema import TRADES
from core.data.store import MarketStore
from core.data.warm import SeriesKey
from core.ingest.ccxt_ws import StreamKey
from core.ingest.service import IngestService
from tests.unit.market.helpers import bars

KEY = SeriesKey("bars", "synthetic", "SYN/USD", "1m")


def trades(ids: list[str], price: float) -> pl.DataFrame:
    frame = bars(len(ids))
    return pl.DataFrame(
        {
            "ts": frame["ts"],
            "venue": "synthetic",
            "symbol": "SYN/USD",
            "price": [price] * len(ids),
            "amount": [1.0] * len(ids),
            "side": ["buy"] * len(ids),
            "trade_id": ids,
        },
        schema=TRADES,
    )


def test_the_last_row_for_a_key_wins() -> None:
    buf = LiveBuffer(max_rows=1000, max_age_s=3600)
    frame = bars(10)
    buf.add(KEY, frame)
    changed = frame.slice(3, 2).with_columns(pl.col("high") * 2)
    buf.add(KEY, changed)
    got = buf.get(KEY)
    assert got is not None
    assert got.height == 10
    assert got["ts"].is_unique().all()
    assert_frame_equal(got.filter(pl.col("ts").is_in(changed["ts"].implode())), changed)
    tkey = SeriesKey("trades", "synthetic", "SYN/USD", "")
    buf.add(tkey, trades(["a", "b"], 10.0))
    buf.add(tkey, trades(["b", "c"], 11.0))
    assert sorted(buf.frame("trades")["trade_id"]) == ["a", "b", "c"]
    assert buf.frame("trades").filter(pl.col("trade_id") == "b")["price"].item() == 11.0
    assert (buf.rows("bars"), buf.rows("trades"), buf.rows()) == (10, 3, 13)
    assert buf.keys("trades") == [tkey]


def test_due_by_rows_or_by_age() -> None:
    buf = LiveBuffer(max_rows=20, max_age_s=3600)
    assert not buf.due()
    buf.add(KEY, bars(19))
    assert not buf.due()
    buf.add(KEY, bars(20))
    assert buf.due()
    young = LiveBuffer(max_rows=10**6, max_age_s=0.05)
    young.add(KEY, bars(1))
    time.sleep(0.06)
    assert young.due()
    young.take()
    assert not young.due()


def test_restore_keeps_rows_added_during_a_failed_flush() -> None:
    buf = LiveBuffer(max_rows=1000, max_age_s=3600)
    frame = bars(10)
    buf.add(KEY, frame)
    pending = buf.take()
    assert not buf
    assert buf.frame("bars").height == 0
    newer = frame.slice(8, 4).with_columns(pl.col("close", "high") * 1.01)
    buf.add(KEY, newer)  # arrives while the flush is writing
    buf.restore(pending)  # the write failed
    got = buf.get(KEY)
    assert got is not None
    assert got.height == 10
    # The rows added after the take win over the older ones put back.
    assert_frame_equal(got.filter(pl.col("ts").is_in(newer["ts"].implode())), newer.head(2))


def test_a_failed_flush_keeps_what_it_did_not_write(tmp_path: Path) -> None:
    store = MarketStore(tmp_path, buffer_age_s=3600)
    other = bars(5, symbol="OTHER/USD")
    store.buffer_bars(bars(30), autoflush=False)
    store.buffer_bars(other, autoflush=False)
    blocker = tmp_path / "bars" / "venue=synthetic" / "symbol=OTHER%2FUSD"
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("a file where the store wants a folder")
    with pytest.raises(NotADirectoryError):
        store.flush()
    # SYN/USD was acknowledged (written); OTHER/USD is still buffered and readable.
    assert store.live.keys("bars") == [SeriesKey("bars", "synthetic", "OTHER/USD", "1m")]
    assert store.live.written["bars"] == 30
    assert_frame_equal(store.get_bars("OTHER/USD"), other)
    blocker.unlink()
    assert store.flush() == 5
    assert not store.live
    assert MarketStore(tmp_path).get_bars("OTHER/USD").height == 5
    store.close()


def test_autoflush_writes_when_due_and_only_then(tmp_path: Path) -> None:
    store = MarketStore(tmp_path, buffer_rows=40, buffer_age_s=3600)
    frame = bars(60)
    store.buffer_bars(frame.head(30))
    assert store.live.rows() == 30
    store.buffer_bars(frame.slice(30, 20), autoflush=False)
    assert store.live.rows() == 50  # due, but this caller flushes on its own
    store.buffer_bars(frame.tail(10))
    assert not store.live
    assert_frame_equal(MarketStore(tmp_path).get_bars("SYN/USD"), frame)
    store.close()


def test_live_ingest_uses_the_store_buffer(tmp_path: Path) -> None:
    """IngestService keeps no buffer of its own: closed bars are in the store's buffer,
    readable at once, and durable after its flush; a forming bar is not stored."""
    store = MarketStore(tmp_path, buffer_age_s=3600)
    service = IngestService(store)  # not started: flush() is driven by hand
    key = StreamKey("synthetic", "SYN/USD", "ohlcv", "1m")
    frame = bars(12)
    service._on_bars(key, frame.head(10), True)
    service._on_bars(key, frame.tail(2), False)  # still forming: not stored
    service._on_trades(StreamKey("synthetic", "SYN/USD", "trades"), trades(["1", "2"], 5.0))
    stats = service.writer_stats()
    assert (stats.bars_buffered, stats.trades_buffered) == (10, 2)
    assert store.live.rows() == 12
    assert_frame_equal(store.get_bars("SYN/USD"), frame.head(10))
    assert service.flush() == 12
    stats = service.writer_stats()
    assert (stats.bars_written, stats.trades_written, stats.bars_buffered) == (10, 2, 0)
    assert_frame_equal(MarketStore(tmp_path).get_bars("SYN/USD"), frame.head(10))
    store.close()


def test_a_frame_the_store_refuses_is_dropped_and_counted(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    service = IngestService(store)
    key = StreamKey("synthetic", "SYN/USD", "ohlcv", "7m")
    service._on_bars(key, bars(4, timeframe="7m"), True)  # the stream never raises
    stats = service.writer_stats()
    assert (stats.rows_dropped, stats.bars_buffered) == (4, 0)
    assert "unknown timeframe" in stats.last_error
    store.close()


def test_adds_during_flushes_lose_nothing(tmp_path: Path) -> None:
    """Adds from another thread during flushes lose nothing and end up stored once."""
    store = MarketStore(tmp_path, buffer_age_s=3600)
    frame = bars(400)
    done = threading.Event()

    def produce() -> None:
        for i in range(40):
            store.buffer_bars(frame.slice(10 * i, 10), autoflush=False)
        done.set()

    thread = threading.Thread(target=produce)
    thread.start()
    while not done.is_set():
        store.flush()
    thread.join()
    store.flush()
    got = MarketStore(tmp_path).get_bars("SYN/USD")
    assert_frame_equal(got, frame)
    assert store.live.written["bars"] == 400
    store.close()
