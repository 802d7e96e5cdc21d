"""Problem A (Cardaliaguet–Lehalle trade crowding) against its closed form, docs/compute.md §5.1."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from benchmarks.mfg_reference import RefProblem
from benchmarks.mfg_reference import solve as reference_solve
from core.analytics import mfg

P = mfg.CrowdingParams()

# Reference errors at (361, 400) of a numpy prototype (docs/compute.md §5.1); ours must be below 2x.
SPEC_361 = {"E": 5.71e-3, "mu": 2.9e-2, "V": 5.0e-3, "L1_T": 0.24}


def errors(s: mfg.MFGSolution, p: mfg.CrowdingParams = P) -> dict[str, float]:
    cf = mfg.crowding_closed_form(p, s.t)
    return {
        "E": float(np.max(np.abs(s.mean - cf.E))),
        "mu": float(np.max(np.abs(s.mu - cf.mu[:-1]))),
        "V": float(np.max(np.abs(s.var - cf.V))),
    }


def l1_to_gaussian(s: mfg.MFGSolution, k: int, p: mfg.CrowdingParams = P) -> float:
    cf = mfg.crowding_closed_form(p, s.t[k : k + 1])
    g = np.exp(-((s.x - cf.E[0]) ** 2) / (2 * cf.V[0])) / math.sqrt(2 * math.pi * cf.V[0])
    return float(np.sum(np.abs(s.m[k] - g)) * (s.x[1] - s.x[0]))


@pytest.fixture(scope="module")
def grids() -> dict[tuple[int, int], mfg.MFGSolution]:
    return {g: mfg.solve_crowding(P, n=g[0], nt=g[1]) for g in [(181, 200), (361, 400), (721, 800)]}


def test_closed_form_constants() -> None:
    cf = mfg.crowding_closed_form(P, np.array([0.0, P.T]))
    assert cf.E[1] == pytest.approx(0.043484, abs=5e-7)
    assert cf.mu[0] == pytest.approx(-1.835295, abs=5e-7)
    assert cf.h2[0] == pytest.approx(0.434127, abs=5e-7)
    assert cf.E[0] == pytest.approx(P.E0, abs=1e-14)
    # terminal condition κE'(T) + A E(T) = 0
    assert P.kappa * cf.mu[1] + P.A * cf.E[1] == pytest.approx(0.0, abs=1e-13)


def test_closed_form_solves_its_odes() -> None:
    t = np.linspace(0.0, P.T, 41)
    cf = mfg.crowding_closed_form(P, t)
    # 2κE'' + αE' - 2φE = 0, with E'' by central differences of the exact E'.
    h = 1e-5
    d2 = (mfg.crowding_closed_form(P, t + h).mu - mfg.crowding_closed_form(P, t - h).mu) / (2 * h)
    assert np.max(np.abs(2 * P.kappa * d2 + P.alpha * cf.mu - 2 * P.phi * cf.E)) < 1e-6
    # h2' = h2²/(2κ) - 2φ, h2(T) = 2A, integrated independently
    ric = solve_ivp(
        lambda _, y: y**2 / (2 * P.kappa) - 2 * P.phi,
        (P.T, 0.0),
        [2 * P.A],
        rtol=1e-12,
        atol=1e-13,
        dense_output=True,
    )
    assert np.max(np.abs(ric.sol(t)[0] - cf.h2)) < 1e-9
    # V' = -(h2/κ)V + 2ε, V(0) = V0
    var = solve_ivp(
        lambda s, v: -(ric.sol(s)[0] / P.kappa) * v + 2 * P.eps,
        (0.0, P.T),
        [P.V0],
        rtol=1e-12,
        atol=1e-14,
        dense_output=True,
    )
    assert np.max(np.abs(var.sol(t)[0] - cf.V)) < 1e-10


def test_errors_at_the_default_grid_are_within_twice_the_spec(
    grids: dict[tuple[int, int], mfg.MFGSolution],
) -> None:
    s = grids[(361, 400)]
    err = errors(s)
    for key in ("E", "mu", "V"):
        assert err[key] < 2 * SPEC_361[key], (key, err[key])
    assert l1_to_gaussian(s, 400) < 2 * SPEC_361["L1_T"]
    d = s.diagnostics
    assert d["converged"]
    assert d["iterations"] < 100
    assert d["mass_error"] < 1e-12
    assert d["min_density"] >= -1e-14
    assert np.all(s.m >= 0)
    assert np.allclose(s.m.sum(axis=1) * (s.x[1] - s.x[0]), 1.0, atol=1e-12, rtol=0)


def test_first_order_convergence(grids: dict[tuple[int, int], mfg.MFGSolution]) -> None:
    errs = [errors(grids[g]) for g in [(181, 200), (361, 400), (721, 800)]]
    for key in ("E", "mu", "V"):
        for coarse, fine in itertools.pairwise(errs):
            order = math.log2(coarse[key] / fine[key])
            assert 0.8 <= order <= 1.2, (key, order)
    # the density at an intermediate time converges too
    l1 = [l1_to_gaussian(grids[g], g[1] // 2) for g in [(181, 200), (361, 400), (721, 800)]]
    assert l1[0] > l1[1] > l1[2]
    assert math.log2(l1[1] / l1[2]) > 0.8


def test_value_function_curvature_and_control(
    grids: dict[tuple[int, int], mfg.MFGSolution],
) -> None:
    errs = []
    for g in [(361, 400), (721, 800)]:
        s = grids[g]
        cf = mfg.crowding_closed_form(P, s.t)
        central = (s.x > -0.5) & (s.x < 1.5)
        worst = 0.0
        for k in range(0, g[1] + 1, g[1] // 10):
            curv = -2 * np.polyfit(s.x[central], s.u[k, central], 2)[0]
            worst = max(worst, abs(curv - cf.h2[k]))
        errs.append(worst)
        # affine equilibrium control ν* = (h1 - h2 q)/(2κ) at t = 0
        nu = (cf.h1[0] - cf.h2[0] * s.x[central]) / (2 * P.kappa)
        assert np.max(np.abs(s.control[0, central] - nu)) < 0.06
    assert errs[0] < 0.06
    assert 0.8 <= math.log2(errs[0] / errs[1]) <= 1.2


def test_matches_the_numpy_reference_at_equal_iterations() -> None:
    n, nt = 61, 60
    ours = mfg.solve_crowding(P, n=n, nt=nt)
    ref = reference_solve(
        RefProblem(P.lo, P.hi, n, P.T, nt, P.kappa, P.eps, P.phi, P.A, "controls", P.alpha),
        mfg.gaussian_density(ours.x, P.E0, P.V0),
        solver="banded",
    )
    assert ours.diagnostics["iterations"] == ref.iterations
    np.testing.assert_allclose(ours.m, ref.m, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.u, ref.u, rtol=0, atol=1e-11)
    np.testing.assert_allclose(ours.field, ref.z, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ours.diagnostics["residuals"], ref.residuals, rtol=1e-8, atol=1e-13)


def test_no_crowd_impact_is_the_single_agent_solution() -> None:
    p = mfg.CrowdingParams(alpha=0.0)
    s = mfg.solve_crowding(p, n=361, nt=400)
    err = errors(s, p)
    assert err["E"] < 1.2e-2
    assert err["mu"] < 6e-2
    # α = 0: μ does not enter the reward, so the first best response is the answer and an
    # undamped iteration stops at once (the second confirms it)
    quick = mfg.solve_crowding(p, n=361, nt=400, damping=1.0)
    assert quick.diagnostics["iterations"] == 2
    np.testing.assert_allclose(quick.m, s.m, rtol=0, atol=1e-12)
    # and the closed form is the Almgren–Chriss-type one: E'' = (φ/κ) E
    t = np.linspace(0, 1, 11)
    cf = mfg.crowding_closed_form(p, t)
    w = math.sqrt(p.phi / p.kappa)
    c1 = (p.kappa * w * math.sinh(w) + p.A * math.cosh(w)) / (
        p.kappa * w * math.cosh(w) + p.A * math.sinh(w)
    )
    np.testing.assert_allclose(cf.E, p.E0 * (np.cosh(w * t) - c1 * np.sinh(w * t)), atol=1e-12)


def test_initial_guess_does_not_change_the_limit() -> None:
    a = mfg.solve_crowding(P, n=91, nt=100, init=0.0)
    b = mfg.solve_crowding(P, n=91, nt=100, init=-1.0)
    assert a.diagnostics["converged"]
    assert b.diagnostics["converged"]
    assert np.max(np.abs(a.field - b.field)) < 1e-8
    assert np.max(np.abs(a.m - b.m)) < 1e-8


def test_anderson_reaches_the_picard_equilibrium_faster() -> None:
    picard = mfg.solve_crowding(P, n=181, nt=200)
    anderson = mfg.solve_crowding(P, n=181, nt=200, method="anderson")
    assert anderson.diagnostics["converged"]
    assert anderson.diagnostics["iterations"] < picard.diagnostics["iterations"]
    assert np.max(np.abs(picard.field - anderson.field)) < 1e-8
    lq = mfg.solve_lq(n=91, nt=100)
    lq_a = mfg.solve_lq(n=91, nt=100, method="anderson")
    assert lq_a.diagnostics["iterations"] < lq.diagnostics["iterations"]
    assert np.max(np.abs(lq.field - lq_a.field)) < 1e-8


@pytest.mark.slow
def test_fictitious_play_reaches_the_picard_equilibrium() -> None:
    # Fictitious play converges like 1/k, so this needs ~1e6 iterations: a coarse grid.
    picard = mfg.solve_crowding(P, n=21, nt=20)
    fp = mfg.solve_crowding(
        P, n=21, nt=20, method="fictitious_play", tol=2.5e-7, max_iter=5_000_000
    )
    assert picard.diagnostics["converged"]
    assert fp.diagnostics["converged"]
    assert np.max(np.abs(picard.field - fp.field)) < 1e-6
    # the residual history decreases like 1/k
    r = np.asarray(fp.diagnostics["residuals"])
    assert r[10_000] < r[1_000] < r[100]
