"""Chiarella lab studies: a simulation of the FW (2012) DCA-HPM market (kind
"chiarella_sim") and its calibration to a market by simulated moments ("chiarella_fit").

`run_chiarella_simulation(params)` simulates one path and its stylized facts;
`run_chiarella_fit(bars, params)` calibrates on the percent log-returns of `bars`. The page
runs the calibration in the background (`start_chiarella_fit`) and turns the finished
calibration into the same typed result with `chiarella_fit_run`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from core.analytics import chiarella as ch
from core.analytics.inputs import check_seed
from core.analytics.optimize import Progress
from core.analytics.runs import RunResult, StudyKind, check_keys, register
from core.errors import InvalidInput

__all__ = [
    "FIT_KIND",
    "RULE_CHOICES",
    "SIM_KIND",
    "ChiarellaFitParams",
    "ChiarellaFitRun",
    "ChiarellaSimulationParams",
    "ChiarellaSimulationRun",
    "chiarella_fit_run",
    "market_returns",
    "run_chiarella_fit",
    "run_chiarella_simulation",
    "start_chiarella_fit",
]

SIM_KIND = "chiarella_sim"
FIT_KIND = "chiarella_fit"
RULE_CHOICES: tuple[ch.Rule, ...] = ("fw_linear", "chiarella_tanh", "ma_tanh")
EXPLODED = "The simulated path exploded (|log-price| > 1000); lower χ or raise φ."
F64 = NDArray[np.float64]


def model_params(data: object) -> ch.ChiarellaParams:
    """Model parameters from their JSON form (`ChiarellaParams.as_dict()`)."""
    if not isinstance(data, Mapping):
        raise InvalidInput("model must be a mapping of Chiarella parameters")
    known = {f.name for f in fields(ch.ChiarellaParams)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidInput(f"unknown Chiarella parameter(s) {unknown}")
    return replace(ch.ChiarellaParams(), **dict(data))


def _whole(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}")
    if not low <= int(value) <= high:
        raise InvalidInput(f"{name} must be from {low} to {high}, got {value}")
    return int(value)


# --- simulation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChiarellaSimulationParams:
    """One SIMULATED path of `n_steps` days after burn-in, drawn from `seed`."""

    model: ch.ChiarellaParams = field(default_factory=ch.ChiarellaParams)
    n_steps: int = 5030
    seed: int = 1

    def __post_init__(self) -> None:
        _whole("n_steps", self.n_steps, 30, 1_000_000)
        check_seed(self.seed)

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model.as_dict(), "n_steps": self.n_steps, "seed": self.seed}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChiarellaSimulationParams:
        check_keys("simulation", data, ("model", "n_steps", "seed"))
        return cls(model_params(data["model"]), data["n_steps"], data["seed"])


@dataclass(frozen=True, slots=True, eq=False)
class ChiarellaSimulationRun:
    config: ChiarellaSimulationParams
    sim: ch.Simulation
    facts: ch.StylizedFacts
    kind: str = field(default=SIM_KIND, init=False)

    @property
    def returns(self) -> F64:
        out: F64 = self.sim.returns[0]
        return out

    @property
    def fundamentalist_share(self) -> F64:
        out: F64 = self.sim.nf[0]
        return out

    def params(self) -> dict[str, Any]:
        return self.config.to_json()

    def metrics(self) -> dict[str, float]:
        return {
            **facts_metrics(self.facts),
            "mean_abs_return": float(np.mean(np.abs(self.returns))),
            "return_sd": float(np.std(self.returns)),
            "mean_fundamentalist_share": float(np.mean(self.fundamentalist_share)),
        }

    def frames(self) -> dict[str, pl.DataFrame]:
        path = pl.DataFrame(
            {
                "day": np.arange(1, self.returns.size + 1, dtype=np.int64),
                "return": self.returns,
                "log_price": self.sim.log_price[0],
                "fundamentalist_share": self.fundamentalist_share,
            }
        )
        return {"path": path}


def facts_metrics(facts: ch.StylizedFacts) -> dict[str, float]:
    """The stylized facts as named numbers."""
    out = {"kurtosis": float(facts.kurtosis), "hill": float(facts.hill)}
    out |= {f"acf_r_{k}": float(v) for k, v in facts.acf_r.items()}
    out |= {f"acf_abs_{k}": float(v) for k, v in facts.acf_abs.items()}
    out |= {f"kurtosis_sum_{h}": float(v) for h, v in facts.aggregated_kurtosis.items()}
    return out


def run_chiarella_simulation(params: ChiarellaSimulationParams) -> ChiarellaSimulationRun:
    """Simulate one path; InvalidInput when it explodes."""
    sim = ch.simulate(params.model, params.n_steps, seed=params.seed)
    if bool(sim.blown_up[0]):
        raise InvalidInput(EXPLODED)
    return ChiarellaSimulationRun(params, sim, ch.stylized_facts(sim.returns[0]))


def rerun_simulation(inputs: Sequence[pl.DataFrame], params: Mapping[str, Any]) -> RunResult:
    if inputs:
        raise InvalidInput("a Chiarella simulation has no input series")
    return run_chiarella_simulation(ChiarellaSimulationParams.from_json(params))


# --- calibration -----------------------------------------------------------------------------


def market_returns(bars: pl.DataFrame) -> F64:
    """Percent log-returns of the closes of `bars` (the model's unit)."""
    if not isinstance(bars, pl.DataFrame) or "close" not in bars.columns:
        raise InvalidInput("bars must be a frame with a close column")
    return ch.percent_returns(bars["close"].cast(pl.Float64).to_numpy())


@dataclass(frozen=True, slots=True)
class ChiarellaFitParams:
    """Calibrate the default free parameters (`ch.DEFAULT_FREE`); the rest, the chartist rule
    included, stay as in `model`. budget: model evaluations; n_paths: simulated paths per
    evaluation; seed: the common random numbers and the bootstrap."""

    model: ch.ChiarellaParams = field(default_factory=ch.ChiarellaParams)
    budget: int = 1020
    n_paths: int = 20
    seed: int = 0
    include_kurtosis: bool = False
    workers: int | None = None

    def __post_init__(self) -> None:
        _whole("budget", self.budget, 10, 1_000_000)
        _whole("n_paths", self.n_paths, 1, 1_000)
        check_seed(self.seed)
        if not isinstance(self.include_kurtosis, bool):
            raise InvalidInput("include_kurtosis must be true or false")
        if self.workers is not None:
            _whole("workers", self.workers, 1, 256)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model.as_dict(),
            "budget": self.budget,
            "n_paths": self.n_paths,
            "seed": self.seed,
            "include_kurtosis": self.include_kurtosis,
            "workers": self.workers,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ChiarellaFitParams:
        keys = ("model", "budget", "n_paths", "seed", "include_kurtosis", "workers")
        check_keys("calibration", data, keys)
        return cls(
            model_params(data["model"]),
            data["budget"],
            data["n_paths"],
            data["seed"],
            data["include_kurtosis"],
            data["workers"],
        )

    def calibrate_kwargs(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "seed": self.seed,
            "n_paths": self.n_paths,
            "base": self.model,
            "include_kurtosis": self.include_kurtosis,
            "workers": self.workers,
        }


@dataclass(frozen=True, slots=True, eq=False)
class ChiarellaFitRun:
    config: ChiarellaFitParams
    calibration: ch.Calibration
    kind: str = field(default=FIT_KIND, init=False)

    @property
    def cancelled(self) -> bool:
        return self.calibration.cancelled

    @property
    def simulated_moments(self) -> F64:
        """Mean simulated moments at the fitted θ (NaN when a path blew up there)."""
        sim = self.calibration.sim_moments
        names = self.calibration.moment_names
        return np.full(len(names), np.nan) if sim is None else np.asarray(sim, dtype=np.float64)

    def params(self) -> dict[str, Any]:
        return self.config.to_json()

    def metrics(self) -> dict[str, float]:
        c = self.calibration
        out = {
            "j": float(c.J),
            "j_stat": float(c.j_stat),
            "dof": float(c.dof),
            "p_value": float(c.p_value),
            "rejected_5pct": float(c.rejected(0.05)),
            "nfev": float(c.nfev),
            "nit": float(c.nit),
            "cancelled": float(c.cancelled),
        }
        return out | {f"theta_{k}": float(v) for k, v in c.theta.items()}

    def frames(self) -> dict[str, pl.DataFrame]:
        c = self.calibration
        theta = pl.DataFrame(
            {"parameter": list(c.theta), "value": [float(v) for v in c.theta.values()]}
        )
        moments = pl.DataFrame(
            {
                "moment": list(c.moment_names),
                "data": np.asarray(c.data_moments, dtype=np.float64),
                "simulated": self.simulated_moments,
                "t_ratio": np.asarray(c.t_ratios, dtype=np.float64),
            }
        )
        history = pl.DataFrame(
            {
                "generation": np.arange(len(c.history), dtype=np.int64),
                "best_j": np.asarray(c.history, dtype=np.float64),
            }
        )
        return {"theta": theta, "moments": moments, "history": history}


def chiarella_fit_run(params: ChiarellaFitParams, calibration: ch.Calibration) -> ChiarellaFitRun:
    """The typed result of a finished calibration of `params` (run here or in a job)."""
    return ChiarellaFitRun(params, calibration)


def run_chiarella_fit(
    bars: pl.DataFrame,
    params: ChiarellaFitParams,
    progress: Callable[[Progress], object] | None = None,
    cancel: threading.Event | None = None,
) -> ChiarellaFitRun:
    """Calibrate the model to the closes of `bars`. progress(Progress) after each generation;
    setting `cancel` stops early (the result is then marked cancelled)."""
    calibration = ch.calibrate(
        market_returns(bars), progress=progress, cancel=cancel, **params.calibrate_kwargs()
    )
    return chiarella_fit_run(params, calibration)


def start_chiarella_fit(bars: pl.DataFrame, params: ChiarellaFitParams) -> ch.CalibrationJob:
    """The same calibration in a background thread; `chiarella_fit_run(params, job.result)`
    turns its outcome into the typed result."""
    return ch.start_calibration(market_returns(bars), **params.calibrate_kwargs())


def rerun_fit(inputs: Sequence[pl.DataFrame], params: Mapping[str, Any]) -> RunResult:
    if len(inputs) != 1:
        raise InvalidInput(f"a Chiarella calibration has one input series, got {len(inputs)}")
    return run_chiarella_fit(inputs[0], ChiarellaFitParams.from_json(params))


register(StudyKind(SIM_KIND, "Chiarella simulation", "pages/chiarella_lab.py", rerun_simulation))
register(StudyKind(FIT_KIND, "Chiarella calibration", "pages/chiarella_lab.py", rerun_fit))
