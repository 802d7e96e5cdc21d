"""Optimizer and MFG runs: typed runs checked against optimize.minimize and the MFG solver
with its closed forms, rerun bit for bit through the study registry, and refused with
InvalidInput on bad input."""

from __future__ import annotations

import json
import math
from dataclasses import asdict

import numpy as np
import polars as pl
import pytest

from core.analytics import mfg, optimize
from core.analytics.runs import KINDS, RunResult, study_kinds
from core.analytics.runs.optimize import (
    MfgParams,
    MfgRun,
    OptimizerParams,
    mfg_run,
    run_mfg,
    run_optimizer,
    start_mfg,
)
from core.errors import InvalidInput
from tests.runs_support import assert_same_run

OPT = OptimizerParams("sphere", 5, budget=20_000, seed=3)
CROWD = MfgParams(n=121, nt=120)
LQ = MfgParams(mfg.LQParams(), n=121, nt=120, method="anderson")


@pytest.fixture(scope="module")
def crowd() -> MfgRun:
    return run_mfg(CROWD)


# --- optimizer -------------------------------------------------------------------------------


def test_optimizer_run_is_the_kernel_minimisation() -> None:
    run = run_optimizer(OPT)
    ref = optimize.minimize(
        "sphere", optimize.builtin_bounds("sphere", 5), max_evals=20_000, seed=3
    )
    assert isinstance(run, RunResult)
    assert run.kind == "optimizer"
    m = run.metrics()
    assert m["best_f"] == ref.fun
    assert m["best_f"] < 1e-6
    assert (m["nfev"], m["nit"], m["success"]) == (20_000, ref.nit, 1.0)
    frames = run.frames()
    assert np.array_equal(frames["history"]["best_f"].to_numpy(), ref.history)
    assert np.all(np.diff(frames["history"]["best_f"].to_numpy()) <= 0)
    assert np.array_equal(frames["best_point"]["x"].to_numpy(), ref.x)
    assert frames["best_point"]["coordinate"].to_list() == [0, 1, 2, 3, 4]


def test_optimizer_reruns_identically_through_the_registry() -> None:
    run = run_optimizer(OPT)
    assert_same_run(run, run_optimizer(OPT))
    stored = json.loads(json.dumps(run.params()))
    assert stored == asdict(OPT)
    kind = study_kinds()["optimizer"]
    assert kind.page == "pages/optimizer_mfg.py"
    assert_same_run(run, kind.rerun([], stored))


def test_classic_de_strategy_and_init() -> None:
    de = OptimizerParams("rastrigin", 3, "de", 9_000, 0, strategy="best1exp", init="sobol")
    run = run_optimizer(de)
    ref = optimize.minimize(
        "rastrigin",
        optimize.builtin_bounds("rastrigin", 3),
        method="de",
        max_evals=9_000,
        seed=0,
        strategy="best1exp",
        init="sobol",
    )
    assert run.metrics()["best_f"] == ref.fun
    assert run.metrics()["nfev"] == 9_000
    # the DE strategy is ignored by the adaptive methods
    ls = run_optimizer(OptimizerParams("sphere", 3, budget=3_000, strategy="best1exp"))
    plain = run_optimizer(OptimizerParams("sphere", 3, budget=3_000))
    assert ls.metrics() == plain.metrics()


def test_optimizer_progress() -> None:
    seen: list[int] = []
    run_optimizer(OptimizerParams("sphere", 2, budget=1_000), lambda p: seen.append(p.nfev))
    assert seen
    assert seen == sorted(seen)
    assert seen[-1] <= 1_000


@pytest.mark.parametrize(
    "kwargs",
    [
        {"function": "himmelblau"},
        {"dim": 0},
        {"method": "cmaes"},
        {"budget": 5},
        {"seed": -1},
        {"strategy": "rand9bin"},
        {"init": "halton"},
        {"dim": 2.5},
    ],
)
def test_bad_optimizer_params_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        OptimizerParams(**kwargs)  # type: ignore[arg-type]


def test_bad_stored_optimizer_params_are_refused() -> None:
    rerun = KINDS["optimizer"].rerun
    good = OPT.to_json()
    with pytest.raises(InvalidInput, match="unknown"):
        rerun([], {**good, "workers": 4})
    with pytest.raises(InvalidInput, match="missing"):
        rerun([], {"function": "sphere"})
    with pytest.raises(InvalidInput, match="no input series"):
        rerun([pl.DataFrame()], good)


