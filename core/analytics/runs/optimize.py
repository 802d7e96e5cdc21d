"""Optimizer & MFG studies: a global minimisation of a benchmark function (kind
"optimizer") and a mean-field game solved against its closed form (kind "mfg").

`run_optimizer(params)` runs L-SHADE, SHADE or classic DE; `run_mfg(params)` solves the
crowding or the LQ problem and measures the gap to the exact solution. The page solves the
MFG in the background (`start_mfg`) and turns the solution into the same typed result with
`mfg_run`. Neither run has an input series.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from core.analytics import mfg, optimize
from core.analytics.inputs import check_seed
from core.analytics.mfg.solver import Method as MfgMethod
from core.analytics.optimize import Method, Progress
from core.analytics.runs import RunResult, StudyKind, check_keys, register
from core.errors import InvalidInput

__all__ = [
    "FUNCTIONS",
    "INITS",
    "METHODS",
    "MFG_KIND",
    "MFG_METHODS",
    "OPTIMIZER_KIND",
    "PROBLEMS",
    "MfgParams",
    "MfgRun",
    "OptimizerParams",
    "OptimizerRun",
    "mfg_run",
    "run_mfg",
    "run_optimizer",
    "start_mfg",
]

OPTIMIZER_KIND = "optimizer"
MFG_KIND = "mfg"
Function = Literal["sphere", "rosenbrock", "rastrigin", "ackley", "griewank", "schwefel"]
FUNCTIONS: tuple[Function, ...] = (
    "sphere",
    "rosenbrock",
    "rastrigin",
    "ackley",
    "griewank",
    "schwefel",
)
Init = Literal["uniform", "lhs", "sobol"]
INITS: tuple[Init, ...] = ("uniform", "lhs", "sobol")
METHODS: tuple[Method, ...] = ("lshade", "shade", "de")
Problem = Literal["crowding", "lq"]
PROBLEMS: tuple[Problem, ...] = ("crowding", "lq")
MFG_METHODS: tuple[MfgMethod, ...] = ("picard", "anderson", "fictitious_play")
# the density artefact keeps at most this many times x nodes (as the page draws it)
DENSITY_ROWS, DENSITY_COLS = 200, 240
F64 = NDArray[np.float64]


def _whole(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}")
    if not low <= int(value) <= high:
        raise InvalidInput(f"{name} must be from {low} to {high}, got {value}")
    return int(value)


def _choice(name: str, value: object, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


# --- optimizer -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptimizerParams:
    """Minimise a built-in function in its usual box. strategy is used by classic DE only."""

    function: Function = "rastrigin"
    dim: int = 10
    method: Method = "lshade"
    budget: int = 100_000
    seed: int = 0
    strategy: str = "rand1bin"
    init: Init = "uniform"

    def __post_init__(self) -> None:
        _choice("function", self.function, FUNCTIONS)
        _whole("dim", self.dim, 1, 1_000)
        _choice("method", self.method, METHODS)
        _whole("budget", self.budget, 10, 100_000_000)
        check_seed(self.seed)
        _choice("strategy", self.strategy, optimize.STRATEGIES)
        _choice("init", self.init, INITS)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OptimizerParams:
        check_keys("optimizer", data, [f.name for f in fields(cls)])
        return cls(**dict(data))


@dataclass(frozen=True, slots=True, eq=False)
class OptimizerRun:
    config: OptimizerParams
    result: optimize.OptimizeResult
    kind: str = field(default=OPTIMIZER_KIND, init=False)

    def params(self) -> dict[str, Any]:
        return self.config.to_json()

    def metrics(self) -> dict[str, float]:
        r = self.result
        return {
            "best_f": float(r.fun),
            "nfev": float(r.nfev),
            "nit": float(r.nit),
            "success": float(r.success),
            "final_pop_size": float(r.final_pop_size),
        }

    def frames(self) -> dict[str, pl.DataFrame]:
        history = np.asarray(self.result.history, dtype=np.float64)
        x = np.asarray(self.result.x, dtype=np.float64)
        return {
            "history": pl.DataFrame(
                {"generation": np.arange(history.size, dtype=np.int64), "best_f": history}
            ),
            "best_point": pl.DataFrame({"coordinate": np.arange(x.size, dtype=np.int64), "x": x}),
        }


def run_optimizer(
    params: OptimizerParams, progress: Callable[[Progress], object] | None = None
) -> OptimizerRun:
    """Minimise; progress(Progress) is called after each generation."""
    result = optimize.minimize(
        params.function,
        optimize.builtin_bounds(params.function, params.dim),
        method=params.method,
        max_evals=params.budget,
        seed=params.seed,
        strategy=params.strategy if params.method == "de" else "rand1bin",
        init=params.init,
        callback=progress,
    )
    return OptimizerRun(params, result)


def rerun_optimizer(inputs: Sequence[pl.DataFrame], params: Mapping[str, Any]) -> RunResult:
    if inputs:
        raise InvalidInput("an optimizer study has no input series")
    return run_optimizer(OptimizerParams.from_json(params))


# --- mean-field game -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MfgParams:
    """The crowding problem (model: CrowdingParams) or the LQ problem (model: LQParams) on
    n space nodes and nt time steps, iterated on the crowd by `method`."""

    model: mfg.CrowdingParams | mfg.LQParams = field(default_factory=mfg.CrowdingParams)
    n: int = 361
    nt: int = 400
    method: MfgMethod = "picard"
    max_iter: int = 500

    def __post_init__(self) -> None:
        if not isinstance(self.model, mfg.CrowdingParams | mfg.LQParams):
            raise InvalidInput("model must be crowding or LQ parameters")
        _whole("n", self.n, 3, 100_000)
        _whole("nt", self.nt, 1, 100_000)
        _choice("method", self.method, MFG_METHODS)
        _whole("max_iter", self.max_iter, 1, 100_000_000)

    @property
    def problem(self) -> Problem:
        return "crowding" if isinstance(self.model, mfg.CrowdingParams) else "lq"

    def to_json(self) -> dict[str, Any]:
        return {
            "problem": self.problem,
            "model": asdict(self.model),
            "n": self.n,
            "nt": self.nt,
            "method": self.method,
            "max_iter": self.max_iter,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MfgParams:
        check_keys("MFG", data, ("problem", "model", "n", "nt", "method", "max_iter"))
        _choice("problem", data["problem"], PROBLEMS)
        kind = mfg.CrowdingParams if data["problem"] == "crowding" else mfg.LQParams
        model = data["model"]
        if not isinstance(model, Mapping):
            raise InvalidInput("model must be a mapping of MFG parameters")
        check_keys("MFG model", model, [f.name for f in fields(kind)])
        return cls(kind(**dict(model)), data["n"], data["nt"], data["method"], data["max_iter"])

    def solver_kwargs(self) -> dict[str, Any]:
        return {"n": self.n, "nt": self.nt, "method": self.method, "max_iter": self.max_iter}


@dataclass(frozen=True, slots=True, eq=False)
class MfgRun:
    """A solved MFG and its closed form on the same times: mean and variance, and for the
    crowding problem the crowd's trading speed μ (closed_mu; None for LQ)."""

    config: MfgParams
    solution: mfg.MFGSolution
    closed_mean: F64
    closed_var: F64
    closed_mu: F64 | None
    kind: str = field(default=MFG_KIND, init=False)

    @property
    def seconds(self) -> float:
        """Wall time of the solve (shown, never a metric: it differs on every run)."""
        return float(self.solution.diagnostics["seconds"])

    def errors(self) -> dict[str, float]:
        """Largest gap between solver and closed form, per curve, by its display label."""
        sol = self.solution
        if self.closed_mu is not None:
            return {
                "max |E − E_cf|": float(np.max(np.abs(sol.mean - self.closed_mean))),
                "max |μ − μ_cf|": float(np.max(np.abs(sol.mu - self.closed_mu[:-1]))),
                "max |V − V_cf|": float(np.max(np.abs(sol.var - self.closed_var))),
            }
        return {
            "max |m̄ − m̄_cf|": float(np.max(np.abs(sol.mean - self.closed_mean))),
            "max |Σ − Σ_cf|": float(np.max(np.abs(sol.var - self.closed_var))),
        }

    def params(self) -> dict[str, Any]:
        return self.config.to_json()

    def metrics(self) -> dict[str, float]:
        d = self.solution.diagnostics
        residuals = d["residuals"]
        out = {
            "iterations": float(d["iterations"]),
            "converged": float(d["converged"]),
            "mass_error": float(d["mass_error"]),
            "min_density": float(d["min_density"]),
            "clipped": float(d["clipped"]),
            "edge_mass": float(d["edge_mass"]),
            "final_residual": float(residuals[-1]) if residuals else float("nan"),
        }
        names: tuple[str, ...] = ("max_error_mean", "max_error_mu", "max_error_var")
        if self.closed_mu is None:
            names = ("max_error_mean", "max_error_var")
        return out | dict(zip(names, self.errors().values(), strict=True))

    def frames(self) -> dict[str, pl.DataFrame]:
        sol = self.solution
        paths: dict[str, Any] = {
            "t": sol.t,
            "mean": sol.mean,
            "var": sol.var,
            "mean_cf": self.closed_mean,
            "var_cf": self.closed_var,
            # the mean control acts on each step: none after the last time
            "mu": np.append(sol.mu, np.nan),
        }
        if self.closed_mu is not None:
            paths["mu_cf"] = self.closed_mu
        rows = slice(None, None, max(1, len(sol.t) // DENSITY_ROWS))
        cols = slice(None, None, max(1, len(sol.x) // DENSITY_COLS))
        t, x, m = sol.t[rows], sol.x[cols], sol.m[rows, cols]
        density = pl.DataFrame(
            {"t": np.repeat(t, x.size), "x": np.tile(x, t.size), "m": m.reshape(-1)}
        )
        d = sol.diagnostics
        residuals = pl.DataFrame(
            {
                "iteration": np.arange(1, len(d["residuals"]) + 1, dtype=np.int64),
                "residual": np.asarray(d["residuals"], dtype=np.float64),
            }
        )
        return {"paths": pl.DataFrame(paths), "density": density, "residuals": residuals}


def mfg_run(params: MfgParams, solution: mfg.MFGSolution) -> MfgRun:
    """The typed result of a finished solve of `params` (run here or in a job)."""
    if isinstance(params.model, mfg.CrowdingParams):
        cf = mfg.crowding_closed_form(params.model, solution.t)
        return MfgRun(params, solution, cf.E, cf.V, cf.mu)
    lq = mfg.lq_closed_form(params.model, solution.t)
    return MfgRun(params, solution, lq.mean, lq.var, None)


def run_mfg(
    params: MfgParams,
    progress: Callable[[int, float], None] | None = None,
    cancel: threading.Event | None = None,
) -> MfgRun:
    """Solve; progress(iteration, residual) about every 0.1 s; setting `cancel` stops the
    solve with mfg.SolveCancelled."""
    kw = params.solver_kwargs()
    if isinstance(params.model, mfg.CrowdingParams):
        sol = mfg.solve_crowding(params.model, progress=progress, cancel=cancel, **kw)
    else:
        sol = mfg.solve_lq(params.model, progress=progress, cancel=cancel, **kw)
    return mfg_run(params, sol)


def start_mfg(params: MfgParams) -> mfg.SolveJob:
    """The same solve in a background thread; `mfg_run(params, job.result)` turns its
    solution into the typed result."""
    kw = params.solver_kwargs()
    if isinstance(params.model, mfg.CrowdingParams):
        return mfg.start_crowding(params.model, **kw)
    return mfg.start_lq(params.model, **kw)


def rerun_mfg(inputs: Sequence[pl.DataFrame], params: Mapping[str, Any]) -> RunResult:
    if inputs:
        raise InvalidInput("an MFG study has no input series")
    return run_mfg(MfgParams.from_json(params))


register(StudyKind(OPTIMIZER_KIND, "Optimizer", "pages/optimizer_mfg.py", rerun_optimizer))
register(StudyKind(MFG_KIND, "Mean-field game", "pages/optimizer_mfg.py", rerun_mfg))
