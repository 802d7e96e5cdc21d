"""Typed research runs: what a page computes, as one function per study kind.

Each analysis page is form -> `run_*` -> render. A run returns a typed result that the page
draws and that `core.research.studies` saves as a study; a study is rerun from its stored
parameters and inputs through the kind's `rerun` entry in `KINDS`.

The contract every result keeps (`RunResult`):
- `params()`: JSON-safe parameters, enough to run it again (seeds included);
- `metrics()`: named summary numbers (floats; NaN allowed);
- `frames()`: named Polars frames, the artefacts (stored as Parquet).
A rerun on the same inputs returns equal metrics and frames, bit for bit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl

import core
from core import native
from core.data import bundled
from core.data.catalog import BarSource, SeriesRef
from core.errors import InvalidInput

__all__ = [
    "KINDS",
    "RunResult",
    "SeriesInput",
    "StudyKind",
    "check_keys",
    "code_version",
    "register",
    "rows_hash",
    "study_kinds",
]

HASH_COLUMNS = ("open", "high", "low", "close", "volume")
# the modules that register a kind; study_kinds() imports them all
KIND_MODULES: tuple[str, ...] = (
    "core.analytics.runs.regimes",
    "core.analytics.runs.chiarella",
    "core.analytics.runs.optimize",
    "core.analytics.runs.meanrev",
)


@runtime_checkable
class RunResult(Protocol):
    @property
    def kind(self) -> str: ...

    def params(self) -> dict[str, Any]: ...

    def metrics(self) -> dict[str, float]: ...

    def frames(self) -> dict[str, pl.DataFrame]: ...


def rows_hash(bars: pl.DataFrame) -> str:
    """SHA-256 of the exact rows: ts (µs) and the price/volume columns as float64 bytes
    (a missing volume hashes as NaN), in time order as given."""
    h = hashlib.sha256()
    ts = bars["ts"].dt.epoch("us").to_numpy().astype(np.int64, copy=False)
    h.update(np.ascontiguousarray(ts).tobytes())
    for name in HASH_COLUMNS:
        col = bars[name].cast(pl.Float64).fill_null(float("nan")).to_numpy()
        h.update(np.ascontiguousarray(col, dtype=np.float64).tobytes())
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class SeriesInput:
    """The exact bars a run used: series, first and last bar time (inclusive), row count
    and content hash. `load` reads the same range again; the hash tells if it changed."""

    venue: str
    symbol: str
    timeframe: str
    start: dt.datetime
    end: dt.datetime
    rows: int
    sha256: str

    @classmethod
    def of(cls, ref: SeriesRef, bars: pl.DataFrame) -> SeriesInput:
        if bars.height == 0:
            raise InvalidInput(f"no bars for {ref.label}")
        ts = bars["ts"]
        return cls(
            ref.venue,
            ref.symbol,
            ref.timeframe,
            _utc(ts.min()),
            _utc(ts.max()),
            bars.height,
            rows_hash(bars),
        )

    @property
    def ref(self) -> SeriesRef:
        return SeriesRef(self.venue, self.symbol, self.timeframe)

    def load(self, store: BarSource | None) -> pl.DataFrame:
        """The bars of this series with start <= ts <= end, as stored now."""
        end = self.end + dt.timedelta(microseconds=1)
        frame = pl.DataFrame()
        if store is not None:
            frame = store.get_bars(
                self.symbol, self.start, end, timeframe=self.timeframe, venue=self.venue
            )
        if frame.height == 0 and self.venue == bundled.VENUE:
            frame = bundled.load(self.symbol).filter(pl.col("ts").is_between(self.start, self.end))
        return frame

    def to_json(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.rows,
            "sha256": self.sha256,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SeriesInput:
        try:
            return cls(
                str(data["venue"]),
                str(data["symbol"]),
                str(data["timeframe"]),
                _utc(dt.datetime.fromisoformat(str(data["start"]))),
                _utc(dt.datetime.fromisoformat(str(data["end"]))),
                int(data["rows"]),
                str(data["sha256"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"bad series input record: {exc}") from exc


def _utc(value: object) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        raise InvalidInput(f"expected a datetime, got {type(value).__name__}")
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


Rerun = Callable[[Sequence[pl.DataFrame], Mapping[str, Any]], RunResult]


@dataclass(frozen=True, slots=True)
class StudyKind:
    """One kind of study: its name, a title for the Studies page, the page that makes it,
    and how to run it again from stored inputs (bars, in the order saved) and params."""

    kind: str
    title: str
    page: str
    rerun: Rerun


KINDS: dict[str, StudyKind] = {}


def register(kind: StudyKind) -> StudyKind:
    """Add a kind (each run module registers its own at import)."""
    if kind.kind in KINDS and KINDS[kind.kind] != kind:
        raise InvalidInput(f"study kind {kind.kind!r} is registered twice")
    KINDS[kind.kind] = kind
    return kind


def study_kinds() -> dict[str, StudyKind]:
    """Every registered kind, after importing all run modules."""
    for name in KIND_MODULES:
        importlib.import_module(name)
    return KINDS


def check_keys(what: str, data: Mapping[str, Any], keys: Sequence[str]) -> None:
    """Stored parameters must hold exactly `keys` (a rerun refuses anything else)."""
    unknown = sorted(set(data) - set(keys))
    missing = [k for k in keys if k not in data]
    if unknown or missing:
        raise InvalidInput(f"{what} parameters: unknown {unknown}, missing {missing}")


def code_version() -> str:
    """The package and native-extension versions a study was computed with."""
    st = native.status()
    return f"hfthot {core.__version__}; native {st.version or 'missing'} ({st.build_profile})"
