"""HMM against independent oracles: hmmlearn 0.3.3 and statsmodels (docs/compute.md §1, §8)."""

from __future__ import annotations

import numpy as np
import pytest
from hmmlearn.hmm import GaussianHMM

from core.analytics.regime import HMMResult, fit_hmm, full_covars
from tests.native.hmm_data import returns, sp500

CASES = [
    ("diag", 1, 2),
    ("diag", 1, 3),
    ("full", 2, 2),
    ("full", 2, 3),
    ("spherical", 2, 2),
    ("tied", 2, 3),
    ("diag", 2, 2),
]


def data(d: int) -> np.ndarray:
    return sp500()[:, None] if d == 1 else np.ascontiguousarray(returns())


def hmmlearn_start(x: np.ndarray, k: int, ct: str, seed: int = 0) -> dict[str, np.ndarray]:
    m = GaussianHMM(k, covariance_type=ct, random_state=seed)
    m._init(x)
    return {
        "startprob": m.startprob_.copy(),
        "transmat": m.transmat_.copy(),
        "means": m.means_.copy(),
        # hmmlearn keeps spherical variances tiled to (k, d) internally.
        "covars": np.asarray(m._covars_).reshape(k, -1)[:, 0] if ct == "spherical" else m.covars_,
        "raw_covars": m._covars_.copy(),
    }


def oracle_covars(m: GaussianHMM, ct: str) -> np.ndarray:
    """(k, d, d) covariances; hmmlearn's covars_ getter mis-shapes fitted spherical ones."""
    k, d = m.means_.shape
    if ct == "spherical":
        return full_covars(np.asarray(m._covars_).reshape(k, -1)[:, 0], ct, k, d)
    return np.asarray(m.covars_)


def oracle_model(k: int, ct: str, start: dict[str, np.ndarray], n_iter: int) -> GaussianHMM:
    m = GaussianHMM(
        k, covariance_type=ct, init_params="", covars_prior=0.0, n_iter=n_iter, tol=-np.inf
    )
    m.startprob_ = start["startprob"]
    m.transmat_ = start["transmat"]
    m.means_ = start["means"]
    m._covars_ = start["raw_covars"]
    return m


@pytest.mark.parametrize(("ct", "d", "k"), CASES)
def test_em_trajectory_matches_hmmlearn(ct: str, d: int, k: int) -> None:
    x = data(d)
    start = hmmlearn_start(x, k, ct)
    oracle = oracle_model(k, ct, start, 50).fit(x)
    ours = fit_hmm(
        x,
        k,
        covariance_type=ct,
        init_params=start,
        max_iter=50,
        tol=-np.inf,
        reg_covar=0.0,
        min_covar=0.0,
        order_by="none",
    )
    hist = np.array(oracle.monitor_.history)
    assert ours.n_iter == 50
    assert len(ours.history) == 51
    np.testing.assert_allclose(ours.history[:50], hist, rtol=1e-8, atol=0)
    np.testing.assert_allclose(ours.log_likelihood, oracle.score(x), rtol=1e-10)
    np.testing.assert_allclose(ours.means, oracle.means_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.covars, oracle_covars(oracle, ct), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.transmat, oracle.transmat_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.startprob, oracle.startprob_, rtol=1e-7, atol=1e-9)


def fitted_oracle(x: np.ndarray, k: int, ct: str, lengths: list[int] | None = None) -> GaussianHMM:
    m = GaussianHMM(k, covariance_type=ct, covars_prior=0.0, n_iter=10, random_state=1)
    return m.fit(x, lengths)


def as_result(m: GaussianHMM, ct: str) -> HMMResult:
    return HMMResult(
        startprob=np.asarray(m.startprob_, dtype=np.float64),
        transmat=np.asarray(m.transmat_, dtype=np.float64),
        means=np.asarray(m.means_, dtype=np.float64),
        covars=oracle_covars(m, ct),
        log_likelihood=float("nan"),
        n_iter=0,
        converged=False,
        covariance_type=ct,
    )


