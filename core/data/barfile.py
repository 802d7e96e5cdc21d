"""Bar files: standard Parquet, laid out so a reader can map the values without decoding.

A bar partition file has one row group and six required columns (ts as INT64 timestamp µs
UTC, then open, high, low, close, volume as DOUBLE), each stored as one uncompressed PLAIN
data page whose values start on a 64-byte boundary. Any Parquet reader (DuckDB, pyarrow,
polars) reads it as usual; `map_bars` instead memory-maps the file and hands the value
bytes to Arrow as they are, with no copy and no decoding.

Why write it by hand: pyarrow cannot align pages, and an unaligned buffer must be copied
before Arrow or Polars can use it. The footer is Thrift compact protocol (parquet.thrift);
only the handful of structures a flat, required, uncompressed file needs are encoded here.
Frames with a null value, or more rows than one page can hold, go through pyarrow instead
(`encode` returns None), and `layout` returns None for any file not written by `encode`,
so callers fall back to a normal read.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

MAGIC = b"PAR1"
ALIGN = 64
MARK_KEY = "hfthot.layout"
MARK = "aligned-v1"
VALUES = ("open", "high", "low", "close", "volume")
MAX_ROWS = (2**31 - 1) // 8  # a page's size is an i32

# parquet.thrift enums
_INT64, _DOUBLE = 2, 5
_REQUIRED = 0
_PLAIN, _RLE = 0, 3
_UNCOMPRESSED = 0
_DATA_PAGE = 0
_TIMESTAMP_MICROS = 10

# Thrift compact protocol field types
_T_TRUE, _T_FALSE, _T_I16, _T_I32, _T_I64, _T_BINARY, _T_LIST, _T_STRUCT = 1, 2, 4, 5, 6, 8, 9, 12


class _Thrift:
    """Just enough of the Thrift compact protocol writer for Parquet metadata."""

    def __init__(self) -> None:
        self.out = bytearray()
        self._last = [0]

    def _varint(self, n: int) -> None:
        while True:
            b = n & 0x7F
            n >>= 7
            if n:
                self.out.append(b | 0x80)
            else:
                self.out.append(b)
                return

    def _zigzag(self, n: int) -> None:
        self._varint(((n << 1) ^ (n >> 63)) & 0xFFFF_FFFF_FFFF_FFFF)

    def _field(self, fid: int, ftype: int) -> None:
        delta = fid - self._last[-1]
        # Fields go in increasing id order with small gaps, so the short form always fits.
        if not 0 < delta <= 15:
            raise ValueError(f"field {fid} after {self._last[-1]}: write fields in order")
        self.out.append((delta << 4) | ftype)
        self._last[-1] = fid

    def i16(self, fid: int, v: int) -> None:
        self._field(fid, _T_I16)
        self._zigzag(v)

    def i32(self, fid: int, v: int) -> None:
        self._field(fid, _T_I32)
        self._zigzag(v)

    def i64(self, fid: int, v: int) -> None:
        self._field(fid, _T_I64)
        self._zigzag(v)

    def binary(self, fid: int, v: bytes) -> None:
        self._field(fid, _T_BINARY)
        self._varint(len(v))
        self.out += v

    def boolean(self, fid: int, v: bool) -> None:
        self._field(fid, _T_TRUE if v else _T_FALSE)

    def begin(self, fid: int | None = None) -> None:
        """Open a struct: a field of the current struct, or (fid None) a list element."""
        if fid is not None:
            self._field(fid, _T_STRUCT)
        self._last.append(0)

    def end(self) -> None:
        self.out.append(0)
        self._last.pop()

    def list_begin(self, fid: int, etype: int, n: int) -> None:
        self._field(fid, _T_LIST)
        if n < 15:
            self.out.append((n << 4) | etype)
        else:
            self.out.append(0xF0 | etype)
            self._varint(n)

    def list_i32(self, fid: int, values: list[int]) -> None:
        self.list_begin(fid, _T_I32, len(values))
        for v in values:
            self._zigzag(v)

    def list_binary(self, fid: int, values: list[bytes]) -> None:
        self.list_begin(fid, _T_BINARY, len(values))
        for v in values:
            self._varint(len(v))
            self.out += v


def _page_header(n: int) -> bytes:
    t = _Thrift()
    t.i32(1, _DATA_PAGE)
    t.i32(2, n * 8)  # uncompressed_page_size
    t.i32(3, n * 8)  # compressed_page_size
    t.begin(5)  # DataPageHeader
    t.i32(1, n)
    t.i32(2, _PLAIN)
    t.i32(3, _RLE)
    t.i32(4, _RLE)
    t.end()
    t.out.append(0)
    return bytes(t.out)


def _schema(t: _Thrift, names: list[str]) -> None:
    t.list_begin(2, _T_STRUCT, len(names) + 1)
    t.begin()
    t.binary(4, b"schema")
    t.i32(5, len(names))
    t.end()
    for name in names:
        t.begin()
        t.i32(1, _INT64 if name == "ts" else _DOUBLE)
        t.i32(3, _REQUIRED)
        t.binary(4, name.encode())
        if name == "ts":
            t.i32(6, _TIMESTAMP_MICROS)
            t.begin(10)  # LogicalType union
            t.begin(8)  # TIMESTAMP
            t.boolean(1, True)  # isAdjustedToUTC
            t.begin(2)  # TimeUnit union
            t.begin(2)  # MICROS
            t.end()
            t.end()
            t.end()
            t.end()
        t.end()


def _footer(
    names: list[str], n: int, pages: list[tuple[int, int]], ts_range: tuple[int, int]
) -> bytes:
    t = _Thrift()
    t.i32(1, 2)  # version
    _schema(t, names)
    t.i64(3, n)
    t.list_begin(4, _T_STRUCT, 1)
    t.begin()  # RowGroup
    t.list_begin(1, _T_STRUCT, len(names))
    for name, (offset, size) in zip(names, pages, strict=True):
        t.begin()  # ColumnChunk
        t.i64(2, 0)  # file_offset: deprecated, 0 when the metadata is only in the footer
        t.begin(3)  # ColumnMetaData
        t.i32(1, _INT64 if name == "ts" else _DOUBLE)
        t.list_i32(2, [_PLAIN])
        t.list_binary(3, [name.encode()])
        t.i32(4, _UNCOMPRESSED)
        t.i64(5, n)
        t.i64(6, size)
        t.i64(7, size)
        t.i64(9, offset)
        if name == "ts":
            lo, hi = (struct.pack("<q", v) for v in ts_range)
            t.begin(12)  # Statistics
            t.binary(1, hi)
            t.binary(2, lo)
            t.i64(3, 0)
            t.binary(5, hi)
            t.binary(6, lo)
            t.end()
        t.end()
        t.end()
    total = sum(size for _, size in pages)
    t.i64(2, total)  # total_byte_size
    t.i64(3, n)
    t.i64(5, pages[0][0])  # file_offset of the first page
    t.i64(6, total)
    t.i16(7, 0)  # ordinal
    t.end()
    t.list_begin(5, _T_STRUCT, 1)
    t.begin()  # KeyValue
    t.binary(1, MARK_KEY.encode())
    t.binary(2, MARK.encode())
    t.end()
    t.binary(6, b"hfthot barfile (aligned-v1)")
    t.list_begin(7, _T_STRUCT, len(names))
    for _ in names:
        t.begin()  # ColumnOrder union
        t.begin(1)  # TYPE_ORDER
        t.end()
        t.end()
    t.out.append(0)
    return bytes(t.out)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the values of an aligned bar file start, column by column."""

    rows: int
    offsets: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Encoded:
    """A bar file's bytes, as chunks to write in order, and where its values start."""

    chunks: list[bytes | memoryview]
    layout: Layout


