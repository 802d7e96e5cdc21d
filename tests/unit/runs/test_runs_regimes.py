"""run_regimes: the Regimes page's fit as a typed run, checked against regime_fit, rerun
bit for bit through the study registry, and refused with InvalidInput on bad input."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from core.analytics import regime_fit
from core.analytics.runs import KINDS, RunResult, study_kinds
from core.analytics.runs.regimes import RegimesParams, RegimesRun, run_regimes
from core.data import bundled
from core.errors import InvalidInput
from tests.runs_support import assert_same_run

PARAMS = RegimesParams(k_max=3, restarts=3, seed=0)


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return bundled.load("SP500")


@pytest.fixture(scope="module")
def run(bars: pl.DataFrame) -> RegimesRun:
    return run_regimes(bars, PARAMS)


def test_run_is_the_kernel_fit(bars: pl.DataFrame, run: RegimesRun) -> None:
    fit = regime_fit.fit_series(
        bars["ts"].to_numpy(), bars["close"].to_numpy(), k_max=3, n_init=3, seed=0
    )
    model = fit.model
    assert isinstance(run, RunResult)
    assert run.kind == "regimes"
    assert run.n_states == fit.n_states == 3
    assert np.array_equal(run.path, model.viterbi(fit.returns))
    assert np.array_equal(run.filtered, model.filtered(fit.returns))

    m = run.metrics()
    assert m["log_likelihood"] == model.log_likelihood
    assert m["bic"] == model.bic(fit.returns)
    assert m["n_returns"] == bars.height - 1
    vols = [m[f"state_{s}_vol"] for s in range(3)]
    assert vols == sorted(vols)  # states ordered by volatility
    assert [m[f"state_{s}_persistence"] for s in range(3)] == list(np.diag(model.transmat))
    assert sum(m[f"state_{s}_share"] for s in range(3)) == pytest.approx(1.0, abs=1e-12)
    summary = fit.summary()
    assert m["current_state"] == summary.current_state
    assert m["current_probability"] == summary.current_probability

    frames = run.frames()
    states = frames["states"]
    assert states.columns == ["ts", "close", "return", "state", "p_0", "p_1", "p_2"]
    assert states.height == bars.height - 1
    assert states["ts"].dtype == bars["ts"].dtype
    assert states["ts"].to_list() == bars["ts"].slice(1).to_list()
    closes = bars["close"].to_numpy()
    assert np.array_equal(states["close"].to_numpy(), closes[1:])
    assert np.allclose(states["return"].to_numpy(), 100 * np.diff(np.log(closes)), rtol=1e-12)
    probs = states.select("p_0", "p_1", "p_2").to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0)
    selection = frames["selection"]
    assert selection.rows() == [tuple(row) for row in fit.selection.table]
    assert np.array_equal(frames["transitions"].drop("from_state").to_numpy(), model.transmat)


def test_rerun_is_identical_directly_and_through_the_registry(
    bars: pl.DataFrame, run: RegimesRun
) -> None:
    assert_same_run(run, run_regimes(bars, PARAMS))
    stored = json.loads(json.dumps(run.params()))
    kind = study_kinds()["regimes"]
    assert kind is KINDS["regimes"]
    assert kind.page == "pages/regimes.py"
    assert_same_run(run, kind.rerun([bars], stored))


def test_fixed_k_uses_the_same_fits(bars: pl.DataFrame, run: RegimesRun) -> None:
    fixed = run_regimes(bars, RegimesParams(k=2, k_max=3, restarts=3, seed=0))
    assert fixed.n_states == 2
    assert not fixed.bic_picked_largest
    assert fixed.fit.model.log_likelihood == run.fit.selection.fits[2].log_likelihood
    assert fixed.params() == {"k": 2, "k_max": 3, "restarts": 3, "seed": 0}
    assert fixed.frames()["states"].columns[-2:] == ["p_0", "p_1"]
    # BIC picking the largest K tried is flagged for the page's warning
    assert run_regimes(bars, RegimesParams(k_max=2, restarts=2)).bic_picked_largest


def test_progress_is_called_per_k(bars: pl.DataFrame) -> None:
    calls: list[tuple[int, int]] = []
    run_regimes(
        bars.tail(300), RegimesParams(k_max=2, restarts=1), lambda d, t: calls.append((d, t))
    )
    assert calls == [(1, 2), (2, 2)]


@pytest.mark.parametrize(
    "kwargs",
    [{"k": 0}, {"k": 7}, {"k_max": 0}, {"restarts": 21}, {"seed": -1}, {"k": True}, {"k": 2.0}],
)
def test_bad_params_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        RegimesParams(**kwargs)  # type: ignore[arg-type]


def test_bad_bars_are_refused(bars: pl.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="ts and close"):
        run_regimes(bars.drop("close"), PARAMS)
    row = pl.int_range(pl.len()) == 5
    for value in (-1.0, float("nan")):
        bad = bars.with_columns(pl.when(row).then(value).otherwise("close").alias("close"))
        with pytest.raises(InvalidInput, match="above 0"):
            run_regimes(bad, PARAMS)
    with pytest.raises(InvalidInput, match="too few"):
        run_regimes(bars.head(2), PARAMS)


def test_bad_stored_params_are_refused(bars: pl.DataFrame) -> None:
    rerun = KINDS["regimes"].rerun
    good = PARAMS.to_json()
    with pytest.raises(InvalidInput, match="unknown"):
        rerun([bars], {**good, "covariance": "full"})
    with pytest.raises(InvalidInput, match="missing"):
        rerun([bars], {"k": None})
    with pytest.raises(InvalidInput):
        rerun([bars], {**good, "k_max": "3"})
    with pytest.raises(InvalidInput, match="one input series"):
        rerun([], good)
    with pytest.raises(InvalidInput, match="one input series"):
        rerun([bars, bars], good)
