"""Walk-forward validation of the band rule over a parameter grid (docs/compute.md §6.6).

Folds: the first test window starts at bar `train`; each fold trains on the `train` bars before
its test window (rolling) or on every bar from 0 (anchored=True), and the folds step by `test`
bars. A last, shorter test window is kept when at least 2 bars remain.

Per fold: `sweep()` runs the grid in-sample (the Rust path) and the point with the highest
in-sample score (`select`, default the arithmetic Sharpe) is chosen; ties go to the first point
in grid order (window, z_in, z_out ascending), a NaN score never wins, and a fold where no
point has a score takes the first point. The chosen point is then traded out of sample.

Out-of-sample trading of a test window [s, e): `backtest()` on bars s-1 .. e-1 with a rolling
z-score computed from bars s-window+1 .. e-1 only (warm-up from the training data, nothing
after the window). The z of bar s-1 and of bar e-1 is set to NaN, so the position is flat at
the close of bar s-1 (the fold starts flat, equity = capital) and flat again at the close of
bar e-1 (the fold ends flat, the exit paid). Fold returns are the `test` per-bar returns.

The stitched equity compounds the folds: it starts at capital at bar s_0 - 1 and multiplies by
each fold's growth E_end / capital, so its per-bar returns are the folds' returns in order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from numbers import Real
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from core.errors import InvalidInput
from core.series import rolling_zscore

if TYPE_CHECKING:
    from core.analytics.backtest import BacktestResult

__all__ = ["Fold", "Grid", "WalkForward", "walk_forward"]

F64 = NDArray[np.float64]
Select = Literal["sharpe", "sortino", "calmar", "cagr"]
SELECTS = ("sharpe", "sortino", "calmar", "cagr")
# backtest() keywords a walk-forward passes on; the rest would change the rule or the timing
KWARGS = frozenset(
    {"z_stop", "cooldown", "u_max", "units", "fixed_cost", "capital", "periods_per_year", "rf"}
)
MAX_POINTS = 1000


@dataclass(frozen=True, slots=True)
class Grid:
    """The band-rule parameters to search: sorted, distinct values per name."""

    window: tuple[int, ...]
    z_in: tuple[float, ...]
    z_out: tuple[float, ...]

    @classmethod
    def of(cls, grid: Grid | Mapping[str, object]) -> Grid:
        """A Grid from a mapping {"window": (40, 60), "z_in": (1.5, 2.0), "z_out": (0.0,)};
        each value is one number or a sequence of numbers."""
        if isinstance(grid, Grid):
            grid = {"window": grid.window, "z_in": grid.z_in, "z_out": grid.z_out}
        if not isinstance(grid, Mapping):
            raise InvalidInput("grid must be a mapping of window, z_in and z_out to values")
        unknown = sorted(str(k) for k in grid if k not in ("window", "z_in", "z_out"))
        if unknown:
            raise InvalidInput(f"grid has unknown keys {unknown}; use window, z_in and z_out")
        missing = [k for k in ("window", "z_in", "z_out") if k not in grid]
        if missing:
            raise InvalidInput(f"grid needs values for {', '.join(missing)}")
        windows = _values("window", grid["window"])
        if any(not float(v).is_integer() or v < 3 for v in windows):
            raise InvalidInput(f"grid window values must be whole numbers >= 3, got {windows}")
        z_in = _values("z_in", grid["z_in"])
        if any(v <= 0 for v in z_in):
            raise InvalidInput(f"grid z_in values must be > 0, got {z_in}")
        out = cls(tuple(int(v) for v in windows), z_in, _values("z_out", grid["z_out"]))
        if not out.points():
            raise InvalidInput(
                f"grid has no point with z_out < z_in (z_in {out.z_in}, z_out {out.z_out}); "
                "the exit band must lie inside the entry band"
            )
        if len(out.points()) > MAX_POINTS:
            raise InvalidInput(f"grid has {len(out.points())} points; the limit is {MAX_POINTS}")
        return out

    def points(self) -> list[tuple[int, float, float]]:
        """(window, z_in, z_out) in the order sweep() returns them; z_out >= z_in skipped."""
        return [
            (w, zi, zo) for w in self.window for zi in self.z_in for zo in self.z_out if zo < zi
        ]


def _values(name: str, raw: object) -> tuple[float, ...]:
    items = (
        [raw]
        if isinstance(raw, Real | str) or not isinstance(raw, Sequence | np.ndarray)
        else list(raw)
    )
    if not items:
        raise InvalidInput(f"grid {name} is empty; give at least one value")
    for v in items:
        if isinstance(v, bool) or not isinstance(v, Real) or not math.isfinite(float(v)):
            raise InvalidInput(f"grid {name} values must be finite numbers, got {v!r}")
    return tuple(sorted({float(v) for v in items}))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Fold:
    """One fold. Index ranges are half-open [start, end); the *_time fields are the timestamps
    of the first and last bar of each range (None without timestamps)."""

    train_start: int
    train_end: int
    test_start: int
    test_end: int
    train_start_time: object | None
    train_end_time: object | None
    test_start_time: object | None
    test_end_time: object | None
    window: int
    z_in: float
    z_out: float
    is_score: float
    is_sharpe: float
    oos_sharpe: float
    oos_return: float
    oos_max_drawdown: float
    trades: int


@dataclass(frozen=True, slots=True, eq=False)
class WalkForward:
    """Folds, the stitched out-of-sample equity and its statistics, and the robustness surface.

    equity[0] is the capital at bar bars[0] (the last training bar of fold 0); returns are
    equity's per-bar returns (= the folds' returns in order). gap = is_sharpe_mean - oos_sharpe.
    deflated_sharpe is of `returns` with n_trials grid points and sharpe_var the mean over folds
    of the variance (ddof=1) of the grid's in-sample per-period Sharpes. heatmap has one row per
    grid point traded out of sample with fixed parameters over all folds."""

    folds: tuple[Fold, ...]
    equity: F64
    bars: NDArray[np.int64]
    times: NDArray[Any] | None
    returns: F64
    oos_sharpe: float
    oos_max_drawdown: float
    oos_return: float
    is_sharpe_mean: float
    gap: float
    deflated_sharpe: float
    n_trials: int
    sharpe_var: float
    heatmap: pl.DataFrame
    grid: Grid
    train: int
    test: int
    anchored: bool
    select: str

    def folds_frame(self) -> pl.DataFrame:
        """The folds as a table, one row per fold."""
        names = [x.name for x in fields(Fold)]
        rows = [
            {"fold": i + 1} | {k: getattr(f, k) for k in names} for i, f in enumerate(self.folds)
        ]
        return pl.DataFrame(rows, infer_schema_length=None)


def _count(name: str, v: object, low: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
        raise InvalidInput(f"{name} must be a whole number of bars >= {low}, got {v!r}")
    return int(v)


def _number(kwargs: Mapping[str, object], key: str, default: float) -> float:
    v = kwargs.get(key, default)
    x = math.nan if isinstance(v, bool) or not isinstance(v, Real) else float(v)
    if not (math.isfinite(x) and (x > 0 or key == "rf")):
        raise InvalidInput(
            f"{key} must be a finite number{'' if key == 'rf' else ' > 0'}, got {v!r}"
        )
    return x


def fold_bounds(n: int, train: int, test: int, anchored: bool) -> list[tuple[int, int, int, int]]:
    """(train_start, train_end, test_start, test_end) of each fold over n bars."""
    out = []
    start = train
    while n - start >= 2:
        end = min(start + test, n)
        out.append((0 if anchored else start - train, start, start, end))
        start += test
    return out


def oos_run(
    prices: F64,
    weights: F64,
    window: int,
    z_in: float,
    z_out: float,
    start: int,
    end: int,
    cost: object,
    kwargs: Mapping[str, Any],
) -> BacktestResult:
    """backtest() of one point on the test window [start, end), flat at both ends."""
    from core.analytics.backtest import backtest

    spread = prices[start - window + 1 : end] @ weights
    z = np.r_[np.nan, rolling_zscore(spread, window)[window - 1 : -1], np.nan]
    rows = prices[start - 1 : end]
    return backtest(rows, weights, z=z, z_in=z_in, z_out=z_out, cost=cost, **kwargs)  # type: ignore[arg-type]


def _stitch(growths: Sequence[F64], capital: float) -> F64:
    """Compound fold equity paths (each divided by capital) into one curve from capital."""
    out = [np.array([capital])]
    level = capital
    for g in growths:
        out.append(level * g[1:])
        level = float(out[-1][-1])
    return np.concatenate(out)


def _pick(rows: list[dict[str, float]], select: str) -> int:
    """Index of the highest score, the first of equals; NaN never wins; 0 if all NaN."""
    best, best_score = 0, -math.inf
    for i, row in enumerate(rows):
        score = row[select]
        if score > best_score:  # False for NaN
            best, best_score = i, score
    return best


def walk_forward(
    prices: ArrayLike,
    grid: Grid | Mapping[str, object],
    train: int,
    test: int,
    anchored: bool = False,
    *,
    weights: ArrayLike | None = None,
    cost: float | ArrayLike = 5e-4,
    select: Select = "sharpe",
    timestamps: ArrayLike | None = None,
    workers: int | None = None,
    **backtest_kwargs: Any,
) -> WalkForward:
    """Walk-forward validation of the band rule (module docstring): per fold, the best grid point
    in-sample, traded out of sample; the stitched out-of-sample equity and its Sharpe, drawdown,
    in-sample vs out-of-sample gap and deflated Sharpe; and the out-of-sample Sharpe of every
    grid point with fixed parameters (`heatmap`). backtest_kwargs: z_stop, cooldown, u_max,
    units, fixed_cost, capital, periods_per_year, rf."""
    from core.analytics.backtest import _prices, deflated_sharpe, equity_metrics, sweep

    p = _prices(prices)
    n_bars, n_legs = p.shape
    w = np.ones(n_legs) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n_legs,) or not np.all(np.isfinite(w)) or not np.any(w != 0):
        raise InvalidInput(f"weights must be {n_legs} finite numbers, not all zero")
    g = Grid.of(grid)
    train = _count("train", train, 1)
    test = _count("test", test, 2)
    if not isinstance(anchored, bool):
        raise InvalidInput(f"anchored must be True or False, got {anchored!r}")
    if select not in SELECTS:
        raise InvalidInput(f"select must be one of {', '.join(SELECTS)}, got {select!r}")
    if train < max(g.window) + 2:
        raise InvalidInput(
            f"train ({train} bars) must be at least the largest window + 2 "
            f"({max(g.window)} + 2) so every window has an in-sample z-score"
        )
    if n_bars < train + test:
        raise InvalidInput(f"too few rows: {n_bars} bars for train {train} + test {test}")
    extra = sorted(set(backtest_kwargs) - KWARGS)
    if extra:
        raise InvalidInput(
            f"walk_forward does not take {', '.join(extra)}; it passes on "
            f"{', '.join(sorted(KWARGS))}"
        )
    rates = np.asarray(cost, dtype=np.float64)
    if rates.ndim > 1 or not np.all(np.isfinite(rates)) or np.any(rates < 0):
        raise InvalidInput(f"cost must be one rate >= 0 or one per leg, got {cost!r}")
    capital = _number(backtest_kwargs, "capital", 1e6)
    per_year = _number(backtest_kwargs, "periods_per_year", 252.0)
    rf = _number(backtest_kwargs, "rf", 0.0)
    times = None if timestamps is None else np.asarray(timestamps)
    if times is not None and times.shape != (n_bars,):
        raise InvalidInput(f"timestamps must have one value per bar ({n_bars})")

    points = g.points()
    bounds = fold_bounds(n_bars, train, test, anchored)
    folds: list[Fold] = []
    chosen_growth: list[F64] = []
    chosen_returns: list[F64] = []
    variances: list[float] = []
    growth: list[list[F64]] = [[] for _ in points]
    is_sharpe = np.empty((len(bounds), len(points)))
    picks: list[int] = []
    for k, (a, b, s, e) in enumerate(bounds):
        rows = sweep(
            p[a:b],
            w,
            windows=g.window,
            z_ins=g.z_in,
            z_outs=g.z_out,
            costs=(cost,),  # type: ignore[arg-type]
            workers=workers,
            **backtest_kwargs,
        )
        is_sharpe[k] = [row["sharpe"] for row in rows]
        per_period = is_sharpe[k][np.isfinite(is_sharpe[k])] / math.sqrt(per_year)
        variances.append(float(np.var(per_period, ddof=1)) if per_period.size > 1 else 0.0)
        pick = _pick(rows, select)
        picks.append(pick)
        runs = [oos_run(p, w, *point, s, e, cost, backtest_kwargs) for point in points]
        for j, res in enumerate(runs):
            growth[j].append(res.equity / capital)
        chosen = runs[pick]
        if np.any(chosen.equity <= 0):
            raise InvalidInput(
                f"fold {k + 1}: the out-of-sample equity fell to zero or below; "
                "lower u_max or raise capital"
            )
        chosen_growth.append(chosen.equity / capital)
        chosen_returns.append(chosen.returns)
        win, zi, zo = points[pick]
        folds.append(
            Fold(
                train_start=a,
                train_end=b,
                test_start=s,
                test_end=e,
                train_start_time=_time(times, a),
                train_end_time=_time(times, b - 1),
                test_start_time=_time(times, s),
                test_end_time=_time(times, e - 1),
                window=win,
                z_in=zi,
                z_out=zo,
                is_score=float(rows[pick][select]),
                is_sharpe=float(rows[pick]["sharpe"]),
                oos_sharpe=float(chosen.metrics["sharpe"]),
                oos_return=float(chosen.equity[-1] / capital - 1.0),
                oos_max_drawdown=float(chosen.metrics["max_drawdown"]),
                trades=int(chosen.metrics["round_trips"]),
            )
        )

    equity = _stitch(chosen_growth, capital)
    returns = np.concatenate(chosen_returns)
    met = equity_metrics(equity, per_year, rf)
    bars = np.arange(bounds[0][2] - 1, bounds[-1][3], dtype=np.int64)
    fold_is = np.array([f.is_sharpe for f in folds])
    is_mean = float(np.nanmean(fold_is)) if np.isfinite(fold_is).any() else math.nan
    sharpe_var = float(np.mean(variances))
    n_trials = len(points)
    heat = _heatmap(points, growth, is_sharpe, picks, capital, per_year, rf)
    return WalkForward(
        folds=tuple(folds),
        equity=equity,
        bars=bars,
        times=None if times is None else times[bars],
        returns=returns,
        oos_sharpe=float(met["sharpe"]),
        oos_max_drawdown=float(met["max_drawdown"]),
        oos_return=float(equity[-1] / capital - 1.0),
        is_sharpe_mean=is_mean,
        gap=is_mean - float(met["sharpe"]),
        deflated_sharpe=deflated_sharpe(returns, n_trials, sharpe_var, rf)
        if returns.size >= 3
        else math.nan,
        n_trials=n_trials,
        sharpe_var=sharpe_var,
        heatmap=heat,
        grid=g,
        train=train,
        test=test,
        anchored=anchored,
        select=select,
    )


def _time(times: NDArray[Any] | None, i: int) -> object | None:
    """The timestamp of bar i as a Python value (datetime64 as datetime, to the microsecond)."""
    if times is None:
        return None
    value: object = times[i]
    if isinstance(value, np.datetime64):
        value = value.astype("datetime64[us]")
    return value.item() if isinstance(value, np.generic) else value


def _heatmap(
    points: list[tuple[int, float, float]],
    growth: list[list[F64]],
    is_sharpe: F64,
    picks: list[int],
    capital: float,
    per_year: float,
    rf: float,
) -> pl.DataFrame:
    """Per grid point, fixed over all folds: stitched out-of-sample Sharpe and return, the mean
    in-sample Sharpe, and how many folds chose it."""
    from core.analytics.backtest import equity_metrics

    rows = []
    for j, (win, zi, zo) in enumerate(points):
        eq = _stitch(growth[j], capital)
        ok = bool(np.all(eq > 0))
        col = is_sharpe[:, j]
        rows.append(
            {
                "window": win,
                "z_in": zi,
                "z_out": zo,
                "oos_sharpe": equity_metrics(eq, per_year, rf)["sharpe"] if ok else math.nan,
                "oos_return": float(eq[-1] / capital - 1.0),
                "is_sharpe_mean": float(np.nanmean(col)) if np.isfinite(col).any() else math.nan,
                "times_chosen": picks.count(j),
            }
        )
    return pl.DataFrame(rows, schema_overrides={"window": pl.Int64, "times_chosen": pl.Int64})
