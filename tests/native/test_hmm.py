"""core.analytics.regime: API, invariants, errors, reproducibility, BIC, simulation recovery."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from core.analytics.regime import HMMResult, fit_hmm, select_n_states
from core.errors import InvalidInput
from tests.native.hmm_data import returns, sp500

ROOT = Path(__file__).resolve().parents[2]


def truth(sds: list[float], stay: float = 0.99) -> HMMResult:
    k = len(sds)
    a = np.full((k, k), (1 - stay) / (k - 1))
    np.fill_diagonal(a, stay)
    return HMMResult(
        startprob=np.full(k, 1 / k),
        transmat=a,
        means=np.linspace(0.05, -0.1, k)[:, None],
        covars=(np.array(sds) ** 2)[:, None, None],
        log_likelihood=float("nan"),
        n_iter=0,
        converged=False,
        covariance_type="diag",
    )


def test_sp500_two_states_invariants() -> None:
    r = sp500()
    m = fit_hmm(r, 2, covariance_type="diag", seed=0)
    assert m.converged
    assert m.monotone
    assert not m.reinitialised
    np.testing.assert_allclose(m.transmat.sum(axis=1), 1.0, atol=1e-12)
    assert m.state_vol[0] < m.state_vol[1]
    np.testing.assert_allclose(m.state_vol, [0.685, 1.806], atol=2e-3)
    # docs/compute.md §1.3 table (values rounded to 3 digits there)
    np.testing.assert_allclose(np.diag(m.transmat), [0.988, 0.978], atol=1e-3)
    np.testing.assert_allclose(m.log_likelihood, m.score(r), rtol=1e-10)
    assert np.all(np.diff(m.history) >= -1e-8 * np.abs(m.history[:-1]))
    post = m.posteriors(r)
    filt = m.filtered(r)
    assert post.shape == filt.shape == (r.size, 2)
    np.testing.assert_allclose(post.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(filt.sum(axis=1), 1.0, atol=1e-12)
    # Filtered probabilities use no look-ahead; smoothed ones do.
    t = 3000
    np.testing.assert_allclose(m.filtered(r[:t])[-1], filt[t - 1], atol=1e-12)
    np.testing.assert_allclose(m.posteriors(r[:t])[-1], filt[t - 1], atol=1e-12)
    assert np.abs(post - filt).max() > 0.1
    path = m.viterbi(r)
    assert path.dtype == np.int64
    assert set(np.unique(path)) == {0, 1}
    np.testing.assert_allclose(m.expected_durations, 1 / (1 - np.diag(m.transmat)))
    pi = m.stationary_distribution
    np.testing.assert_allclose(pi @ m.transmat, pi, atol=1e-12)
    assert m.n_params == 1 + 2 + 2 + 2


def test_same_seed_same_result_and_seed_recorded() -> None:
    r = sp500()[:2000]
    a = fit_hmm(r, 3, covariance_type="diag", n_init=4, seed=42)
    b = fit_hmm(r, 3, covariance_type="diag", n_init=4, seed=42)
    assert a.log_likelihood == b.log_likelihood
    assert np.array_equal(a.means, b.means)
    assert np.array_equal(a.transmat, b.transmat)
    c = fit_hmm(r, 3, covariance_type="diag", n_init=4)
    d = fit_hmm(r, 3, covariance_type="diag", n_init=4, seed=c.seed)
    assert np.array_equal(c.covars, d.covars)


SCRIPT = """
import numpy as np
from core.analytics.regime import fit_hmm
from tests.native.hmm_data import returns
m = fit_hmm(returns(), 3, covariance_type="full", n_init=6, seed=7)
print(m.log_likelihood.hex(), m.means.tobytes().hex(), m.covars.tobytes().hex(),
      m.transmat.tobytes().hex(), m.restart_log_likelihoods.tobytes().hex())
