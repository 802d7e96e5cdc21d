"""Recorded L2 books in the warm tier: the changes and periodic snapshots of each live book,
and replay of them through the Rust book kernel.

Layout (hive-style like bars and trades; one partition per UTC day):

    <root>/book_deltas/venue=<v>/symbol=<s>/date=<YYYY-MM-DD>/<file>.parquet
    <root>/book_snapshots/venue=<v>/symbol=<s>/date=<YYYY-MM-DD>/<file>.parquet

Deltas hold (ts, seq, side, price, size): one row per level change, size 0 removes the level,
`seq` strictly increasing per book across restarts (core.ingest.live_book). Snapshots hold
one row per level, all rows of a snapshot sharing its ts and seq (the seq of the last change
before it). Files follow the warm tier's rule (temp file, fsync, rename, fsync of the
directory; `c-<lo>-<hi>` compactions replace `d-<seq>` files), so what `flush()`
acknowledged survives SIGKILL and a reader never sees half a file.

Replay (`book_at`, `features`): the last snapshot at or before the start, then the changes
after it, from the files plus what is still buffered, handed to the kernel as columns.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from core.data.warm import (
    Partition,
    check_name,
    crash_point,
    decode,
    encode,
    make_dirs,
    write_atomic,
)
from core.errors import InvalidInput
from core.native import ext

BID, ASK = 0, 1
KINDS = ("book_deltas", "book_snapshots")
SCHEMA = pa.schema(
    [
        ("ts", pa.timestamp("us", tz="UTC")),
        ("seq", pa.uint64()),
        ("side", pa.uint8()),
        ("price", pa.float64()),
        ("size", pa.float64()),
    ]
)
COMPACT_AFTER = 64
"""A day partition with more files than this is merged into one."""
NEAR_US = 15 * 60_000_000
"""Replay first looks for its snapshot this far before the start (3 snapshot intervals)."""
LOOKBACK_DAYS = 2
"""How far back a replay looks for the snapshot it starts from."""
DAY_US = 86_400_000_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
FEATURE_BANDS = (10.0, 50.0)
EVERY = {"100ms": 100_000, "250ms": 250_000, "500ms": 500_000, "1s": 1_000_000, "5s": 5_000_000}
EVERY.update({"10s": 10_000_000, "1m": 60_000_000})


@dataclass(frozen=True, slots=True)
class BookEvent:
    """What one update changed: `snapshot` (all levels) or deltas, as columns."""

    ts_us: int
    snapshot: bool
    seq: list[int]
    """Per row for deltas; for a snapshot one value, the sequence it was taken at."""
    side: list[int]
    price: list[float]
    size: list[float]


@dataclass(frozen=True, slots=True)
class Book:
    """A book at one instant: bids best (highest) first, asks best (lowest) first."""

    venue: str
    symbol: str
    ts: dt.datetime
    seq: int
    bids: pl.DataFrame
    """columns price, size"""
    asks: pl.DataFrame

    @property
    def mid(self) -> float | None:
        if self.bids.height == 0 or self.asks.height == 0:
            return None
        return (float(self.bids["price"][0]) + float(self.asks["price"][0])) / 2


def _us(value: object, what: str) -> int:
    if isinstance(value, dt.datetime):
        v = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return (v - EPOCH) // dt.timedelta(microseconds=1)  # exact, no float
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise InvalidInput(f"{what} must be a datetime or epoch microseconds")


def _ts(us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=us)


def _day(ts_us: int) -> str:
    return dt.datetime.fromtimestamp(ts_us / 1e6, dt.UTC).strftime("%Y-%m-%d")


class BookStore:
    """Buffer, write, compact and replay recorded books under `root` (the market dir)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()  # the buffer
        self._write = threading.Lock()  # one flush at a time
        self._pending: dict[tuple[str, str], list[BookEvent]] = {}
        self._parts: dict[Path, Partition] = {}
        self._ranges: dict[Path, list[tuple[int, int]]] = {}
        self.rows_written = 0

    # --- write -------------------------------------------------------------------------------
    def buffer(self, venue: str, symbol: str, events: Iterable[BookEvent]) -> None:
        key = (check_name(venue, "venue"), check_name(symbol, "symbol"))
        with self._lock:
            self._pending.setdefault(key, []).extend(events)

    def buffered_rows(self) -> int:
        with self._lock:
            return sum(len(e.side) for events in self._pending.values() for e in events)

    def flush(self) -> int:
        """Write what is buffered; on failure put it back and raise. Returns rows written."""
        with self._write:
            with self._lock:
                pending, self._pending = self._pending, {}
            written = 0
            try:
                for (venue, symbol), events in list(pending.items()):
                    written += self._write_book(venue, symbol, events)
                    del pending[(venue, symbol)]
            except BaseException:
                with self._lock:
                    for key, events in pending.items():
                        self._pending[key] = events + self._pending.get(key, [])
                raise
            self.rows_written += written
            return written

    def _write_book(self, venue: str, symbol: str, events: list[BookEvent]) -> int:
        written = 0
        for kind, chosen in (
            ("book_deltas", [e for e in events if not e.snapshot]),
            ("book_snapshots", [e for e in events if e.snapshot]),
        ):
            table = _table(chosen)
            if table is None:
                continue
            days = pl.DataFrame(table).with_columns(
                pl.col("ts").dt.strftime("%Y-%m-%d").alias("date")
            )
            for (date,), group in days.group_by("date", maintain_order=True):
                part = self._partition(kind, venue, symbol, str(date))
                rows = group.drop("date").to_arrow().cast(SCHEMA)
                part.add(rows, part.path / f"d-{part.next_seq:012d}.parquet")
                written += rows.num_rows
                part.scan(clean=False)
                if len(part.files) > COMPACT_AFTER:
                    self._compact(part)
        return written

    def _partition(self, kind: str, venue: str, symbol: str, date: str) -> Partition:
        path = self.root / kind / f"venue={encode(venue)}" / f"symbol={encode(symbol)}"
        path = path / f"date={date}"
        part = self._parts.get(path)
        if part is None:
            make_dirs(path)
            part = self._parts[path] = Partition(path)
            part.scan(clean=True)
        return part

    def _compact(self, part: Partition) -> None:
        files = part.files
        frame = pl.concat([pl.read_parquet(f.path) for f in files]).sort("seq")
        dest = part.path / f"c-{files[0].lo:012d}-{files[-1].hi:012d}.parquet"
        write_atomic(frame.to_arrow().cast(SCHEMA), dest)
        crash_point("after_compact_commit")
        part.scan(clean=True)  # deletes the files the compaction covers

    # --- read --------------------------------------------------------------------------------
    def _files(self, kind: str, venue: str, symbol: str, days: list[str]) -> list[Path]:
        out: list[Path] = []
        base = self.root / kind / f"venue={encode(venue)}" / f"symbol={encode(symbol)}"
        for day in days:
            path = base / f"date={day}"
            if not path.is_dir():
                continue
            part = self._parts.get(path) or Partition(path)
            out.extend(f.path for f in part.scan(clean=False))
        return out

    def _read(
        self, kind: str, venue: str, symbol: str, days: list[str], lo_us: int | None, hi_us: int
    ) -> Cols:
        """Rows of `kind` stamped in [lo, hi] as numpy columns, from the files and the
        buffer. Only the row groups whose time range meets the window are read."""
        lo = lo_us if lo_us is not None else -(2**63)
        for attempt in range(3):
            try:
                tables = [
                    pq.ParquetFile(path).read_row_groups(picked)
                    for path in self._files(kind, venue, symbol, days)
                    if (picked := self._groups_between(path, lo, hi_us))
                ]
                break
            except FileNotFoundError:  # a compaction replaced a file we listed: list again
                if attempt == 2:
                    raise
        with self._lock:
            events = list(self._pending.get((venue, symbol), []))
        buffered = _table([e for e in events if e.snapshot == (kind == "book_snapshots")])
        if buffered is not None:
            tables.append(buffered)
        cols = _columns(pa.concat_tables(tables) if tables else SCHEMA.empty_table())
        keep = (cols["ts"] >= lo) & (cols["ts"] <= hi_us)
        return {k: v[keep] for k, v in cols.items()}

    def _groups_between(self, path: Path, lo_us: int, hi_us: int) -> list[int]:
        """The row groups of `path` whose time range meets [lo, hi] (files never change
        once written: their ranges are read from the footer once)."""
        ranges = self._ranges.get(path)
        if ranges is None:
            meta = pq.read_metadata(path)
            col = meta.schema.to_arrow_schema().get_field_index("ts")
            ranges = []
            for i in range(meta.num_row_groups):
                st = meta.row_group(i).column(col).statistics
                if st is None or not st.has_min_max:
                    ranges.append((-(2**63), 2**63 - 1))  # unknown: always read
                else:
                    ranges.append((_us(st.min, "ts"), _us(st.max, "ts")))
            if len(self._ranges) > 4096:
                self._ranges.clear()
            self._ranges[path] = ranges
        return [i for i, (a, b) in enumerate(ranges) if b >= lo_us and a <= hi_us]

    def recording(self, venue: str, symbol: str, start_us: int, end_us: int) -> dict[str, Any]:
        """The kernel's columns for replaying [start, end]: from the last snapshot at or
        before start (looked for up to LOOKBACK_DAYS back) to the changes up to end."""
        day0 = start_us - start_us % DAY_US
        back = [_day(day0 - i * DAY_US) for i in range(LOOKBACK_DAYS, -1, -1)]
        ahead = [_day(t) for t in range(day0, end_us + 1, DAY_US)]
        days = list(dict.fromkeys(back + ahead))
        # snapshots come every few minutes: look just before start first, then further back
        for lo in (start_us - NEAR_US, None):
            snaps = self._read("book_snapshots", venue, symbol, days, lo, end_us)
            before = snaps["ts"] <= start_us
            if before.any():
                break
        if not before.any():
            raise InvalidInput(
                f"no recorded book of {symbol} on {venue} at or before "
                f"{dt.datetime.fromtimestamp(start_us / 1e6, dt.UTC):%Y-%m-%d %H:%M:%S} UTC"
            )
        first_seq = snaps["seq"][before].max()
        first_ts = int(snaps["ts"][before & (snaps["seq"] == first_seq)].max())
        keep = snaps["seq"] >= first_seq
        snaps = {k: v[keep] for k, v in snaps.items()}
        order = np.lexsort((snaps["ts"], snaps["seq"]))  # by seq, then ts
        snaps = {k: v[order] for k, v in snaps.items()}
        # changes after a snapshot are stamped at or after it (a book never goes back in time)
        deltas = self._read("book_deltas", venue, symbol, days, first_ts, end_us)
        after = deltas["seq"] > first_seq
        deltas = {k: v[after] for k, v in deltas.items()}
        # by seq; a change written twice (a retried flush) counts once
        _, first = np.unique(deltas["seq"], return_index=True)
        deltas = {k: v[first] for k, v in deltas.items()}
        n = len(snaps["seq"])
        new = np.ones(n, dtype=bool)
        new[1:] = (snaps["seq"][1:] != snaps["seq"][:-1]) | (snaps["ts"][1:] != snaps["ts"][:-1])
        heads = np.flatnonzero(new)
        return {
            "snap_ts": snaps["ts"][heads],
            "snap_seq": snaps["seq"][heads],
            "snap_offsets": np.append(heads, n).astype(np.uint64),
            "snap_side": snaps["side"],
            "snap_price": snaps["price"],
            "snap_size": snaps["size"],
            "delta_ts": deltas["ts"],
            "delta_seq": deltas["seq"],
            "delta_side": deltas["side"],
            "delta_price": deltas["price"],
            "delta_size": deltas["size"],
        }

    def book_at(self, venue: str, symbol: str, ts: object, depth: int = 50) -> Book:
        t = _us(ts, "ts")
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 5000:
            raise InvalidInput("depth must be an int in 1..5000")
        rec = self.recording(venue, symbol, t, t)
        try:
            (bp, bs), (ap, as_), seq = ext.book_at(rec, t, depth)
        except ValueError as exc:
            raise InvalidInput(f"the recorded book cannot be replayed: {exc}") from exc
        return Book(
            venue,
            symbol,
            dt.datetime.fromtimestamp(t / 1e6, dt.UTC),
            int(seq),
            pl.DataFrame({"price": bp, "size": bs}),
            pl.DataFrame({"price": ap, "size": as_}),
        )

    def features(
        self, venue: str, symbol: str, start: object, end: object, every: str = "1s"
    ) -> pl.DataFrame:
        lo, hi = _us(start, "start"), _us(end, "end")
        if hi <= lo:
            raise InvalidInput("end must be after start")
        if every not in EVERY:
            raise InvalidInput(f"every must be one of {', '.join(EVERY)}")
        step = EVERY[every]
        rec = self.recording(venue, symbol, lo, hi)
        try:
            f = ext.book_features(rec, lo, hi, step, list(FEATURE_BANDS))
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        cols: dict[str, Any] = {
            "ts": pl.Series("ts", f["ts"]).cast(pl.Datetime("us", "UTC")),
            "mid": f["mid"],
            "spread": f["spread"],
            "microprice": f["microprice"],
        }
        for i, band in enumerate(FEATURE_BANDS):
            cols[f"depth_bid_{band:g}bps"] = f["depth_bid"][i]
            cols[f"depth_ask_{band:g}bps"] = f["depth_ask"][i]
        cols["imbalance"] = f["imbalance"]
        cols["ofi"] = f["ofi"]
        return pl.DataFrame(cols)

    def files(self, kind: str) -> list[Path]:
        """Every visible file of `kind` (the SQL views read them)."""
        if kind not in KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(KINDS)}")
        base = self.root / kind
        out: list[Path] = []
        if not base.is_dir():
            return out
        for path in sorted(base.glob("venue=*/symbol=*/date=*")):
            part = self._parts.get(path) or Partition(path)
            out.extend(f.path for f in part.scan(clean=False))
        return out

    def coverage(self) -> pl.DataFrame:
        """One row per recorded book: venue, symbol, first (the earliest snapshot, where a
        replay can start) and last (the latest change or snapshot), written or buffered."""
        spans: dict[tuple[str, str], list[int]] = {}
        for kind in KINDS:
            base = self.root / kind
            for path in sorted(base.glob("venue=*/symbol=*")) if base.is_dir() else []:
                key = (decode(path.parent.name[6:]), decode(path.name[7:]))
                days = sorted(p for p in path.glob("date=*") if p.is_dir())
                # the earliest snapshot is in the first day; the latest row in the last
                ends = [days[0], days[-1]] if kind == "book_snapshots" else days[-1:]
                for day in dict.fromkeys(ends):
                    part = self._parts.get(day) or Partition(day)
                    files = [f.path for f in part.scan(clean=False)]
                    if files:
                        t = pl.scan_parquet(files).select(
                            pl.col("ts").dt.epoch("us").min().alias("lo"),
                            pl.col("ts").dt.epoch("us").max().alias("hi"),
                        )
                        lo, hi = t.collect().row(0)
                        _widen(spans, key, lo if kind == "book_snapshots" else None, hi)
        with self._lock:
            pending = [(k, list(v)) for k, v in self._pending.items()]
        for key, events in pending:
            for e in events:
                _widen(spans, key, e.ts_us if e.snapshot else None, e.ts_us)
        rows = [
            (venue, symbol, lo, hi) for (venue, symbol), (lo, hi) in sorted(spans.items()) if lo
        ]
        frame = pl.DataFrame(
            rows,
            schema={"venue": pl.String, "symbol": pl.String, "first": pl.Int64, "last": pl.Int64},
            orient="row",
        )
        return frame.with_columns(pl.col("first", "last").cast(pl.Datetime("us", "UTC")))

    def buffered(self, kind: str) -> pa.Table:
        """Rows of `kind` not yet written, with venue and symbol columns."""
        with self._lock:
            items = [(k, list(v)) for k, v in self._pending.items()]
        frames = []
        for (venue, symbol), events in items:
            table = _table([e for e in events if e.snapshot == (kind == "book_snapshots")])
            if table is not None:
                frame = pl.DataFrame(table)
                frames.append(frame.with_columns(venue=pl.lit(venue), symbol=pl.lit(symbol)))
        if not frames:
            empty = pl.DataFrame(SCHEMA.empty_table())
            return empty.with_columns(venue=pl.lit(""), symbol=pl.lit("")).clear().to_arrow()
        return pl.concat(frames).to_arrow()


