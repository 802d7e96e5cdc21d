"""The aligned bar file: standard Parquet for every reader, mapped without a copy by ours."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from core.data import barfile
from core.data.store import MarketStore
from core.data.warm import to_file_table
from tests.unit.market.helpers import T0, bars, trades


def write(table: pa.Table, path: Path) -> barfile.Layout:
    """Write `table` as a bar file; returns the layout the encoder says it has."""
    encoded = barfile.encode(table)
    assert encoded is not None
    with path.open("wb") as fh:
        for chunk in encoded.chunks:
            fh.write(chunk)
    return encoded.layout


def values_table(n: int, seed: int = 0) -> pa.Table:
    return to_file_table(bars(n, seed=seed), "bars")


def test_every_reader_sees_the_same_rows(tmp_path: Path) -> None:
    table = values_table(5000)
    path = tmp_path / "a.parquet"
    write(table, path)
    assert pq.read_table(path).equals(table.cast(pq.read_table(path).schema))
    assert_frame_equal(pl.read_parquet(path), pl.from_arrow(table))  # type: ignore[arg-type]
    got = duckdb.sql(f"SELECT * FROM read_parquet('{path}') ORDER BY ts").pl()
    want = pl.from_arrow(table)
    assert isinstance(want, pl.DataFrame)
    assert_frame_equal(got.with_columns(pl.col("ts").dt.convert_time_zone("UTC")), want)
    meta = pq.read_metadata(path)
    stats = meta.row_group(0).column(0).statistics
    assert stats.min == table["ts"][0].as_py()
    assert stats.max == table["ts"][-1].as_py()
    # DuckDB prunes on those statistics and still answers range queries exactly.
    lo = T0 + dt.timedelta(minutes=100)
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}') WHERE ts >= '{lo}'").fetchall()
    assert n == [(4900,)]


def test_mapped_read_is_zero_copy_and_exact(tmp_path: Path) -> None:
    table = values_table(3000, seed=3)
    path = tmp_path / "b.parquet"
    said = write(table, path)
    lay = barfile.layout(pq.read_metadata(path))
    assert lay is not None
    assert lay == said, "the encoder's layout is the one its footer describes"
    assert all(off % barfile.ALIGN == 0 for off in lay.offsets)
    buf = barfile.open_map(path)
    whole = barfile.map_bars(buf, lay, None, None)
    assert whole.equals(table.cast(whole.schema))
    base = buf.address
    for col in whole.columns:
        data = col.chunk(0).buffers()[1]
        assert base <= data.address < base + buf.size  # the mapping itself, not a copy
    lo = int(table["ts"][1000].value)
    hi = int(table["ts"][1440].value)
    part = barfile.map_bars(buf, lay, lo, hi)
    assert part.num_rows == 440
    assert part.equals(table.slice(1000, 440).cast(part.schema))
    assert barfile.map_bars(buf, lay, hi, lo).num_rows == 0


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 2000),
    values=st.lists(
        st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=True), min_size=1
    ),
)
def test_round_trip_is_bitwise(
    tmp_path_factory: pytest.TempPathFactory, n: int, values: list[float]
) -> None:
    rng = np.random.default_rng(n)
    ts = np.sort(rng.choice(10**12, size=n, replace=False)).astype("int64")
    cols = {"ts": pa.array(ts, pa.timestamp("us", tz="UTC"))}
    for i, name in enumerate(barfile.VALUES):
        cols[name] = pa.array(np.roll(np.resize(np.array(values, dtype="<f8"), n), i))
    table = pa.table(cols)
    path = tmp_path_factory.mktemp("rt") / "x.parquet"
    said = write(table, path)
    back = pq.read_table(path)
    lay = barfile.layout(pq.read_metadata(path))
    assert lay == said
    assert lay is not None
    mapped = barfile.map_bars(barfile.open_map(path), lay, None, None)
    for name in ("ts", *barfile.VALUES):
        want = table[name].to_numpy().view("<u8")
        assert np.array_equal(back[name].to_numpy().view("<u8"), want)
        assert np.array_equal(mapped[name].to_numpy().view("<u8"), want)


def test_other_shapes_fall_back_to_pyarrow(tmp_path: Path) -> None:
    table = values_table(10)
    with_null = table.set_column(5, "volume", pa.array([None] + [1.0] * 9, pa.float64()))
    assert barfile.encode(with_null) is None
    assert barfile.encode(table.slice(0, 0)) is None
    assert barfile.encode(table.drop_columns(["volume"])) is None
    millis = table.set_column(0, "ts", table["ts"].cast(pa.timestamp("ms", tz="UTC")))
    assert barfile.encode(millis) is None
    plain = tmp_path / "plain.parquet"
    pq.write_table(table, plain)
    assert barfile.layout(pq.read_metadata(plain)) is None


def test_store_uses_the_layout_and_keeps_nulls(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    frame = bars(3000)  # two months: two files
    store.write_bars(frame)
    files = [f for _, f in store.warm_files("bars")]
    assert len(files) == 2
    assert all(f.layout is not None for f in files)
    holes = bars(50, symbol="GAP/USD").with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise(pl.col("volume")).alias("volume")
    )
    store.write_bars(holes)
    gap = [f for k, f in store.warm_files("bars") if k.symbol == "GAP/USD"]
    assert [f.layout for f in gap] == [None]
    assert_frame_equal(store.get_bars("GAP/USD", cache=False), holes)
    assert_frame_equal(store.get_bars("SYN/USD", cache=False), frame)


def test_files_noted_at_write_equal_what_a_reopen_reads(tmp_path: Path) -> None:
    # The writer notes each file it commits (rows, time range, size, layout) instead of
    # reading its footer back; a fresh store reads every footer and must agree.
    store = MarketStore(tmp_path, compact_after=100)
    store.write_bars(bars(3000))
    holes = bars(50, symbol="GAP/USD").with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(None).otherwise(pl.col("volume")).alias("volume")
    )
    store.write_bars(holes)
    store.write_bars(bars(100, start=T0 + dt.timedelta(minutes=3000)))
    store.write_trades(trades(40))
    noted = sorted(store.warm_files("bars") + store.warm_files("trades"), key=str)
    store.close()
    reopened = MarketStore(tmp_path, compact_after=100)
    read = sorted(reopened.warm_files("bars") + reopened.warm_files("trades"), key=str)
    assert len(noted) == 5  # two months, Feb again, the gappy series, the trades
    assert noted == read


def test_backfilled_files_read_in_time_order(tmp_path: Path) -> None:
    store = MarketStore(tmp_path, compact_after=100)
    frame = bars(600)
    store.write_bars(frame.slice(300, 300))
    store.write_bars(frame.slice(0, 300))  # older rows land in a later file
    got = store.get_bars("SYN/USD", cache=False)
    assert_frame_equal(got, frame)
    start = frame["ts"][250]
    end = frame["ts"][350]
    assert_frame_equal(store.get_bars("SYN/USD", start, end, cache=False), frame.slice(250, 100))


def test_frames_outlive_the_files_they_map(tmp_path: Path) -> None:
    store = MarketStore(tmp_path, compact_after=3)
    frame = bars(400)
    for i in range(2):
        store.write_bars(frame.slice(200 * i, 200))
    before = store.get_bars("SYN/USD", cache=False)
    store.write_bars(bars(10, start=T0 + dt.timedelta(minutes=400)))  # third file: compaction
    names = {f.path.name for _, f in store.warm_files("bars")}
    assert names
    assert all(n.startswith("c-") for n in names)
    assert_frame_equal(before, frame)  # the d-files are gone; their mappings still read
