"""The read-through market store: `MarketStore(root)`, three tiers behind one API.

Tiers and routing
-----------------
- Hot (Rust, `core.data.hot`): a byte-budgeted S3-FIFO cache of result frames.
  Every `get_bars` looks here first. Keys carry the series' data version, which
  every change bumps (`core.data.versions`), so a write never lets an old frame be served.
- Warm (`core.data.warm`): Parquet per series and month (year for hourly and
  daily bars), atomic writes, compaction (`core.data.writer`). A hot miss reads here
  (`core.data.reader`): only the files whose time range overlaps the query, with the
  filter pushed down, merged with the rows of the live buffer (`core.data.buffer`).
- Analytics (`core.data.analytics`): DuckDB views `bars`, `trades` and `daily`
  over the warm files, the buffer and the daily rollups; used by the SQL explorer.
- Rollups (`core.data.rollup`): daily OHLC/VWAP per series, maintained at ingest;
  `daily()` answers day-level questions without touching bars.
- Books (`core.data.books`): recorded L2 changes and snapshots per day, replayed by the
  Rust book kernel (`book_at`, `book_features`).

By data age: the newest (still buffered) rows live in memory and are merged into
every read and view; everything acknowledged lives in the warm tier; repeated
questions about any age are answered by the hot tier. By query shape: one series
over a time range -> `get_bars` (hot, then warm); per-day aggregates over many
series -> `daily()` (rollups); arbitrary SQL -> `SqlExplorer` (DuckDB).

Acknowledged means: `write_bars`/`write_trades` returned, or `flush()` returned
for rows given to `buffer_bars`/`buffer_trades`/`buffer_book`. Acknowledged rows survive a
SIGKILL; buffered rows not yet flushed do not.

Several processes on one root (the app and `hfthot ingest`) stay in step through the
writer flock and the epoch file (`core.data.epochs`). Returned frames are shared with
the hot tier: treat them as read-only.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import polars as pl

from core.data.books import Book, BookEvent, BookStore
from core.data.buffer import LiveBuffer
from core.data.epochs import Epochs
from core.data.hot import HotTier, TierCounter
from core.data.reader import Reader
from core.data.resample import resample
from core.data.rollup import Rollups
from core.data.schema import BARS, TIMEFRAMES, TRADES, to_us
from core.data.stats import coverage, tier_stats
from core.data.trace import AccessTrace
from core.data.versions import TAIL_MIN, SeriesVersions, cache_key, tail_rows
from core.data.warm import DataFile, SeriesKey, make_dirs
from core.data.writer import Writer, dedupe, prepare
from core.errors import InvalidInput


class MarketStore:
    """Bars and trades in three tiers behind one read-through API."""

    def __init__(
        self,
        root: Path | str,
        *,
        hot_bytes: int = 256 * 2**20,
        policy: str = "s3fifo",
        compact_after: int = 16,
        buffer_rows: int = 50_000,
        buffer_age_s: float = 5.0,
    ) -> None:
        self.root = Path(root)
        make_dirs(self.root)
        self.hot = HotTier(hot_bytes, policy)
        self.trace = AccessTrace.from_env()  # off unless HFT_ACCESS_TRACE is set
        self.counters = {t: TierCounter() for t in ("hot", "warm", "rollup", "analytics")}
        self.versions = SeriesVersions(self.hot, self.trace)
        self.live = LiveBuffer(buffer_rows, buffer_age_s)
        self._lock = threading.RLock()
        self.epochs = Epochs(self.root, self._lock)
        self.writer = Writer(self.root, self.versions, self.epochs, compact_after)
        self.reader = Reader(self.writer.parts, self.live, self._lock, self.counters["warm"])
        self.books = BookStore(self.root)
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        with self.epochs.exclusive():
            self.writer.open()

    @property
    def rollups(self) -> Rollups:
        return self.writer.rollups

    @property
    def generation(self) -> int:
        """Bumped by every write and compaction (the analytics tier rebuilds its views)."""
        return self.versions.generation

    def sync(self) -> bool:
        """Pick up commits made by other processes (e.g. `hfthot ingest` beside the app).

        One stat per call when nothing changed; returns whether anything was reloaded.
        """
        return self.writer.sync()

    # --------------------------------------------------------------- writes
    def write_bars(self, df: pl.DataFrame) -> int:
        """Store bars durably; returns rows written (new or changed). Idempotent.

        A frame with any bad row (missing, NaN/inf or negative price or volume, high < low,
        open or close outside [low, high]) is refused whole with an InvalidInput naming the
        rows; nothing of it is written."""
        return self.writer.write(prepare(df, BARS, "bars"))

    def write_trades(self, df: pl.DataFrame) -> int:
        """Store trades durably; returns rows written (new trade ids). Idempotent.

        Refused whole (InvalidInput) if a price or amount is missing, NaN/inf or negative."""
        return self.writer.write(prepare(df, TRADES, "trades"))

    def buffer_bars(self, df: pl.DataFrame, *, autoflush: bool = True) -> int:
        """Keep bars in memory (visible to reads at once); durable after `flush()`.

        Validated like `write_bars`. With `autoflush`, this call flushes when the buffer
        holds `buffer_rows` rows or is `buffer_age_s` old; without, only `flush()` writes
        (a caller with its own flush thread, like IngestService, never waits on a write)."""
        return self._buffer(prepare(df, BARS, "bars"), autoflush)

    def buffer_trades(self, df: pl.DataFrame, *, autoflush: bool = True) -> int:
        """Keep trades in memory, like `buffer_bars`."""
        return self._buffer(prepare(df, TRADES, "trades"), autoflush)

    def _buffer(self, groups: list[tuple[SeriesKey, pl.DataFrame]], autoflush: bool) -> int:
        for key, group in groups:
            self.live.add(key, dedupe(key, group))
            self.versions.bump(key)
        if autoflush and self.live.due():
            self.flush()
        return sum(g.height for _, g in groups)

    def buffer_book(self, venue: str, symbol: str, events: list[BookEvent]) -> int:
        """Keep a live book's changes and snapshots (core.ingest.live_book) for the next
        flush; returns the level rows buffered."""
        self.books.buffer(venue, symbol, events)
        return sum(len(e.side) for e in events)

    def flush(self) -> int:
        """Write every buffered row (bars, trades, book changes) to the warm tier; returns
        rows written.

        A failed write raises; the rows it did not acknowledge stay buffered."""
        with self._lock:  # one flush at a time: an older flush never lands after a newer
            pending = self.live.take()
            written = 0
            try:
                for key in list(pending):
                    n = self.writer.write([(key, pending[key])])
                    del pending[key]
                    self.live.written[key.kind] += n
                    written += n
            finally:
                self.live.restore(pending)
            books = self.books.flush()
            if books:
                self.versions.bump_generation()  # the SQL views list the new files
            return written + books

    def start_flusher(self, interval_s: float = 1.0) -> None:
        """Flush the buffer in a background thread every `interval_s` seconds."""
        if self._flusher is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                if self.live or self.books.buffered_rows():
                    self.flush()

        self._flusher = threading.Thread(target=loop, name="store-flusher", daemon=True)
        self._flusher.start()

    def compact(self) -> int:
        """Merge every partition with more than one file; returns partitions compacted."""
        return self.writer.compact()

    # ---------------------------------------------------------------- reads
    def series(self, kind: str = "bars") -> list[SeriesKey]:
        return self.reader.series(kind)

    def _resolve(
        self, kind: str, symbol: str, venue: str | None, timeframe: str
    ) -> SeriesKey | None:
        return self.versions.resolve((kind, symbol, venue, timeframe), self.reader.find)

    def get_bars(
        self,
        symbol: str,
        start: object = None,
        end: object = None,
        timeframe: str = "1m",
        venue: str | None = None,
        *,
        last: int | None = None,
        cache: bool = True,
    ) -> pl.DataFrame:
        """Bars with start <= ts < end, oldest first; coarser timeframes are resampled
        from the finest stored data. Unknown symbols give an empty frame.

        `last=n` keeps the newest n of those bars. The hot tier then holds a tail of
        `tail_rows(n)` bars (a power of two, at least TAIL_MIN), so nearby window sizes
        share one entry and a hit is a zero-copy slice of it."""
        t0 = time.perf_counter_ns()
        self.writer.sync()
        if timeframe not in TIMEFRAMES:
            raise InvalidInput(
                f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}"
            )
        lo, hi = to_us(start, "start"), to_us(end, "end")
        if lo is not None and hi is not None and hi <= lo:
            raise InvalidInput("end must be after start")
        span = tail_rows(last) if last is not None else None
        key = self.versions.resolve(("bars", symbol, venue, timeframe), self.reader.find)
        if key is None:
            return pl.DataFrame(schema=BARS)
        version = self.versions.version(key)
        ckey = cache_key(key, timeframe, lo, hi, span, version)
        if cache:
            hit = self.hot.get(ckey)
            if hit is not None:
                self.counters["hot"].record(time.perf_counter_ns() - t0, True)
                self.trace.read(key, timeframe, lo, hi, version, hit, True, span)
                return hit if last is None else hit.tail(last)
        if span is None:
            frame = self.reader.read_range(key, timeframe, lo, hi)
        else:
            frame = self.reader.read_tail(key, timeframe, lo, hi, span)
        if cache:
            self.hot.put(ckey, frame)
            self.counters["hot"].record(0, False, timed=False)
            self.trace.read(key, timeframe, lo, hi, version, frame, False, span)
        return frame if last is None else frame.tail(last)

    def get_trades(
        self, symbol: str, start: object = None, end: object = None, venue: str | None = None
    ) -> pl.DataFrame:
        self.writer.sync()
        lo, hi = to_us(start, "start"), to_us(end, "end")
        key = self._resolve("trades", symbol, venue, "1m")
        if key is None:
            return pl.DataFrame(schema=TRADES)
        return self.reader.read_series(key, lo, hi)

    def daily(
        self,
        symbols: list[str] | None = None,
        start: object = None,
        end: object = None,
        venue: str | None = None,
    ) -> pl.DataFrame:
        """Daily OHLC, volume and VWAP per series (from the rollups), finest timeframe only."""
        t0 = time.perf_counter_ns()
        self.writer.sync()
        lo, hi = to_us(start, "start"), to_us(end, "end")
        out = self.rollups.daily(symbols, lo, hi, venue)
        self.counters["rollup"].record(time.perf_counter_ns() - t0, out.height > 0)
        return out

    # ------------------------------------------------------ facts for pages
    def coverage(self) -> pl.DataFrame:
        """One row per stored series: kind, venue, symbol, timeframe, first, last, rows,
        buffered, files, bytes."""
        self.writer.sync()
        return coverage(self.reader)

    def warm_files(self, kind: str) -> list[tuple[SeriesKey, DataFile]]:
        """Every visible warm file of `kind` (for the analytics tier)."""
        return [
            (k, f)
            for k, periods in list(self.writer.parts.items())
            if k.kind == kind
            for p in periods.values()
            for f in p.files
        ]

    def buffered(self, kind: str) -> pl.DataFrame:
        return self.live.frame(kind)

    def book_at(self, venue: str, symbol: str, ts: object, depth: int = 50) -> Book:
        """The recorded book of `symbol` on `venue` as it was at `ts`: bids descending,
        asks ascending, `depth` levels a side."""
        return self.books.book_at(venue, symbol, ts, depth)

    def book_features(
        self, venue: str, symbol: str, start: object, end: object, every: str = "1s"
    ) -> pl.DataFrame:
        """Microstructure of the recorded book sampled every `every` over [start, end): mid,
        spread, microprice, depth within 10 and 50 bps each side, order-book imbalance and
        order-flow imbalance (Cont, Kukanov and Stoikov 2014)."""
        return self.books.features(venue, symbol, start, end, every)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per tier: hits, misses, hit rate, bytes, entries and latency percentiles (µs)."""
        return tier_stats(self.hot, self.counters, self.reader, self.rollups)

    def close(self) -> None:
        """Flush the buffer and stop the flusher; safe to call twice."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=10)
            self._flusher = None
        if self.live or self.books.buffered_rows():
            self.flush()
        self.writer.close()

    def __repr__(self) -> str:
        return f"MarketStore({str(self.root)!r})"


def import_bundled(store: MarketStore) -> int:
    """Import the bundled real history once; fast when it is already there."""
    from core.data import bundled

    have = {(k.venue, k.symbol, k.timeframe) for k in store.series("bars")}
    written = 0
    for ds in bundled.DATASETS.values():
        if (bundled.VENUE, ds.symbol, ds.timeframe) in have:
            continue
        written += store.write_bars(bundled.load(ds.symbol))
    return written


__all__ = ["TAIL_MIN", "MarketStore", "import_bundled", "resample", "tail_rows", "to_us"]
