from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.data.schema import BARS, TRADES
from core.data.store import MarketStore
from core.errors import InvalidInput
from tests.unit.market.helpers import T0, bars


def test_write_is_idempotent_and_reads_back(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    frame = bars(3000)  # crosses a month boundary: two partitions
    assert store.write_bars(frame) == 3000
    assert store.write_bars(frame) == 0
    assert store.write_bars(frame.head(10)) == 0
    got = store.get_bars("SYN/USD", cache=False)
    assert_frame_equal(got, frame)
    cov = store.coverage().row(0, named=True)
    assert cov["rows"] == 3000
    assert cov["first"] == frame["ts"][0]
    assert cov["last"] == frame["ts"][-1]
    reopened = MarketStore(tmp_path)
    assert_frame_equal(reopened.get_bars("SYN/USD"), frame)
    assert reopened.write_bars(frame) == 0


def test_changed_bar_is_an_update_not_a_duplicate(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    frame = bars(100)
    store.write_bars(frame)
    changed = frame.slice(40, 1).with_columns(pl.lit(999.0).alias("high"))
    assert store.write_bars(changed) == 1
    got = store.get_bars("SYN/USD")
    assert got.height == 100
    assert got["high"][40] == 999.0
    assert got["ts"].is_unique().all()
    assert_frame_equal(MarketStore(tmp_path).get_bars("SYN/USD"), got)


def test_range_is_half_open_and_accepts_several_time_types(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    frame = bars(600)
    store.write_bars(frame)
    start = T0 + dt.timedelta(minutes=10)
    end = T0 + dt.timedelta(minutes=20)
    want = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
    for lo, hi in [(start, end), (start.isoformat(), end.isoformat())]:
        assert_frame_equal(store.get_bars("SYN/USD", lo, hi), want)
    assert store.get_bars("NOPE").height == 0
    assert store.get_bars("NOPE").schema == BARS


def test_daily_rollups_match_a_polars_reference(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    frame = bars(4 * 1440 + 100, seed=5)
    store.write_bars(frame.head(2000))
    store.write_bars(frame.tail(frame.height - 2000))  # second write lands mid-day
    store.write_bars(frame.slice(50, 1).with_columns(pl.col("volume") * 10))  # an update
    stored = store.get_bars("SYN/USD")
    typical = (pl.col("high") + pl.col("low") + pl.col("close")) / 3
    ref = (
        stored.group_by(pl.col("ts").dt.date().alias("day"))
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
            ((typical * pl.col("volume")).sum() / pl.col("volume").sum()).alias("vwap"),
            pl.len().cast(pl.Int64).alias("bars"),
        )
        .sort("day")
    )
    got = store.daily(["SYN/USD"]).select(ref.columns)
    assert_frame_equal(got, ref, check_exact=False, rel_tol=1e-12)
    reopened = MarketStore(tmp_path).daily(["SYN/USD"]).select(ref.columns)
    assert_frame_equal(reopened, ref, check_exact=False, rel_tol=1e-12)


def test_buffer_is_visible_before_flush_and_durable_after(tmp_path: Path) -> None:
    store = MarketStore(tmp_path, buffer_age_s=3600)
    frame = bars(50)
    assert store.buffer_bars(frame) == 50
    assert_frame_equal(store.get_bars("SYN/USD"), frame)
    assert MarketStore(tmp_path).get_bars("SYN/USD").height == 0
    assert store.flush() == 50
    assert_frame_equal(MarketStore(tmp_path).get_bars("SYN/USD"), frame)


def test_compaction_merges_small_files(tmp_path: Path) -> None:
    store = MarketStore(tmp_path, compact_after=4)
    frame = bars(40)
    for i in range(10):
        store.write_bars(frame.slice(4 * i, 4))
    files = store.coverage()["files"][0]
    assert files < 4
    assert store.compact() <= 1
    assert store.coverage()["files"][0] == 1
    assert_frame_equal(store.get_bars("SYN/USD"), frame)
    names = [p.name for p in tmp_path.rglob("*.parquet") if "period=" in str(p)]
    assert len(names) == 1
    assert names[0].startswith("c-")


def test_trades_dedupe_on_trade_id(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    trades = pl.DataFrame(
        {
            "ts": [T0 + dt.timedelta(seconds=i) for i in range(5)],
            "venue": "synthetic",
            "symbol": "SYN/USD",
            "price": [1.0, 2.0, 3.0, 4.0, 5.0],
            "amount": [0.1] * 5,
            "side": ["buy", "sell", "buy", "sell", "buy"],
            "trade_id": ["a", "b", "c", "d", None],
        }
    ).cast(dict(TRADES))
    assert store.write_trades(trades) == 5
    assert store.write_trades(trades) == 0
    got = store.get_trades("SYN/USD")
    assert got.height == 5
    assert got["price"].to_list() == [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda f: f.drop("close"), "missing column"),
        (lambda f: f.with_columns(pl.lit("x").alias("open")), "wrong type"),
        (lambda f: f.with_columns(pl.lit(None, pl.String).alias("symbol")), "nulls"),
        (lambda f: f.with_columns(pl.lit("7m").alias("timeframe")), "unknown timeframe"),
        (lambda f: f.with_columns((pl.col("low") - 10).alias("high")), "high < low"),
        (lambda f: f.with_columns(pl.lit(-1.0).alias("volume")), "negative volume"),
        (lambda f: f.with_columns(pl.lit("a\nb").alias("symbol")), "control characters"),
        (lambda f: f.with_columns(pl.lit("x" * 120).alias("venue")), "too long: at most 100"),
        (
            lambda f: f.with_columns(pl.lit("/" * 90).alias("symbol")),
            "fewer when it has characters such as /",
        ),
    ],
)
def test_bad_input_is_refused_and_loses_nothing(
    tmp_path: Path, mutate: object, needle: str
) -> None:
    store = MarketStore(tmp_path)
    good = bars(20)
    store.write_bars(good)
    with pytest.raises(InvalidInput, match=needle):
        store.write_bars(mutate(bars(20, seed=9)))  # type: ignore[operator]
    assert_frame_equal(store.get_bars("SYN/USD", cache=False), good)


def test_bad_read_arguments(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    store.write_bars(bars(10))
    store.write_bars(bars(10, venue="other"))
    store.write_bars(bars(10, symbol="D", timeframe="1d", step_s=86_400))
    with pytest.raises(InvalidInput, match="timeframe"):
        store.get_bars("SYN/USD", timeframe="2m", venue="synthetic")
    with pytest.raises(InvalidInput, match="pass venue="):
        store.get_bars("SYN/USD")
    with pytest.raises(InvalidInput, match="end must be after start"):
        store.get_bars("SYN/USD", T0, T0, venue="other")
    with pytest.raises(InvalidInput, match="ISO"):
        store.get_bars("SYN/USD", "yesterday", venue="other")
    with pytest.raises(InvalidInput, match="cannot be built"):
        store.get_bars("D", timeframe="1h")
    with pytest.raises(InvalidInput, match="polars DataFrame"):
        store.write_bars([1, 2, 3])  # type: ignore[arg-type]


def test_writes_from_another_process_are_picked_up(tmp_path: Path) -> None:
    """Two stores on one root stand for the app and `hfthot ingest` in another process."""
    app = MarketStore(tmp_path)
    cli = MarketStore(tmp_path)
    frame = bars(300, seed=4)
    cli.write_bars(frame.head(100))
    assert_frame_equal(app.get_bars("SYN/USD"), frame.head(100))
    assert app.get_bars("SYN/USD") is app.get_bars("SYN/USD")  # cached
    cli.write_bars(frame.slice(100, 100))
    assert app.get_bars("SYN/USD").height == 200  # not the stale cached frame
    cli.write_bars(frame.slice(150, 1).with_columns(pl.lit(555.0).alias("high")))
    assert app.get_bars("SYN/USD")["high"][150] == 555.0
    # The app's own writes after that stay consistent, rollups included.
    app.write_bars(frame.tail(100))
    assert app.daily(["SYN/USD"])["bars"].sum() == 300
    assert cli.get_bars("SYN/USD").height == 300
    assert cli.daily(["SYN/USD"])["bars"].sum() == 300
    assert not app.sync()
