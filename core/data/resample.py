"""The one resample of OHLCV bars, for stored bars (`MarketStore.get_bars`) and live bars
(`IngestService.live_bars`) alike.

Semantics:
- Buckets are left-closed, `[t, t + timeframe)`, and aligned to the UTC epoch: a "4h" bar
  starts at 00, 04, ..., 20 UTC and a "1d" bar covers one UTC calendar day, 00:00 to 24:00
  UTC (never an exchange's or a local day). `ts` is the bucket's start.
- open is the first bar's open, high the highest high, low the lowest low, close the last
  bar's close, volume the sum. A bucket without input bars is absent (no gap filling); a
  bucket still forming (today's day) is built from the bars present.
- Each series (venue, symbol) of the frame is resampled on its own; the output is in time
  order within a series, series in the order they first appear.
- An empty frame (with or without columns) gives an empty frame of the BARS schema.
- `ts` in another unit or time zone is converted to UTC microseconds first; naive times are
  taken as UTC. The input must be at a timeframe that divides `timeframe`.
"""

from __future__ import annotations

import polars as pl

from core.data.schema import BARS, TIMEFRAMES, TS
from core.errors import InvalidInput


def resample(bars: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """OHLCV bars at a coarser `timeframe` (see the module docstring for the semantics)."""
    if timeframe not in TIMEFRAMES:
        raise InvalidInput(f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}")
    if bars.height == 0:
        return pl.DataFrame(schema=BARS)
    frame = _utc(bars)
    venue, symbol = frame.get_column("venue"), frame.get_column("symbol")
    if (venue == venue[0]).all() and (symbol == symbol[0]).all():
        return _one_series(frame, timeframe)
    parts = frame.partition_by("venue", "symbol", maintain_order=True)
    return pl.concat([_one_series(part, timeframe) for part in parts], how="vertical")


def _utc(bars: pl.DataFrame) -> pl.DataFrame:
    dtype = bars.schema["ts"]
    if dtype == TS:
        return bars
    ts = pl.col("ts")
    if isinstance(dtype, pl.Datetime) and dtype.time_zone is None:
        ts = ts.dt.replace_time_zone("UTC")
    elif isinstance(dtype, pl.Datetime):
        ts = ts.dt.convert_time_zone("UTC")
    return bars.with_columns(ts.cast(TS))


def _one_series(bars: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    every = f"{TIMEFRAMES[timeframe]}s"  # whole seconds: aligned to the epoch, UTC midnight
    out = (
        bars.sort("ts")
        .group_by(pl.col("ts").dt.truncate(every).alias("ts"), maintain_order=True)
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
    return out.select(BARS.names()).cast(BARS)
