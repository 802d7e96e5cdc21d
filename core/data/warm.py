"""Warm tier: Parquet files, one directory per series and period, written atomically.

Layout (hive-style, so DuckDB and pyarrow read the keys from the path; values are
percent-encoded, so "BTC/USDT" is stored as "BTC%2FUSDT"):

    <root>/bars/venue=<v>/symbol=<s>/timeframe=<tf>/period=<P>/<file>.parquet
    <root>/trades/venue=<v>/symbol=<s>/period=<YYYY-MM>/<file>.parquet

The period is the month ("YYYY-MM") for trades and bars finer than 1h, the year
("YYYY") for hourly and daily bars. Why not one directory per day: a day of
1-minute bars is 1,440 rows (about 70 KB), so day files would make a symbol-year
365 opens; a month file (43,200 rows) is read whole in about 2 ms and a
symbol-year is 12 files. Daily bars per month would be 21-row files.

Bar files are written by `core.data.barfile` (plain, uncompressed Parquet with each
column's values 64-byte aligned) so a read maps them without decoding: a symbol-day is
a slice of one mapped month file, a symbol-year twelve mapped files, with no copy.
Files with nulls or of other shapes (trades, rollups) are written by pyarrow and read
by polars.

Files and crash safety:
- `d-<seq>.parquet` holds the rows of one write; `c-<lo>-<hi>.parquet` is a
  compaction that replaces every file of the partition with seq in [lo, hi].
- Every file is written to `.tmp-*`, fsynced, renamed into place, and the
  directory is fsynced. The rename is the commit: a reader sees the old set of
  files or the new one, never a half-written file.
- A compaction first commits its c-file, then deletes what it covers. If the
  process dies in between, the covered files are garbage: `Partition.scan`
  ignores them and the next writer deletes them. Leftover `.tmp-*` files are
  deleted too. So SIGKILL at any point leaves the store readable and no
  committed row lost.
- Invariant: no two visible files of a partition hold the same key, so reads
  concatenate without de-duplicating. A write that changes existing rows
  rewrites the partition as one c-file instead of adding a d-file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.data import barfile
from core.data.schema import TS
from core.errors import InvalidInput

BAR_VALUES = ("open", "high", "low", "close", "volume")
TRADE_VALUES = ("price", "amount", "side", "trade_id")
ROW_GROUP = 65_536
MAX_NAME = 100
MAX_ENCODED_NAME = 240

_FILE = re.compile(r"^(?:d-(\d{12})|c-(\d{12})-(\d{12}))\.parquet$")


def encode(value: str) -> str:
    return quote(value, safe="")


def decode(value: str) -> str:
    return unquote(value)


def check_name(value: str, what: str) -> str:
    """Venue, symbol and timeframe names end up in paths: keep them sane."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{what} must be a non-empty string")
    if len(value) > MAX_NAME or len(encode(value)) > MAX_ENCODED_NAME:
        # a Polymarket outcome token id is 77 digits; a path component holds 255 bytes
        raise InvalidInput(
            f"{what} {value[:20]!r}… is too long: at most {MAX_NAME} characters, fewer when "
            "it has characters such as / or %"
        )
    if any(ord(ch) < 32 for ch in value):
        raise InvalidInput(f"{what} {value!r} contains control characters")
    return value


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """mkdir -p, fsyncing each parent whose entry list changed."""
    for parent in new_dirs([path]):
        fsync_dir(parent)


def new_dirs(paths: list[Path]) -> set[Path]:
    """mkdir -p of each path; returns the parents whose entry lists changed, each once.

    The caller fsyncs them (in parallel with its file writes) before it acknowledges."""
    changed: set[Path] = set()
    for path in paths:
        missing: list[Path] = []
        p = path
        while not p.exists():
            missing.append(p)
            p = p.parent
        for d in reversed(missing):
            try:
                d.mkdir()
            except FileExistsError:
                continue  # another writer made it (and fsyncs its parent)
            changed.add(d.parent)
    return changed