def _widen(
    spans: dict[tuple[str, str], list[int]],
    key: tuple[str, str],
    first: int | None,
    last: int | None,
) -> None:
    """Stretch the (first snapshot, last row) span of `key`; 0 means not seen yet."""
    span = spans.setdefault(key, [0, 0])
    if first is not None and (span[0] == 0 or first < span[0]):
        span[0] = first
    if last is not None and last > span[1]:
        span[1] = last


Cols = dict[str, np.ndarray]


def _columns(table: pa.Table) -> Cols:
    """A book table as contiguous numpy columns (ts as int64 µs)."""
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    return {
        "ts": np.ascontiguousarray(ts, dtype=np.int64),
        "seq": np.ascontiguousarray(table.column("seq").to_numpy(), dtype=np.uint64),
        "side": np.ascontiguousarray(table.column("side").to_numpy(), dtype=np.uint8),
        "price": np.ascontiguousarray(table.column("price").to_numpy(), dtype=np.float64),
        "size": np.ascontiguousarray(table.column("size").to_numpy(), dtype=np.float64),
    }


def _table(events: list[BookEvent]) -> pa.Table | None:
    """The rows of `events` as one table (a snapshot's rows all take its seq)."""
    if not events:
        return None
    ts: list[int] = []
    seq: list[int] = []
    side: list[int] = []
    price: list[float] = []
    size: list[float] = []
    for e in events:
        n = len(e.side)
        ts.extend([e.ts_us] * n)
        seq.extend(e.seq * n if e.snapshot else e.seq)
        side.extend(e.side)
        price.extend(e.price)
        size.extend(e.size)
    if not side:
        return None
    return pa.table(
        [
            pa.array(ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            pa.array(seq, pa.uint64()),
            pa.array(side, pa.uint8()),
            pa.array(price, pa.float64()),
            pa.array(size, pa.float64()),
        ],
        schema=SCHEMA,
    )
