"""CARA-optimal OU positions (docs/compute.md §3b) against a Riccati ODE evaluation."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from core.analytics import meanrev as mr
from core.errors import InvalidInput

scipy_integrate = pytest.importorskip("scipy.integrate")

P = dict(theta=3.0, mu=0.0, sigma=0.3)
GAMMA, T, X0 = 2.0, 1.0, 0.2


def riccati_ce(
    k: Callable[[float], float],
    theta: float,
    mu: float,
    sigma: float,
    gamma: float,
    horizon: float,
    x0: float,
) -> float:
    """CE of the linear strategy q = -k(t) (x - mu) by Feynman-Kac: g = exp(a y^2 / 2 + c)."""

    def rhs(t: float, ac: np.ndarray) -> list[float]:
        a = ac[0]
        kt = k(t)
        rho = 0.5 * gamma**2 * kt**2 * sigma**2 - gamma * kt * theta
        return [
            2 * (theta - gamma * kt * sigma**2) * a - sigma**2 * a * a - 2 * rho,
            -0.5 * sigma**2 * a,
        ]

    sol = scipy_integrate.solve_ivp(
        rhs, (horizon, 0.0), [0.0, 0.0], rtol=1e-12, atol=1e-14, method="DOP853"
    )
    if sol.status != 0 or not np.all(np.isfinite(sol.y[:, -1])):
        return -math.inf
    a0, c0 = sol.y[:, -1]
    y0 = x0 - mu
    return float(-(a0 * y0 * y0 / 2 + c0) / gamma)


def optimal_k(scale: float = 1.0) -> Callable[[float], float]:
    def k(t: float) -> float:
        # q*(t, x) = -k(t) (x - mu), read off the engine itself
        q = mr.cara_position(P["mu"] + 1.0, t, gamma=GAMMA, T=T, **P)
        return float(-scale * q)

    return k


def test_closed_form_ce_matches_riccati() -> None:
    ce = mr.certainty_equivalent(X0, gamma=GAMMA, T=T, **P)
    assert ce == pytest.approx(2.125, rel=1e-14)
    assert riccati_ce(optimal_k(), gamma=GAMMA, horizon=T, x0=X0, **P) == pytest.approx(
        ce, rel=1e-10
    )


@pytest.mark.parametrize("scale", [0.5, 0.8, 0.9, 0.99, 1.01, 1.1])
def test_perturbed_strategies_are_worse(scale: float) -> None:
    best = mr.certainty_equivalent(X0, gamma=GAMMA, T=T, **P)
    ce = riccati_ce(optimal_k(scale), gamma=GAMMA, horizon=T, x0=X0, **P)
    assert ce < best


def test_myopic_is_worse_than_finite_horizon() -> None:
    def k(t: float) -> float:
        return float(-mr.cara_position(1.0, t, gamma=GAMMA, horizon="myopic", **P))

    ce = riccati_ce(k, gamma=GAMMA, horizon=T, x0=X0, **P)
    assert ce == pytest.approx(0.909, abs=5e-4)


def test_discrete_myopic_is_one_step_mean_variance() -> None:
    theta, mu, sigma, gamma, dt = 2.0, 1.0, 0.5, 3.0, 1 / 52
    x = np.linspace(0.0, 2.0, 11)
    q = mr.cara_position(
        x, theta=theta, mu=mu, sigma=sigma, gamma=gamma, horizon="discrete_myopic", dt=dt
    )
    b = math.exp(-theta * dt)
    mean = (mu - x) * (1 - b)
    var = sigma**2 * (1 - b * b) / (2 * theta)
    np.testing.assert_allclose(q, mean / (gamma * var), rtol=1e-14, atol=1e-14)
    tiny = mr.cara_position(
        x, theta=theta, mu=mu, sigma=sigma, gamma=gamma, horizon="discrete_myopic", dt=1e-8
    )
    myo = mr.cara_position(x, theta=theta, mu=mu, sigma=sigma, gamma=gamma, horizon="myopic")
    np.testing.assert_allclose(tiny, myo, rtol=1e-6, atol=1e-9)


def test_finite_horizon_at_maturity_is_myopic_and_clip_caps() -> None:
    x = np.array([-1.0, 0.1, 0.5])
    fin = mr.cara_position(x, T, gamma=GAMMA, T=T, **P)
    myo = mr.cara_position(x, gamma=GAMMA, horizon="myopic", **P)
    np.testing.assert_allclose(fin, myo, rtol=1e-15)
    capped = mr.cara_position(x, 0.0, gamma=GAMMA, T=T, q_max=5.0, **P)
    assert np.abs(capped).max() == 5.0
    grid = mr.cara_position(np.ones((3, 4)), np.zeros((3, 1)), gamma=GAMMA, T=T, **P)
    assert grid.shape == (3, 4)


def test_bad_parameters() -> None:
    with pytest.raises(InvalidInput, match="theta"):
        mr.cara_position(1.0, theta=-1.0, mu=0.0, sigma=1.0, gamma=1.0)
    with pytest.raises(InvalidInput, match="horizon"):
        mr.cara_position(1.0, theta=1.0, mu=0.0, sigma=1.0, gamma=1.0, horizon="power")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="t must be <= T"):
        mr.cara_position(1.0, 2.0, theta=1.0, mu=0.0, sigma=1.0, gamma=1.0, T=1.0)


def test_pde_solution_matches_closed_form() -> None:
    """Crank–Nicolson on f_tau = theta^2 (x - mu)^2 / (2 sigma^2) + sigma^2 / 2 f_xx, f(0) = 0,
    with Neumann boundaries far away; q* = (theta (mu - x) - sigma^2 f_x) / (gamma sigma^2)."""
    from scipy.linalg import solve_banded

    theta, mu, sigma, gamma, horizon = P["theta"], P["mu"], P["sigma"], GAMMA, T

    def solve(dx: float, steps: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.arange(mu - 3.0, mu + 3.0 + dx / 2, dx)
        n, dtau = x.size, horizon / steps
        r = 0.5 * sigma**2 * dtau / dx**2
        src = theta**2 * (x - mu) ** 2 / (2 * sigma**2) * dtau
        ab = np.zeros((3, n))
        ab[0, 1:] = -r / 2
        ab[1, :] = 1 + r
        ab[2, :-1] = -r / 2
        ab[0, 1] = -r  # Neumann: ghost node mirrors its neighbour
        ab[2, -2] = -r
        f = np.zeros(n)
        for _ in range(steps):
            lap = np.empty(n)
            lap[1:-1] = f[2:] - 2 * f[1:-1] + f[:-2]
            lap[0] = 2 * (f[1] - f[0])
            lap[-1] = 2 * (f[-2] - f[-1])
            f = solve_banded((1, 1), ab, f + r / 2 * lap + src)
        return x, f

    x, f = solve(0.01, 400)
    inner = np.abs(x - mu) <= 0.5
    exact = theta**2 * horizon * (x - mu) ** 2 / (2 * sigma**2) + theta**2 * horizon**2 / 4
    assert np.max(np.abs(f - exact)[inner]) < 1e-6 * exact.max()
    fx = np.gradient(f, x)
    q_pde = (theta * (mu - x) - sigma**2 * fx) / (gamma * sigma**2)
    q = mr.cara_position(x, 0.0, gamma=gamma, T=horizon, **P)
    np.testing.assert_allclose(q_pde[inner], q[inner], rtol=1e-6, atol=1e-6)
