"""Alert rule kinds: typed parameters and pure evaluation over bars.

Every kind reads a small integer *state* at the last bar (for example which side of a level
the close is on, or whether the z-score is beyond its bound). A rule fires when the state
changes into a firing state: on the transition, never on every bar while it holds. `step`
adds the rule's cool-down. Nothing here reads a table or a clock.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from core.analytics import indicators
from core.errors import InvalidInput

KINDS = ("price_cross", "pct_move", "zscore", "indicator_cross", "regime_change", "query_rows")
SERIES_KINDS = KINDS[:-1]
KIND_TITLES = {
    "price_cross": "Price crosses a level",
    "pct_move": "% move within a window",
    "zscore": "Z-score beyond a bound",
    "indicator_cross": "Indicator cross",
    "regime_change": "HMM regime change",
    "query_rows": "Saved query returns rows",
}
DIRECTIONS = ("up", "down", "any")
LINES = ("close", "sma", "ema")

Direction = Literal["up", "down", "any"]


def _int(raw: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = raw.get(name, default)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(raw: Mapping[str, Any], name: str, default: float | None = None) -> float:
    value = raw.get(name, default)
    if value is None:
        raise InvalidInput(f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise InvalidInput(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _choice(raw: Mapping[str, Any], name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = raw.get(name, default)
    if value not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return str(value)


@dataclass(frozen=True, slots=True)
class PriceCross:
    level: float
    direction: Direction = "any"


@dataclass(frozen=True, slots=True)
class PctMove:
    window: int
    """Bars back: the move is close[-1] / close[-1 - window] - 1."""
    threshold_pct: float


@dataclass(frozen=True, slots=True)
class ZScore:
    window: int
    bound: float


@dataclass(frozen=True, slots=True)
class IndicatorCross:
    fast: str
    """close, sma or ema."""
    fast_n: int
    slow: str
    """sma or ema."""
    slow_n: int
    direction: Direction = "any"


@dataclass(frozen=True, slots=True)
class RegimeChange:
    n_states: int = 2
    history: int = 500
    """Bars of history the HMM is fitted on (once) and the filter runs over."""
    seed: int = 0


@dataclass(frozen=True, slots=True)
class QueryRows:
    max_rows: int = 100


Params = PriceCross | PctMove | ZScore | IndicatorCross | RegimeChange | QueryRows


def parse_params(kind: str, raw: Mapping[str, Any]) -> Params:
    """Typed parameters of `kind` from a mapping (a form or JSON); InvalidInput says what is
    wrong. Unknown keys are refused so a typo does not pass silently."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if not isinstance(raw, Mapping):
        raise InvalidInput("params must be a mapping of names to values")
    allowed = set(PARAM_NAMES[kind])
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InvalidInput(
            f"{kind} has no parameter {', '.join(map(repr, unknown))}; "
            f"it takes {', '.join(PARAM_NAMES[kind]) or 'none'}"
        )
    if kind == "price_cross":
        direction = _choice(raw, "direction", "any", DIRECTIONS)
        return PriceCross(_float(raw, "level"), direction)  # type: ignore[arg-type]
    if kind == "pct_move":
        threshold = _float(raw, "threshold_pct")
        if threshold <= 0:
            raise InvalidInput(f"threshold_pct must be > 0, got {threshold}")
        return PctMove(_int(raw, "window", 1, 1, 10_000), threshold)
    if kind == "zscore":
        bound = _float(raw, "bound", 2.0)
        if bound <= 0:
            raise InvalidInput(f"bound must be > 0, got {bound}")
        return ZScore(_int(raw, "window", 20, 3, 10_000), bound)
    if kind == "indicator_cross":
        fast = _choice(raw, "fast", "close", LINES)
        slow = _choice(raw, "slow", "sma", LINES[1:])
        fast_n = _int(raw, "fast_n", 1 if fast == "close" else 10, 1, 10_000)
        slow_n = _int(raw, "slow_n", 20, 2, 10_000)
        if fast != "close" and fast_n < 2:
            raise InvalidInput(f"fast_n must be at least 2 for {fast}, got {fast_n}")
        if fast != "close" and fast_n >= slow_n:
            raise InvalidInput(f"fast_n ({fast_n}) must be below slow_n ({slow_n})")
        direction = _choice(raw, "direction", "any", DIRECTIONS)
        return IndicatorCross(fast, fast_n, slow, slow_n, direction)  # type: ignore[arg-type]
    if kind == "regime_change":
        return RegimeChange(
            _int(raw, "n_states", 2, 2, 5),
            _int(raw, "history", 500, 50, 100_000),
            _int(raw, "seed", 0, 0, 2**31 - 1),
        )
    return QueryRows(_int(raw, "max_rows", 100, 1, 10_000))


PARAM_NAMES: dict[str, tuple[str, ...]] = {
    "price_cross": ("level", "direction"),
    "pct_move": ("window", "threshold_pct"),
    "zscore": ("window", "bound"),
    "indicator_cross": ("fast", "fast_n", "slow", "slow_n", "direction"),
    "regime_change": ("n_states", "history", "seed"),
    "query_rows": ("max_rows",),
}


def params_dict(params: Params) -> dict[str, Any]:
    return asdict(params)


def bars_needed(params: Params) -> int:
    """How many of the newest bars an evaluation reads (the previous bar's state included)."""
    if isinstance(params, PctMove):
        return params.window + 2
    if isinstance(params, ZScore):
        return params.window + 1
    if isinstance(params, IndicatorCross):
        return params.slow_n * 4 + 2  # EMA seeds settle; SMA needs slow_n + 1
    if isinstance(params, RegimeChange):
        return params.history + 1
    return 2


