"""Ingest paths with real provider data that holds a bad row: the row is dropped and
counted, the rest is stored, nothing crashes and nothing stays stuck in a buffer."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ccxt
import numpy as np
import pandas as pd
import polars as pl
import pytest

from core.data.store import MarketStore
from core.ingest.ccxt_rest import CcxtRestSource, RetryPolicy, make_exchange
from core.ingest.ccxt_ws import StreamKey, StreamManager, _Stream
from core.ingest.service import IngestService, Job, run_job
from core.ingest.yahoo import to_bars
from tests.integration.ingest.recorded import DATA, Reply, loopback_urls, recorded, serving

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def binance_page_with_bad_rows() -> Reply:
    """The recorded Binance klines page, with three rows made impossible."""
    rows = json.loads((DATA / "ccxt/binance/klines_BTCUSDT_1m_page1.json").read_text())
    rows[5][3] = "-1.0"  # negative low
    rows[6][4] = "99999.0"  # close above high
    rows[7][1] = "NaN"  # open not a number
    rows[8][5] = "0.0"  # zero volume: fine
    rows = rows[:200]
    return Reply(json.dumps(rows).encode())


def test_history_job_drops_and_counts_bad_bars(tmp_path: Path) -> None:
    routes = {
        "/api/v3/exchangeInfo": [recorded("ccxt/binance/exchangeInfo.json")],
        "/api/v3/klines": [binance_page_with_bad_rows(), Reply(b"[]")],
    }
    store = MarketStore(tmp_path)
    with serving(routes) as srv:
        ex = make_exchange("binance", loopback_urls(ccxt.binance(), srv.base), rateLimit=1)
        src = CcxtRestSource("binance", ex, retry=RetryPolicy(1, 0.0, 0.0))
        job = Job(1, "binance", ["BTC/USDT"], "1m", T0, T0 + timedelta(minutes=200))
        run_job(job, src, store)
    assert job.state == "done", job.error
    assert job.skipped == 3
    assert job.rows == 197
    assert "3 bad bars skipped" in job.message
    got = store.get_bars("BTC/USDT", venue="binance")
    assert got.height == 197
    assert T0 + timedelta(minutes=8) in got["ts"].to_list()  # the zero-volume bar
    assert np.isfinite(store.daily()[["open", "high", "low", "close", "vwap"]].to_numpy()).all()


def test_yahoo_nan_rows_are_dropped() -> None:
    """yfinance gives NaN rows (no trade in the interval); they never reach the store."""
    index = pd.date_range("2024-01-02 14:30", periods=4, freq="1min", tz="America/New_York")
    raw = pd.DataFrame(
        {
            "Open": [10.0, math.nan, 10.2, 10.1],
            "High": [10.5, math.nan, 10.4, 10.3],
            "Low": [9.9, math.nan, 10.0, 10.0],
            "Close": [10.1, math.nan, 10.3, 10.2],
            "Volume": [100.0, math.nan, 0.0, math.nan],
        },
        index=index,
    )
    bars = to_bars(raw, "AAPL", "1m")
    assert bars.height == 3
    assert bars["volume"].to_list() == [100.0, 0.0, None]  # NaN volume: unknown
    assert not bars.select(pl.col("open", "high", "low", "close").is_nan().any()).row(0)[0]


def candle(minute: int, o: float, h: float, lo: float, c: float, v: float) -> list[object]:
    return [int((T0 + timedelta(minutes=minute)).timestamp() * 1000), o, h, lo, c, v]


def test_live_stream_drops_and_counts_bad_candles_and_trades() -> None:
    got: list[tuple[pl.DataFrame, bool]] = []
    trades: list[pl.DataFrame] = []
    mgr = StreamManager(lambda k, f: trades.append(f), lambda k, f, final: got.append((f, final)))
    bars = _Stream(StreamKey("demo", "BTC/USDT", "ohlcv", "1m"), True)
    asyncio.run(
        mgr._on_candles(
            bars,
            [
                candle(0, 10, 11, 9, 10.5, 1),
                candle(1, 10, 11, 9, math.nan, 1),  # NaN close
                candle(2, 10, 11, -9, 10, 1),  # negative low
                candle(3, 10, 11, 9, 12, 1),  # close above high
                candle(4, 10, 11, 9, 10, math.inf),  # infinite volume
                candle(5, 10, 11, 9, 10, 0),  # zero volume: fine
                candle(6, 10, 11, 9, 10, 2),  # the forming bar
            ],
        )
    )
    assert bars.status.invalid == 4
    final = pl.concat([f for f, is_final in got if is_final])
    assert final["ts"].to_list() == [T0, T0 + timedelta(minutes=5)]
    assert [f["ts"][0] for f, is_final in got if not is_final] == [T0 + timedelta(minutes=6)]
    stream = _Stream(StreamKey("demo", "BTC/USDT", "trades"), True)
    ms = int(T0.timestamp() * 1000)
    asyncio.run(
        mgr._on_trades(
            stream,
            [
                {"id": "1", "timestamp": ms, "price": 10.0, "amount": 1.0, "side": "buy"},
                {"id": "2", "timestamp": ms, "price": math.nan, "amount": 1.0, "side": "buy"},
                {"id": "3", "timestamp": ms, "price": -1.0, "amount": 1.0, "side": "buy"},
                {"id": "4", "timestamp": ms, "price": 10.0, "amount": -2.0, "side": "buy"},
                {"id": "5", "timestamp": ms, "price": 10.0, "amount": math.inf, "side": "buy"},
            ],
        )
    )
    assert stream.status.invalid == 4
    assert pl.concat(trades)["trade_id"].to_list() == ["1"]


def test_service_flush_never_keeps_a_bad_row_buffered(tmp_path: Path) -> None:
    """A bad row that reached the writer is dropped and counted, not retried forever."""
    store = MarketStore(tmp_path)
    service = IngestService(store)
    key = StreamKey("demo", "BTC/USDT", "ohlcv", "1m")
    frame = pl.DataFrame(
        {
            "ts": [T0 + timedelta(minutes=i) for i in range(4)],
            "venue": "demo",
            "symbol": "BTC/USDT",
            "timeframe": "1m",
            "open": [10.0, 10.0, 10.0, 10.0],
            "high": [11.0, 11.0, 11.0, 11.0],
            "low": [9.0, 9.0, 9.0, 9.0],
            "close": [10.0, math.nan, 10.0, 10.0],
            "volume": [1.0, 1.0, -1.0, 0.0],
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    service._on_bars(key, frame, True)
    assert service.flush() == 2
    stats = service.writer_stats()
    assert (stats.bars_buffered, stats.last_error, stats.rows_dropped) == (0, "", 2)
    assert store.get_bars("BTC/USDT", venue="demo").height == 2


@pytest.mark.parametrize("symbol", ["SP500", "NASDAQ", "GOOG", "EURUSD"])
def test_bundled_import_still_works(tmp_path: Path, symbol: str) -> None:
    from core.data import bundled

    store = MarketStore(tmp_path)
    frame = bundled.load(symbol)
    assert store.write_bars(frame) == frame.height
