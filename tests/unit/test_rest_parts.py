"""The REST API's parts without a server: encodings, request parsing, the Flight URI."""

from __future__ import annotations

import io
import json
import math

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.errors import InvalidInput
from core.serve import encode
from core.serve.analytics import DEFAULT_LAST, RegimesRequest
from core.serve.rest import flight_uri

TABLE = pa.table(
    {
        "ts": pa.array([0, 60_000_000], pa.timestamp("us", tz="UTC")),
        "x": [1.5, float("nan")],
        "name": ["a", None],
    }
)


def test_json_rows_carry_the_schema_and_turn_nan_into_null() -> None:
    body = json.loads(encode.json_rows(TABLE, {"truncated": False}))
    assert body["schema"] == [
        {"name": "ts", "type": "timestamp[us, tz=UTC]"},
        {"name": "x", "type": "double"},
        {"name": "name", "type": "string"},
    ]
    assert body["row_count"] == 2
    assert body["truncated"] is False
    assert body["rows"][1] == {"ts": "1970-01-01T00:01:00+00:00", "x": None, "name": None}


def test_json_refuses_large_answers_and_names_the_other_formats() -> None:
    big = pa.table({"x": list(range(encode.JSON_MAX_ROWS + 1))})
    with pytest.raises(InvalidInput, match="use format=arrow, parquet or csv"):
        encode.encode(big, "json")
    assert len(json.loads(encode.encode(big.slice(1), "json"))["rows"]) == encode.JSON_MAX_ROWS


def test_binary_formats_round_trip_exactly() -> None:
    finite = TABLE.set_column(1, "x", pa.array([1.5, 2.25]))
    assert pa.ipc.open_stream(encode.encode(finite, "arrow")).read_all().equals(finite)
    assert pq.read_table(io.BytesIO(encode.encode(finite, "parquet"))).equals(finite)
    frame = pl.from_arrow(finite)
    assert isinstance(frame, pl.DataFrame)
    back = pl.read_csv(io.BytesIO(encode.encode(finite, "csv")), schema=frame.schema)
    assert back.equals(frame)
    nan = pa.ipc.open_stream(encode.encode(TABLE, "arrow")).read_all()
    assert math.isnan(nan["x"][1].as_py())


@pytest.mark.parametrize(
    ("params", "fmt"),
    [({}, "arrow"), ({"format": "CSV"}, "csv"), ({"format": " parquet "}, "parquet")],
)
def test_format_of(params: dict[str, object], fmt: str) -> None:
    assert encode.format_of(params) == fmt


def test_format_of_refuses_others_by_name() -> None:
    with pytest.raises(InvalidInput, match="unknown format 'feather'; use one of arrow, parquet"):
        encode.format_of({"format": "feather"})


def test_regimes_request_defaults_and_checks() -> None:
    req = RegimesRequest.from_json({"symbol": "SP500", "timeframe": "1d"})
    assert req.bars.last == DEFAULT_LAST
    assert (req.k, req.k_max, req.n_init, req.seed) == (None, 4, 10, 0)
    req = RegimesRequest.from_json({"symbol": "SP500", "start": "2020-01-01", "k": 2})
    assert req.bars.last is None
    assert req.k == 2
    with pytest.raises(InvalidInput, match="seed must be from 0 to 2147483647, got -1"):
        RegimesRequest.from_json({"symbol": "SP500", "seed": -1})
    with pytest.raises(InvalidInput, match="k_max must be a whole number"):
        RegimesRequest.from_json({"symbol": "SP500", "k_max": True})
    with pytest.raises(InvalidInput, match="symbol is required"):
        RegimesRequest.from_json({"k": 2})


@pytest.mark.parametrize(
    ("host", "port", "tls", "seen", "uri"),
    [
        ("127.0.0.1", 50053, False, "example.org", "grpc://127.0.0.1:50053"),
        ("10.0.0.5", 6000, True, None, "grpc+tls://10.0.0.5:6000"),
        ("0.0.0.0", 50053, False, "data.example.org", "grpc://data.example.org:50053"),  # noqa: S104
        ("::", 50053, False, None, "grpc://127.0.0.1:50053"),
        ("::1", 50053, True, None, "grpc+tls://[::1]:50053"),
        ("127.0.0.1", 0, False, None, None),
    ],
)
def test_flight_uri(host: str, port: int, tls: bool, seen: str | None, uri: str | None) -> None:
    assert flight_uri(host, port, tls, seen) == uri
