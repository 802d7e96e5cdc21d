"""Typed runs of a mean-reversion basket with given weights: one backtest, a band-parameter
sweep, and a walk-forward validation (kinds "meanrev_backtest", "meanrev_sweep",
"walk_forward").

All three take the input bars (one frame per name, in order) and their params; the basket is
prepared as `meanrev_basket.prepare_basket` does. Band sizes follow the Mean reversion page:
a band backtest holds `capital` of gross notional at entry; sweeps and walk-forwards hold the
spread units whose average gross notional is `capital` (`unit_size`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from core.analytics import backtest as bt
from core.analytics.runs import RunResult, StudyKind, register
from core.analytics.runs.meanrev_basket import (
    Basket,
    BasketParams,
    check_finite,
    params_from_json,
    params_to_json,
    prepare_basket,
    unit_size,
)
from core.errors import InvalidInput

__all__ = [
    "BacktestParams",
    "BacktestRun",
    "SweepParams",
    "SweepRun",
    "WalkForwardParams",
    "WalkForwardRun",
    "basket_backtest",
    "run_backtest",
    "run_sweep",
    "run_walk_forward",
]

PAGE = "pages/mean_reversion.py"
Rule = Literal["bands", "cara"]
ZScore = Literal["rolling", "ou"]
REFIT_EVERY = 21


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeParams(BasketParams):
    """A basket with fixed weights (one per name, price units), its costs and capital."""

    weights: tuple[float, ...]
    cost_bp: float = 5.0
    capital: float = 1e6

    def __post_init__(self) -> None:
        BasketParams.__post_init__(self)
        if len(self.weights) != len(self.names):
            raise InvalidInput(f"{len(self.weights)} weights for {len(self.names)} series")
        check_finite("cost_bp", self.cost_bp, low=0.0)
        check_finite("capital", self.capital, low=0.0, above=True)

    def w(self) -> np.ndarray:
        return np.asarray(self.weights, dtype=np.float64)


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestParams(TradeParams):
    """One backtest. bands: enter at |z| >= z_in, exit at |z| <= z_out, `capital` of gross
    notional per entry, z from `zscore` (rolling mean/sd over `window`, or a rolling OU fit
    over max(window, 30) bars). cara: the myopic CARA rule with absolute risk aversion
    `gamma`, z from a rolling OU fit over max(window, 252) bars, clipped to +-2 band sizes."""

    rule: Rule = "bands"
    zscore: ZScore = "rolling"
    window: int = 60
    z_in: float = 2.0
    z_out: float = 0.5
    gamma: float = 1.0

    def __post_init__(self) -> None:
        TradeParams.__post_init__(self)
        check_finite("gamma", self.gamma, low=0.0, above=True)


def basket_backtest(basket: Basket, p: BacktestParams) -> bt.BacktestResult:
    """The backtest of `p` on a prepared basket (the kernel call the page always made)."""
    w = p.w()
    common: dict[str, Any] = {
        "cost": p.cost_bp / 1e4,
        "capital": p.capital,
        "periods_per_year": basket.periods_per_year,
        "timestamps": basket.ts,
    }
    if p.rule == "bands":
        return bt.backtest(
            basket.closes,
            w,
            rule="bands",
            zscore=p.zscore,
            window=p.window,
            ou_window=max(p.window, 30),
            z_in=p.z_in,
            z_out=p.z_out,
            size="notional",
            gross=p.capital,
            **common,
        )
    units = unit_size(basket.closes, w, p.capital)
    return bt.backtest(
        basket.closes,
        w,
        rule="cara",
        zscore="ou",
        window=p.window,
        ou_window=max(p.window, 252),
        gamma=p.gamma,
        cara_horizon="myopic",
        u_max=2.0 * units,
        **common,
    )


def backtest_frame(basket: Basket, res: bt.BacktestResult) -> pl.DataFrame:
    """Per-bar series of one backtest."""
    return pl.DataFrame(
        {
            "ts": basket.times,
            "spread": res.spread,
            "z": res.z,
            "position": res.positions,
            "pnl": res.pnl,
            "cost": res.cost,
            "notional": res.notional,
            "equity": res.equity,
        }
    )


def trips_frame(res: bt.BacktestResult) -> pl.DataFrame:
    """Round trips: entry and exit bar, PnL."""
    return pl.DataFrame(
        {
            "entry": np.asarray(res.trips.get("entry", []), dtype=np.int64),
            "exit": np.asarray(res.trips.get("exit", []), dtype=np.int64),
            "pnl": np.asarray(res.trips.get("pnl", []), dtype=np.float64),
        }
    )


@dataclass(frozen=True, slots=True, eq=False)
class BacktestRun:
    """One backtest of a basket: its prepared basket and the kernel's result."""

    config: BacktestParams
    basket: Basket
    result: bt.BacktestResult
    kind: str = field(default="meanrev_backtest", init=False)

    def params(self) -> dict[str, Any]:
        return params_to_json(self.config)

    def metrics(self) -> dict[str, float]:
        met = self.result.metrics
        first = ("sharpe", "max_drawdown", "final_equity")  # the Studies page's key metrics
        return {k: float(met[k]) for k in (*first, *(k for k in met if k not in first))}

    def frames(self) -> dict[str, pl.DataFrame]:
        return {
            "series": backtest_frame(self.basket, self.result),
            "trips": trips_frame(self.result),
        }


