"""The input side of the mean-reversion runs: a basket of series aligned on common bars, and
typed run parameters that round-trip through JSON.

Every mean-reversion kind (study, backtest, sweep, walk-forward) starts from the same basket:
the closes of each series joined on their common timestamps, rows with a missing close
dropped, the newest `last_n` rows kept, optionally in logs; annualisation is inferred from the
median bar spacing.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import polars as pl
from numpy.typing import NDArray

from core.data.catalog import SeriesRef
from core.errors import InvalidInput

__all__ = [
    "Basket",
    "BasketParams",
    "aligned_closes",
    "check_finite",
    "params_from_json",
    "params_to_json",
    "periods_per_year",
    "prepare_basket",
    "series_names",
    "unit_size",
]

F64 = NDArray[np.float64]
MIN_ROWS = 30
P = TypeVar("P")


@dataclass(frozen=True, slots=True, kw_only=True)
class BasketParams:
    """Which series (one name per input, in input order) and how they are prepared."""

    names: tuple[str, ...]
    use_log: bool = True
    last_n: int = 2520

    def __post_init__(self) -> None:
        if self.last_n < 1:
            raise InvalidInput(f"last_n must be at least 1, got {self.last_n}")

    @property
    def basket(self) -> BasketParams:
        """Only the basket part (the subclasses add their own parameters)."""
        return BasketParams(names=self.names, use_log=self.use_log, last_n=self.last_n)


@dataclass(frozen=True, slots=True, eq=False)
class Basket:
    """Aligned closes (logs when asked) of the series on their common bars, oldest first."""

    names: tuple[str, ...]
    times: pl.Series  # the common bar times, as stored
    closes: F64  # bars x assets
    dropped: int  # common bars dropped for a missing close
    periods_per_year: float

    @property
    def ts(self) -> NDArray[Any]:
        return self.times.to_numpy()

    @property
    def dt(self) -> float:
        return 1.0 / self.periods_per_year


def series_names(refs: Sequence[SeriesRef]) -> tuple[str, ...]:
    """A name per series: its symbol, or its full label when two symbols are the same."""
    names = [ref.symbol for ref in refs]
    if len(set(names)) < len(names):
        names = [ref.label for ref in refs]
    return tuple(names)


def aligned_closes(frames: Sequence[pl.DataFrame], names: Sequence[str]) -> tuple[pl.Series, F64]:
    """Closes of every series on their common timestamps (an inner join on ts), by time."""
    joined = frames[0].select("ts", pl.col("close").alias(names[0]))
    for name, frame in zip(names[1:], frames[1:], strict=True):
        joined = joined.join(frame.select("ts", pl.col("close").alias(name)), on="ts")
    joined = joined.sort("ts")
    return joined["ts"], joined.select(names).to_numpy().astype(np.float64)


def periods_per_year(ts: NDArray[Any]) -> float:
    """Bars per year from the median spacing: 252 for daily bars, 252 x 24 for hourly."""
    step = np.median(np.diff(ts).astype("timedelta64[s]").astype(np.float64))
    return 252.0 * max(1.0, 86_400.0 / step) if step > 0 else 252.0


def prepare_basket(bars: Sequence[pl.DataFrame], params: BasketParams) -> Basket:
    """The basket of `bars` (one frame per name, in order) as `params` asks."""
    names = params.names
    if len(bars) != len(names):
        raise InvalidInput(f"{len(bars)} input series for {len(names)} names")
    if len(names) < 2:
        raise InvalidInput("pick at least two markets (a pair or a basket)")
    if len(set(names)) < len(names):
        raise InvalidInput(f"the series names must differ, got {list(names)}")
    for name, frame in zip(names, bars, strict=True):
        if "ts" not in frame.columns or "close" not in frame.columns:
            raise InvalidInput(f"the bars of {name} need ts and close columns")
    times, closes = aligned_closes(bars, names)
    finite = np.isfinite(closes).all(axis=1)
    dropped = int((~finite).sum())
    keep = np.flatnonzero(finite)[-params.last_n :]
    times, closes = times.gather(keep), closes[keep]
    if closes.shape[0] < MIN_ROWS:
        raise InvalidInput(
            f"too few rows: {closes.shape[0]} common bars after alignment "
            f"(need at least {MIN_ROWS})"
        )
    if params.use_log:
        if (closes <= 0).any():
            raise InvalidInput("log prices need closes > 0")
        closes = np.log(closes)
    return Basket(names, times, closes, dropped, periods_per_year(times.to_numpy()))


def unit_size(closes: F64, weights: F64, capital: float) -> float:
    """Spread units whose average gross notional is `capital` (the band size)."""
    return float(capital / float(np.mean(np.abs(closes) @ np.abs(weights))))


# --- parameters <-> JSON ---------------------------------------------------------------------


def params_to_json(params: object) -> dict[str, Any]:
    """A params dataclass as JSON-safe values (tuples as lists)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(params):  # type: ignore[arg-type]
        value = getattr(params, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def params_from_json(cls: type[P], data: Mapping[str, Any]) -> P:
    """Rebuild a params dataclass from `params_to_json` output, checking every type."""
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{cls.__name__} must be a JSON object")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InvalidInput(f"{cls.__name__} has no parameter {', '.join(map(str, unknown))}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        if name in data:
            values[name] = _convert(name, hints[name], data[name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise InvalidInput(f"{cls.__name__} needs {name}")
    return cls(**values)


def _convert(name: str, hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is Literal:
        if value not in typing.get_args(hint):
            options = ", ".join(repr(v) for v in typing.get_args(hint))
            raise InvalidInput(f"{name} must be one of {options}, got {value!r}")
        return value
    if origin is tuple:
        item = typing.get_args(hint)[0]
        if isinstance(value, str) or not isinstance(value, Sequence):
            raise InvalidInput(f"{name} must be a list, got {value!r}")
        return tuple(_convert(name, item, v) for v in value)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return None
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(name, inner[0], value)
    if hint is bool:
        if not isinstance(value, bool):
            raise InvalidInput(f"{name} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{name} must be a whole number, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInput(f"{name} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be text, got {value!r}")
        return value
    raise InvalidInput(f"{name}: unsupported parameter type {hint!r}")


def check_finite(name: str, value: float, *, low: float = -math.inf, above: bool = False) -> None:
    """Raise InvalidInput unless value is finite and >= low (> low when `above`)."""
    ok = math.isfinite(value) and (value > low if above else value >= low)
    if not ok:
        sign = ">" if above else ">="
        raise InvalidInput(f"{name} must be a finite number {sign} {low:g}, got {value!r}")
