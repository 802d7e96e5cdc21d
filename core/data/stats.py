"""Facts about the store for pages and operators: what is stored, and how each tier does."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from core.data.hot import HotTier, TierCounter
from core.data.reader import Reader
from core.data.rollup import Rollups
from core.data.schema import TS, to_us

COVERAGE = pl.Schema(
    {
        "kind": pl.String,
        "venue": pl.String,
        "symbol": pl.String,
        "timeframe": pl.String,
        "first": pl.Int64,
        "last": pl.Int64,
        "rows": pl.Int64,
        "buffered": pl.Int64,
        "files": pl.Int64,
        "bytes": pl.Int64,
    }
)


def coverage(reader: Reader) -> pl.DataFrame:
    """One row per stored series: kind, venue, symbol, timeframe, first, last, rows,
    buffered, files, bytes."""
    rows: list[dict[str, Any]] = []
    for key in reader.series("bars") + reader.series("trades"):
        files = reader.files(key)
        buffered = reader.live.get(key)
        tmins = [f.ts_min for f in files]
        tmaxs = [f.ts_max for f in files]
        n = sum(f.rows for f in files)
        if buffered is not None and buffered.height:
            bmin, bmax = buffered["ts"].min(), buffered["ts"].max()
            assert isinstance(bmin, dt.datetime)
            assert isinstance(bmax, dt.datetime)
            tmins.append(to_us(bmin, "ts") or 0)
            tmaxs.append(to_us(bmax, "ts") or 0)
            n += buffered.height
        rows.append(
            {
                "kind": key.kind,
                "venue": key.venue,
                "symbol": key.symbol,
                "timeframe": key.timeframe or None,
                "first": min(tmins) if tmins else None,
                "last": max(tmaxs) if tmaxs else None,
                "rows": n,
                "buffered": buffered.height if buffered is not None else 0,
                "files": len(files),
                "bytes": sum(f.size for f in files),
            }
        )
    out = pl.DataFrame(rows, schema=COVERAGE)
    return out.with_columns(pl.col("first").cast(TS), pl.col("last").cast(TS))


def tier_stats(
    hot: HotTier, counters: dict[str, TierCounter], reader: Reader, rollups: Rollups
) -> dict[str, dict[str, Any]]:
    """Per tier: hits, misses, hit rate, bytes, entries and latency percentiles (µs)."""
    cache = hot.stats()
    out: dict[str, dict[str, Any]] = {}
    out["hot"] = {
        **counters["hot"].summary(),
        "bytes": cache["bytes"],
        "capacity_bytes": cache["capacity"],
        "entries": cache["entries"],
        "evictions": cache["evictions"],
        "policy": hot.cache.policy,
    }
    files = [
        f
        for periods in list(reader.parts.values())
        for p in list(periods.values())
        for f in p.files
    ]
    out["warm"] = {
        **counters["warm"].summary(),
        "bytes": sum(f.size for f in files),
        "files": len(files),
        "rows": sum(f.rows for f in files),
        "buffered_rows": reader.live.rows(),
    }
    out["rollup"] = {
        **counters["rollup"].summary(),
        "bytes": int(rollups.table.estimated_size()),
        "rows": rollups.table.height,
    }
    out["analytics"] = {**counters["analytics"].summary(), "bytes": None}
    return out
