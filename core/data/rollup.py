"""Daily rollups maintained at ingest: OHLC, volume and VWAP per series per UTC day.

VWAP uses the bar's typical price, sum((high + low + close) / 3 * volume) / sum(volume);
it is null for a day with zero volume. A bar with a null (unknown) volume counts as zero
volume. The store refuses NaN/inf values at the write, so every rollup value is finite.
The rollup keeps the sums (pv, volume, bars) and the first/last bar times, so a new write
merges into it without re-reading the day.

Persistence: `daily.parquet` (written atomically) records, per partition, the
highest file seq it reflects. At open, partitions whose seq differs (the process
died between a data commit and the rollup write) are recomputed from their files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from core.data.schema import TIMEFRAMES, TS
from core.data.warm import make_dirs, write_atomic

SCHEMA = pl.Schema(
    {
        "venue": pl.String(),
        "symbol": pl.String(),
        "timeframe": pl.String(),
        "day": pl.Date(),
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume": pl.Float64(),
        "vwap": pl.Float64(),
        "pv": pl.Float64(),
        "bars": pl.Int64(),
        "first_ts": TS,
        "last_ts": TS,
    }
)
KEY = ["venue", "symbol", "timeframe", "day"]
DAY_US = 86_400_000_000


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def aggregate(bars: pl.DataFrame) -> pl.DataFrame:
    """Daily rollup rows of one series' bars (BARS schema)."""
    if bars.height == 0:
        return empty()
    ordered = bars if bars["ts"].is_sorted() else bars.sort("ts")
    ts = ordered["ts"].dt.epoch("us").to_numpy()
    day = ts // DAY_US
    starts = np.flatnonzero(np.concatenate(([True], day[1:] != day[:-1])))
    ends = np.concatenate((starts[1:], [len(ts)])) - 1
    col = {c: ordered[c].to_numpy() for c in ("open", "high", "low", "close")}
    col["volume"] = ordered["volume"].fill_null(0.0).to_numpy()
    pv = (col["high"] + col["low"] + col["close"]) / 3.0 * col["volume"]
    out = pl.DataFrame(
        {
            "venue": ordered["venue"][0],
            "symbol": ordered["symbol"][0],
            "timeframe": ordered["timeframe"][0],
            "day": pl.Series(day[starts].astype("int32")).cast(pl.Date),
            "open": col["open"][starts],
            "high": np.maximum.reduceat(col["high"], starts),
            "low": np.minimum.reduceat(col["low"], starts),
            "close": col["close"][ends],
            "volume": np.add.reduceat(col["volume"], starts),
            "pv": np.add.reduceat(pv, starts),
            "bars": (ends - starts + 1).astype("int64"),
            "first_ts": pl.Series(ts[starts]).cast(TS),
            "last_ts": pl.Series(ts[ends]).cast(TS),
        }
    )
    return _finish(out)


def _finish(frame: pl.DataFrame) -> pl.DataFrame:
    vwap = pl.when(pl.col("volume") > 0).then(pl.col("pv") / pl.col("volume")).otherwise(None)
    return frame.with_columns(vwap.alias("vwap")).select(SCHEMA.names()).cast(SCHEMA)


def merge(existing: pl.DataFrame, new_rows: pl.DataFrame) -> pl.DataFrame:
    """Fold rollups of bars with new keys into existing rollups of the same days."""
    both = pl.concat([existing, new_rows], how="vertical")
    out = (
        both.sort("first_ts")
        .group_by(KEY)
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").sort_by("last_ts").last(),
            pl.col("volume").sum(),
            pl.col("pv").sum(),
            pl.col("bars").sum(),
            pl.col("first_ts").min(),
            pl.col("last_ts").max(),
        )
    )
    return _finish(out)


class Rollups:
    """The in-memory daily table, its per-partition seqs, and its file."""

    def __init__(self, root: Path) -> None:
        self.path = root / "rollups" / "daily.parquet"
        self.table = empty()
        self.seqs: dict[str, int] = {}
        self.dirty = False
        if self.path.exists():
            try:
                tbl = pq.read_table(self.path)
                meta = (tbl.schema.metadata or {}).get(b"hfthot.seqs", b"{}")
                self.seqs = {str(k): int(v) for k, v in json.loads(meta).items()}
                frame = pl.from_arrow(tbl)
                assert isinstance(frame, pl.DataFrame)
                self.table = frame.select(SCHEMA.names()).cast(SCHEMA)
            except (OSError, ValueError, pl.exceptions.PolarsError):
                # A damaged rollup file is only a cache of the data: rebuild it.
                self.table, self.seqs = empty(), {}

    def replace_days(self, series: tuple[str, str, str], fresh: pl.DataFrame) -> None:
        """Swap in recomputed rollups for the days present in `fresh`."""
        if fresh.height == 0:
            return
        venue, symbol, tf = series
        days = fresh["day"].implode()
        keep = ~(
            (pl.col("venue") == venue)
            & (pl.col("symbol") == symbol)
            & (pl.col("timeframe") == tf)
            & pl.col("day").is_in(days)
        )
        self.table = pl.concat([self.table.filter(keep), fresh], how="vertical")
        self.dirty = True

    def add_new(self, series: tuple[str, str, str], fresh: pl.DataFrame) -> None:
        """Fold `fresh` (the `aggregate` of bars whose keys were not stored before)."""
        if fresh.height == 0:
            return
        venue, symbol, tf = series
        mask = (
            (pl.col("venue") == venue)
            & (pl.col("symbol") == symbol)
            & (pl.col("timeframe") == tf)
            & pl.col("day").is_in(fresh["day"].implode())
        )
        old = self.table.filter(mask)
        days = merge(old, fresh) if old.height else fresh
        self.table = pl.concat([self.table.filter(~mask), days], how="vertical")
        self.dirty = True

    def daily(
        self, symbols: list[str] | None, lo: int | None, hi: int | None, venue: str | None
    ) -> pl.DataFrame:
        """Days in [lo, hi) (UTC µs) of the series asked for, finest timeframe of each."""
        table = self.table
        filters: list[pl.Expr] = []
        if symbols is not None:
            filters.append(pl.col("symbol").is_in(symbols))
        if venue is not None:
            filters.append(pl.col("venue") == venue)
        if lo is not None:
            filters.append(pl.col("day") >= pl.lit(lo).cast(TS).dt.date())
        if hi is not None:
            filters.append(pl.col("day") < pl.lit(hi).cast(TS).dt.date())
        if filters:
            table = table.filter(*filters)
        # Keep one timeframe per venue/symbol: the finest stored.
        tf_rank = pl.col("timeframe").replace_strict(TIMEFRAMES, default=10**9)
        finest = tf_rank == tf_rank.min().over("venue", "symbol")
        out = table.filter(finest).sort("venue", "symbol", "day")
        return out.drop("pv", "first_ts", "last_ts")

    def save(self) -> None:
        if not self.dirty:
            return
        make_dirs(self.path.parent)
        tbl = self.table.sort(KEY).to_arrow()
        tbl = tbl.replace_schema_metadata({"hfthot.seqs": json.dumps(self.seqs, sort_keys=True)})
        write_atomic(tbl, self.path, stats=())
        self.dirty = False
