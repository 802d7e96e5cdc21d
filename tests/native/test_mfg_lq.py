"""Problem B (LQ mean attraction), the pure Fokker–Planck step, and the solver's API."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
from scipy.integrate import solve_bvp, solve_ivp

from core.analytics import mfg
from core.errors import InvalidInput

P = mfg.LQParams()


def riccati(p: mfg.LQParams) -> object:
    return solve_ivp(
        lambda _, y: y**2 - p.q, (p.T, 0.0), [p.c_T], rtol=1e-13, atol=1e-14, dense_output=True
    )


def test_closed_form_against_scipy() -> None:
    t = np.linspace(0.0, P.T, 21)
    cf = mfg.lq_closed_form(P, t)
    ric = riccati(P)
    assert np.max(np.abs(ric.sol(t)[0] - cf.P)) < 1e-10

    def rhs(s: np.ndarray, y: np.ndarray) -> np.ndarray:
        ps = ric.sol(s)[0]
        return np.vstack([-(ps * y[0] + y[1]), ps * y[1] + P.q * P.kappa_m * y[0]])

    def bc(ya: np.ndarray, yb: np.ndarray) -> np.ndarray:
        return np.array([ya[0] - P.mean0, yb[1] + P.c_T * P.kappa_T * yb[0]])

    mesh = np.linspace(0.0, P.T, 21)
    bvp = solve_bvp(rhs, bc, mesh, np.vstack([np.ones(21), np.zeros(21)]), tol=1e-10)
    assert bvp.status == 0
    assert np.max(np.abs(bvp.sol(t)[0] - cf.mean)) < 1e-9
    assert np.max(np.abs(bvp.sol(t)[1] - cf.S)) < 1e-9
    var = solve_ivp(
        lambda s, v: -2 * ric.sol(s)[0] * v + P.sigma**2,
        (0.0, P.T),
        [P.var0],
        rtol=1e-12,
        atol=1e-14,
        dense_output=True,
    )
    assert np.max(np.abs(var.sol(t)[0] - cf.var)) < 1e-10


def lq_level_at_zero(p: mfg.LQParams) -> float:
    """R(0) of u = P x²/2 + S x + R: the x⁰ part of the HJB gives
    R' = S²/2 - σ² P/2 - q κ_m² m̄²/2 with R(T) = c_T κ_T² m̄(T)²/2 (trapezoid on a fine grid
    over the closed-form P, S and m̄)."""
    t = np.linspace(0.0, p.T, 200_001)
    cf = mfg.lq_closed_form(p, t)
    rate = 0.5 * cf.S**2 - 0.5 * p.sigma**2 * cf.P - 0.5 * p.q * p.kappa_m**2 * cf.mean**2
    return float(0.5 * p.c_T * p.kappa_T**2 * cf.mean[-1] ** 2 - np.trapezoid(rate, t))


def test_solver_matches_the_lq_closed_form_at_first_order() -> None:
    errs = []
    r0 = lq_level_at_zero(P)
    for n, nt in [(181, 200), (361, 400)]:
        s = mfg.solve_lq(P, n=n, nt=nt)
        cf = mfg.lq_closed_form(P, s.t)
        assert s.diagnostics["converged"]
        assert s.diagnostics["mass_error"] < 1e-12
        mid = (s.x > 0.0) & (s.x < 2.0)
        # ν* = -(P x + S); u (maximisation) = -(P x²/2 + S x + R), level R included
        nu = -(cf.P[0] * s.x[mid] + cf.S[0])
        u = -(0.5 * cf.P[0] * s.x[mid] ** 2 + cf.S[0] * s.x[mid] + r0)
        errs.append(
            (
                np.max(np.abs(s.mean - cf.mean)),
                np.max(np.abs(s.var - cf.var)),
                np.max(np.abs(s.control[0, mid] - nu)),
                np.max(np.abs(s.u[0, mid] - u)),
            )
        )
    coarse, fine = errs
    assert fine[0] < 2e-3
    assert fine[1] < 6e-3
    assert fine[2] < 1.2e-2
    assert fine[3] < 1e-2
    for c, f in zip(coarse, fine, strict=True):
        assert 0.8 <= math.log2(c / f) <= 1.2


def test_unit_attraction_keeps_the_mean() -> None:
    p = mfg.LQParams(kappa_m=1.0, kappa_T=1.0)
    s = mfg.solve_lq(p, n=181, nt=200)
    assert np.max(np.abs(s.mean - p.mean0)) < 5e-3
    np.testing.assert_allclose(mfg.lq_closed_form(p, s.t).mean, p.mean0, atol=1e-10)


def test_lq_initial_guess_does_not_change_the_limit() -> None:
    a = mfg.solve_lq(P, n=91, nt=100)
    b = mfg.solve_lq(P, n=91, nt=100, init=-0.5)
    assert np.max(np.abs(a.field - b.field)) < 1e-8


def test_constant_control_translates_a_gaussian() -> None:
    eps, speed, var0 = 0.005, 0.5, 0.01
    out = []
    for n, nt in [(151, 100), (301, 200)]:
        x = np.linspace(-1.0, 2.0, n)
        m0 = mfg.gaussian_density(x, 0.0, var0)
        m, diag = mfg.fokker_planck(x, m0, np.full((nt, n), speed), t_end=1.0, eps=eps)
        assert diag["mass_error"] < 1e-12
        assert diag["min_density"] >= 0
        dx = x[1] - x[0]
        mean = m @ x * dx
        var = m @ x**2 * dx - mean**2
        t = np.linspace(0, 1, nt + 1)
        out.append((np.max(np.abs(mean - speed * t)), np.max(np.abs(var - var0 - 2 * eps * t))))
    # the mean moves at exactly the set speed; the variance grows by 2εt up to the upwind
    # scheme's first-order numerical diffusion, which halves with the grid
    assert out[0][0] < 1e-3
    assert out[1][0] < 5e-4
    assert out[1][1] < 0.02
    assert 0.8 <= math.log2(out[0][1] / out[1][1]) <= 1.2


def test_progress_and_cancel() -> None:
    seen: list[tuple[int, float]] = []
    s = mfg.solve_crowding(n=91, nt=100, progress=lambda k, r: seen.append((k, r)))
    assert s.diagnostics["converged"]
    # reported after the first iteration, then throttled in time
    assert seen
    assert seen[0][0] == 1
    assert all(k >= 1 and math.isfinite(r) for k, r in seen)
    stop = threading.Event()
    stop.set()
    with pytest.raises(mfg.SolveCancelled):
        mfg.solve_crowding(n=91, nt=100, cancel=stop)


def test_cancel_from_another_thread_stops_a_long_run() -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            mfg.solve_crowding(
                n=61, nt=60, method="fictitious_play", tol=1e-12, max_iter=50_000_000, cancel=stop
            )
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=work)
    t.start()
    ticks = 0
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline:
        ticks += 1  # the GIL is free while the kernel runs
    stop.set()
    t.join(timeout=30)
    assert not t.is_alive()
    assert len(errors) == 1
    assert isinstance(errors[0], mfg.SolveCancelled)
    assert ticks > 1000


def test_progress_exception_propagates() -> None:
    def boom(k: int, r: float) -> None:
        raise RuntimeError("from the callback")

    with pytest.raises(RuntimeError, match="from the callback"):
        mfg.solve_crowding(n=61, nt=60, method="fictitious_play", max_iter=2_000_000, progress=boom)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 5}, "n \\(space nodes\\)"),
        ({"nt": 3.5}, "nt must be an int"),
        ({"method": "newton"}, "method must be"),
        ({"damping": 0.0}, "damping"),
        ({"tol": -1.0}, "tol must be > 0"),
        ({"max_iter": 0}, "max_iter"),
        ({"init": np.zeros(7)}, "init must be"),
        ({"params": mfg.CrowdingParams(kappa=-0.2)}, "kappa must be > 0"),
        ({"params": mfg.CrowdingParams(phi=0.0)}, "phi must be > 0"),
        ({"params": mfg.CrowdingParams(V0=float("nan"))}, "V0 must be finite"),
        ({"params": mfg.CrowdingParams(lo=0.5)}, "too narrow"),
        ({"params": mfg.CrowdingParams(lo=3.0, hi=1.0)}, "lo < hi"),
    ],
)
def test_bad_input_gets_a_clear_message(kwargs: dict[str, object], match: str) -> None:
    params = kwargs.pop("params", None)
    with pytest.raises(InvalidInput, match=match):
        mfg.solve_crowding(params, **kwargs)  # type: ignore[arg-type]


def test_bad_transport_input() -> None:
    x = np.linspace(0, 1, 11)
    with pytest.raises(InvalidInput, match="columns"):
        mfg.fokker_planck(x, np.ones(11), np.zeros((5, 10)), t_end=1.0, eps=0.0)
    with pytest.raises(InvalidInput, match=">= 0"):
        mfg.fokker_planck(x, -np.ones(11), np.zeros((5, 11)), t_end=1.0, eps=0.0)
    with pytest.raises(InvalidInput, match="uniformly"):
        mfg.fokker_planck(x**2, np.ones(11), np.zeros((5, 11)), t_end=1.0, eps=0.0)