@pytest.mark.parametrize(
    ("ct", "d", "k", "lengths"),
    [
        ("diag", 1, 2, None),
        ("diag", 1, 3, [2000, 3030]),
        ("full", 2, 3, None),
        ("full", 2, 2, [1234, 3796]),
    ],
)
def test_score_posteriors_viterbi_match_hmmlearn(
    ct: str, d: int, k: int, lengths: list[int] | None
) -> None:
    x = data(d)
    m = fitted_oracle(x, k, ct, lengths)
    ours = as_result(m, ct)
    np.testing.assert_allclose(ours.score(x, lengths), m.score(x, lengths), rtol=1e-10)
    post = ours.posteriors(x, lengths)
    assert np.abs(post - m.predict_proba(x, lengths)).max() <= 1e-8
    lp, path = ours.decode(x, lengths)
    lp_o, path_o = m.decode(x, lengths)
    np.testing.assert_allclose(lp, lp_o, rtol=1e-9)
    assert np.array_equal(path, path_o)
    np.testing.assert_allclose(ours.bic(x, lengths), m.bic(x, lengths), rtol=1e-9)
    np.testing.assert_allclose(ours.aic(x, lengths), m.aic(x, lengths), rtol=1e-9)


@pytest.mark.parametrize(
    ("ct", "d", "k"), [("diag", 1, 3), ("full", 2, 2), ("spherical", 2, 3), ("tied", 2, 2)]
)
def test_bic_aic_match_hmmlearn_on_our_fit(ct: str, d: int, k: int) -> None:
    x = data(d)
    ours = fit_hmm(x, k, covariance_type=ct, n_init=2, seed=3)
    m = GaussianHMM(k, covariance_type=ct, init_params="")
    m.n_features = x.shape[1]
    m.startprob_ = ours.startprob
    m.transmat_ = ours.transmat
    m.means_ = ours.means
    m.covars_ = {
        "full": ours.covars,
        "diag": np.array([np.diag(c) for c in ours.covars]),
        "spherical": ours.covars[:, 0, 0],
        "tied": ours.covars[0],
    }[ct]
    np.testing.assert_allclose(ours.bic(x), m.bic(x), rtol=1e-9)
    np.testing.assert_allclose(ours.aic(x), m.aic(x), rtol=1e-9)
    np.testing.assert_allclose(ours.log_likelihood, m.score(x), rtol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("k", [2, 3])
def test_best_of_restarts_beats_hmmlearn_seeds(k: int) -> None:
    x = sp500()[:, None]
    best = -np.inf
    for seed in range(10):
        m = GaussianHMM(
            k, covariance_type="diag", covars_prior=0.0, n_iter=1000, tol=1e-8, random_state=seed
        ).fit(x)
        best = max(best, m.score(x))
    ours = fit_hmm(x, k, covariance_type="diag", n_init=10, seed=0)
    assert ours.log_likelihood >= best - 1e-6 * abs(best)


@pytest.mark.slow
def test_stationary_mode_beats_statsmodels_markov_regression() -> None:
    from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

    r = sp500()
    sm = MarkovRegression(r, k_regimes=2, trend="c", switching_variance=True).fit(
        search_reps=20, disp=False
    )
    ours = fit_hmm(r, 2, covariance_type="diag", startprob="stationary", seed=0)
    assert ours.log_likelihood >= sm.llf - 1e-4
    # The stationary law really is the start law, and re-scoring agrees.
    np.testing.assert_allclose(ours.startprob, ours.stationary_distribution, atol=1e-12)
    np.testing.assert_allclose(ours.score(r), ours.log_likelihood, rtol=1e-10)
    # Same regimes as statsmodels to about 3 digits (variances 0.468 / 3.256).
    sm_var = np.sort(np.asarray(sm.params)[-2:])
    np.testing.assert_allclose(np.sort(ours.covars[:, 0, 0]), sm_var, rtol=5e-3)
    free = fit_hmm(r, 2, covariance_type="diag", seed=0)
    assert free.log_likelihood >= ours.log_likelihood - 1e-6