def run_backtest(bars: Sequence[pl.DataFrame], params: BacktestParams) -> BacktestRun:
    """Backtest the basket of `bars` with the weights and rule of `params`."""
    basket = prepare_basket(bars, params.basket)
    return BacktestRun(params, basket, basket_backtest(basket, params))


# --- sweep -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SweepParams(TradeParams):
    """Band-rule backtests over windows x z_ins x z_outs (points with z_out >= z_in skipped),
    rolling z-score, fixed size: the spread units of `unit_size`."""

    windows: tuple[int, ...] = (40, 60, 120)
    z_ins: tuple[float, ...] = (1.5, 2.0, 2.5)
    z_outs: tuple[float, ...] = (0.0, 0.5, 1.0)


@dataclass(frozen=True, slots=True, eq=False)
class SweepRun:
    """A band-parameter sweep: one row of parameters and metrics per grid point."""

    config: SweepParams
    grid: pl.DataFrame  # one row per point: window, z_in, z_out, cost and the metrics
    kind: str = field(default="meanrev_sweep", init=False)

    def params(self) -> dict[str, Any]:
        return params_to_json(self.config)

    def best(self) -> dict[str, Any]:
        """The row with the highest Sharpe (the first of equals; NaN never wins)."""
        ok = self.grid.filter(pl.col("sharpe").is_not_nan())
        if ok.height == 0:
            return self.grid.row(0, named=True)
        return ok.row(int(ok["sharpe"].arg_max() or 0), named=True)

    def metrics(self) -> dict[str, float]:
        best = self.best()
        return {
            "best_sharpe": float(best["sharpe"]),
            "best_deflated_sharpe": float(best["deflated_sharpe"]),
            "points": float(self.grid.height),
            "n_trials": float(best["n_trials"]),
            "best_window": float(best["window"]),
            "best_z_in": float(best["z_in"]),
            "best_z_out": float(best["z_out"]),
        }

    def frames(self) -> dict[str, pl.DataFrame]:
        return {"grid": self.grid}


def run_sweep(bars: Sequence[pl.DataFrame], params: SweepParams) -> SweepRun:
    """The band-parameter sweep of the basket of `bars` (core.analytics.backtest.sweep)."""
    basket = prepare_basket(bars, params.basket)
    w = params.w()
    rows = bt.sweep(
        basket.closes,
        w,
        windows=params.windows,
        z_ins=params.z_ins,
        z_outs=params.z_outs,
        costs=(params.cost_bp / 1e4,),
        u_max=unit_size(basket.closes, w, params.capital),
        capital=params.capital,
        periods_per_year=basket.periods_per_year,
        timestamps=basket.ts,
    )
    if not rows:
        raise InvalidInput("the sweep has no point with z_out < z_in")
    return SweepRun(params, pl.DataFrame(rows))