# --- mean-field game -------------------------------------------------------------------------


def test_mfg_run_is_the_solver_against_its_closed_form(crowd: MfgRun) -> None:
    sol = mfg.solve_crowding(mfg.CrowdingParams(), n=121, nt=120)
    cf = mfg.crowding_closed_form(mfg.CrowdingParams(), sol.t)
    assert crowd.kind == "mfg"
    m = crowd.metrics()
    assert "seconds" not in m  # wall time differs on every run: shown, never stored
    assert m["iterations"] == sol.diagnostics["iterations"]
    assert m["converged"] == 1.0
    assert m["mass_error"] < 1e-12
    assert m["max_error_mean"] == float(np.max(np.abs(sol.mean - cf.E)))
    assert m["max_error_mu"] == float(np.max(np.abs(sol.mu - cf.mu[:-1])))
    assert m["max_error_var"] == float(np.max(np.abs(sol.var - cf.V)))
    assert m["max_error_mean"] < 0.05  # first order on a 121 x 120 grid
    assert list(crowd.errors().values()) == [
        m["max_error_mean"],
        m["max_error_mu"],
        m["max_error_var"],
    ]
    frames = crowd.frames()
    paths = frames["paths"]
    assert paths.columns == ["t", "mean", "var", "mean_cf", "var_cf", "mu", "mu_cf"]
    assert np.array_equal(paths["mean"].to_numpy(), sol.mean)
    assert np.array_equal(paths["mean_cf"].to_numpy(), cf.E)
    assert math.isnan(paths["mu"][-1])
    density = frames["density"]
    assert density.height == sol.t.size * sol.x.size  # 121 x 121 is below the cap
    grid = density["m"].to_numpy().reshape(sol.t.size, sol.x.size)
    assert np.array_equal(grid, sol.m)
    assert frames["residuals"].height == m["iterations"]


def test_mfg_reruns_identically_through_the_registry(crowd: MfgRun) -> None:
    assert_same_run(crowd, run_mfg(CROWD))
    stored = json.loads(json.dumps(crowd.params()))
    assert stored["problem"] == "crowding"
    kind = study_kinds()["mfg"]
    assert kind.page == "pages/optimizer_mfg.py"
    assert_same_run(crowd, kind.rerun([], stored))


def test_lq_problem_and_the_background_job() -> None:
    run = run_mfg(LQ)
    assert run.closed_mu is None
    m = run.metrics()
    assert "max_error_mu" not in m
    assert m["max_error_var"] < 0.05
    assert "mu_cf" not in run.frames()["paths"].columns
    stored = json.loads(json.dumps(run.params()))
    assert (stored["problem"], stored["method"]) == ("lq", "anderson")
    assert_same_run(run, KINDS["mfg"].rerun([], stored))
    job = start_mfg(LQ)
    assert job.wait(60)
    assert job.result is not None
    assert_same_run(run, mfg_run(LQ, job.result))


def test_a_large_grid_keeps_a_thinned_density() -> None:
    run = run_mfg(MfgParams(n=601, nt=500, max_iter=3))
    density = run.frames()["density"]
    assert density["t"].n_unique() <= 251
    assert density["x"].n_unique() <= 301
    assert density["t"].n_unique() * density["x"].n_unique() == density.height


def test_bad_mfg_input_is_refused() -> None:
    for kwargs in ({"n": 2}, {"nt": 0}, {"method": "newton"}, {"max_iter": 0}):
        with pytest.raises(InvalidInput):
            MfgParams(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="crowding or LQ"):
        MfgParams({"kappa": 0.2})  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="too narrow"):
        run_mfg(MfgParams(mfg.CrowdingParams(lo=0.0), n=121, nt=120))
    rerun = KINDS["mfg"].rerun
    good = CROWD.to_json()
    with pytest.raises(InvalidInput, match="problem"):
        rerun([], {**good, "problem": "crowd"})
    with pytest.raises(InvalidInput, match="unknown"):
        rerun([], {**good, "model": {**good["model"], "gamma": 1.0}})
    with pytest.raises(InvalidInput, match="missing"):
        rerun([], {**good, "problem": "lq"})  # crowding parameters are not LQ ones
    with pytest.raises(InvalidInput, match="no input series"):
        rerun([pl.DataFrame()], good)
