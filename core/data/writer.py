"""The write path of the market store: validation, durable writes, compaction, rollups.

Nothing of a frame is written unless all of it is valid (`prepare`). A write splits the
rows by series and partition period; rows with new keys go to a new d-file per partition
(written in parallel, each atomic), rows that change stored values rewrite their partition
into one c-file; a partition with `compact_after` files is compacted. Then the series'
version is bumped and other processes are told through the epoch file. The daily rollups
follow every commit; their file is a cache (rebuilt at open where it lags the data).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl

from core.data import rollup
from core.data.epochs import Epochs
from core.data.reader import with_keys
from core.data.schema import TIMEFRAMES, check_values, conform, row_keys
from core.data.versions import SeriesVersions
from core.data.warm import (
    BAR_VALUES,
    TRADE_VALUES,
    Partition,
    SeriesKey,
    check_name,
    crash_point,
    fsync_dir,
    make_dirs,
    new_dirs,
    read_files,
    split_periods,
    to_file_table,
    walk,
    write_atomic,
)
from core.errors import InvalidInput

Parts = dict[SeriesKey, dict[str, Partition]]
"""The visible partitions of every series, by period."""


def prepare(df: pl.DataFrame, schema: pl.Schema, what: str) -> list[tuple[SeriesKey, pl.DataFrame]]:
    """Validate everything before anything is written; split by series."""
    if not isinstance(df, pl.DataFrame):
        raise InvalidInput(f"{what} must be a polars DataFrame, got {type(df).__name__}")
    frame = conform(df, schema, what)
    if frame.height == 0:
        return []
    # Finite, non-negative prices and volumes; open and close within [low, high].
    check_values(frame, what)
    groups = list(split(frame, what))
    for key, _ in groups:
        check_name(key.venue, "venue")
        check_name(key.symbol, "symbol")
        if what == "bars" and key.timeframe not in TIMEFRAMES:
            raise InvalidInput(
                f"unknown timeframe {key.timeframe!r}; use one of {', '.join(TIMEFRAMES)}"
            )
    return groups


def split(frame: pl.DataFrame, kind: str) -> Iterator[tuple[SeriesKey, pl.DataFrame]]:
    by = ["venue", "symbol", "timeframe"] if kind == "bars" else ["venue", "symbol"]
    cols = [frame.get_column(c) for c in by]
    if all(c.null_count() == 0 and c.min() == c.max() for c in cols):
        # The common case, one series per call: no group_by over strings.
        firsts = [c[0] for c in cols]
        tf = str(firsts[2]) if kind == "bars" else ""
        yield SeriesKey(kind, str(firsts[0]), str(firsts[1]), tf), frame
        return
    for values, group in frame.group_by(by, maintain_order=True):
        tf = str(values[2]) if kind == "bars" else ""
        yield SeriesKey(kind, str(values[0]), str(values[1]), tf), group


def dedupe(key: SeriesKey, group: pl.DataFrame) -> pl.DataFrame:
    """One row per key, the last one winning; a trade without an id gets one."""
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
    return group.unique(subset=row_keys(key.kind), keep="last", maintain_order=True)


def tag(key: SeriesKey, period: str) -> str:
    """A partition's name in the rollups' seqs."""
    return f"{key.venue}\x1f{key.symbol}\x1f{key.timeframe}\x1f{period}"


class Writer:
    """Partitions and rollups of one root, and every change to them."""

    def __init__(
        self, root: Path, versions: SeriesVersions, epochs: Epochs, compact_after: int
    ) -> None:
        self.root = root
        self.versions = versions
        self.epochs = epochs
        self.compact_after = compact_after
        self.parts: Parts = {}
        self.rollups = rollup.Rollups(root)
        self._executor: ThreadPoolExecutor | None = None
        self._rollups_saved = time.monotonic()

    def open(self) -> None:
        """List the partitions (removing debris of crashed writes); fix lagging rollups."""
        for key, period, path in walk(self.root):
            part = Partition(path)
            part.scan(clean=True)
            if part.files:
                self.parts.setdefault(key, {})[period] = part
        # Rollups lagging the data (a crash between the two commits) are rebuilt.
        seen: set[str] = set()
        for key, periods in self.parts.items():
            if key.kind != "bars":
                continue
            for period, part in periods.items():
                name = tag(key, period)
                seen.add(name)
                if self.rollups.seqs.get(name) != part.max_seq:
                    self._rebuild_rollup(key, period, part)
        stale = set(self.rollups.seqs) - seen
        if stale:
            for name in stale:
                del self.rollups.seqs[name]
            self.rollups.dirty = True
        self.rollups.save()
        self.epochs.seen = self.epochs.now()

    def sync(self) -> bool:
        """Pick up commits made by other processes; one stat when nothing changed."""
        now = self.epochs.changed()
        if now is None:
            return False
        with self.epochs.lock:
            changed: set[SeriesKey] = set()
            for key, period, path in walk(self.root):
                periods = self.parts.setdefault(key, {})
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
                self.versions.bump(key)
            self.epochs.seen = now
        return bool(changed)

    def _rebuild_rollup(self, key: SeriesKey, period: str, part: Partition) -> None:
        frame = with_keys(read_files(part.files, None, None), key)
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
        self.rollups.seqs[tag(key, period)] = part.max_seq
        self.rollups.dirty = True

    def write(self, groups: list[tuple[SeriesKey, pl.DataFrame]]) -> int:
        """Write prepared groups durably; returns rows new or changed."""
        if not groups:
            return 0
        written = 0
        with self.epochs.exclusive():
            self.sync()
            for key, group in groups:
                written += self._write_series(key, group)
            self.epochs.touch(self.versions.generation)
            # The rollup file is a cache of the data (rebuilt at open where it lags),
            # so it is saved at most every few seconds, and at close.
            if time.monotonic() - self._rollups_saved > 5.0:
                self.rollups.save()
                self._rollups_saved = time.monotonic()
        return written

    def _write_series(self, key: SeriesKey, group: pl.DataFrame) -> int:
        group = dedupe(key, group)
        if not group["ts"].is_sorted():
            group = group.sort("ts", maintain_order=True)
        tf_s = TIMEFRAMES.get(key.timeframe, 60)
        base = key.directory(self.root)
        periods = self.parts.setdefault(key, {})
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
        # New directories are made first; their parents are fsynced once each, alongside
        # the file commits.
        parents = new_dirs([part.path for part, _ in appends])
        tasks = [
            partial(
                part.add,
                to_file_table(new, key.kind),
                part.path / f"d-{part.next_seq:012d}.parquet",
            )
            for part, new in appends
        ] + [partial(fsync_dir, d) for d in parents]
        done = [self._pool().submit(t) for t in tasks] if len(tasks) > 1 else []
        # The daily rollup of the new rows is computed while the files are fsynced and
        # applied once every file is committed. When every row is new (the common case) it
        # is taken from the group itself, one contiguous frame, not from its slices.
        appended = [new for _, new in appends]
        fresh = None
        if appended and key.kind == "bars":
            all_new = sum(new.height for new in appended) == group.height
            fresh = rollup.aggregate(group if all_new else pl.concat(appended))
        for task in tasks if not done else []:
            task()
        for future in done:
            future.result()
        # 3. Partitions with changed rows are rewritten; then bookkeeping.
        written = 0
        for period, part, new, changed in plans:
            if changed.height:
                make_dirs(part.path)
                self._rewrite(key, part, pl.concat([new, changed], how="vertical"))
            else:
                part.scan(clean=False)
            if key.kind == "bars":
                self.rollups.seqs[tag(key, period)] = part.max_seq
                self.rollups.dirty = True
            if len(part.files) >= self.compact_after:
                self._compact(key, part)
            written += new.height + changed.height
        if fresh is not None:
            self.rollups.add_new((key.venue, key.symbol, key.timeframe), fresh)
        self.versions.bump(key)
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
        keycols = row_keys(key.kind)
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

    def _rewrite(self, key: SeriesKey, part: Partition, upserts: pl.DataFrame) -> None:
        """Replace the partition with one c-file holding old rows updated by `upserts`."""
        seq = part.next_seq
        keycols = row_keys(key.kind)
        old = with_keys(read_files(part.files, None, None), key)
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

    def _compact(self, key: SeriesKey, part: Partition) -> None:
        if len(part.files) < 2:
            return
        frame = read_files(part.files, None, None)
        lo, hi = part.files[0].lo, max(f.hi for f in part.files)
        dest = part.path / f"c-{lo:012d}-{hi:012d}.parquet"
        write_atomic(to_file_table(frame, key.kind), dest)
        crash_point("after_compact_commit")
        part.scan(clean=True)

    def compact(self) -> int:
        """Merge every partition with more than one file; returns partitions compacted."""
        done = 0
        with self.epochs.exclusive():
            self.sync()
            for key, periods in list(self.parts.items()):
                for part in periods.values():
                    part.scan(clean=True)
                    if len(part.files) > 1:
                        self._compact(key, part)
                        done += 1
            if done:
                self.versions.bump_generation()
                self.epochs.touch(self.versions.generation)
        return done

    def close(self) -> None:
        """Save the rollups and stop the I/O threads."""
        with self.epochs.lock:
            self.rollups.save()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