def crash_point(name: str) -> None:
    """Test seam for the crash tests: SIGKILL this process at a named point."""
    if os.environ.get("HFT_STORE_CRASH_AT") == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def write_atomic(table: pa.Table, dest: Path, stats: tuple[str, ...] = ("ts",)) -> int:
    """Write `table` to `dest` via a temp file, fsync, rename and fsync of the directory."""
    _write(table, dest, stats)
    return int(table.num_rows)


def _write(table: pa.Table, dest: Path, stats: tuple[str, ...]) -> barfile.Layout | None:
    """`write_atomic`; returns the aligned layout when the file is a bar file."""
    tmp = dest.with_name(f".tmp-{uuid.uuid4().hex}.parquet")
    encoded = barfile.encode(table)  # None unless `table` is a bar file without nulls
    with tmp.open("wb") as fh:
        if encoded is not None:
            for chunk in encoded.chunks:
                fh.write(chunk)
        else:
            pq.write_table(
                table,
                fh,
                compression="none",
                use_dictionary=False,
                write_statistics=list(stats),
                row_group_size=ROW_GROUP,
            )
        fh.flush()
        os.fsync(fh.fileno())
    crash_point("before_rename")
    os.replace(tmp, dest)
    fsync_dir(dest.parent)
    crash_point("after_rename")
    return None if encoded is None else encoded.layout


@dataclass(frozen=True, slots=True)
class DataFile:
    path: Path
    lo: int
    hi: int
    rows: int
    ts_min: int
    ts_max: int
    size: int
    inode: int = 0
    layout: barfile.Layout | None = None

    @property
    def compacted(self) -> bool:
        return self.path.name.startswith("c-")


def _parse(name: str) -> tuple[int, int] | None:
    m = _FILE.match(name)
    if not m:
        return None
    if m.group(1) is not None:
        seq = int(m.group(1))
        return seq, seq
    return int(m.group(2)), int(m.group(3))


def _footer(path: Path) -> tuple[int, int, int, barfile.Layout | None]:
    """Rows, ts min/max (µs) and the aligned layout (if any) from a file's footer."""
    meta = pq.read_metadata(path)
    lo, hi = None, None
    ts_idx = meta.schema.to_arrow_schema().get_field_index("ts")
    for i in range(meta.num_row_groups):
        st = meta.row_group(i).column(ts_idx).statistics
        if st is None or not st.has_min_max:
            continue
        a, b = _us(st.min), _us(st.max)
        lo = a if lo is None else min(lo, a)
        hi = b if hi is None else max(hi, b)
    return meta.num_rows, lo or 0, hi or 0, barfile.layout(meta)


def _us(v: object) -> int:
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.UTC)
        delta = v - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(v, int):
        return v
    raise ValueError(f"unexpected ts statistic {v!r}")


