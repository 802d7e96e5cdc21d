"""Hot tier: the Rust byte-budgeted cache, plus latency and hit counters for every tier."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field

import polars as pl

from core.native import ext


@dataclass(slots=True)
class TierCounter:
    """Hits, misses and a window of recent latencies (ns) of one tier."""

    hits: int = 0
    misses: int = 0
    latencies: collections.deque[int] = field(
        default_factory=lambda: collections.deque(maxlen=8192)
    )

    def record(self, ns: int, hit: bool, *, timed: bool = True) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        if timed:
            self.latencies.append(ns)

    def summary(self) -> dict[str, float | int | None]:
        lat = sorted(self.latencies)
        total = self.hits + self.misses

        def pct(q: float) -> float | None:
            if not lat:
                return None
            return lat[min(len(lat) - 1, int(q * len(lat)))] / 1000.0

        return {
            "hits": self.hits,
            "misses": self.misses,
            "hit_rate": self.hits / total if total else None,
            "p50_us": pct(0.50),
            "p95_us": pct(0.95),
            "p99_us": pct(0.99),
            "samples": len(lat),
        }


ENTRY_OVERHEAD = 256
"""Bytes charged per entry on top of the frame (key, bookkeeping)."""


def frame_bytes(frame: pl.DataFrame) -> int:
    """The memory a cached frame holds, as the hot tier charges it.

    Polars' `estimated_size` counts a String column's characters, but each String value
    is a 16-byte view (the characters of short strings live inside it). The hot tier
    holds bars, whose String columns are the venue/symbol/timeframe keys: one value
    repeated, its characters stored once. So a String column is charged 16 bytes per
    row and other columns their estimated size (measured: 16.3 B/row real for a
    repeated key against 9 estimated)."""
    total = 0
    for col in frame.get_columns():
        total += 16 * col.len() if col.dtype == pl.String else int(col.estimated_size())
    return max(1, total)


class HotTier:
    """Recent bars and query results as Polars frames, weighed by their size in bytes."""

    def __init__(self, capacity_bytes: int, policy: str = "s3fifo") -> None:
        self.cache = ext.HotCache(capacity_bytes, policy)
        self.capacity = capacity_bytes
        self.lock = threading.Lock()

    def get(self, key: str) -> pl.DataFrame | None:
        return self.cache.get(key)  # type: ignore[return-value]  # only frames are put

    def put(self, key: str, frame: pl.DataFrame) -> bool:
        return self.cache.put(key, frame, frame_bytes(frame) + ENTRY_OVERHEAD)

    def drop_prefix(self, prefix: str) -> int:
        return self.cache.remove_prefix(prefix)

    def clear(self) -> None:
        self.cache.clear()

    def stats(self) -> dict[str, int]:
        return self.cache.stats()