"""


def test_bitwise_identical_across_thread_counts() -> None:
    outs = []
    for threads in ("1", "2"):
        env = {**os.environ, "RAYON_NUM_THREADS": threads}
        res = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outs.append(res.stdout)
    assert outs[0] == outs[1]
    assert len(outs[0]) > 100


def test_two_features_lengths_and_covariance_types() -> None:
    x = returns()
    for ct in ("full", "diag", "spherical", "tied"):
        m = fit_hmm(x, 2, covariance_type=ct, n_init=2, seed=1, lengths=[2500, 2530])
        assert m.covars.shape == (2, 2, 2)
        assert m.means.shape == (2, 2)
        assert m.monotone
        np.testing.assert_allclose(m.log_likelihood, m.score(x, [2500, 2530]), rtol=1e-10)
        if ct == "tied":
            assert np.array_equal(m.covars[0], m.covars[1])
        if ct in ("diag", "spherical"):
            assert m.covars[0, 0, 1] == 0.0
        if ct == "spherical":
            assert m.covars[0, 0, 0] == m.covars[0, 1, 1]
    full = fit_hmm(x, 2, n_init=2, seed=1)
    assert full.covars[0, 0, 1] > 0  # the indices move together


def test_sp500_three_states_match_the_reference_table() -> None:
    """docs/compute.md §1.3: K=3 reaches log L -6900.738 with state sds 0.548, 1.167,
    2.665 and diag A 0.979, 0.973, 0.969 (rounded to 3 digits there)."""
    m = fit_hmm(sp500(), 3, covariance_type="diag", seed=0)
    assert m.log_likelihood >= -6900.738 - 1e-6 * 6900.738
    np.testing.assert_allclose(m.state_vol, [0.548, 1.167, 2.665], atol=2e-3)
    np.testing.assert_allclose(np.diag(m.transmat), [0.979, 0.973, 0.969], atol=1e-3)


@pytest.mark.slow
def test_bic_across_k_on_sp500() -> None:
    """Reference (5 hmmlearn restarts): log L >= -8069.906, -7131.654, -6900.738 and
    -6865.976 for K = 1..4, BIC 13920.80 at K = 3. Those are lower bounds. Our restarts
    find a better K=4 optimum (about -6852.5, BIC about 13901), so on this data BIC
    prefers K=4 once K=4 is fitted well; we assert the bounds and the argmin, not K=3."""
    r = sp500()
    sel = select_n_states(r, k_max=4, covariance_type="diag", seed=0)
    ref = {1: -8069.906, 2: -7131.654, 3: -6900.738, 4: -6865.976}
    table = {row[0]: row for row in sel.table}
    for k, ll in ref.items():
        assert table[k][1] >= ll - 1e-6 * abs(ll), (k, table[k])
    assert table[3][3] <= 13920.80 + 0.01
    assert table[3][3] < min(table[1][3], table[2][3])
    assert sel.n_states == min(table.values(), key=lambda row: row[3])[0]
    np.testing.assert_allclose(table[3][3], sel.fits[3].bic(r), rtol=1e-10)
    np.testing.assert_allclose(table[3][4], sel.fits[3].aic(r), rtol=1e-10)


def test_select_reports_progress() -> None:
    seen: list[tuple[int, int]] = []
    sel = select_n_states(
        sp500()[:1500],
        k_max=3,
        covariance_type="diag",
        n_init=2,
        seed=0,
        progress=lambda i, n: seen.append((i, n)),
    )
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert sel.n_states in (1, 2, 3)
    assert set(sel.fits) == {1, 2, 3}


def aligned_accuracy(path: np.ndarray, states: np.ndarray, k: int) -> float:
    conf = np.zeros((k, k))
    np.add.at(conf, (states, path), 1)
    rows, cols = linear_sum_assignment(-conf)
    return float(conf[rows, cols].sum() / states.size)


@pytest.mark.parametrize("sds", [[0.5, 1.5], [0.4, 1.0, 2.5]])
def test_simulation_viterbi_accuracy(sds: list[float]) -> None:
    true = truth(sds)
    x, states = true.sample(20_000, seed=5)
    m = fit_hmm(x, len(sds), covariance_type="diag", n_init=4, seed=0)
    assert aligned_accuracy(m.viterbi(x), states, len(sds)) >= 0.95
    np.testing.assert_allclose(m.state_vol, sds, rtol=0.05)


@pytest.mark.slow
def test_simulation_recovery_within_4_se() -> None:
    """200 simulated replications (docs/compute.md §1.6) give the SE; every parameter's
    mean is unbiased within 4 SE / sqrt(R), and at least 99% of single fits lie within 4 SE
    of the truth (a label switch or a fit stuck in a poor optimum would break this)."""
    true = truth([0.5, 1.5])
    est = []
    for rep in range(200):
        x, _ = true.sample(20_000, seed=1000 + rep)
        m = fit_hmm(x, 2, covariance_type="diag", n_init=1, seed=rep)
        est.append([m.transmat[0, 0], m.transmat[1, 1], *m.means[:, 0], *m.covars[:, 0, 0]])
    est_arr = np.array(est)
    theta = np.array([0.99, 0.99, 0.05, -0.1, 0.25, 2.25])
    se = est_arr.std(axis=0, ddof=1)
    assert np.all(np.abs(est_arr.mean(axis=0) - theta) <= 4 * se / np.sqrt(len(est)))
    assert np.mean(np.abs(est_arr - theta) <= 4 * se) >= 0.99


def test_hmmlearn_style_init_and_mean_order() -> None:
    r = sp500()
    m = fit_hmm(r, 2, covariance_type="diag", init="hmmlearn", seed=0, order_by="mean")
    assert m.means[0, 0] < m.means[1, 0]
    np.testing.assert_allclose(m.log_likelihood, -7131.654, atol=0.01)


@pytest.mark.parametrize(
    ("x", "k", "kwargs", "match"),
    [
        (np.r_[0.1, np.nan, 0.3] * np.ones(50)[:3], 2, {}, "NaN"),
        (np.ones(100), 2, {}, "constant"),
        (np.arange(5.0), 2, {}, "too few"),
        (np.arange(100.0), 0, {}, "n_states"),
        (np.arange(100.0), 2.5, {}, "n_states"),
        (np.arange(100.0), 2, {"covariance_type": "banana"}, "covariance_type"),
        (np.arange(100.0), 2, {"lengths": [50, 20]}, "lengths"),
        (np.zeros((10, 2, 2)), 2, {}, "shaped"),
        (["a", "b"], 2, {}, "numeric"),
        (np.arange(100.0), 2, {"seed": -1}, "seed"),
    ],
)
def test_bad_input_is_a_clear_error(
    x: object, k: object, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        fit_hmm(x, k, **kwargs)  # type: ignore[arg-type]


def test_model_rejects_wrong_columns() -> None:
    m = fit_hmm(sp500()[:1000], 2, covariance_type="diag", n_init=1, seed=0)
    with pytest.raises(InvalidInput, match="column"):
        m.viterbi(returns()[:100])
    with pytest.raises(InvalidInput, match="NaN"):
        m.score(np.array([0.1, np.nan]))
    with pytest.raises(InvalidInput, match="k_min"):
        select_n_states(sp500(), k_max=0)
