"""Johansen critical values and rank, k_ar_diff = 0 parity, ADF (docs/compute.md §3c(g))."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from core.analytics import cointegration as co
from core.analytics import critical_values_data as cvd
from core.analytics import meanrev as mr
from core.errors import InvalidInput

stats = pytest.importorskip("scipy.stats")
vecm = pytest.importorskip("statsmodels.tsa.vector_ar.vecm")
coint_tables = pytest.importorskip("statsmodels.tsa.coint_tables")
stattools = pytest.importorskip("statsmodels.tsa.stattools")
adfvalues = pytest.importorskip("statsmodels.tsa.adfvalues")

ROOT = Path(__file__).resolve().parents[2]
TABLE = np.array(cvd.JOHANSEN.split(), dtype=np.float64).reshape(12, 3, 2, 3)
SE = np.array(cvd.JOHANSEN_SE.split(), dtype=np.float64).reshape(12, 3, 2, 3)


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_critical_values", ROOT / "scripts" / "gen_critical_values.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def walks(t: int, n: int, seed: int) -> np.ndarray:
    return np.cumsum(np.random.default_rng(seed).normal(size=(t, n)), axis=0)


def cointegrated(t: int, n: int, trends: int, seed: int) -> np.ndarray:
    """n assets on `trends` common random walks with drift plus white noise: rank n - trends.
    The drift matches det_order=0's critical values (a linear trend in the levels)."""
    rng = np.random.default_rng(seed)
    f = np.cumsum(rng.normal(0.1, 1.0, size=(t, trends)), axis=0)
    return 10.0 + f @ rng.normal(size=(n, trends)).T + rng.normal(size=(t, n))


# --- Johansen critical values --------------------------------------------------------------------


@pytest.mark.parametrize("det_order", [-1, 0, 1])
def test_table_matches_statsmodels_mhm_values(det_order: int) -> None:
    """Our simulated asymptotic quantiles against MacKinnon-Haug-Michelis (statsmodels).

    Tolerance 1.5% relative + 4 Monte Carlo standard errors: our MC error is <= 0.35% at
    90/95% and <= 0.71% at 99% (batch means); the discretisation bias left after the
    Richardson step from T = 1000/500 is a few tenths of a percent (about -1.3% for m = 12
    before it), and the MHM values are response-surface estimates with their own error.
    Measured: median gap 0.3%, worst 1.1% (m = 11, max-eigenvalue 99%, 2.8 MC se).
    """
    worst = 0.0
    for m in range(1, 13):
        theirs = {0: coint_tables.c_sjt(m, det_order), 1: coint_tables.c_sja(m, det_order)}
        for stat in (0, 1):
            ours = TABLE[m - 1, det_order + 1, stat]
            se = SE[m - 1, det_order + 1, stat]
            gap = np.abs(ours - theirs[stat])
            assert (gap <= 0.015 * theirs[stat] + 4 * se).all(), (m, stat, ours, theirs[stat])
            worst = max(worst, float((gap / theirs[stat]).max()))
    print(f"det_order={det_order}: worst relative gap {worst:.4f}")


def test_deterministic_cases_with_one_walk_are_chi2() -> None:
    """For m = 1 and det_order 0/1 the regressor is a deterministic trend, so the statistic is
    exactly chi2(1) at any T: an oracle independent of statsmodels."""
    exact = stats.chi2.ppf([0.90, 0.95, 0.99], 1)
    for case in (1, 2):
        for stat in (0, 1):
            gap = np.abs(TABLE[0, case, stat] - exact)
            assert (gap <= 4 * SE[0, case, stat] + 1e-9).all(), (case, TABLE[0, case, stat])


def test_monte_carlo_error_is_well_under_one_percent() -> None:
    rel = SE / TABLE
    assert rel[..., :2].max() < 0.004  # 90 and 95 %
    assert rel[..., 2].max() < 0.008  # 99 %


def test_table_is_ordered() -> None:
    assert (np.diff(TABLE, axis=3) > 0).all()  # 90 < 95 < 99
    assert (np.diff(TABLE[:, :, 0], axis=0) > 0).all()  # trace grows with m
    assert (TABLE[:, :, 0] >= TABLE[:, :, 1] - 1e-12).all()  # trace >= max-eig


