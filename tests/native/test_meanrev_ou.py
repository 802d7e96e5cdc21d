"""OU estimation (docs/compute.md §3a) against statsmodels OLS/AutoReg/ARIMA and simulation."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from core.analytics import meanrev as mr
from core.errors import InvalidInput

sm = pytest.importorskip("statsmodels.api")
DT = 1 / 252


def simulate(
    n: int,
    theta: float,
    mu: float,
    sigma: float,
    dt: float,
    rng: np.random.Generator,
    reps: int | None = None,
) -> np.ndarray:
    b = math.exp(-theta * dt)
    sd = sigma * math.sqrt((1 - b * b) / (2 * theta))
    shape = (n,) if reps is None else (n, reps)
    eps = rng.normal(size=shape)
    x = np.empty(shape)
    x[0] = mu + sigma / math.sqrt(2 * theta) * eps[0]
    for t in range(1, n):
        x[t] = mu + (x[t - 1] - mu) * b + sd * eps[t]
    return x


@pytest.fixture(scope="module")
def series() -> list[np.ndarray]:
    rng = np.random.default_rng(42)
    return [
        simulate(5000, 2.0, 1.0, 0.5, DT, rng),
        simulate(800, 40.0, -3.0, 2.0, DT, rng),
        1e4 + simulate(3000, 5.0, 0.0, 1.0, DT, rng),  # price level: needs centring
    ]


def test_closed_form_matches_statsmodels_ols(series: list[np.ndarray]) -> None:
    for x in series:
        fit = mr.fit_ou(x, DT)
        # The oracle regresses on x - c (c exact, e.g. 1e4): uncentred OLS of a price
        # level loses ~8 digits of the intercept, so it cannot be the reference there.
        c = float(round(x.mean()))
        y = x - c
        a = fit.a - c * (1 - fit.b)
        res = sm.OLS(y[1:], sm.add_constant(y[:-1])).fit()
        np.testing.assert_allclose([a, fit.b], res.params, rtol=1e-12, atol=1e-14)
        assert fit.s2 == pytest.approx(res.ssr / (x.size - 1), rel=1e-12)
        assert fit.se["b"] == pytest.approx(res.bse[1], rel=1e-9)
        ar = sm.tsa.AutoReg(y, lags=1, trend="c").fit()
        np.testing.assert_allclose([a, fit.b], ar.params, rtol=1e-12, atol=1e-14)
        assert fit.s2 == pytest.approx(ar.sigma2, rel=1e-12)
        if c == 0:
            assert fit.se["a"] == pytest.approx(res.bse[0], rel=1e-9)


def test_derived_parameters_and_half_life_identity(series: list[np.ndarray]) -> None:
    for x in series:
        fit = mr.fit_ou(x, DT)
        assert fit.mean_reverting
        assert fit.theta == pytest.approx(-math.log(fit.b) / DT, rel=1e-12)
        assert fit.mu == pytest.approx(fit.a / (1 - fit.b), rel=1e-12)
        assert fit.sigma**2 == pytest.approx(2 * fit.theta * fit.s2 / (1 - fit.b**2), rel=1e-10)
        assert fit.half_life_bars * DT == pytest.approx(fit.half_life_years, rel=1e-12)
        assert fit.se["half_life_years"] == pytest.approx(
            math.log(2) * fit.se["theta"] / fit.theta**2, rel=1e-12
        )


def test_exact_likelihood_matches_arima(series: list[np.ndarray]) -> None:
    from statsmodels.tsa.arima.model import ARIMA

    for x in series[:2]:
        model = ARIMA(x, order=(1, 0, 0), trend="c")
        fit = mr.fit_ou(x, DT, method="exact")
        for params in ([fit.mu, fit.b, fit.s2], [x.mean(), 0.9, x.var() * 0.2]):
            ours = mr.ou_exact_loglik(x, *params)
            assert ours == pytest.approx(model.loglike(np.array(params)), rel=1e-10)
        assert fit.log_likelihood == pytest.approx(
            mr.ou_exact_loglik(x, fit.mu, fit.b, fit.s2), rel=1e-12
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = model.fit()
        assert fit.log_likelihood >= theirs.llf - 1e-8


def test_non_mean_reverting_flags() -> None:
    rng = np.random.default_rng(1)
    walk = np.cumsum(rng.normal(size=3000)) + 0.05 * np.arange(3000)
    fit = mr.fit_ou(walk, DT)
    if fit.b >= 1:
        assert not fit.mean_reverting
        assert fit.theta <= 0
        assert math.isinf(fit.half_life_years)
    alternating = np.array([1.0, -1.0] * 50) + rng.normal(0, 0.01, 100)
    fit = mr.fit_ou(alternating, DT)
    assert fit.b < 0
    assert not fit.mean_reverting
    assert math.isnan(fit.theta)


def test_irregular_spacing() -> None:
    rng = np.random.default_rng(5)
    n, theta, mu, sigma = 3000, 6.0, 2.0, 0.8
    dts = rng.uniform(0.5, 3.0, n - 1) / 252
    x = np.empty(n)
    x[0] = mu
    for i, d in enumerate(dts):
        b = math.exp(-theta * d)
        x[i + 1] = (
            mu + (x[i] - mu) * b + sigma * math.sqrt((1 - b * b) / (2 * theta)) * rng.normal()
        )
    t = np.r_[0.0, np.cumsum(dts)]
    fit = mr.fit_ou(x, times=t)

    def loglik(th: float, m: float, s: float) -> float:
        b = np.exp(-th * dts)
        v = s * s * (1 - b * b) / (2 * th)
        e = x[1:] - m - (x[:-1] - m) * b
        return float(-0.5 * np.sum(np.log(2 * np.pi * v) + e * e / v))

    assert fit.log_likelihood == pytest.approx(loglik(fit.theta, fit.mu, fit.sigma), rel=1e-10)
    assert fit.log_likelihood >= loglik(theta, mu, sigma)
    from scipy.optimize import minimize

    best = minimize(
        lambda p: -loglik(math.exp(p[0]), p[1], math.exp(p[2])),
        [math.log(3.0), x.mean(), math.log(x.std())],
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
    )
    assert fit.log_likelihood >= -best.fun - 1e-8
    even = mr.fit_ou(x, times=np.arange(n) * DT)
    cond = mr.fit_ou(x, DT)
    assert even.theta == pytest.approx(cond.theta, rel=1e-6)


def test_rolling_matches_statsmodels_per_window(series: list[np.ndarray]) -> None:
    x = series[2]
    out = mr.rolling_ou(x, 252, DT)
    assert np.isnan(out["b"][:251]).all()
    for t in (251, 1000, 1251, 2999):
        res = sm.OLS(x[t - 250 : t + 1], sm.add_constant(x[t - 251 : t])).fit()
        assert out["b"][t] == pytest.approx(res.params[1], rel=1e-9)
        assert out["s2"][t] == pytest.approx(res.ssr / 251, rel=1e-8)
    many = mr.rolling_ou(np.column_stack([series[0][:3000], x]), 252, DT)
    np.testing.assert_array_equal(many["b"][:, 1], out["b"])


def test_monte_carlo_recovery() -> None:
    rng = np.random.default_rng(2024)
    theta, mu, sigma, n, reps = 2.0, 1.0, 0.5, 5000, 500
    paths = simulate(n, theta, mu, sigma, DT, rng, reps=reps)
    fits = [mr.fit_ou(paths[:, j], DT) for j in range(reps)]
    th = np.array([f.theta for f in fits])
    sg = np.array([f.sigma for f in fits])
    assert abs(sg.mean() / sigma - 1) < 0.005
    bias = 4 / (n * DT)
    assert abs(th.mean() - theta) <= bias + 3 * th.std(ddof=1) / math.sqrt(reps)
    corrected = np.array(
        [mr.fit_ou(paths[:, j], DT, bias_correction=True).theta for j in range(100)]
    )
    assert abs(corrected.mean() - theta) < abs(th[:100].mean() - theta)
    b_true = math.exp(-theta * DT)
    cover = np.mean([abs(f.b - b_true) <= 1.96 * f.se["b"] for f in fits])
    assert 0.93 <= cover <= 0.97


@pytest.mark.parametrize(
    ("x", "match"),
    [([1.0, 2.0], "at least 3"), ([1.0, np.nan, 2.0, 3.0], "NaN"), ([2.0] * 10, "constant")],
)
def test_bad_input(x: list[float], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        mr.fit_ou(np.array(x))
