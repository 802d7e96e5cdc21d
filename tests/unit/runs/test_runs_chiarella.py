"""Chiarella runs: the simulation and the calibration as typed runs, checked against the
chiarella kernels, rerun bit for bit (also across rayon thread counts) and through the study
registry, and refused with InvalidInput on bad input."""

from __future__ import annotations

import json
import threading

import numpy as np
import polars as pl
import pytest

from core.analytics import chiarella as ch
from core.analytics.runs import KINDS, RunResult, study_kinds
from core.analytics.runs.chiarella import (
    ChiarellaFitParams,
    ChiarellaFitRun,
    ChiarellaSimulationParams,
    chiarella_fit_run,
    market_returns,
    run_chiarella_fit,
    run_chiarella_simulation,
    start_chiarella_fit,
)
from core.data import bundled
from core.errors import InvalidInput
from tests.runs_support import assert_same_run

SIM = ChiarellaSimulationParams(ch.ChiarellaParams(rule="ma_tanh", ma_window=30), 2000, seed=5)
FIT = ChiarellaFitParams(budget=120, n_paths=2, seed=3)


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return bundled.load("SP500")


@pytest.fixture(scope="module")
def fit(bars: pl.DataFrame) -> ChiarellaFitRun:
    return run_chiarella_fit(bars, FIT)


# --- simulation ------------------------------------------------------------------------------


def test_simulation_is_the_kernel_path_and_its_facts() -> None:
    run = run_chiarella_simulation(SIM)
    sim = ch.simulate(SIM.model, 2000, seed=5)
    assert isinstance(run, RunResult)
    assert run.kind == "chiarella_sim"
    path = run.frames()["path"]
    assert path.columns == ["day", "return", "log_price", "fundamentalist_share"]
    assert path.height == 2000
    assert np.array_equal(path["return"].to_numpy(), sim.returns[0])
    assert np.array_equal(path["log_price"].to_numpy(), sim.log_price[0])
    assert np.array_equal(path["fundamentalist_share"].to_numpy(), sim.nf[0])
    facts = ch.stylized_facts(sim.returns[0])
    m = run.metrics()
    assert m["kurtosis"] == facts.kurtosis
    assert m["hill"] == facts.hill
    assert m["acf_abs_25"] == facts.acf_abs[25]
    assert m["kurtosis_sum_5"] == facts.aggregated_kurtosis[5]
    assert m["mean_abs_return"] == pytest.approx(float(np.mean(np.abs(sim.returns[0]))))
    assert 0 < m["mean_fundamentalist_share"] < 1


def test_simulation_reruns_identically_through_the_registry() -> None:
    run = run_chiarella_simulation(SIM)
    assert_same_run(run, run_chiarella_simulation(SIM))
    stored = json.loads(json.dumps(run.params()))
    assert stored["model"]["rule"] == "ma_tanh"
    kind = study_kinds()["chiarella_sim"]
    assert kind.page == "pages/chiarella_lab.py"
    assert_same_run(run, kind.rerun([], stored))
    other = run_chiarella_simulation(ChiarellaSimulationParams(SIM.model, 2000, seed=6))
    assert other.metrics()["kurtosis"] != run.metrics()["kurtosis"]


def test_an_exploding_simulation_is_refused() -> None:
    model = ch.ChiarellaParams(mu=1.0, chi=3.0, phi=-1.0)
    with pytest.raises(InvalidInput, match="exploded"):
        run_chiarella_simulation(ChiarellaSimulationParams(model, 2000, seed=1))


def test_bad_simulation_params_are_refused(bars: pl.DataFrame) -> None:
    with pytest.raises(InvalidInput):
        ChiarellaSimulationParams(n_steps=10)
    with pytest.raises(InvalidInput):
        ChiarellaSimulationParams(seed=-1)
    rerun = KINDS["chiarella_sim"].rerun
    good = SIM.to_json()
    with pytest.raises(InvalidInput, match="unknown"):
        rerun([], {**good, "model": {**good["model"], "lambda": 1.0}})
    with pytest.raises(InvalidInput, match="missing"):
        rerun([], {"model": good["model"]})
    with pytest.raises(InvalidInput, match="unknown rule"):
        rerun([], {**good, "model": {**good["model"], "rule": "momentum"}})
    with pytest.raises(InvalidInput, match="no input series"):
        rerun([bars], good)