class Partition:
    """One series-period directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: tuple[DataFile, ...] = ()
        self._known: dict[str, DataFile] = {}

    def scan(self, *, clean: bool) -> tuple[DataFile, ...]:
        """Re-list the directory; with `clean`, delete garbage (temp and covered files)."""
        entries: list[tuple[str, int, int]] = []
        garbage: list[Path] = []
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            names = []
        for name in names:
            if name.startswith(".tmp-"):
                garbage.append(self.path / name)
                continue
            span = _parse(name)
            if span is not None:
                entries.append((name, *span))
        compactions = [(lo, hi) for name, lo, hi in entries if name.startswith("c-")]
        visible: list[DataFile] = []
        for name, lo, hi in entries:
            covered = any(
                clo <= lo and hi <= chi and (clo, chi) != (lo, hi) for clo, chi in compactions
            )
            if covered:
                garbage.append(self.path / name)
                continue
            known = self._known.get(name)
            if known is None:
                path = self.path / name
                rows, tmin, tmax, lay = _footer(path)
                st = path.stat()
                known = DataFile(path, lo, hi, rows, tmin, tmax, st.st_size, st.st_ino, lay)
            visible.append(known)
        if clean:
            for g in garbage:
                g.unlink(missing_ok=True)
        visible.sort(key=lambda f: f.lo)
        self.files = tuple(visible)
        self._known = {f.path.name: f for f in visible}
        return self.files

    def add(self, table: pa.Table, dest: Path) -> None:
        """`write_atomic` of a new data file of this partition, noted from what was written,
        so the next scan need not read its footer back."""
        span = _parse(dest.name)
        if span is None or dest.parent != self.path:
            raise ValueError(f"{dest.name} is not a data file name of this partition")
        lay = _write(table, dest, ("ts",))
        bounds = pc.min_max(table.column("ts").cast(pa.int64()))
        lo, hi = (int(bounds[k].as_py() or 0) for k in ("min", "max"))
        st = dest.stat()
        self._known[dest.name] = DataFile(
            dest, span[0], span[1], table.num_rows, lo, hi, st.st_size, st.st_ino, lay
        )

    @property
    def next_seq(self) -> int:
        return max((f.hi for f in self.files), default=0) + 1

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def max_seq(self) -> int:
        return max((f.hi for f in self.files), default=0)


@dataclass(frozen=True, slots=True)
class SeriesKey:
    kind: str  # "bars" or "trades"
    venue: str
    symbol: str
    timeframe: str  # "" for trades

    def directory(self, root: Path) -> Path:
        d = root / self.kind / f"venue={encode(self.venue)}" / f"symbol={encode(self.symbol)}"
        if self.kind == "bars":
            d = d / f"timeframe={encode(self.timeframe)}"
        return d

    @property
    def label(self) -> str:
        tf = f"/{self.timeframe}" if self.timeframe else ""
        return f"{self.kind}:{self.venue}/{self.symbol}{tf}"


def period_of(ts_us: int, timeframe_s: int) -> str:
    """The partition period of a time: "YYYY-MM" below 1h bars (and trades), else "YYYY"."""
    d = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ts_us)
    return f"{d.year:04d}" if timeframe_s >= 3600 else f"{d.year:04d}-{d.month:02d}"


def _next_period(ts_us: int, timeframe_s: int) -> int:
    d = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ts_us)
    if timeframe_s >= 3600:
        nxt = dt.datetime(d.year + 1, 1, 1, tzinfo=dt.UTC)
    else:
        nxt = dt.datetime(d.year + (d.month == 12), d.month % 12 + 1, 1, tzinfo=dt.UTC)
    delta = nxt - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000


def split_periods(frame: pl.DataFrame, timeframe_s: int) -> Iterator[tuple[str, pl.DataFrame]]:
    """Slices of a ts-sorted frame, one per partition period."""
    ts = frame["ts"].dt.epoch("us").to_numpy()
    start = 0
    while start < len(ts):
        bound = _next_period(int(ts[start]), timeframe_s)
        stop = int(np.searchsorted(ts, bound, side="left"))
        yield period_of(int(ts[start]), timeframe_s), frame.slice(start, stop - start)
        start = stop


def walk(root: Path) -> Iterator[tuple[SeriesKey, str, Path]]:
    """Every (series, period, directory) on disk."""
    for kind in ("bars", "trades"):
        base = root / kind
        if not base.is_dir():
            continue
        for vdir in sorted(base.glob("venue=*")):
            for sdir in sorted(vdir.glob("symbol=*")):
                venue = decode(vdir.name.split("=", 1)[1])
                symbol = decode(sdir.name.split("=", 1)[1])
                if kind == "bars":
                    for tdir in sorted(sdir.glob("timeframe=*")):
                        tf = decode(tdir.name.split("=", 1)[1])
                        for mdir in sorted(tdir.glob("period=*")):
                            key = SeriesKey(kind, venue, symbol, tf)
                            yield key, mdir.name.split("=", 1)[1], mdir
                else:
                    for mdir in sorted(sdir.glob("period=*")):
                        key = SeriesKey(kind, venue, symbol, "")
                        yield key, mdir.name.split("=", 1)[1], mdir


def file_schema(kind: str) -> pa.Schema:
    ts = pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False)
    if kind == "bars":
        return pa.schema([ts, *(pa.field(c, pa.float64()) for c in BAR_VALUES)])
    return pa.schema(
        [
            ts,
            pa.field("price", pa.float64()),
            pa.field("amount", pa.float64()),
            pa.field("side", pa.string()),
            pa.field("trade_id", pa.string()),
        ]
    )


def to_file_table(frame: pl.DataFrame, kind: str) -> pa.Table:
    """Value columns only (the keys live in the path), sorted by time."""
    cols = BAR_VALUES if kind == "bars" else TRADE_VALUES
    # Columns picked eagerly: converting the key strings to Arrow would cost more than
    # the whole write.
    out = pl.DataFrame([frame.get_column(c) for c in ("ts", *cols)])
    if not out["ts"].is_sorted():
        out = out.sort("ts")
    return out.to_arrow().cast(file_schema(kind))


def read_files(
    files: tuple[DataFile, ...], start_us: int | None, end_us: int | None
) -> pl.DataFrame:
    """Rows of `files` with start <= ts < end (the files are disjoint by key)."""
    chosen = [
        f
        for f in files
        if (start_us is None or f.ts_max >= start_us) and (end_us is None or f.ts_min < end_us)
    ]
    if not chosen:
        return pl.DataFrame()
    if all(f.layout is not None for f in chosen):
        tables = [barfile.map_bars(_mapped(f), f.layout, start_us, end_us) for f in chosen]  # type: ignore[arg-type]
        frame = pl.from_arrow(pa.concat_tables(tables), rechunk=False)
        assert isinstance(frame, pl.DataFrame)
        # Each file is sorted; so is their concatenation when the files do not overlap.
        if all(a.ts_max < b.ts_min for a, b in pairwise(chosen)):
            frame.replace_column(0, frame.get_column("ts").set_sorted())
        return frame
    paths = [str(f.path) for f in chosen]
    # Whole files (several are read in parallel), then the ends trimmed: cheaper than
    # planning a filtered scan for the small files of this layout.
    frame = pl.read_parquet(paths, hive_partitioning=False)
    return _trim(frame, start_us, end_us)


_MAPS: OrderedDict[DataFile, pa.Buffer] = OrderedDict()
_MAPS_LOCK = threading.Lock()
MAPS_KEPT = 4096


def _mapped(f: DataFile) -> pa.Buffer:
    """The file mapped read-only (kept for reuse; a mapping holds no file descriptor, and
    outlives the file's deletion for as long as a frame uses it)."""
    with _MAPS_LOCK:
        buf = _MAPS.get(f)
        if buf is not None:
            _MAPS.move_to_end(f)
            return buf
    mf = pa.memory_map(str(f.path), "r")
    try:
        buf = mf.read_buffer()
    finally:
        mf.close()
    if buf.size != f.size:
        raise OSError(f"{f.path} changed size under the reader")
    with _MAPS_LOCK:
        _MAPS[f] = buf
        while len(_MAPS) > MAPS_KEPT:
            _MAPS.popitem(last=False)
    return buf


def _trim(frame: pl.DataFrame, start_us: int | None, end_us: int | None) -> pl.DataFrame:
    """Rows with start <= ts < end; each file is sorted by ts, so this is a slice when the
    frame is sorted, and a filter otherwise."""
    if start_us is None and end_us is None:
        return frame
    ts = frame["ts"]
    if ts.is_sorted():
        ints = ts.dt.epoch("us")
        a = 0 if start_us is None else int(ints.search_sorted(start_us, side="left"))
        b = frame.height if end_us is None else int(ints.search_sorted(end_us, side="left"))
        return frame.slice(a, max(0, b - a))
    mask = pl.lit(True)
    if start_us is not None:
        mask = mask & (pl.col("ts") >= pl.lit(start_us).cast(TS))
    if end_us is not None:
        mask = mask & (pl.col("ts") < pl.lit(end_us).cast(TS))
    return frame.filter(mask)
