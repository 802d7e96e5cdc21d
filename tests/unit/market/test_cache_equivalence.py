"""The same get_bars from the hot tier, the warm tier, DuckDB and a cold store agree."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.data.store import MarketStore
from core.sql import SqlExplorer
from tests.unit.market.helpers import T0, bars

CASES = [
    (None, None, "1m"),
    (T0 + dt.timedelta(hours=1), T0 + dt.timedelta(hours=30), "1m"),
    (None, None, "15m"),
    (T0 + dt.timedelta(minutes=7), None, "1h"),
    (None, T0 + dt.timedelta(days=2), "1d"),
]


def via_duckdb(sql: SqlExplorer, start: object, end: object, timeframe: str) -> pl.DataFrame:
    where = ["symbol = 'SYN/USD'"]
    if start is not None:
        where.append(f"ts >= TIMESTAMPTZ '{start}'")
    if end is not None:
        where.append(f"ts < TIMESTAMPTZ '{end}'")
    frame = sql.run(f"SELECT * FROM bars WHERE {' AND '.join(where)} ORDER BY ts")
    return frame.with_columns(pl.col("ts").dt.convert_time_zone("UTC"))


@pytest.mark.parametrize(("start", "end", "timeframe"), CASES)
def test_tiers_agree(tmp_path: Path, start: object, end: object, timeframe: str) -> None:
    frame = bars(3 * 1440)
    store = MarketStore(tmp_path)
    store.write_bars(frame.head(2000))
    store.buffer_bars(frame.tail(frame.height - 2000))  # newest rows still in memory
    first = store.get_bars("SYN/USD", start, end, timeframe)  # miss: warm + buffer
    hot = store.get_bars("SYN/USD", start, end, timeframe)  # hit
    assert store.stats()["hot"]["hits"] == 1
    warm = store.get_bars("SYN/USD", start, end, timeframe, cache=False)
    assert_frame_equal(hot, first)
    assert_frame_equal(warm, first)
    store.flush()
    cold = MarketStore(tmp_path, hot_bytes=1).get_bars("SYN/USD", start, end, timeframe)
    assert_frame_equal(cold, first)
    if timeframe == "1m":
        duck = via_duckdb(SqlExplorer(store), start, end, timeframe)
        assert_frame_equal(duck, first)


def test_a_new_write_is_never_served_stale(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    frame = bars(200)
    store.write_bars(frame.head(100))
    before = store.get_bars("SYN/USD", timeframe="5m")
    assert store.get_bars("SYN/USD", timeframe="5m") is before  # a hot hit
    store.write_bars(frame.tail(100))
    after = store.get_bars("SYN/USD", timeframe="5m")
    assert after.height == 40
    assert_frame_equal(after, store.get_bars("SYN/USD", timeframe="5m", cache=False))
    # An update of a bar already cached changes what is served.
    store.write_bars(frame.slice(3, 1).with_columns(pl.lit(1e6).alias("high")))
    assert store.get_bars("SYN/USD", timeframe="5m")["high"][0] == 1e6
    store.buffer_bars(frame.slice(4, 1).with_columns(pl.lit(2e6).alias("high")))
    assert store.get_bars("SYN/USD", timeframe="5m")["high"][0] == 2e6
    assert store.get_bars("SYN/USD")["high"][4] == 2e6
