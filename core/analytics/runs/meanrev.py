"""The Mean reversion study as one typed run (kind "meanrev_study"): align the series, infer
the annualisation, choose a sparse mean-reverting portfolio, fit the spread as an OU process,
test it (ADF), draw z-score bands, and backtest the band rule and the CARA rule (gamma
calibrated from the fit), plus the power-utility path when asked.

Importing this module also registers the basket runs of `meanrev_backtest` (backtest, sweep,
walk-forward), so `study_kinds()` finds every mean-reversion kind.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

from core.analytics import backtest as bt
from core.analytics import meanrev as mr
from core.analytics.runs import RunResult, StudyKind, register
from core.analytics.runs.meanrev_backtest import (
    PAGE,
    REFIT_EVERY,
    BacktestParams,
    BacktestRun,
    Rule,
    SweepParams,
    SweepRun,
    WalkForwardParams,
    WalkForwardRun,
    ZScore,
    backtest_frame,
    basket_backtest,
    run_backtest,
    run_sweep,
    run_walk_forward,
    trips_frame,
)
from core.analytics.runs.meanrev_basket import (
    Basket,
    BasketParams,
    check_finite,
    params_from_json,
    params_to_json,
    prepare_basket,
    series_names,
    unit_size,
)
from core.errors import InvalidInput

__all__ = [
    "BacktestParams",
    "BacktestRun",
    "BasketParams",
    "MeanRevParams",
    "MeanReversionStudy",
    "Method",
    "Rule",
    "SweepParams",
    "SweepRun",
    "Utility",
    "WalkForwardParams",
    "WalkForwardRun",
    "ZScore",
    "run_backtest",
    "run_meanrev_study",
    "run_sweep",
    "run_walk_forward",
    "series_names",
]

KIND = "meanrev_study"
Method = Literal["greedy", "truncated_power", "exhaustive"]
Utility = Literal["cara", "power"]


@dataclass(frozen=True, slots=True, kw_only=True)
class MeanRevParams(BasketParams):
    """Everything the Mean reversion page's form sets.

    k assets chosen by `method` (optionally refined by 1-in-1-out swaps); z-score `zscore`
    over `window` bars; bands enter at |z| >= z_in and exit at |z| <= z_out; cost per leg in
    bp; `capital` of gross notional per band entry; `aversion` scales the calibrated CARA
    gamma; `utility` "power" adds the power-utility path (exponent power_gamma < 1, initial
    wealth wealth0)."""

    k: int = 2
    method: Method = "greedy"
    swaps: bool = False
    zscore: ZScore = "rolling"
    window: int = 60
    z_in: float = 2.0
    z_out: float = 0.5
    cost_bp: float = 5.0
    capital: float = 1e6
    aversion: float = 1.0
    utility: Utility = "cara"
    power_gamma: float = -1.0
    wealth0: float = 1e6

    def __post_init__(self) -> None:
        BasketParams.__post_init__(self)
        check_finite("cost_bp", self.cost_bp, low=0.0)
        check_finite("capital", self.capital, low=0.0, above=True)
        check_finite("aversion", self.aversion, low=0.0, above=True)
        check_finite("wealth0", self.wealth0, low=0.0, above=True)
        if not (math.isfinite(self.power_gamma) and self.power_gamma < 1.0):
            raise InvalidInput(f"power_gamma must be below 1, got {self.power_gamma!r}")

    def backtest(
        self, weights: np.ndarray, rule: Rule = "bands", gamma: float = 1.0
    ) -> BacktestParams:
        """The backtest of this study's basket with `weights` (cara with `gamma`)."""
        return BacktestParams(
            names=self.names,
            use_log=self.use_log,
            last_n=self.last_n,
            weights=tuple(float(v) for v in weights),
            rule=rule,
            zscore=self.zscore,
            window=self.window,
            z_in=self.z_in,
            z_out=self.z_out,
            cost_bp=self.cost_bp,
            capital=self.capital,
            gamma=gamma,
        )