def encode(table: pa.Table) -> Encoded | None:
    """The file's bytes, or None if this layout cannot hold `table` (a null value, a
    column type other than the bar schema's, or too many rows)."""
    names = table.column_names
    if names != ["ts", *VALUES] or not 0 < table.num_rows <= MAX_ROWS:
        return None
    n = table.num_rows
    cols: list[np.ndarray] = []
    for name in names:
        col = table.column(name)
        if col.null_count:
            return None
        if name == "ts":
            if col.type != pa.timestamp("us", tz="UTC"):
                return None
            arr = col.cast(pa.int64()).to_numpy()
        else:
            if col.type != pa.float64():
                return None
            arr = col.to_numpy()
        cols.append(np.ascontiguousarray(arr, dtype="<i8" if name == "ts" else "<f8"))
    chunks: list[bytes | memoryview] = [MAGIC]
    pos = len(MAGIC)
    header = _page_header(n)
    pages: list[tuple[int, int]] = []
    for arr in cols:
        pad = -(pos + len(header)) % ALIGN
        chunks.append(bytes(pad))
        pos += pad
        pages.append((pos, len(header) + n * 8))
        chunks.append(header)
        chunks.append(arr.data.cast("B"))
        pos += len(header) + n * 8
    ts = cols[0]
    footer = _footer(names, n, pages, (int(ts.min()), int(ts.max())))
    chunks += [footer, struct.pack("<I", len(footer)), MAGIC]
    return Encoded(chunks, Layout(n, tuple(pos + len(header) for pos, _ in pages)))


def layout(meta: pq.FileMetaData) -> Layout | None:
    """The value offsets of a file written by `encode`, checked against its footer."""
    kv = meta.metadata or {}
    if kv.get(MARK_KEY.encode()) != MARK.encode() or meta.num_row_groups != 1:
        return None
    rg = meta.row_group(0)
    n = rg.num_rows
    names = ["ts", *VALUES]
    if rg.num_columns != len(names):
        return None
    offsets: list[int] = []
    for i, name in enumerate(names):
        col = rg.column(i)
        if (
            col.path_in_schema != name
            or col.compression != "UNCOMPRESSED"
            or col.physical_type != ("INT64" if name == "ts" else "DOUBLE")
            or col.num_values != n
            or meta.schema.column(i).max_definition_level != 0
        ):
            return None
        start = col.data_page_offset + col.total_compressed_size - n * 8
        if start % ALIGN or start <= col.data_page_offset:
            return None
        offsets.append(start)
    return Layout(n, tuple(offsets))


def open_map(path: Path) -> pa.Buffer:
    """The whole file as a read-only mapped Arrow buffer (valid even after the file is
    unlinked, as files are replaced by rename and never rewritten in place)."""
    with path.open("rb") as fh:
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    return pa.py_buffer(mm)


_TS = pa.timestamp("us", tz="UTC")


def map_bars(buf: pa.Buffer, lay: Layout, lo: int | None, hi: int | None) -> pa.Table:
    """Rows with lo <= ts < hi of a mapped file, as Arrow arrays over the mapped bytes."""
    n = lay.rows
    ts = np.frombuffer(buf, dtype="<i8", count=n, offset=lay.offsets[0])
    a = 0 if lo is None else int(np.searchsorted(ts, lo, side="left"))
    b = n if hi is None else int(np.searchsorted(ts, hi, side="left"))
    b = max(a, b)
    m = b - a
    arrays = [
        pa.Array.from_buffers(
            _TS if i == 0 else pa.float64(), m, [None, buf.slice(off + a * 8, m * 8)]
        )
        for i, off in enumerate(lay.offsets)
    ]
    return pa.Table.from_arrays(arrays, names=["ts", *VALUES])