def test_regeneration_reproduces_the_probe(generator: ModuleType) -> None:
    """The same draws give the same statistics. Not bitwise: the statistics go through
    BLAS/LAPACK, whose kernels (and so the last bits) differ by CPU, about 5e-14 between
    OpenBLAS's SkylakeX and Haswell kernels."""
    assert generator.SEED == cvd.SEED
    assert generator.JOH_T == cvd.JOHANSEN_T
    probe = np.array(cvd.JOHANSEN_PROBE.split(), dtype=np.float64).reshape(2, 3, 2, 4)
    for m in (1, 2):
        again = generator.johansen_chunk(m, 0)[0, :, :, :4]
        np.testing.assert_allclose(again, probe[m - 1], rtol=1e-11, atol=0)
    adf_probe = np.array(cvd.ADF_PROBE.split(), dtype=np.float64).reshape(4, 4)
    again = generator.adf_chunk(generator.ADF_TS[0], 0)[:, :4]
    np.testing.assert_allclose(again, adf_probe, rtol=1e-11, atol=0)


def test_result_carries_the_rows_for_its_size() -> None:
    res = mr.johansen(walks(400, 3, 1), det_order=0)
    assert res.trace_crit.shape == res.max_eig_crit.shape == (3, 3)
    np.testing.assert_array_equal(res.trace_crit[0], TABLE[2, 1, 0])  # r = 0: m = 3
    np.testing.assert_array_equal(res.trace_crit[2], TABLE[0, 1, 0])  # r = 2: m = 1
    np.testing.assert_array_equal(res.max_eig_crit[1], TABLE[1, 1, 1])
    trend = mr.johansen(walks(400, 3, 1), det_order=1)
    np.testing.assert_array_equal(trend.trace_crit[0], TABLE[2, 2, 0])


@pytest.mark.parametrize(("n", "trends"), [(2, 1), (3, 1), (3, 2), (4, 1), (4, 3)])
def test_rank_finds_the_cointegration_rank(n: int, trends: int) -> None:
    res = mr.johansen(cointegrated(2000, n, trends, seed=10 * n + trends), det_order=0)
    assert res.rank() == n - trends
    assert res.rank(0.01) == n - trends


def test_rank_is_zero_for_independent_walks() -> None:
    res = mr.johansen(walks(2000, 3, 5) + np.arange(2000)[:, None] * 0.05, det_order=0)
    assert res.rank(0.01) == 0


def test_rank_is_the_sequential_trace_test() -> None:
    res = mr.johansen(cointegrated(300, 4, 2, seed=3), det_order=0)
    for level, col in ((0.10, 0), (0.05, 1), (0.01, 2)):
        expected = next((r for r in range(4) if res.trace_stat[r] <= res.trace_crit[r, col]), 4)
        assert res.rank(level) == expected
    with pytest.raises(InvalidInput, match="level must be one of"):
        res.rank(0.2)


def test_more_than_twelve_assets_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="up to 12 assets"):
        mr.johansen(walks(500, 13, 2))
    with pytest.raises(InvalidInput, match="k_ar_diff"):
        mr.johansen(walks(500, 2, 2), k_ar_diff=-1)


# --- k_ar_diff = 0 -------------------------------------------------------------------------------


@pytest.mark.parametrize("det_order", [-1, 0, 1])
@pytest.mark.parametrize("k_ar_diff", [0, 1, 2])
def test_statsmodels_compat_is_exact(det_order: int, k_ar_diff: int) -> None:
    s = cointegrated(1500, 4, 2, seed=11)
    ours = mr.johansen(s, det_order, k_ar_diff, statsmodels_compat=True)
    theirs = vecm.coint_johansen(s, det_order, k_ar_diff)
    np.testing.assert_allclose(ours.eig, theirs.eig, rtol=1e-10)
    np.testing.assert_allclose(ours.trace_stat, theirs.lr1, rtol=1e-10)
    np.testing.assert_allclose(ours.max_eig_stat, theirs.lr2, rtol=1e-10)


@pytest.mark.parametrize("det_order", [-1, 0, 1])
def test_textbook_and_compat_agree_for_lagged_differences(det_order: int) -> None:
    s = cointegrated(1500, 3, 1, seed=12)
    for k in (1, 3):
        a = mr.johansen(s, det_order, k)
        b = mr.johansen(s, det_order, k, statsmodels_compat=True)
        np.testing.assert_allclose(a.eig, b.eig, rtol=1e-9)


def test_k0_textbook_is_the_canonical_correlation_of_dx_t_and_x_t_minus_1() -> None:
    """At k_ar_diff = 0 the eigenvalues are the squared canonical correlations of the
    demeaned dx_t and x_{t-1}; statsmodels (x_t) differs."""
    s = cointegrated(800, 3, 1, seed=13)
    dx = np.diff(s, axis=0)
    lx = s[:-1]
    a = dx - dx.mean(axis=0)
    b = lx - lx.mean(axis=0)
    qa, _ = np.linalg.qr(a)
    qb, _ = np.linalg.qr(b)
    canon = np.sort(np.linalg.svd(qa.T @ qb, compute_uv=False) ** 2)[::-1]
    ours = mr.johansen(s, 0, 0)
    np.testing.assert_allclose(ours.eig, canon, rtol=1e-10)
    theirs = vecm.coint_johansen(s, 0, 0)
    assert not np.allclose(ours.eig, theirs.eig, rtol=1e-3)