# --- calibration -----------------------------------------------------------------------------


def test_fit_is_the_kernel_calibration(bars: pl.DataFrame, fit: ChiarellaFitRun) -> None:
    r = ch.percent_returns(bars["close"].to_numpy())
    assert np.array_equal(market_returns(bars), r)
    cal = ch.calibrate(r, budget=120, seed=3, n_paths=2, base=ch.ChiarellaParams())
    assert fit.kind == "chiarella_fit"
    assert not fit.cancelled
    m = fit.metrics()
    assert m["j"] == cal.J
    assert m["p_value"] == cal.p_value
    assert m["nfev"] == cal.nfev == 120
    assert {k: m[f"theta_{k}"] for k in ch.DEFAULT_FREE} == cal.theta
    frames = fit.frames()
    assert frames["theta"]["parameter"].to_list() == list(ch.DEFAULT_FREE)
    moments = frames["moments"]
    assert moments["moment"].to_list() == list(ch.MOMENT_NAMES)
    assert np.array_equal(moments["data"].to_numpy(), ch.moments(r))
    assert np.array_equal(moments["t_ratio"].to_numpy(), cal.t_ratios)
    assert np.array_equal(frames["history"]["best_j"].to_numpy(), cal.history)


def test_fit_reruns_identically_across_threads_and_the_registry(
    bars: pl.DataFrame, fit: ChiarellaFitRun
) -> None:
    assert_same_run(fit, run_chiarella_fit(bars, FIT))
    stored = json.loads(json.dumps(fit.params()))
    assert_same_run(fit, KINDS["chiarella_fit"].rerun([bars], stored))
    # the kernel's common random numbers make the answer independent of the thread count
    one = run_chiarella_fit(bars, ChiarellaFitParams(budget=120, n_paths=2, seed=3, workers=1))
    assert one.metrics() == fit.metrics()
    assert one.frames()["history"].equals(fit.frames()["history"])


def test_the_background_job_gives_the_same_result(bars: pl.DataFrame, fit: ChiarellaFitRun) -> None:
    job = start_chiarella_fit(bars, FIT)
    assert job.wait(120)
    assert job.error is None
    assert job.result is not None
    assert_same_run(fit, chiarella_fit_run(FIT, job.result))


def test_kurtosis_rule_and_progress(bars: pl.DataFrame) -> None:
    seen: list[int] = []
    params = ChiarellaFitParams(
        ch.ChiarellaParams(rule="chiarella_tanh"), 120, 1, 4, include_kurtosis=True
    )
    run = run_chiarella_fit(bars, params, progress=lambda p: seen.append(p.nfev))
    assert run.frames()["moments"]["moment"].to_list()[-1] == "kurtosis"
    assert run.metrics()["dof"] == 10 - len(ch.DEFAULT_FREE)
    assert seen
    assert seen == sorted(seen)
    assert 0 < seen[-1] <= run.metrics()["nfev"] == 120
    assert run.params()["model"]["rule"] == "chiarella_tanh"


def test_a_cancelled_fit_says_so(bars: pl.DataFrame) -> None:
    stop = threading.Event()
    stop.set()
    run = run_chiarella_fit(bars, ChiarellaFitParams(budget=5000, n_paths=2), cancel=stop)
    assert run.cancelled
    assert run.metrics()["cancelled"] == 1.0
    assert run.metrics()["nfev"] < 5000


def test_bad_fit_input_is_refused(bars: pl.DataFrame) -> None:
    for kwargs in ({"budget": 5}, {"n_paths": 0}, {"seed": -1}, {"workers": 0}):
        with pytest.raises(InvalidInput):
            ChiarellaFitParams(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="true or false"):
        ChiarellaFitParams(include_kurtosis="yes")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="close"):
        run_chiarella_fit(bars.drop("close"), FIT)
    with pytest.raises(InvalidInput):
        run_chiarella_fit(bars.head(100), FIT)  # too few returns for the moments
    rerun = KINDS["chiarella_fit"].rerun
    with pytest.raises(InvalidInput, match="one input series"):
        rerun([], FIT.to_json())
    with pytest.raises(InvalidInput, match="missing"):
        rerun([bars], {"model": {}, "budget": 120})
