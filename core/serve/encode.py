"""Arrow tables as bytes in the formats the REST API answers in.

Arrow IPC stream is the default and costs one pass over the buffers; Parquet and CSV suit
files and spreadsheets; JSON is for small answers only (JSON_MAX_ROWS).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import InvalidInput

FORMATS = ("arrow", "parquet", "csv", "json")
MEDIA_TYPES = {
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}
EXTENSIONS = {"arrow": "arrows", "parquet": "parquet", "csv": "csv", "json": "json"}
JSON_MAX_ROWS = 10_000


def format_of(params: Mapping[str, object]) -> str:
    """The `format` parameter, "arrow" when absent; InvalidInput naming the choices."""
    value = params.get("format") or "arrow"
    if not isinstance(value, str) or value.strip().lower() not in FORMATS:
        raise InvalidInput(f"unknown format {value!r}; use one of {', '.join(FORMATS)}")
    return value.strip().lower()


def arrow_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue())


def parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def csv(table: pa.Table) -> bytes:
    """CSV with a header row; times in ISO 8601 with their UTC offset (as the SQL Explorer's
    download)."""
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame.write_csv().encode()


def json_rows(table: pa.Table, extra: Mapping[str, object] | None = None) -> bytes:
    """`{"schema": [{"name", "type"}], "rows": [{column: value}], "row_count": n, ...extra}`.
    Times are ISO 8601 text; NaN and infinities become null (JSON has neither)."""
    if table.num_rows > JSON_MAX_ROWS:
        raise InvalidInput(
            f"the answer has {table.num_rows:,} rows; format=json is for up to "
            f"{JSON_MAX_ROWS:,} rows: use format=arrow, parquet or csv, or ask for fewer rows"
        )
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    schema = [{"name": f.name, "type": str(f.type)} for f in table.schema]
    head = {"schema": schema, "row_count": table.num_rows, **(extra or {})}
    rows = frame.write_json() if table.num_columns else "[]"
    # The rows are already JSON: splice them in rather than parse and print them again.
    return (json.dumps(head, allow_nan=False)[:-1] + ', "rows": ' + rows + "}").encode()


def encode(table: pa.Table, fmt: str, extra: Mapping[str, object] | None = None) -> bytes:
    """`table` in `fmt` (one of FORMATS); `extra` fields go into JSON answers only."""
    if fmt == "arrow":
        return arrow_ipc(table)
    if fmt == "parquet":
        return parquet(table)
    if fmt == "csv":
        return csv(table)
    return json_rows(table, extra)
