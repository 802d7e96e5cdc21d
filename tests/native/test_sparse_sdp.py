"""SDP relaxation oracle for sparse mean-reverting portfolios (docs/compute.md §3c(e))."""

from __future__ import annotations

import sys
from types import ModuleType

import numpy as np
import pytest

from core.analytics import meanrev as mr
from core.analytics import sparse_sdp as sdp
from core.errors import InvalidInput
from tests.native.test_meanrev_sparse import brute_force, factor_data, oracle_mg

linalg = pytest.importorskip("scipy.linalg")


@pytest.fixture(scope="module")
def cvxpy() -> ModuleType:
    return pytest.importorskip("cvxpy")


@pytest.fixture(scope="module")
def mg() -> tuple[np.ndarray, np.ndarray]:
    m, g, _ = oracle_mg(factor_data(), jitter=1e-8)
    return m, g


@pytest.mark.parametrize("solver", ["CLARABEL", "SCS"])
def test_relaxation_at_rho_zero_is_lambda_min(
    cvxpy: ModuleType, mg: tuple[np.ndarray, np.ndarray], solver: str
) -> None:
    m, g = mg
    lam_min = float(linalg.eigh(m, g, eigvals_only=True)[0])
    relax = sdp.sdp_relaxation(m, g, rho=0.0, solver=solver)
    # Clarabel (interior point) is accurate; SCS (first order, run at eps 1e-8) to about 1e-6
    tol = 1e-6 if solver == "CLARABEL" else 1e-4
    assert relax.value == pytest.approx(lam_min, rel=tol)
    assert float(np.trace(g @ relax.y)) == pytest.approx(1.0, abs=tol)
    assert np.linalg.eigvalsh(relax.y)[0] >= -0.1 * tol
    print(f"{solver}: SDP value {relax.value:.10g}, lambda_min {lam_min:.10g}")


def test_penalty_only_raises_the_value(
    cvxpy: ModuleType, mg: tuple[np.ndarray, np.ndarray]
) -> None:
    m, g = mg
    lam_min = float(linalg.eigh(m, g, eigvals_only=True)[0])
    values = [sdp.sdp_relaxation(m, g, rho=r).value for r in (0.0, 0.01, 0.1)]
    # Tr(MY) >= lambda_min when Tr(GY) = 1, and the penalty is >= 0 and grows with rho
    assert values[0] >= lam_min - 1e-6 * abs(lam_min)
    assert values[1] >= values[0] - 1e-7
    assert values[2] >= values[1] - 1e-7
    assert values[2] > values[0] + 1e-3


@pytest.mark.parametrize("k", [2, 3, 4])
@pytest.mark.parametrize("rho", [0.0, 0.01, 0.1])
def test_truncate_and_polish_respects_brute_force(
    cvxpy: ModuleType, mg: tuple[np.ndarray, np.ndarray], k: int, rho: float
) -> None:
    m, g = mg
    support, nu_star = brute_force(m, g, k)
    res = sdp.sdp_portfolio(m, g, k, rho=rho)
    assert len(res.support) == k == np.count_nonzero(res.weights)
    ix = np.ix_(res.support, res.support)
    assert res.nu == pytest.approx(linalg.eigh(m[ix], g[ix], eigvals_only=True)[0], rel=1e-10)
    w = res.weights
    assert float(w @ g @ w) == pytest.approx(1.0, rel=1e-10)
    assert float(w @ m @ w) == pytest.approx(res.nu, rel=1e-9)
    assert res.nu >= nu_star - 1e-12
    greedy = mr.select_support(m, g, k, "greedy")[1]
    print(
        f"k={k} rho={rho}: sdp nu={res.nu:.6g} {res.support}, greedy {greedy:.6g}, "
        f"brute force {nu_star:.6g} {list(support)}"
    )


def test_random_small_problems_respect_brute_force(cvxpy: ModuleType) -> None:
    for seed in range(3):
        rng = np.random.default_rng(seed)
        n = 7
        a = rng.normal(size=(n, n))
        g = a @ a.T / n + 0.2 * np.eye(n)
        b = rng.normal(scale=0.4, size=(n, n))
        m = b @ g @ b.T
        m = (m + m.T) / 2
        for k in (2, 3):
            _, nu_star = brute_force(m, g, k)
            assert sdp.sdp_portfolio(m, g, k, rho=0.01).nu >= nu_star - 1e-12


def test_input_errors(mg: tuple[np.ndarray, np.ndarray]) -> None:
    m, g = mg
    with pytest.raises(InvalidInput, match="above the number of assets"):
        sdp.sdp_portfolio(m, g, 9)
    with pytest.raises(InvalidInput, match="k must be a positive int"):
        sdp.sdp_portfolio(m, g, 0)
    with pytest.raises(InvalidInput, match="rho must be a number >= 0"):
        sdp.sdp_relaxation(m, g, rho=-0.1)
    with pytest.raises(InvalidInput, match="solver must be one of"):
        sdp.sdp_relaxation(m, g, solver="MOSEK")
    with pytest.raises(InvalidInput, match="square"):
        sdp.sdp_relaxation(m[:, :3], g)
    with pytest.raises(InvalidInput, match="symmetric"):
        sdp.sdp_relaxation(m + np.triu(np.ones_like(m), 1), g)


def test_missing_cvxpy_is_a_clear_import_error(
    monkeypatch: pytest.MonkeyPatch, mg: tuple[np.ndarray, np.ndarray]
) -> None:
    monkeypatch.setitem(sys.modules, "cvxpy", None)
    with pytest.raises(ImportError, match="needs cvxpy"):
        sdp.sdp_portfolio(*mg, 2)
