"""The read-through market store: `MarketStore(root)`, three tiers behind one API.

Tiers and routing
-----------------
- Hot (Rust, `core.data.hot`): a byte-budgeted S3-FIFO cache of result frames.
  Every `get_bars` looks here first. Keys carry the series' data version, which
  every write bumps, so a write never lets an old frame be served.
- Warm (`core.data.warm`): Parquet per series and month (year for hourly and
  daily bars), atomic writes, compaction. A hot miss reads here: only the files
  whose time range overlaps the query, with the filter pushed down. Rows buffered
  in memory by `buffer_bars` (live ingestion) are merged in on read.
- Analytics (`core.data.analytics`): DuckDB views `bars`, `trades` and `daily`
  over the warm files, the buffer and the daily rollups; used by the SQL explorer.
- Rollups (`core.data.rollup`): daily OHLC/VWAP per series, maintained at ingest;
  `daily()` answers day-level questions without touching bars.

By data age: the newest (still buffered) bars live in memory and are merged into
every read and view; everything acknowledged lives in the warm tier; repeated
questions about any age are answered by the hot tier. By query shape: one series
over a time range -> `get_bars` (hot, then warm); per-day aggregates over many
series -> `daily()` (rollups); arbitrary SQL -> `SqlExplorer` (DuckDB).

Acknowledged means: `write_bars`/`write_trades` returned, or `flush()` returned
for rows given to `buffer_bars`/`buffer_trades`. Acknowledged rows survive a
SIGKILL; buffered rows not yet flushed do not.

Several processes on one root (the app and `hfthot ingest`): writers take an
flock; every commit replaces `<root>/.epoch`; each read stats that file (about a
microsecond) and, when another process committed, re-lists the partitions, rebuilds
their rollups and bumps the versions, so no stale frame is served.

Returned frames are shared with the hot tier: treat them as read-only.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from core.data import rollup
from core.data.hot import HotTier, TierCounter
from core.data.schema import BARS, TIMEFRAMES, TRADES, TS, check_values, conform
from core.data.trace import AccessTrace
from core.data.warm import (
    BAR_VALUES,
    TRADE_VALUES,
    DataFile,
    Partition,
    SeriesKey,
    check_name,
    crash_point,
    make_dirs,
    read_files,
    split_periods,
    to_file_table,
    walk,
    write_atomic,
)
from core.errors import InvalidInput

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_us(value: object, what: str) -> int | None:
    """None, datetime, date, ISO string, or int µs -> UTC microseconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a time, not a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"{what} {value!r} is not an ISO date or time") from None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, dt.date):
        return to_us(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC), what)
    raise InvalidInput(f"{what} must be a datetime, date, ISO string or µs int, got {value!r}")


TAIL_MIN = 16_384
"""Smallest tail the hot tier keeps for `get_bars(last=...)`."""


def tail_rows(last: int) -> int:
    """Rows of the cached tail that serves `last` bars: TAIL_MIN or the next power of two."""
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise InvalidInput(f"last must be a whole number of bars >= 1, got {last!r}")
    return max(TAIL_MIN, 1 << (last - 1).bit_length())


