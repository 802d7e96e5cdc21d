"""Shared source helpers: frames, de-duplication, dates, the circuit breaker, resampling."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from core.data.schema import BARS, TRADES
from core.errors import InvalidInput
from core.ingest.base import (
    CircuitBreaker,
    CircuitOpen,
    bars_frame,
    dedupe_trades,
    parse_since,
    to_ms,
    trades_frame,
)
from core.ingest.service import resample

T0 = 1_704_067_200_000


def test_bars_frame_conforms_sorts_and_drops_repeats() -> None:
    rows = [
        [T0 + 60_000, 2.0, 3.0, 1.0, 2.5, 10.0],
        [T0, 1.0, 2.0, 0.5, 1.5, 5.0],
        [T0 + 60_000, 2.0, 3.5, 1.0, 2.7, 11.0],  # an update of the same bar wins
    ]
    frame = bars_frame(rows, "binance", "BTC/USDT", "1m")
    assert frame.schema == BARS
    assert frame["ts"].to_list() == [
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 1, 1, 0, 1, tzinfo=UTC),
    ]
    assert frame["close"].to_list() == [1.5, 2.7]


def test_trades_frame_and_dedupe() -> None:
    trades = [
        {"timestamp": T0 + 5, "price": 10.0, "amount": 1.0, "side": "buy", "id": 2},
        {"timestamp": T0, "price": 9.0, "amount": 2.0, "side": "sell", "id": 1},
        {"timestamp": T0 + 5, "price": 10.0, "amount": 1.0, "side": "buy", "id": 2},
    ]
    frame = trades_frame(trades, "kraken", "BTC/USD")
    assert frame.schema == TRADES
    assert frame["trade_id"].to_list() == ["1", "2"]
    no_ids = frame.with_columns(trade_id=pl.lit(None, dtype=pl.String))
    assert dedupe_trades(pl.concat([no_ids, no_ids])).height == 2


def test_dates() -> None:
    assert parse_since("2024-01-01") == datetime(2024, 1, 1, tzinfo=UTC)
    assert parse_since("2024-01-01T02:00:00+02:00") == datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="not a date"):
        parse_since("last week")
    with pytest.raises(InvalidInput, match="no time zone"):
        to_ms(datetime(2024, 1, 1))


def test_breaker_opens_honours_retry_after_and_doubles() -> None:
    b = CircuitBreaker(cooldown_s=10, max_cooldown_s=25)
    b.check("binance")
    b.trip("HTTP 429", retry_after_s=60)
    assert 59 < b.remaining_s() <= 60
    with pytest.raises(CircuitOpen, match="HTTP 429"):
        b.check("binance")
    b.trip("HTTP 418")
    assert b.trips == 2
    b.record_success()
    assert b._cooldown_s == 10


def test_resample_to_five_minutes() -> None:
    rows = [[T0 + i * 60_000, 1.0 + i, 2.0 + i, 0.5 + i, 1.5 + i, 1.0] for i in range(10)]
    five = resample(bars_frame(rows, "demo", "BTC/USDT", "1m"), "5m")
    assert five.schema == BARS
    assert five.height == 2
    first = five.row(0, named=True)
    assert (first["open"], first["high"], first["low"], first["close"], first["volume"]) == (
        1.0,
        6.0,
        0.5,
        5.5,
        5.0,
    )
    assert set(five["timeframe"]) == {"5m"}