# --- ADF -----------------------------------------------------------------------------------------


def ar1(t: int, b: float, seed: int, trend: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.zeros(t)
    e = rng.normal(size=t)
    for i in range(1, t):
        x[i] = b * x[i - 1] + e[i]
    return 5.0 + trend * np.arange(t) + x


SERIES = {
    "walk": lambda: np.cumsum(np.random.default_rng(21).normal(size=600)),
    "ar1": lambda: ar1(800, 0.9, 22),
    "trend": lambda: ar1(400, 0.7, 23, trend=0.05),
    "ar2": lambda: np.cumsum(ar1(1500, 0.5, 24)) * 0.01 + ar1(1500, 0.95, 25),
}


@pytest.mark.parametrize("name", list(SERIES))
@pytest.mark.parametrize("regression", ["n", "c", "ct", "ctt"])
@pytest.mark.parametrize("autolag", ["AIC", "BIC", None])
def test_adf_matches_adfuller(name: str, regression: str, autolag: str | None) -> None:
    x = SERIES[name]()
    max_lag = None if autolag else 4
    ours = mr.adf(x, regression=regression, max_lag=max_lag, autolag=autolag)  # type: ignore[arg-type]
    stat, p, lag, nobs, crit, *_ = stattools.adfuller(
        x, maxlag=max_lag, regression=regression, autolag=autolag, result_object=False
    )
    assert ours.stat == pytest.approx(stat, rel=1e-10)
    assert ours.lag == lag
    assert ours.n_obs == nobs
    for key in ("1%", "5%", "10%"):
        # MC error about 0.3% at 1%, plus the fitted response surface
        assert ours.crit[key] == pytest.approx(crit[key], rel=0.012), key
    if nobs >= 500 and 0.001 < p < 0.999:
        assert abs(ours.p_value - p) < 0.02  # statsmodels' p-value is asymptotic (1994)


def test_adf_critical_values_against_mackinnon_2010_over_sample_sizes() -> None:
    for t in (25, 60, 100, 400, 1000, 5000):
        for regression in ("n", "c", "ct", "ctt"):
            _, crit = co.adf_distribution(-2.0, t, regression)
            theirs = adfvalues.mackinnoncrit(1, regression, t)
            ours = np.array([crit["1%"], crit["5%"], crit["10%"]])
            np.testing.assert_allclose(ours, theirs, rtol=0.012, err_msg=f"{regression} T={t}")


def test_adf_p_values_are_monotone_and_reject_at_the_nominal_rate() -> None:
    _, coef = co._adf_table()
    for case in range(4):
        for t in (25, 100, 1000, 10_000):
            quant = coef[case, :, 0] + coef[case, :, 1] / t + coef[case, :, 2] / t**2
            assert (np.diff(quant) > 0).all()
    # size under the null: fresh random walks (another seed than the generator's)
    rng = np.random.default_rng(99)
    steps = rng.normal(size=(2000, 200))
    p = np.array([mr.adf(np.cumsum(e), max_lag=0, autolag=None).p_value for e in steps])
    for level in (0.05, 0.10):
        rate = float((p < level).mean())
        assert abs(rate - level) < 4 * np.sqrt(level * (1 - level) / p.size), (level, rate)


def test_adf_rejects_a_stationary_series_and_not_a_walk() -> None:
    assert mr.adf(ar1(1000, 0.5, 31)).p_value < 0.01
    assert mr.adf(np.cumsum(np.random.default_rng(32).normal(size=1000))).p_value > 0.05


def test_adf_bad_input_is_a_clear_error() -> None:
    with pytest.raises(InvalidInput, match="constant"):
        mr.adf(np.ones(100))
    with pytest.raises(InvalidInput, match="max_lag"):
        mr.adf(np.arange(100.0) ** 0.5, max_lag=60)
    with pytest.raises(InvalidInput, match="regression"):
        mr.adf(np.arange(100.0) ** 0.5, regression="x")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="autolag"):
        mr.adf(np.arange(100.0) ** 0.5, autolag="HQ")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="NaN"):
        mr.adf(np.r_[np.arange(50.0), np.nan])
