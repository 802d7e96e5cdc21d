"""What a rerun or a comparison of studies found: typed reports the page and the API show."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from core.analytics.runs import SeriesInput


def same_number(a: float | None, b: float | None) -> bool:
    """Exact equality, with NaN equal to NaN (and None to None)."""
    if a is None or b is None:
        return a is None and b is None
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b


def same_frame(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    """Same columns, dtypes and values (nulls and NaNs equal each other)."""
    if a.columns != b.columns or a.dtypes != b.dtypes or a.shape != b.shape:
        return False
    return a.equals(b, null_equal=True)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@dataclass(frozen=True, slots=True)
class InputChange:
    """One stored input whose bars differ now: how (rows added, removed, edited, gone)."""

    series: SeriesInput
    rows_now: int
    sha256_now: str | None
    change: str

    @property
    def text(self) -> str:
        s = self.series
        return (
            f"{s.ref.label} {s.start:%Y-%m-%d %H:%M} – {s.end:%Y-%m-%d %H:%M}: {self.change} "
            f"({s.rows} rows then, {self.rows_now} now)"
        )


@dataclass(frozen=True, slots=True)
class MetricDiff:
    name: str
    stored: float | None
    new: float | None


@dataclass(frozen=True, slots=True)
class RerunReport:
    """The outcome of running a study again on its stored inputs and parameters."""

    study_id: str
    metrics: int
    frames: int
    input_changes: list[InputChange] = field(default_factory=list)
    metric_diffs: list[MetricDiff] = field(default_factory=list)
    frame_diffs: list[str] = field(default_factory=list)
    code_version_then: str = ""
    code_version_now: str = ""
    ran: bool = True

    @property
    def identical(self) -> bool:
        return self.ran and not (self.input_changes or self.metric_diffs or self.frame_diffs)

    @property
    def code_changed(self) -> bool:
        return self.code_version_then != self.code_version_now

    @property
    def summary(self) -> str:
        if self.identical:
            text = (
                f"Reproduced exactly: the {_count(self.metrics, 'metric')} and "
                f"{_count(self.frames, 'artefact')} are identical"
            )
        elif self.input_changes:
            text = "The input data changed since the study was saved: " + "; ".join(
                c.text for c in self.input_changes
            )
        else:
            parts = []
            if self.metric_diffs:
                parts.append(f"{len(self.metric_diffs)} of {self.metrics} metrics differ")
            if self.frame_diffs:
                parts.append("artefacts differ: " + ", ".join(self.frame_diffs))
            text = "Not reproduced on the same input: " + "; ".join(parts)
        if self.code_changed:
            text += f" (saved with {self.code_version_then}, rerun with {self.code_version_now})"
        return text


@dataclass(frozen=True, slots=True)
class MetricRow:
    name: str
    a: float | None
    b: float | None

    @property
    def diff(self) -> float | None:
        if self.a is None or self.b is None:
            return None
        return self.b - self.a


@dataclass(frozen=True, slots=True)
class ParamDiff:
    name: str
    a: Any
    b: Any


@dataclass(frozen=True, slots=True)
class Comparison:
    """Two studies of one kind: every metric side by side, and the parameters that differ."""

    a: str
    b: str
    kind: str
    metrics: list[MetricRow]
    params: list[ParamDiff]


def metric_rows(a: Mapping[str, float | None], b: Mapping[str, float | None]) -> list[MetricRow]:
    names = list(a) + [n for n in b if n not in a]
    return [MetricRow(n, a.get(n), b.get(n)) for n in names]


_MISSING = object()


def param_diffs(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[ParamDiff]:
    names = list(a) + [n for n in b if n not in a]
    out = []
    for n in names:
        va, vb = a.get(n, _MISSING), b.get(n, _MISSING)
        if va != vb:
            out.append(ParamDiff(n, None if va is _MISSING else va, None if vb is _MISSING else vb))
    return out
