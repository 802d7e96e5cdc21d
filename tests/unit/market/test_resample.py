from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.data.store import MarketStore, resample
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
