"""The one live buffer: rows held in memory per series until a flush writes them.

`MarketStore.buffer_bars`/`buffer_trades` put validated rows here (live ingestion does,
through them); every read merges them in at once; `MarketStore.flush` takes them out,
writes them, and puts back whatever was not acknowledged. Within a series the last row
for a key wins (a bar's `ts`, a trade's `trade_id`).

Thread safety: adds, takes and restores hold a short lock of their own (never across a
write), so a producer (a stream's event loop) never waits for an fsync. `get` reads
without the lock: a series' frame is replaced whole, never changed in place.
"""

from __future__ import annotations

import threading
import time

import polars as pl

from core.data.schema import BARS, TRADES, row_keys
from core.data.warm import SeriesKey


def merge_rows(older: pl.DataFrame, newer: pl.DataFrame, kind: str) -> pl.DataFrame:
    """Rows of both, one per key, `newer` winning."""
    both = pl.concat([older, newer], how="vertical")
    return both.unique(subset=row_keys(kind), keep="last", maintain_order=True)


class LiveBuffer:
    """Buffered rows per series, with a size and an age that make a flush due."""

    def __init__(self, max_rows: int, max_age_s: float) -> None:
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self.written = {"bars": 0, "trades": 0}
        """Rows flushes have written so far, per kind (the store counts acknowledged rows)."""
        self._frames: dict[SeriesKey, pl.DataFrame] = {}
        self._since: float | None = None
        self._lock = threading.Lock()

    def add(self, key: SeriesKey, rows: pl.DataFrame) -> None:
        """Hold `rows` (validated, one series, no duplicate keys) for `key`."""
        with self._lock:
            old = self._frames.get(key)
            self._frames[key] = rows if old is None else merge_rows(old, rows, key.kind)
            if self._since is None:
                self._since = time.monotonic()

    def due(self) -> bool:
        """Whether the buffer holds max_rows rows or its oldest rows are max_age_s old."""
        since = self._since
        if since is None:
            return False
        return self.rows() >= self.max_rows or time.monotonic() - since >= self.max_age_s

    def get(self, key: SeriesKey) -> pl.DataFrame | None:
        return self._frames.get(key)

    def keys(self, kind: str) -> list[SeriesKey]:
        return [k for k in list(self._frames) if k.kind == kind]

    def rows(self, kind: str | None = None) -> int:
        frames = list(self._frames.items())
        return sum(f.height for k, f in frames if kind in (None, k.kind))

    def frame(self, kind: str) -> pl.DataFrame:
        """Every buffered row of `kind`, one frame (for the analytics views)."""
        frames = [f for k, f in list(self._frames.items()) if k.kind == kind]
        if frames:
            return pl.concat(frames, how="vertical")
        return pl.DataFrame(schema=BARS if kind == "bars" else TRADES)

    def take(self) -> dict[SeriesKey, pl.DataFrame]:
        """Everything buffered; the buffer is empty afterwards."""
        with self._lock:
            taken, self._frames, self._since = self._frames, {}, None
        return taken

    def restore(self, pending: dict[SeriesKey, pl.DataFrame]) -> None:
        """Put back rows a flush did not write; rows added since then win over them."""
        if not pending:
            return
        with self._lock:
            for key, rows in pending.items():
                newer = self._frames.get(key)
                self._frames[key] = rows if newer is None else merge_rows(rows, newer, key.kind)
            if self._since is None:
                self._since = time.monotonic()

    def __bool__(self) -> bool:
        return bool(self._frames)