@dataclass(frozen=True, slots=True)
class Reading:
    """The rule's state at the last bar, with the number and words a firing reports."""

    state: int
    value: float
    message: str
    data_ts: dt.datetime | None


class RegimeModel:
    """A Gaussian HMM fitted once on a series' log returns (fixed seed); `state_path` runs
    the forward filter (no look-ahead) and takes the most likely state of each row."""

    def __init__(self, closes: np.ndarray[Any, np.dtype[np.float64]], params: RegimeChange):
        from core.analytics.regime import fit_hmm

        returns = np.diff(np.log(closes))
        self.fit = fit_hmm(returns, params.n_states, seed=params.seed, n_init=3)

    def states(self, closes: np.ndarray[Any, np.dtype[np.float64]]) -> np.ndarray[Any, Any]:
        returns = np.diff(np.log(closes))
        states: np.ndarray[Any, Any] = np.argmax(self.fit.filtered(returns), axis=1)
        return states


def _closes(bars: pl.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
    return bars["close"].cast(pl.Float64).to_numpy()


def _line(kind: str, n: int, closes: np.ndarray[Any, np.dtype[np.float64]]) -> Any:
    if kind == "close":
        return closes
    return indicators.sma(closes, n) if kind == "sma" else indicators.ema(closes, n)


def _label(kind: str, n: int) -> str:
    return "close" if kind == "close" else f"{kind.upper()}({n})"


def read(params: Params, bars: pl.DataFrame, model: RegimeModel | None = None) -> Reading | None:
    """The state at the last bar of `bars` (oldest first), or None without enough bars."""
    if bars.height == 0 or isinstance(params, QueryRows):
        return None
    closes = _closes(bars)
    last = float(closes[-1])
    ts = bars["ts"][-1]
    if isinstance(params, PriceCross):
        side = 1 if last >= params.level else -1
        where = "above" if side > 0 else "below"
        return Reading(side, last, f"close {last:.6g} is {where} {params.level:.6g}", ts)
    if isinstance(params, PctMove):
        if closes.size < params.window + 1 or closes[-1 - params.window] == 0:
            return None
        move = (last / float(closes[-1 - params.window]) - 1.0) * 100.0
        state = 0 if abs(move) < params.threshold_pct else (1 if move > 0 else -1)
        text = f"close moved {move:+.3f}% over {params.window} bars"
        return Reading(state, move, f"{text} (threshold {params.threshold_pct:g}%)", ts)
    if isinstance(params, ZScore):
        if closes.size < params.window:
            return None
        window = closes[-params.window :]
        std = float(window.std())
        z = 0.0 if std == 0 else (last - float(window.mean())) / std
        state = 0 if abs(z) < params.bound else (1 if z > 0 else -1)
        text = f"z-score of close over {params.window} bars is {z:+.3f}"
        return Reading(state, z, f"{text} (bound ±{params.bound:g}, close {last:.6g})", ts)
    if isinstance(params, IndicatorCross):
        if closes.size < params.slow_n:
            return None
        fast = float(_line(params.fast, params.fast_n, closes)[-1])
        slow = float(_line(params.slow, params.slow_n, closes)[-1])
        if not (math.isfinite(fast) and math.isfinite(slow)):
            return None
        gap = fast - slow
        names = f"{_label(params.fast, params.fast_n)} {fast:.6g}"
        other = f"{_label(params.slow, params.slow_n)} {slow:.6g}"
        where = "above" if gap >= 0 else "below"
        return Reading(1 if gap >= 0 else -1, gap, f"{names} is {where} {other}", ts)
    if isinstance(params, RegimeChange):
        if model is None or closes.size < 3:
            return None
        state = int(model.states(closes)[-1])
        return Reading(state, float(state), f"HMM filtered regime is state {state}", ts)
    raise AssertionError(f"unhandled params {params!r}")


def fires(params: Params, before: int | None, after: int) -> bool:
    """True when the state moved from `before` into a firing state (a transition)."""
    if before is None or before == after:
        return False
    if isinstance(params, PriceCross | IndicatorCross):
        return params.direction == "any" or (after > 0) == (params.direction == "up")
    if isinstance(params, RegimeChange):
        return True
    return after != 0


@dataclass(frozen=True, slots=True)
class Step:
    state: int | None
    """The state to remember for the next evaluation."""
    fired: Reading | None
    """The reading that fired, or None."""
    suppressed: bool = False
    """It would have fired but the cool-down was running."""


def step(
    params: Params,
    bars: pl.DataFrame,
    before: int | None,
    *,
    last_fired: dt.datetime | None,
    now: dt.datetime,
    cooldown_s: float,
    model: RegimeModel | None = None,
) -> Step:
    """One evaluation: the new state, and the reading when the rule fires now.

    With no remembered state (`before` None, e.g. after a restart) the previous bar's state
    is the reference, so a crossing on the newest bar still fires."""
    now_reading = read(params, bars, model)
    if now_reading is None:
        return Step(before, None)
    if before is None and bars.height > 1:
        previous = read(params, bars.head(bars.height - 1), model)
        before = previous.state if previous is not None else None
    if not fires(params, before, now_reading.state):
        return Step(now_reading.state, None)
    if last_fired is not None and (now - last_fired).total_seconds() < cooldown_s:
        return Step(now_reading.state, None, suppressed=True)
    return Step(now_reading.state, now_reading)


def describe(kind: str, params: Params) -> str:
    """A short line for tables: 'zscore: window=20, bound=2'."""
    inner = ", ".join(f"{k}={v}" for k, v in params_dict(params).items())
    return f"{kind}: {inner}"
