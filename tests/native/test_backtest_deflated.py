"""Deflated Sharpe ratio (Bailey & Lopez de Prado 2014) against the paper's formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from core.analytics import backtest as bt
from core.errors import InvalidInput
from tests.native.test_backtest import ou_path

GAMMA = 0.5772156649015329


def paper_sr0(n: int, var: float) -> float:
    """Eq. 2: expected maximum Sharpe of N unskilled trials (one trial: no selection, 0)."""
    if n == 1:
        return 0.0
    return math.sqrt(var) * (
        (1 - GAMMA) * stats.norm.ppf(1 - 1 / n) + GAMMA * stats.norm.ppf(1 - 1 / (n * math.e))
    )


def paper_dsr(sr: float, t: int, skew: float, kurt: float, sr0: float) -> float:
    """Eq. 1 / the PSR at SR0, with non-excess kurtosis."""
    z = (sr - sr0) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    return float(stats.norm.cdf(z))


def paper_dsr_of_returns(r: np.ndarray, n: int, var: float) -> float:
    sr = r.mean() / r.std(ddof=1)
    skew = stats.skew(r)
    kurt = stats.kurtosis(r, fisher=False)
    return paper_dsr(sr, r.size, skew, kurt, paper_sr0(n, var))


def test_reference_reproduces_the_papers_example() -> None:
    # Section "A numerical example": annual SR 2.5, 5 years of daily data (T = 1250, A = 250),
    # N = 100 trials with annualised variance 1/2, skew -3, kurtosis 10 -> SR0 0.1132, DSR 0.9004
    sr0 = paper_sr0(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    assert paper_dsr(2.5 / math.sqrt(250), 1250, -3.0, 10.0, sr0) == pytest.approx(0.9004, abs=5e-5)


def test_expected_max_matches_the_formula_and_the_exact_maximum() -> None:
    for n in (2, 10, 100, 1000, 10_000):
        for var in (1e-4, 0.3):
            assert bt.expected_max_sharpe(n, var) == pytest.approx(paper_sr0(n, var), rel=1e-12)
    assert bt.expected_max_sharpe(1, 0.5) == 0.0
    # the Euler-Mascheroni approximation is within a few percent of E[max of N normals]
    for n in (10, 100, 1000):
        exact, _ = integrate.quad(
            lambda x, n=n: x * n * stats.norm.pdf(x) * stats.norm.cdf(x) ** (n - 1), -10, 10
        )
        assert bt.expected_max_sharpe(n, 1.0) == pytest.approx(exact, rel=0.03)


def test_deflated_sharpe_matches_the_formula_on_skewed_returns() -> None:
    rng = np.random.default_rng(4)
    r = 4e-4 + 0.01 * (rng.standard_t(4, 1500) - 0.3 * rng.exponential(1.0, 1500) + 0.3)
    assert abs(stats.skew(r)) > 0.1
    assert stats.kurtosis(r, fisher=False) > 4
    for n, var in ((1, 0.0), (5, 1e-4), (200, 4e-4)):
        assert bt.deflated_sharpe(r, n, var) == pytest.approx(
            paper_dsr_of_returns(r, n, var), rel=1e-12
        )
    # more trials (a higher bar) deflate more
    assert bt.deflated_sharpe(r, 1000, 4e-4) < bt.deflated_sharpe(r, 10, 4e-4)
    # a per-period risk-free rate is taken off the returns first
    assert bt.deflated_sharpe(r, 5, 1e-4, rf=1e-4) == pytest.approx(
        paper_dsr_of_returns(r - 1e-4, 5, 1e-4), rel=1e-12
    )


def test_sweep_rows_carry_the_deflated_sharpe() -> None:
    rng = np.random.default_rng(2)
    common = 100 + np.cumsum(rng.normal(0, 1, 2000))
    p = np.column_stack([common + ou_path(2000, 15.0, 3.0, 1 / 252, 9) + 50, common + 20])
    w = np.array([1.0, -1.0])
    rows = bt.sweep(p, w, windows=(20, 60), z_ins=(1.0, 1.5, 2.0), z_outs=(0.0, 0.5), capital=1e4)
    per_period = np.array([r["sharpe"] for r in rows]) / math.sqrt(252)
    ok = np.isfinite(per_period)
    n = int(ok.sum())
    var = float(per_period[ok].var(ddof=1))
    assert n == len(rows) == 12
    for row in rows:
        assert row["n_trials"] == n
        res = bt.backtest(
            p, w, window=int(row["window"]), z_in=row["z_in"], z_out=row["z_out"], capital=1e4
        )
        want = paper_dsr_of_returns(res.returns, n, var)
        assert row["deflated_sharpe"] == pytest.approx(want, rel=1e-10)
        # deflation only lowers the probabilistic Sharpe against a zero benchmark
        assert row["deflated_sharpe"] < bt.deflated_sharpe(res.returns, 1, 0.0)
    best = max(rows, key=lambda r: r["sharpe"])
    assert 0.0 < best["deflated_sharpe"] < 1.0


def test_deflated_sharpe_bad_input() -> None:
    r = np.random.default_rng(0).normal(0, 0.01, 100)
    with pytest.raises(InvalidInput, match="n_trials"):
        bt.deflated_sharpe(r, 0, 1e-4)
    with pytest.raises(InvalidInput, match="sharpe_var"):
        bt.deflated_sharpe(r, 10, -1.0)
    with pytest.raises(InvalidInput, match="returns"):
        bt.deflated_sharpe(np.array([0.01, np.nan, 0.0]), 10, 1e-4)
    assert math.isnan(bt.deflated_sharpe(np.zeros(50), 10, 1e-4))
