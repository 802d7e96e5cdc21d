"""Inputs and comparisons shared by the mean-reversion run tests."""

from __future__ import annotations

import io
import json
import math
from typing import Any

import polars as pl

from core.analytics.runs import KINDS, RunResult
from core.data import bundled

NAMES = ("SP500", "NASDAQ")


def real_bars(last: int = 1000) -> list[pl.DataFrame]:
    """The newest `last` daily bars of the bundled S&P 500 and NASDAQ (real history)."""
    return [bundled.load(name).tail(last) for name in NAMES]


def same_metrics(a: dict[str, float], b: dict[str, float]) -> bool:
    """Equal names and values, bit for bit, NaN equal to NaN."""
    if a.keys() != b.keys():
        return False
    return all((math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a)


def rerun(result: RunResult, bars: list[pl.DataFrame]) -> RunResult:
    """Run again through the registry from the params as stored (a JSON round trip)."""
    params: dict[str, Any] = json.loads(json.dumps(result.params()))
    return KINDS[result.kind].rerun(bars, params)


def parquet_round_trip(result: RunResult) -> None:
    """Every artefact writes to Parquet and reads back equal (how studies store them)."""
    for name, frame in result.frames().items():
        buf = io.BytesIO()
        frame.write_parquet(buf)
        buf.seek(0)
        assert pl.read_parquet(buf).equals(frame), name
