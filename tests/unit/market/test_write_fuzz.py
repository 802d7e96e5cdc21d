"""Fuzzing `MarketStore.write_bars` with random frames (hypothesis, reproducible).

Property: each write either raises a typed error (core.errors.HftError) and changes
nothing, or stores exactly what was given (the last row wins for a repeated time, an
existing bar is updated); the rollups stay finite and the store stays readable, also after
reopening it. Frames mix valid bars with NaN/inf, negative and null values, inverted
high/low, repeated times, wrong dtypes, missing or extra columns, empty frames and odd
venues, symbols and timeframes.
"""

from __future__ import annotations

import datetime as dt
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from core.data.schema import BARS, TIMEFRAMES
from core.data.store import MarketStore
from core.errors import HftError

T0 = dt.datetime(2024, 1, 30, 22, 0, tzinfo=dt.UTC)  # two days before a month boundary
GOOD_VENUES = ["fuzz", "other", "a/b", "sp ace", "é€", "x" * 64]
BAD_VENUES = ["", " ", "x" * 65, "line\nbreak"]
GOOD_SYMBOLS = ["SYN/USD", "B", "../../etc", "%2F", "=1"]
BAD_SYMBOLS = ["", "s\x00"]
TIMEFRAMES_POOL = ["1m", "1m", "1m", "1h", "1d", "7m", "", "1M"]
SPECIAL = [math.nan, math.inf, -math.inf, -1.0, -0.0, 0.0, None, 1e308]

Key = tuple[str, str, str]
Row = dict[str, Any]


@st.composite
def bar_rows(draw: st.DrawFn) -> list[Row]:
    n = draw(st.integers(0, 12))
    odd = draw(st.integers(0, 9)) == 0  # one frame in ten gets a bad venue or symbol
    venue = draw(st.sampled_from(BAD_VENUES if odd else GOOD_VENUES))
    symbol = draw(st.sampled_from(BAD_SYMBOLS if odd else GOOD_SYMBOLS))
    tf = draw(st.sampled_from(TIMEFRAMES_POOL))
    rows = []
    for _ in range(n):
        minute = draw(st.integers(0, 4000))  # small range: repeated times are common
        low = draw(st.floats(0.0, 1e6, allow_nan=False))
        high = low + draw(st.floats(0.0, 1e3, allow_nan=False))
        row = {
            "ts": T0 + dt.timedelta(minutes=minute),
            "venue": venue,
            "symbol": symbol,
            "timeframe": tf,
            "open": low + (high - low) * draw(st.floats(0.0, 1.0)),
            "high": high,
            "low": low,
            "close": low + (high - low) * draw(st.floats(0.0, 1.0)),
            "volume": draw(st.one_of(st.floats(0.0, 1e9), st.just(0.0), st.none())),
        }
        if draw(st.integers(0, 29)) == 0:  # one row in 30 gets a bad or edge value
            col = draw(st.sampled_from(["open", "high", "low", "close", "volume"]))
            row[col] = draw(st.sampled_from(SPECIAL))
        if draw(st.integers(0, 49)) == 0:  # inverted high/low
            row["high"], row["low"] = row["low"] - 1.0, row["high"]
        rows.append(row)
    return rows


def to_frame(rows: list[Row], shape: str) -> pl.DataFrame | object:
    frame = pl.DataFrame(rows, schema=BARS) if rows else pl.DataFrame(schema=BARS)
    if shape == "ok":
        return frame
    if shape == "drop_column":
        return frame.drop("close")
    if shape == "extra_column":
        return frame.with_columns(pl.lit("x").alias("note"))
    if shape == "string_prices":
        return frame.with_columns(pl.col("open").cast(pl.String))
    if shape == "text_in_prices":
        return frame.with_columns(pl.lit("abc").alias("high"))
    if shape == "int_volume":
        vol = pl.col("volume").fill_null(0.0).fill_nan(0.0).clip(-1e15, 1e15)
        return frame.with_columns(vol.round().cast(pl.Int64))
    if shape == "naive_ts":
        return frame.with_columns(pl.col("ts").dt.replace_time_zone(None))
    if shape == "ms_ts":
        return frame.with_columns(pl.col("ts").dt.cast_time_unit("ms"))
    if shape == "string_ts":
        return frame.with_columns(pl.col("ts").cast(pl.String))
    if shape == "int_ts":
        return frame.with_columns(pl.col("ts").dt.epoch("us"))
    if shape == "null_symbol":
        return frame.with_columns(pl.lit(None, pl.String).alias("symbol"))
    if shape == "pandas":
        return frame.to_pandas()
    return rows  # a list of dicts, not a frame