def resample(bars: pl.DataFrame, timeframe: str) -> pl.DataFrame:
    """OHLCV bars at a coarser timeframe, buckets aligned to the UTC epoch (left-closed)."""
    every = f"{TIMEFRAMES[timeframe]}s" if timeframe != "1d" else "1d"
    if bars.height == 0:
        return bars.with_columns(pl.lit(timeframe).alias("timeframe"))
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
        self.compact_after = compact_after
        self.buffer_rows = buffer_rows
        self.buffer_age_s = buffer_age_s
        self._lock = threading.RLock()
        self._lockfile = self.root / ".writer.lock"
        self._parts: dict[SeriesKey, dict[str, Partition]] = {}
        self._versions: dict[tuple[str, str, str], int] = {}
        self._resolved: dict[tuple[str, str, str | None, str], SeriesKey | None] = {}
        self._generation = 0
        self._buffer: dict[SeriesKey, pl.DataFrame] = {}
        self._buffer_since: float | None = None
        self.counters = {t: TierCounter() for t in ("hot", "warm", "rollup", "analytics")}
        self._flusher: threading.Thread | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._rollups_saved = time.monotonic()
        self._stop = threading.Event()
        self._epoch_path = self.root / ".epoch"
        self._epoch_seen: tuple[tuple[int, int, int] | None, bytes] = (None, b"")
        with self._writer():
            self._open()
            self._epoch_seen = self._epoch_now()

    # ----------------------------------------------------------------- open
    def _open(self) -> None:
        self.rollups = rollup.Rollups(self.root)
        for key, period, path in walk(self.root):
            part = Partition(path)
            part.scan(clean=True)
            if part.files:
                self._parts.setdefault(key, {})[period] = part
        # Rollups lagging the data (a crash between the two commits) are rebuilt.
        seen: set[str] = set()
        for key, periods in self._parts.items():
            if key.kind != "bars":
                continue
            for period, part in periods.items():
                tag = self._tag(key, period)
                seen.add(tag)
                if self.rollups.seqs.get(tag) != part.max_seq:
                    self._rebuild_rollup(key, period, part)
        stale = set(self.rollups.seqs) - seen
        if stale:
            for tag in stale:
                del self.rollups.seqs[tag]
            self.rollups.dirty = True
        self.rollups.save()

    # ------------------------------------------------- other processes' writes
    def _epoch_now(self) -> tuple[tuple[int, int, int] | None, bytes]:
        try:
            st = os.stat(self._epoch_path)
        except FileNotFoundError:
            return None, b""
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        # A file replaced twice within one clock tick can repeat (inode, mtime):
        # for a recent change, compare the content (a counter) as well.
        recent = time.time_ns() - st.st_mtime_ns < 25_000_000
        return sig, (self._epoch_path.read_bytes() if recent else b"")

    def _touch_epoch(self) -> None:
        """Tell other processes on this root that the data changed (no fsync: a hint)."""
        tmp = self._epoch_path.with_name(f".epoch-{os.getpid()}-{threading.get_ident()}")
        tmp.write_text(f"{os.getpid()} {time.time_ns()} {self._generation}\n")
        os.replace(tmp, self._epoch_path)
        self._epoch_seen = self._epoch_now()

    def sync(self) -> bool:
        """Pick up commits made by other processes (e.g. `hfthot ingest` beside the app).

        One stat per call when nothing changed; returns whether anything was reloaded.
        """
        now = self._epoch_now()
        if now[0] == self._epoch_seen[0] and (not now[1] or now[1] == self._epoch_seen[1]):
            return False
        with self._lock:
            changed: set[SeriesKey] = set()
            for key, period, path in walk(self.root):
                periods = self._parts.setdefault(key, {})
                part = periods.get(period)
                if part is None:
                    part = periods[period] = Partition(path)
                before = part.files
                part.scan(clean=False)
                if part.files != before:
                    changed.add(key)
                    if key.kind == "bars":
                        self._rebuild_rollup(key, period, part)
            for key in changed:
                self._bump(key)
            self._epoch_seen = now
        return bool(changed)

    @staticmethod
    def _tag(key: SeriesKey, period: str) -> str:
        return f"{key.venue}\x1f{key.symbol}\x1f{key.timeframe}\x1f{period}"

    def _rebuild_rollup(self, key: SeriesKey, period: str, part: Partition) -> None:
        frame = self._with_keys(read_files(part.files, None, None), key)
        fresh = rollup.aggregate(frame)
        # Drop every rollup day of this period, then add what the files say.
        fmt = "%Y" if len(period) == 4 else "%Y-%m"
        t = self.rollups.table
        mask = (
            (pl.col("venue") == key.venue)
            & (pl.col("symbol") == key.symbol)
            & (pl.col("timeframe") == key.timeframe)
            & (pl.col("day").dt.strftime(fmt) == period)
        )
        self.rollups.table = pl.concat([t.filter(~mask), fresh], how="vertical")
        self.rollups.seqs[self._tag(key, period)] = part.max_seq
        self.rollups.dirty = True

    @contextmanager
    def _writer(self) -> Iterator[None]:
        """One writer at a time: a thread lock plus an flock for other processes."""
        with self._lock, self._lockfile.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # --------------------------------------------------------------- writes
    def write_bars(self, df: pl.DataFrame) -> int:
        """Store bars durably; returns rows written (new or changed). Idempotent.

        A frame with any bad row (missing, NaN/inf or negative price or volume, high < low,
        open or close outside [low, high]) is refused whole with an InvalidInput naming the
        rows; nothing of it is written."""
        return self._write(self._prepare(df, BARS, "bars"))

    def write_trades(self, df: pl.DataFrame) -> int:
        """Store trades durably; returns rows written (new trade ids). Idempotent.

        Refused whole (InvalidInput) if a price or amount is missing, NaN/inf or negative."""
        return self._write(self._prepare(df, TRADES, "trades"))

    def buffer_bars(self, df: pl.DataFrame) -> int:
        """Keep bars in memory (visible to reads at once); durable after `flush()`."""
        return self._buffer_rows(self._prepare(df, BARS, "bars"))

    def buffer_trades(self, df: pl.DataFrame) -> int:
        return self._buffer_rows(self._prepare(df, TRADES, "trades"))

    def flush(self) -> int:
        """Write every buffered row to the warm tier; returns rows written."""
        with self._lock:
            pending, self._buffer, self._buffer_since = self._buffer, {}, None
            written = 0
            try:
                for key, frame in pending.items():
                    written += self._write([(key, frame)])
            except BaseException:
                # Nothing is lost: put back what was not acknowledged.
                for key, frame in pending.items():
                    self._buffer.setdefault(key, frame)
                raise
            return written

    def start_flusher(self, interval_s: float = 1.0) -> None:
        """Flush the buffer in a background thread every `interval_s` seconds."""
        if self._flusher is not None:
            return

        def loop() -> None:
            while not self._stop.wait(interval_s):
                if self._buffer:
                    self.flush()

        self._flusher = threading.Thread(target=loop, name="store-flusher", daemon=True)
        self._flusher.start()

    def _prepare(
        self, df: pl.DataFrame, schema: pl.Schema, what: str
    ) -> list[tuple[SeriesKey, pl.DataFrame]]:
        """Validate everything before anything is written; split by series."""
        if not isinstance(df, pl.DataFrame):
            raise InvalidInput(f"{what} must be a polars DataFrame, got {type(df).__name__}")
        frame = conform(df, schema, what)
        if frame.height == 0:
            return []
        # Finite, non-negative prices and volumes; open and close within [low, high].
        check_values(frame, what)
        groups = list(self._split(frame, what))
        for key, _ in groups:
            check_name(key.venue, "venue")
            check_name(key.symbol, "symbol")
            if what == "bars" and key.timeframe not in TIMEFRAMES:
                raise InvalidInput(
                    f"unknown timeframe {key.timeframe!r}; use one of {', '.join(TIMEFRAMES)}"
                )
        return groups

    def _keys(self, kind: str) -> list[str]:
        return ["ts"] if kind == "bars" else ["trade_id"]

    def _split(self, frame: pl.DataFrame, kind: str) -> Iterator[tuple[SeriesKey, pl.DataFrame]]:
        by = ["venue", "symbol", "timeframe"] if kind == "bars" else ["venue", "symbol"]
        firsts = [frame[c][0] for c in by]
        if all((frame[c] == v).all() for c, v in zip(by, firsts, strict=True)):
            # The common case, one series per call: no group_by over strings.
            tf = str(firsts[2]) if kind == "bars" else ""
            yield SeriesKey(kind, str(firsts[0]), str(firsts[1]), tf), frame
            return
        for values, group in frame.group_by(by, maintain_order=True):
            tf = str(values[2]) if kind == "bars" else ""
            yield SeriesKey(kind, str(values[0]), str(values[1]), tf), group

    def _write(self, groups: list[tuple[SeriesKey, pl.DataFrame]]) -> int:
        if not groups:
            return 0
        written = 0
        with self._writer():
            self.sync()
            for key, group in groups:
                written += self._write_series(key, group)
            self._touch_epoch()
            # The rollup file is a cache of the data (rebuilt at open where it lags),
            # so it is saved at most every few seconds, and at close.
            if time.monotonic() - self._rollups_saved > 5.0:
                self.rollups.save()
                self._rollups_saved = time.monotonic()
        return written

    def _dedupe_incoming(self, key: SeriesKey, group: pl.DataFrame) -> pl.DataFrame:
        if key.kind == "trades":
            with_id = group.filter(pl.col("trade_id").is_not_null())
            no_id = group.filter(pl.col("trade_id").is_null()).with_columns(
                pl.format(
                    "{}:{}:{}",
                    pl.col("ts").dt.epoch("us"),
                    pl.col("price"),
                    pl.col("amount"),
                ).alias("trade_id")
            )
            group = pl.concat([with_id, no_id], how="vertical")
        else:
            ts = group["ts"].dt.epoch("us").to_numpy()
            if bool(np.all(ts[1:] > ts[:-1])):
                return group  # strictly increasing times: no duplicate keys
        return group.unique(subset=self._keys(key.kind), keep="last", maintain_order=True)

    def _write_series(self, key: SeriesKey, group: pl.DataFrame) -> int:
        group = self._dedupe_incoming(key, group)
        if not group["ts"].is_sorted():
            group = group.sort("ts", maintain_order=True)
        tf_s = TIMEFRAMES.get(key.timeframe, 60)
        base = key.directory(self.root)
        periods = self._parts.setdefault(key, {})
        # 1. Decide, per partition, which rows are new and which change stored rows.
        plans: list[tuple[str, Partition, pl.DataFrame, pl.DataFrame]] = []
        for period, rows in split_periods(group, tf_s):
            part = periods.get(period)
            if part is None:
                part = Partition(base / f"period={period}")
                periods[period] = part
            new, changed = self._plan(key, part, rows)
            if new.height or changed.height:
                plans.append((period, part, new, changed))
        if not plans:
            return 0
        # 2. Append-only partitions get a d-file each, written in parallel (the
        #    fsyncs overlap); each file is atomic on its own.
        appends = [(part, new) for _, part, new, changed in plans if changed.height == 0]
        jobs = [
            (to_file_table(new, key.kind), part.path / f"d-{part.next_seq:012d}.parquet")
            for part, new in appends
        ]

        def commit(job: tuple[pa.Table, Path]) -> int:
            make_dirs(job[1].parent)
            return write_atomic(*job)

        if len(jobs) > 1:
            list(self._pool().map(commit, jobs))
        elif jobs:
            commit(jobs[0])
        # 3. Partitions with changed rows are rewritten; then bookkeeping.
        written = 0
        for period, part, new, changed in plans:
            if changed.height:
                make_dirs(part.path)
                upserts = pl.concat([new, changed], how="vertical")
                self._rewrite(key, part, upserts, part.next_seq)
            else:
                part.scan(clean=False)
            if key.kind == "bars":
                self.rollups.seqs[self._tag(key, period)] = part.max_seq
                self.rollups.dirty = True
            if len(part.files) >= self.compact_after:
                self._compact(key, period, part)
            written += new.height + changed.height
        appended = [new for _, new in appends]
        if appended and key.kind == "bars":
            self.rollups.add_new((key.venue, key.symbol, key.timeframe), pl.concat(appended))
        self._bump(key)
        return written

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="store-io")
        return self._executor

    def _plan(
        self, key: SeriesKey, part: Partition, rows: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """(new rows, rows that change stored values) of one partition."""
        part.scan(clean=True)
        values = BAR_VALUES if key.kind == "bars" else TRADE_VALUES
        keycols = self._keys(key.kind)
        new, changed = rows, rows.clear()
        if not part.files:
            return new, changed
        # A stored row with the same key has the same time (a re-sent trade keeps its
        # timestamp), so only the incoming time range is read.
        ts = rows["ts"].dt.epoch("us")
        lo, hi = int(ts.min()), int(ts.max())  # type: ignore[arg-type]
        existing = read_files(part.files, lo, hi + 1)
        if existing.height:
            new = rows.join(existing.select(keycols), on=keycols, how="anti", nulls_equal=True)
            if key.kind == "bars":
                # Same ts, different values: an update (e.g. a bar still forming).
                old = existing.select([*keycols, *values])
                both = rows.join(old, on=keycols, how="inner", suffix="__old")
                diff = pl.any_horizontal(
                    [~pl.col(c).eq_missing(pl.col(f"{c}__old")) for c in values]
                )
                changed = both.filter(diff).select(rows.columns)
        return new, changed

    def _rewrite(self, key: SeriesKey, part: Partition, upserts: pl.DataFrame, seq: int) -> None:
        """Replace the partition with one c-file holding old rows updated by `upserts`."""
        keycols = self._keys(key.kind)
        old = self._with_keys(read_files(part.files, None, None), key)
        merged = pl.concat(
            [
                old.join(upserts.select(keycols), on=keycols, how="anti"),
                upserts.select(old.columns),
            ],
            how="vertical",
        ).sort("ts")
        lo = min((f.lo for f in part.files), default=seq)
        dest = part.path / f"c-{lo:012d}-{seq:012d}.parquet"
        write_atomic(to_file_table(merged, key.kind), dest)
        crash_point("after_compact_commit")
        part.scan(clean=True)
        if key.kind == "bars":
            self.rollups.replace_days(
                (key.venue, key.symbol, key.timeframe),
                rollup.aggregate(
                    merged.filter(pl.col("ts").dt.date().is_in(upserts["ts"].dt.date().implode()))
                ),
            )

    def _compact(self, key: SeriesKey, period: str, part: Partition) -> None:
        if len(part.files) < 2:
            return
        frame = read_files(part.files, None, None)
        lo, hi = part.files[0].lo, max(f.hi for f in part.files)
        dest = part.path / f"c-{lo:012d}-{hi:012d}.parquet"
        write_atomic(to_file_table(frame, key.kind), dest)
        crash_point("after_compact_commit")
        part.scan(clean=True)
        del period

    def compact(self) -> int:
        """Merge every partition with more than one file; returns partitions compacted."""
        done = 0
        with self._writer():
            self.sync()
            for key, periods in list(self._parts.items()):
                for period, part in periods.items():
                    part.scan(clean=True)
                    if len(part.files) > 1:
                        self._compact(key, period, part)
                        done += 1
            if done:
                self._generation += 1
                self._touch_epoch()
        return done

    def _bump(self, key: SeriesKey) -> None:
        vkey = (key.kind, key.venue, key.symbol)
        self._versions[vkey] = self._versions.get(vkey, 0) + 1
        self.trace.write(key, self._versions[vkey])
        self._generation += 1
        self._resolved = {}
        self.hot.drop_prefix(f"{key.kind}|{key.venue}|{key.symbol}|")

    def _buffer_rows(self, groups: list[tuple[SeriesKey, pl.DataFrame]]) -> int:
        if not groups:
            return 0
        with self._lock:
            for key, group in groups:
                group = self._dedupe_incoming(key, group)
                old = self._buffer.get(key)
                if old is not None:
                    group = pl.concat([old, group], how="vertical").unique(
                        subset=self._keys(key.kind), keep="last", maintain_order=True
                    )
                self._buffer[key] = group
                self._bump(key)
            if self._buffer_since is None:
                self._buffer_since = time.monotonic()
            total = sum(f.height for f in self._buffer.values())
            age = time.monotonic() - self._buffer_since
        if total >= self.buffer_rows or age >= self.buffer_age_s:
            self.flush()
        return sum(g.height for _, g in groups)

    # ---------------------------------------------------------------- reads
    def _with_keys(self, frame: pl.DataFrame, key: SeriesKey) -> pl.DataFrame:
        schema = BARS if key.kind == "bars" else TRADES
        if frame.height == 0 and not frame.columns:
            return pl.DataFrame(schema=schema)
        # Built column by column (no query plan): this is on every warm read's path.
        n = frame.height
        consts = {"venue": key.venue, "symbol": key.symbol, "timeframe": key.timeframe}
        cols = [
            pl.Series(name, [consts[name]], dtype=pl.String).new_from_index(0, n)
            if name in consts
            else frame.get_column(name)
            for name in schema.names()
        ]
        return pl.DataFrame(cols)

    def series(self, kind: str = "bars") -> list[SeriesKey]:
        keys = {
            k
            for k, p in list(self._parts.items())
            if k.kind == kind and any(x.files for x in list(p.values()))
        }
        keys |= {k for k in self._buffer if k.kind == kind}
        return sorted(keys, key=lambda k: (k.venue, k.symbol, TIMEFRAMES.get(k.timeframe, 0)))

    def _resolve(
        self, kind: str, symbol: str, venue: str | None, timeframe: str
    ) -> SeriesKey | None:
        memo = (kind, symbol, venue, timeframe)
        if memo in self._resolved:
            return self._resolved[memo]
        found = self._find(kind, symbol, venue, timeframe)
        self._resolved[memo] = found
        return found

    def _find(self, kind: str, symbol: str, venue: str | None, timeframe: str) -> SeriesKey | None:
        cands = [k for k in self.series(kind) if k.symbol == symbol and venue in (None, k.venue)]
        if not cands:
            return None
        venues = sorted({k.venue for k in cands})
        if len(venues) > 1:
            raise InvalidInput(
                f"{symbol} is stored for venues {', '.join(venues)}; pass venue= to choose one"
            )
        if kind == "trades":
            return cands[0]
        want = TIMEFRAMES[timeframe]
        usable = [k for k in cands if want % TIMEFRAMES[k.timeframe] == 0]
        if not usable:
            have = ", ".join(k.timeframe for k in cands)
            raise InvalidInput(
                f"{symbol} on {venues[0]} is stored at {have}; {timeframe} cannot be built "
                "from it (ask for that timeframe or a coarser multiple)"
            )
        return min(usable, key=lambda k: TIMEFRAMES[k.timeframe])

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
        self.sync()
        if timeframe not in TIMEFRAMES:
            raise InvalidInput(
                f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}"
            )
        lo, hi = to_us(start, "start"), to_us(end, "end")
        if lo is not None and hi is not None and hi <= lo:
            raise InvalidInput("end must be after start")
        span = tail_rows(last) if last is not None else None
        key = self._resolve("bars", symbol, venue, timeframe)
        if key is None:
            return pl.DataFrame(schema=BARS)
        version = self._versions.get(("bars", key.venue, key.symbol), 0)
        ckey = f"bars|{key.venue}|{key.symbol}|{timeframe}|{lo}|{hi}|{span}|{version}"
        if cache:
            hit = self.hot.get(ckey)
            if hit is not None:
                self.counters["hot"].record(time.perf_counter_ns() - t0, True)
                self.trace.read(key, timeframe, lo, hi, version, hit, True, span)
                return hit if last is None else hit.tail(last)
        if span is None:
            frame = self._read_range(key, timeframe, lo, hi)
        else:
            frame = self._read_tail(key, timeframe, lo, hi, span)
        if cache:
            self.hot.put(ckey, frame)
            self.counters["hot"].record(0, False, timed=False)
            self.trace.read(key, timeframe, lo, hi, version, frame, False, span)
        return frame if last is None else frame.tail(last)

    def _read_range(
        self, key: SeriesKey, timeframe: str, lo: int | None, hi: int | None
    ) -> pl.DataFrame:
        if timeframe != key.timeframe and lo is not None:
            step = TIMEFRAMES[timeframe] * 1_000_000
            lo = lo - lo % step
        frame = self._read_series(key, lo, hi)
        return frame if timeframe == key.timeframe else resample(frame, timeframe)

    def _read_tail(
        self, key: SeriesKey, timeframe: str, lo: int | None, hi: int | None, rows: int
    ) -> pl.DataFrame:
        """The newest `rows` bars in [lo, hi): only the newest files that can hold them."""
        ratio = TIMEFRAMES[timeframe] // TIMEFRAMES[key.timeframe]
        need = rows * ratio  # stored bars behind `rows` bars at `timeframe` (at most)
        files = sorted(
            (
                f
                for part in list(self._parts.get(key, {}).values())
                for f in part.files
                if (hi is None or f.ts_min < hi) and (lo is None or f.ts_max >= lo)
            ),
            key=lambda f: f.ts_max,
            reverse=True,
        )
        buffered = self._buffer.get(key)
        have = buffered.height if buffered is not None else 0
        start = lo
        for i, f in enumerate(files):
            have += f.rows
            if have >= need:
                # Older files may still hold rows newer than this one's first bar.
                floor = min(g.ts_min for g in files[: i + 1])
                start = floor if lo is None else max(lo, floor)
                break
        frame = self._read_range(key, timeframe, start, hi)
        if frame.height < rows and start != lo:
            # Upserts made the files overlap: fewer distinct bars than rows counted.
            frame = self._read_range(key, timeframe, lo, hi)
        return frame.tail(rows)

    def get_trades(
        self, symbol: str, start: object = None, end: object = None, venue: str | None = None
    ) -> pl.DataFrame:
        self.sync()
        lo, hi = to_us(start, "start"), to_us(end, "end")
        key = self._resolve("trades", symbol, venue, "1m")
        if key is None:
            return pl.DataFrame(schema=TRADES)
        return self._read_series(key, lo, hi)

    def _read_series(self, key: SeriesKey, lo: int | None, hi: int | None) -> pl.DataFrame:
        t0 = time.perf_counter_ns()
        schema = BARS if key.kind == "bars" else TRADES
        for attempt in range(3):
            files: list[DataFile] = []
            for part in list(self._parts.get(key, {}).values()):
                files.extend(part.files)
            try:
                raw = read_files(tuple(files), lo, hi)
                break
            except (FileNotFoundError, pl.exceptions.ComputeError, OSError):
                # A compaction removed a file under us: re-list and retry.
                if attempt == 2:
                    raise
                with self._lock:
                    for part in self._parts.get(key, {}).values():
                        part.scan(clean=False)
        frame = self._with_keys(raw, key) if raw.columns else pl.DataFrame(schema=schema)
        buffered = self._buffer.get(key)
        if buffered is not None and buffered.height:
            keep = buffered
            if lo is not None:
                keep = keep.filter(pl.col("ts") >= pl.lit(lo).cast(TS))
            if hi is not None:
                keep = keep.filter(pl.col("ts") < pl.lit(hi).cast(TS))
            if keep.height:
                keys = self._keys(key.kind)
                frame = pl.concat(
                    [
                        frame.join(keep.select(keys), on=keys, how="anti"),
                        keep.select(frame.columns),
                    ],
                    how="vertical",
                )
        if (len(files) > 1 or buffered is not None) and not frame["ts"].is_sorted():
            frame = frame.sort("ts", maintain_order=True)
        self.counters["warm"].record(time.perf_counter_ns() - t0, frame.height > 0)
        return frame if frame.schema == schema else frame.cast(schema)

    # ---------------------------------------------------------- day rollups
    def daily(
        self,
        symbols: list[str] | None = None,
        start: object = None,
        end: object = None,
        venue: str | None = None,
    ) -> pl.DataFrame:
        """Daily OHLC, volume and VWAP per series (from the rollups), finest timeframe only."""
        t0 = time.perf_counter_ns()
        self.sync()
        table = self.rollups.table
        filters: list[pl.Expr] = []
        if symbols is not None:
            filters.append(pl.col("symbol").is_in(symbols))
        if venue is not None:
            filters.append(pl.col("venue") == venue)
        lo, hi = to_us(start, "start"), to_us(end, "end")
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
        out = out.drop("pv", "first_ts", "last_ts")
        self.counters["rollup"].record(time.perf_counter_ns() - t0, out.height > 0)
        return out

    # ------------------------------------------------------ facts for pages
    def coverage(self) -> pl.DataFrame:
        """One row per stored series: kind, venue, symbol, timeframe, first, last, rows,
        buffered, files, bytes."""
        self.sync()
        rows: list[dict[str, Any]] = []
        for key in self.series("bars") + self.series("trades"):
            files = [f for p in list(self._parts.get(key, {}).values()) for f in p.files]
            buffered = self._buffer.get(key)
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
        schema = {
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
        out = pl.DataFrame(rows, schema=schema)
        return out.with_columns(pl.col("first").cast(TS), pl.col("last").cast(TS))

    def warm_files(self, kind: str) -> list[tuple[SeriesKey, DataFile]]:
        """Every visible warm file of `kind` (for the analytics tier)."""
        return [
            (k, f)
            for k, periods in list(self._parts.items())
            if k.kind == kind
            for p in periods.values()
            for f in p.files
        ]

    def buffered(self, kind: str) -> pl.DataFrame:
        frames = [f for k, f in list(self._buffer.items()) if k.kind == kind]
        schema = BARS if kind == "bars" else TRADES
        return pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=schema)

    @property
    def generation(self) -> int:
        """Bumped by every write and compaction (the analytics tier rebuilds its views)."""
        return self._generation

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per tier: hits, misses, hit rate, bytes, entries and latency percentiles (µs)."""
        hot = self.hot.stats()
        out: dict[str, dict[str, Any]] = {}
        out["hot"] = {
            **self.counters["hot"].summary(),
            "bytes": hot["bytes"],
            "capacity_bytes": hot["capacity"],
            "entries": hot["entries"],
            "evictions": hot["evictions"],
            "policy": self.hot.cache.policy,
        }
        files = [
            f
            for periods in list(self._parts.values())
            for p in list(periods.values())
            for f in p.files
        ]
        out["warm"] = {
            **self.counters["warm"].summary(),
            "bytes": sum(f.size for f in files),
            "files": len(files),
            "rows": sum(f.rows for f in files),
            "buffered_rows": sum(f.height for f in list(self._buffer.values())),
        }
        out["rollup"] = {
            **self.counters["rollup"].summary(),
            "bytes": int(self.rollups.table.estimated_size()),
            "rows": self.rollups.table.height,
        }
        out["analytics"] = {**self.counters["analytics"].summary(), "bytes": None}
        return out

    def close(self) -> None:
        """Flush the buffer and stop the flusher; safe to call twice."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=10)
            self._flusher = None
        if self._buffer:
            self.flush()
        with self._lock:
            self.rollups.save()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

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
