from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.data.schema import BARS
from core.data.store import MarketStore, resample
from core.errors import InvalidInput
from tests.unit.market.helpers import bars


def reference(frame: pl.DataFrame, every: str, timeframe: str) -> pl.DataFrame:
    out = (
        frame.sort("ts")
        .group_by_dynamic("ts", every=every, closed="left", label="left")
        .agg(
            pl.col("venue").first(),
            pl.col("symbol").first(),
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        .with_columns(pl.lit(timeframe).alias("timeframe"))
    )
    return out.select(frame.columns)


@pytest.mark.parametrize(
    ("timeframe", "every"), [("5m", "5m"), ("15m", "15m"), ("1h", "1h"), ("4h", "4h"), ("1d", "1d")]
)
def test_resample_matches_group_by_dynamic(timeframe: str, every: str) -> None:
    frame = bars(3 * 1440 + 17, start=dt.datetime(2024, 3, 1, 0, 3, tzinfo=dt.UTC))
    # Gaps: drop a few random stretches so some buckets are partial or missing.
    frame = frame.filter(~pl.int_range(pl.len()).is_between(100, 400))
    assert_frame_equal(resample(frame, timeframe), reference(frame, every, timeframe))


def test_store_resamples_from_finest(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    frame = bars(2 * 1440)
    store.write_bars(frame)
    store.write_bars(
        resample(frame, "1h").with_columns(pl.col("open", "high", "low", "close") * 0 + 1.0)
    )
    got = store.get_bars("SYN/USD", timeframe="1h")
    assert_frame_equal(got, reference(frame, "1h", "1h"))
    # A range starting mid-bucket still yields whole buckets from the bucket start.
    start = dt.datetime(2024, 1, 31, 3, 30, tzinfo=dt.UTC)
    end = dt.datetime(2024, 1, 31, 6, 0, tzinfo=dt.UTC)
    ranged = store.get_bars("SYN/USD", start, end, timeframe="1h")
    assert ranged["ts"].to_list() == [dt.datetime(2024, 1, 31, h, tzinfo=dt.UTC) for h in (3, 4, 5)]


def test_one_resample_serves_the_store_and_live_ingest() -> None:
    from core.data import resample as one
    from core.ingest import service

    assert resample is one.resample
    assert service.resample is one.resample


@pytest.mark.parametrize(
    "frame", [pl.DataFrame(), pl.DataFrame(schema=BARS), bars(5).clear().select("ts", "close")]
)
def test_empty_frame_gives_empty_bars_schema(frame: pl.DataFrame) -> None:
    out = resample(frame, "1h")
    assert out.height == 0
    assert out.schema == BARS


def test_daily_bars_are_utc_calendar_days() -> None:
    # 1m bars from 22:00 UTC on Jan 30 to 02:59 UTC on Feb 1: three UTC days, two partial.
    frame = bars(29 * 60, start=dt.datetime(2024, 1, 30, 22, 0, tzinfo=dt.UTC))
    daily = resample(frame, "1d")
    days = [dt.datetime(2024, 1, d, tzinfo=dt.UTC) for d in (30, 31)]
    assert daily["ts"].to_list() == [*days, dt.datetime(2024, 2, 1, tzinfo=dt.UTC)]
    assert set(daily["timeframe"]) == {"1d"}
    jan31 = frame.filter(pl.col("ts").dt.date() == dt.date(2024, 1, 31))
    row = daily.row(1, named=True)
    assert row["open"] == jan31["open"][0]
    assert row["close"] == jan31["close"][-1]
    assert row["high"] == jan31["high"].max()
    assert row["low"] == jan31["low"].min()
    assert row["volume"] == pytest.approx(jan31["volume"].sum())


def test_times_in_another_zone_are_bucketed_by_utc_day() -> None:
    frame = bars(6 * 60, start=dt.datetime(2024, 1, 30, 21, 0, tzinfo=dt.UTC))
    local = frame.with_columns(pl.col("ts").dt.convert_time_zone("America/New_York"))
    naive = frame.with_columns(pl.col("ts").dt.replace_time_zone(None).dt.cast_time_unit("ms"))
    want = resample(frame, "1d")
    assert want["ts"].to_list() == [dt.datetime(2024, 1, d, tzinfo=dt.UTC) for d in (30, 31)]
    assert_frame_equal(resample(local, "1d"), want)
    assert_frame_equal(resample(naive, "1d"), want)


def test_each_series_is_resampled_on_its_own() -> None:
    a = bars(120, symbol="A/USD", seed=1)
    b = bars(120, symbol="B/USD", seed=2)
    mixed = pl.concat([a, b]).sort("ts")  # interleaved rows of two series
    out = resample(mixed, "1h")
    assert out["symbol"].to_list() == ["A/USD"] * 2 + ["B/USD"] * 2
    assert_frame_equal(out.filter(pl.col("symbol") == "B/USD"), resample(b, "1h"))


def test_unknown_timeframe_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown timeframe"):
        resample(bars(10), "7m")