# --- walk-forward ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class WalkForwardParams(TradeParams):
    """Walk-forward of the band rule over the grid windows x z_ins x z_outs: `train` bars to
    choose, `test` bars to trade, rolling or anchored (expanding) training windows."""

    windows: tuple[int, ...] = (40, 60, 120)
    z_ins: tuple[float, ...] = (1.5, 2.0, 2.5)
    z_outs: tuple[float, ...] = (0.0, 0.5, 1.0)
    train: int = 504
    test: int = 126
    anchored: bool = False

    def grid(self) -> dict[str, tuple[float, ...] | tuple[int, ...]]:
        return {"window": self.windows, "z_in": self.z_ins, "z_out": self.z_outs}


@dataclass(frozen=True, slots=True, eq=False)
class WalkForwardRun:
    """A walk-forward validation (core.analytics.walkforward.WalkForward)."""

    config: WalkForwardParams
    walk: bt.WalkForward
    kind: str = field(default="walk_forward", init=False)

    def params(self) -> dict[str, Any]:
        return params_to_json(self.config)

    def metrics(self) -> dict[str, float]:
        wf = self.walk
        return {
            "oos_sharpe": wf.oos_sharpe,
            "deflated_sharpe": wf.deflated_sharpe,
            "gap": wf.gap,
            "oos_max_drawdown": wf.oos_max_drawdown,
            "oos_return": wf.oos_return,
            "is_sharpe_mean": wf.is_sharpe_mean,
            "n_trials": float(wf.n_trials),
            "sharpe_var": wf.sharpe_var,
            "folds": float(len(wf.folds)),
        }

    def frames(self) -> dict[str, pl.DataFrame]:
        wf = self.walk
        equity = pl.DataFrame({"bar": wf.bars, "equity": wf.equity})
        if wf.times is not None:
            equity = equity.with_columns(pl.Series("ts", wf.times))
        return {"folds": wf.folds_frame(), "equity": equity, "heatmap": wf.heatmap}


def run_walk_forward(bars: Sequence[pl.DataFrame], params: WalkForwardParams) -> WalkForwardRun:
    """Walk-forward validation of the band rule on the basket of `bars`
    (core.analytics.walkforward.walk_forward), sized and costed as the page's backtest."""
    basket = prepare_basket(bars, params.basket)
    w = params.w()
    wf = bt.walk_forward(
        basket.closes,
        params.grid(),
        params.train,
        params.test,
        params.anchored,
        weights=w,
        cost=params.cost_bp / 1e4,
        timestamps=basket.ts,
        u_max=unit_size(basket.closes, w, params.capital),
        capital=params.capital,
        periods_per_year=basket.periods_per_year,
    )
    return WalkForwardRun(params, wf)


def _rerun_backtest(bars: Sequence[pl.DataFrame], params: Mapping[str, Any]) -> RunResult:
    return run_backtest(bars, params_from_json(BacktestParams, params))


def _rerun_sweep(bars: Sequence[pl.DataFrame], params: Mapping[str, Any]) -> RunResult:
    return run_sweep(bars, params_from_json(SweepParams, params))


def _rerun_walk_forward(bars: Sequence[pl.DataFrame], params: Mapping[str, Any]) -> RunResult:
    return run_walk_forward(bars, params_from_json(WalkForwardParams, params))


register(StudyKind("meanrev_backtest", "Mean-reversion backtest", PAGE, _rerun_backtest))
register(StudyKind("meanrev_sweep", "Mean-reversion parameter sweep", PAGE, _rerun_sweep))
register(StudyKind("walk_forward", "Walk-forward validation", PAGE, _rerun_walk_forward))
