"""The same get_bars from the hot tier, the warm tier, DuckDB and a cold store agree."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.data import store as store_module
from core.data.store import MarketStore
from core.errors import InvalidInput
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


# ---------------------------------------------------------------- last= reads
@pytest.fixture
def small_tails(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cache tails of 64+ rows, so a tail read touches only some of the files."""
    monkeypatch.setattr(store_module, "TAIL_MIN", 64)


@pytest.mark.parametrize(
    ("last", "start", "end", "timeframe"),
    [
        (1, None, None, "1m"),
        (50, None, None, "1m"),
        (700, None, None, "1m"),  # reaches back across the month boundary
        (10_000, None, None, "1m"),  # more than stored
        (30, T0 + dt.timedelta(hours=5), T0 + dt.timedelta(hours=20), "1m"),
        (100, None, T0 + dt.timedelta(days=1), "1m"),
        (40, None, None, "15m"),
        (7, T0 + dt.timedelta(minutes=7), None, "1h"),
        (2, None, None, "1d"),
    ],
)
def test_last_is_the_tail_of_the_full_read(
    tmp_path: Path, small_tails: None, last: int, start: object, end: object, timeframe: str
) -> None:
    frame = bars(3 * 1440)
    store = MarketStore(tmp_path)
    for chunk in range(0, 3000, 500):  # many small files in two month partitions
        store.write_bars(frame.slice(chunk, 500))
    store.buffer_bars(frame.tail(frame.height - 3000))
    want = store.get_bars("SYN/USD", start, end, timeframe, cache=False).tail(last)
    miss = store.get_bars("SYN/USD", start, end, timeframe, last=last)
    assert_frame_equal(miss, want)
    hit = store.get_bars("SYN/USD", start, end, timeframe, last=last)
    assert store.stats()["hot"]["hits"] == 1
    assert_frame_equal(hit, want)
    store.flush()
    cold = MarketStore(tmp_path, hot_bytes=1).get_bars("SYN/USD", start, end, timeframe, last=last)
    assert_frame_equal(cold, want)


def test_last_survives_rows_counted_twice(tmp_path: Path, small_tails: None) -> None:
    frame = bars(2000)
    store = MarketStore(tmp_path)
    store.write_bars(frame.head(500))
    store.write_bars(frame.slice(500, 500))
    # Buffered updates of the newest 600 bars (and one new bar): the buffer and the newest
    # file together count 1101 rows, but hold only 501 distinct bars.
    store.buffer_bars(
        frame.slice(400, 601).with_columns(pl.col("close") + 1.0, pl.col("high") + 1.0)
    )
    want = store.get_bars("SYN/USD", cache=False).tail(900)
    got = store.get_bars("SYN/USD", last=900)
    assert_frame_equal(got, want)
    assert got.height == 900
    assert got["close"][-1] == pytest.approx(frame["close"][1000] + 1.0)


def test_window_sizes_in_one_bucket_share_an_entry(tmp_path: Path) -> None:
    frame = bars(3 * 1440)
    store = MarketStore(tmp_path)
    store.write_bars(frame)
    a = store.get_bars("SYN/USD", last=2520)
    b = store.get_bars("SYN/USD", last=15_000)
    assert store.stats()["hot"]["hits"] == 1  # both under TAIL_MIN
    assert store_module.tail_rows(15_000) == store_module.TAIL_MIN
    assert store_module.tail_rows(20_000) == 32_768
    assert store_module.tail_rows(40_000) == 65_536
    assert a.height == 2520
    assert b.height == frame.height
    assert_frame_equal(a, b.tail(2520))
    # A new bar moves every window.
    store.write_bars(bars(1, start=T0 + dt.timedelta(days=3), seed=9))
    c = store.get_bars("SYN/USD", last=2520)
    assert c["ts"][-1] == T0 + dt.timedelta(days=3)
    assert_frame_equal(c.head(2519), a.tail(2519))


@pytest.mark.parametrize("last", [0, -5, 2.5, True, "10"])
def test_bad_last_is_refused(tmp_path: Path, last: object) -> None:
    store = MarketStore(tmp_path)
    store.write_bars(bars(10))
    with pytest.raises(InvalidInput, match="last must be a whole number"):
        store.get_bars("SYN/USD", last=last)  # type: ignore[arg-type]