@dataclass(frozen=True, slots=True, eq=False)
class MeanReversionStudy:
    """A Mean reversion study: the basket, its portfolio and fits, bands and backtests."""

    config: MeanRevParams
    basket: Basket
    portfolio: mr.SparsePortfolio
    fit: mr.OUFit
    adf: mr.ADFResult
    spread: np.ndarray
    z: np.ndarray  # z-score of the spread from data up to t
    mu: np.ndarray  # the band centre
    sd: np.ndarray  # the band scale
    bands: bt.BacktestResult
    cara: bt.BacktestResult | None  # None when the spread is not mean-reverting
    gamma: float  # the CARA risk aversion used (NaN without a CARA rule)
    units: float  # spread units whose average gross notional is the capital
    power: mr.PowerPath | None  # with utility "power" on a mean-reverting spread
    bars: tuple[pl.DataFrame, ...]  # the input bars, as given (for runs made from this one)
    kind: str = field(default=KIND, init=False)

    def params(self) -> dict[str, Any]:
        return params_to_json(self.config)

    def metrics(self) -> dict[str, float]:
        fit, adf, port = self.fit, self.adf, self.portfolio
        out = {  # the first three are the Studies page's key metrics
            "bands_sharpe": self.bands.metrics["sharpe"],
            "nu": port.nu,
            "half_life_bars": fit.half_life_bars if fit.mean_reverting else math.nan,
            "bars": float(self.basket.closes.shape[0]),
            "dropped": float(self.basket.dropped),
            "periods_per_year": self.basket.periods_per_year,
            "condition_number": port.condition_number,
            "theta": fit.theta,
            "mu": fit.mu,
            "sigma": fit.sigma,
            "adf_stat": adf.stat,
            "adf_p_value": adf.p_value,
            "gamma": self.gamma,
            "units": self.units,
        }
        runs = {"bands": self.bands, "cara": self.cara}
        for name, run in runs.items():
            for key, value in (run.metrics if run is not None else {}).items():
                out[f"{name}_{key}"] = float(value)
        if self.power is not None:
            out["power_final_wealth"] = float(self.power.wealth[-1])
        return {k: float(v) for k, v in out.items()}

    def frames(self) -> dict[str, pl.DataFrame]:
        names = list(self.basket.names)
        port, fit = self.portfolio, self.fit
        series = pl.DataFrame(
            {"ts": self.basket.times, "spread": self.spread, "z": self.z}
        ).with_columns(pl.Series("mu", self.mu), pl.Series("sd", self.sd))
        out = {
            "series": series,
            "weights": pl.DataFrame({"asset": names, "weight": port.weights}),
            "path": pl.DataFrame(
                {
                    "k": list(range(1, len(port.path) + 1)),
                    "nu": [float(nu) for _, nu in port.path],
                    "assets": [", ".join(names[i] for i in s) for s, _ in port.path],
                }
            ),
            "ou": pl.DataFrame(
                {
                    "name": ["theta", "mu", "sigma", "half_life_years", "half_life_bars", "b"],
                    "estimate": [
                        fit.theta,
                        fit.mu,
                        fit.sigma,
                        fit.half_life_years,
                        fit.half_life_bars,
                        fit.b,
                    ],
                    "std_error": [
                        fit.se.get(k, math.nan) if k else math.nan
                        for k in ("theta", "mu", "", "half_life_years", "", "b")
                    ],
                }
            ),
            "adf": pl.DataFrame(
                {"level": list(self.adf.crit), "critical_value": list(self.adf.crit.values())}
            ),
            "bands": backtest_frame(self.basket, self.bands),
            "bands_trips": trips_frame(self.bands),
        }
        if self.cara is not None:
            out["cara"] = backtest_frame(self.basket, self.cara)
            out["cara_trips"] = trips_frame(self.cara)
        if self.power is not None:
            out["power"] = pl.DataFrame(
                {"ts": self.basket.times, "units": self.power.units, "wealth": self.power.wealth}
            )
        joh = port.johansen
        if joh is not None:
            out["johansen"] = pl.DataFrame(
                {
                    "rank": list(range(joh.eig.size)),
                    "eigenvalue": joh.eig,
                    "trace": joh.trace_stat,
                    "trace_95": joh.trace_crit[:, 1],
                    "max_eig": joh.max_eig_stat,
                    "max_eig_95": joh.max_eig_crit[:, 1],
                }
            )
        return out


def calibrated_gamma(fit: mr.OUFit, units: float, aversion: float) -> float:
    """The CARA gamma that holds `units` spread units at a one-sigma deviation, scaled."""
    return float(np.sqrt(fit.theta / 2.0) / (fit.sigma * units) * aversion)


def run_meanrev_study(bars: Sequence[pl.DataFrame], params: MeanRevParams) -> MeanReversionStudy:
    """The Mean reversion study of `bars` (one frame per name in params.names, in order)."""
    basket = prepare_basket(bars, params.basket)
    closes, dt = basket.closes, basket.dt
    port = mr.sparse_portfolio(closes, params.k, params.method, swaps=params.swaps, dt=dt)
    w = port.weights
    spread = closes @ w
    fit = mr.fit_ou(spread, dt)
    adf = mr.adf(spread, regression="c")
    z, mu, sd = bt.signal_zscore(
        spread,
        params.zscore,
        window=params.window,
        ou_window=max(params.window, 30),
        refit_every=REFIT_EVERY,
        dt=dt,
    )
    bands = basket_backtest(basket, params.backtest(w))
    units = unit_size(closes, w, params.capital)
    gamma = math.nan
    cara = None
    power = None
    if fit.mean_reverting:
        gamma = calibrated_gamma(fit, units, params.aversion)
        cara = basket_backtest(basket, params.backtest(w, "cara", gamma))
        if params.utility == "power":
            power = mr.power_position_path(
                spread,
                np.arange(spread.size) * dt,
                theta=fit.theta,
                mu=fit.mu,
                sigma=fit.sigma,
                gamma=params.power_gamma,
                w0=params.wealth0,
            )
    return MeanReversionStudy(
        params,
        basket,
        port,
        fit,
        adf,
        spread,
        z,
        mu,
        sd,
        bands,
        cara,
        gamma,
        units,
        power,
        tuple(bars),
    )


def _rerun(bars: Sequence[pl.DataFrame], params: Mapping[str, Any]) -> RunResult:
    return run_meanrev_study(bars, params_from_json(MeanRevParams, params))


register(StudyKind(KIND, "Mean reversion study", PAGE, _rerun))
