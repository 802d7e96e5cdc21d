"""run_meanrev_study: the numbers the Mean reversion page computed with its own kernel chain,
deterministic, rerun through the study registry, typed errors."""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np
import polars as pl
import pytest

from core.analytics import backtest as bt
from core.analytics import meanrev as mr
from core.analytics.runs import KINDS, RunResult, study_kinds
from core.analytics.runs.meanrev import (
    MeanReversionStudy,
    MeanRevParams,
    run_meanrev_study,
)
from core.analytics.runs.meanrev_basket import params_from_json
from core.errors import InvalidInput
from tests.runs_support import assert_same_run
from tests.unit.runs_meanrev.support import NAMES, parquet_round_trip, real_bars, rerun


def page_chain(bars: list[pl.DataFrame], p: MeanRevParams) -> dict[str, object]:
    """The Mean reversion page's computation before the move to core, step by step."""
    joined = bars[0].select("ts", pl.col("close").alias(p.names[0]))
    for name, frame in zip(p.names[1:], bars[1:], strict=True):
        joined = joined.join(frame.select("ts", pl.col("close").alias(name)), on="ts")
    joined = joined.sort("ts")
    ts = joined["ts"].to_numpy()
    closes = joined.select(list(p.names)).to_numpy().astype(np.float64)
    finite = np.isfinite(closes).all(axis=1)
    ts, closes = ts[finite][-p.last_n :], closes[finite][-p.last_n :]
    closes = np.log(closes) if p.use_log else closes
    step = np.median(np.diff(ts).astype("timedelta64[s]").astype(np.float64))
    a = 252.0 * max(1.0, 86_400.0 / step)
    dt_ = 1.0 / a
    port = mr.sparse_portfolio(closes, p.k, p.method, swaps=p.swaps, dt=dt_)
    w = port.weights
    spread = closes @ w
    fit = mr.fit_ou(spread, dt_)
    z, mu, sd = bt.signal_zscore(
        spread, p.zscore, window=p.window, ou_window=max(p.window, 30), refit_every=21, dt=dt_
    )
    common: dict[str, object] = dict(
        zscore=p.zscore,
        window=p.window,
        ou_window=max(p.window, 30),
        cost=p.cost_bp / 1e4,
        capital=p.capital,
        periods_per_year=a,
        timestamps=ts,
    )
    bands = bt.backtest(
        closes, w, rule="bands", z_in=p.z_in, z_out=p.z_out, size="notional",
        gross=p.capital, **common,  # type: ignore[arg-type]
    )  # fmt: skip
    units = p.capital / float(np.mean(np.abs(closes) @ np.abs(w)))
    gamma = np.sqrt(fit.theta / 2.0) / (fit.sigma * units) * p.aversion
    cara = bt.backtest(
        closes, w, rule="cara", gamma=float(gamma), cara_horizon="myopic", u_max=2.0 * units,
        **{**common, "zscore": "ou", "ou_window": max(p.window, 252)},  # type: ignore[arg-type]
    )  # fmt: skip
    power = mr.power_position_path(
        spread, np.arange(spread.size) * dt_, theta=fit.theta, mu=fit.mu, sigma=fit.sigma,
        gamma=p.power_gamma, w0=p.wealth0,
    )  # fmt: skip
    return {
        "a": a, "w": w, "spread": spread, "z": z, "mu": mu, "sd": sd, "bands": bands,
        "cara": cara, "gamma": gamma, "units": units, "power": power, "fit": fit,
    }  # fmt: skip


PARAMS = MeanRevParams(
    names=NAMES, last_n=800, k=2, method="exhaustive", zscore="ou", window=40, z_in=1.5,
    z_out=0.25, cost_bp=3.0, capital=2e6, aversion=2.0, utility="power", power_gamma=-2.0,
    wealth0=5e5,
)  # fmt: skip


def test_the_study_is_the_page_kernel_chain() -> None:
    bars = real_bars()
    study = run_meanrev_study(bars, PARAMS)
    old = page_chain(bars, PARAMS)
    assert study.fit.mean_reverting
    assert study.basket.closes.shape == (800, 2)
    assert study.basket.periods_per_year == old["a"] == 252.0
    np.testing.assert_array_equal(study.portfolio.weights, old["w"])
    for name in ("spread", "z", "mu", "sd"):
        np.testing.assert_array_equal(getattr(study, name), old[name])
    bands, cara = old["bands"], old["cara"]
    assert isinstance(bands, bt.BacktestResult)
    assert isinstance(cara, bt.BacktestResult)
    assert study.cara is not None
    assert study.power is not None
    np.testing.assert_array_equal(study.bands.equity, bands.equity)
    np.testing.assert_array_equal(study.bands.positions, bands.positions)
    np.testing.assert_array_equal(study.cara.equity, cara.equity)
    assert study.bands.metrics == bands.metrics
    assert study.gamma == old["gamma"]
    assert study.units == old["units"]
    power = old["power"]
    assert isinstance(power, mr.PowerPath)
    np.testing.assert_array_equal(study.power.wealth, power.wealth)
    # the stored summary carries the same numbers
    met = study.metrics()
    assert met["bands_sharpe"] == bands.metrics["sharpe"]
    assert met["cara_final_equity"] == cara.metrics["final_equity"]
    assert met["power_final_wealth"] == power.wealth[-1]
    assert met["bars"] == 800