SHAPES = ["ok"] * 30 + [
    "drop_column",
    "extra_column",
    "string_prices",
    "text_in_prices",
    "int_volume",
    "naive_ts",
    "ms_ts",
    "string_ts",
    "int_ts",
    "null_symbol",
    "pandas",
    "list",
]


def good_name(value: str) -> bool:
    return bool(value.strip()) and len(value) <= 64 and all(ord(ch) >= 32 for ch in value)


def good_row(row: Row) -> bool:
    """The rules, restated independently of core.data.schema."""
    prices = [row[c] for c in ("open", "high", "low", "close")]
    vol = row["volume"]
    if any(p is None or not math.isfinite(p) or p < 0 or p > 1e18 for p in prices):
        return False
    if vol is not None and (not math.isfinite(vol) or vol < 0 or vol > 1e18):
        return False
    return (
        row["low"]
        <= min(row["open"], row["close"])
        <= max(row["open"], row["close"])
        <= row["high"]
    )


def should_accept(rows: list[Row]) -> bool:
    return all(
        good_name(r["venue"])
        and good_name(r["symbol"])
        and r["timeframe"] in TIMEFRAMES
        and good_row(r)
        for r in rows
    )


def as_stored(frame: pl.DataFrame) -> list[Row]:
    """The rows of an accepted frame in the BARS schema (casts as the store does)."""
    return frame.select(BARS.names()).cast(dict(BARS)).to_dicts()  # type: ignore[arg-type]


def apply(model: dict[Key, dict[dt.datetime, Row]], rows: list[Row]) -> None:
    for row in rows:
        model.setdefault((row["venue"], row["symbol"], row["timeframe"]), {})[row["ts"]] = row


def expected(series: dict[dt.datetime, Row]) -> pl.DataFrame:
    rows = [series[t] for t in sorted(series)]
    return pl.DataFrame(rows, schema=BARS)


def check_store(store: MarketStore, model: dict[Key, dict[dt.datetime, Row]]) -> None:
    cov = {
        (r["venue"], r["symbol"], r["timeframe"]): r["rows"] for r in store.coverage().to_dicts()
    }
    assert cov == {k: len(v) for k, v in model.items() if v}
    finest: dict[tuple[str, str], str] = {}
    for venue, symbol, tf in model:
        have = finest.get((venue, symbol))
        if have is None or TIMEFRAMES[tf] < TIMEFRAMES[have]:
            finest[(venue, symbol)] = tf
    for (venue, symbol), tf in finest.items():
        got = store.get_bars(symbol, timeframe=tf, venue=venue, cache=False)
        assert_frame_equal(got, expected(model[(venue, symbol, tf)]))
    daily = store.daily()
    for c in ("open", "high", "low", "close", "volume", "vwap"):
        assert np.isfinite(daily[c].drop_nulls().to_numpy()).all(), c


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(writes=st.lists(st.tuples(bar_rows(), st.sampled_from(SHAPES)), min_size=1, max_size=4))
def test_write_bars_fuzz(writes: list[tuple[list[Row], str]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = MarketStore(root, compact_after=3)
        model: dict[Key, dict[dt.datetime, Row]] = {}
        for rows, shape in writes:
            frame = to_frame(rows, shape)
            try:
                written = store.write_bars(frame)  # type: ignore[arg-type]
            except HftError:
                # Refused: the model (and so the store) must be unchanged.
                event("refused")
                assert not (shape == "ok" and should_accept(rows)), rows
            else:
                assert isinstance(frame, pl.DataFrame)
                event("written" if rows else "empty")
                stored = as_stored(frame)
                assert all(good_row(r) for r in stored)
                assert should_accept(stored)
                assert 0 <= written <= len(rows)
                apply(model, stored)
            check_store(store, model)
        store.close()
        check_store(MarketStore(root), model)