def test_the_study_is_a_run_result_with_parquet_artefacts() -> None:
    study = run_meanrev_study(real_bars(), PARAMS)
    assert isinstance(study, RunResult)
    assert study.kind == "meanrev_study"
    frames = study.frames()
    assert {"series", "weights", "path", "ou", "adf", "bands", "cara", "power", "johansen"} <= set(
        frames
    )
    assert frames["weights"]["asset"].to_list() == list(NAMES)
    assert frames["series"]["ts"].dtype == pl.Datetime("us", "UTC")
    assert frames["series"].height == 800
    parquet_round_trip(study)


def test_run_twice_and_rerun_through_the_registry_are_identical() -> None:
    bars = real_bars()
    first = run_meanrev_study(bars, PARAMS)
    assert_same_run(first, run_meanrev_study(bars, PARAMS))
    again = rerun(first, bars)
    assert isinstance(again, MeanReversionStudy)
    assert again.config == PARAMS
    assert_same_run(first, again)


def trending_bars() -> list[pl.DataFrame]:
    """Two exponentially growing series (with k = 1 the portfolio is one of them: an explosive
    AR(1), b > 1, that no OU fit calls mean-reverting)."""
    n = 400
    ts = [dt.datetime(2020, 1, 1, tzinfo=dt.UTC) + dt.timedelta(days=i) for i in range(n)]
    t = np.arange(n, dtype=np.float64)
    noise = np.random.default_rng(7).normal(0.0, 1e-4, size=(2, n))
    a = 100.0 * 1.01**t * (1.0 + noise[0])
    b = 50.0 * 1.006**t * (1.0 + noise[1])
    return [pl.DataFrame({"ts": ts, "close": a}), pl.DataFrame({"ts": ts, "close": b})]


def test_a_trending_spread_has_no_cara_rule_and_still_reruns_exactly() -> None:
    bars = trending_bars()
    params = MeanRevParams(names=("A", "B"), use_log=False, k=1, utility="power")
    study = run_meanrev_study(bars, params)
    assert not study.fit.mean_reverting
    assert study.cara is None
    assert study.power is None
    assert np.isnan(study.gamma)
    assert np.isnan(study.metrics()["gamma"])
    assert "cara" not in study.frames()
    assert_same_run(study, rerun(study, bars))


def test_every_mean_reversion_kind_is_registered_for_the_page() -> None:
    kinds = study_kinds()
    for kind in ("meanrev_study", "meanrev_backtest", "meanrev_sweep", "walk_forward"):
        assert kinds[kind].page == "pages/mean_reversion.py"
        assert kinds[kind] is KINDS[kind]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"k": 3}, "above the number of assets"),
        ({"last_n": 10}, "too few rows: 10 common bars"),
        ({"window": 2, "zscore": "rolling"}, "window must be an int >= 3"),
    ],
)
def test_bad_settings_are_typed_errors(change: dict[str, object], message: str) -> None:
    params = dataclasses.replace(PARAMS, **change)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match=message):
        run_meanrev_study(real_bars(), params)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"capital": 0.0}, "capital must be a finite number > 0"),
        ({"cost_bp": -1.0}, "cost_bp must be a finite number >= 0"),
        ({"power_gamma": 1.0}, "power_gamma must be below 1"),
        ({"aversion": float("nan")}, "aversion must be a finite number"),
        ({"last_n": 0}, "last_n must be at least 1"),
    ],
)
def test_impossible_params_are_refused_when_made(change: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        dataclasses.replace(PARAMS, **change)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": "random"}, "method must be one of 'greedy', 'truncated_power', 'exhaustive'"),
        ({"k": 2.5}, "k must be a whole number"),
        ({"swaps": "yes"}, "swaps must be true or false"),
        ({"names": "SP500"}, "names must be a list"),
        ({"colour": "red"}, "MeanRevParams has no parameter colour"),
    ],
)
def test_stored_params_are_checked_on_rerun(change: dict[str, object], message: str) -> None:
    stored = run_meanrev_study(real_bars(), PARAMS).params() | change
    with pytest.raises(InvalidInput, match=message):
        KINDS["meanrev_study"].rerun(real_bars(), stored)


def test_params_need_the_names() -> None:
    with pytest.raises(InvalidInput, match="MeanRevParams needs names"):
        params_from_json(MeanRevParams, {"k": 2})
    assert params_from_json(MeanRevParams, {"names": ["A", "B"]}) == MeanRevParams(names=("A", "B"))
