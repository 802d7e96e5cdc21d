"""Power-utility OU positions (Boguslavsky & Boguslavskaya 2004) against independent oracles:
solve_ivp of the Riccati ODE, exact expected utility of perturbed strategies, a finite-difference
HJB solve with the control maximised on the grid, and the log/Merton limits."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from core.analytics import meanrev as mr
from core.errors import InvalidInput

scipy_integrate = pytest.importorskip("scipy.integrate")

P = dict(theta=3.0, mu=0.5, sigma=0.3)
T, X0, W0 = 1.0, 0.2, 2.0
GAMMAS = [-5.0, -1.0, -0.2, 0.0, 0.3, 0.9, 0.99]


def riccati_ivp(gamma: float, tau: np.ndarray, theta: float, sigma: float) -> np.ndarray:
    """(A, C) at tau from (1 - g) A' = s2 A^2 - 2 theta A + g theta^2 / s2, C' = s2 A / 2."""
    s2 = sigma**2

    def rhs(_: float, v: np.ndarray) -> list[float]:
        a = v[0]
        return [(s2 * a * a - 2 * theta * a + gamma * theta**2 / s2) / (1 - gamma), 0.5 * s2 * a]

    sol = scipy_integrate.solve_ivp(
        rhs, (0.0, tau[-1]), [0.0, 0.0], t_eval=tau, rtol=1e-12, atol=1e-14, method="DOP853"
    )
    assert sol.status == 0
    return np.asarray(sol.y)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_closed_form_matches_solve_ivp(gamma: float) -> None:
    tau = np.linspace(0.0, 2.0, 41)
    co = mr.power_coefficients(tau, theta=P["theta"], sigma=P["sigma"], gamma=gamma)
    a, c = riccati_ivp(gamma, tau, P["theta"], P["sigma"])
    scale = max(1.0, float(np.abs(a).max()))
    np.testing.assert_allclose(co.A, a, rtol=1e-10, atol=1e-10 * scale)
    np.testing.assert_allclose(co.C, c, rtol=1e-10, atol=1e-12)
    # q* = w (sigma^2 A - theta) y / ((1 - gamma) sigma^2), with A from the ODE
    s2 = P["sigma"] ** 2
    x = np.full(tau.size, X0)
    ok = tau <= T
    q = mr.power_position(x[ok], T - tau[ok], gamma=gamma, wealth=W0, T=T, **P)
    expected = W0 * (s2 * a[ok] - P["theta"]) * (X0 - P["mu"]) / ((1 - gamma) * s2)
    # (sigma^2 A - theta) / (1 - gamma) amplifies the ODE's error on A by 1 / (1 - gamma)
    np.testing.assert_allclose(q, expected, rtol=max(1e-10, 1e-11 / (1 - gamma)))


def evaluate_ce(
    k: Callable[[float], float],
    gamma: float,
    theta: float,
    mu: float,
    sigma: float,
    horizon: float,
    x0: float,
    w0: float,
) -> float:
    """Exact CE of the strategy q = w k(t) (x - mu) by Feynman-Kac on the log-wealth.

    gamma != 0: E[W_T^g] = w0^g exp(a y^2 / 2 + c), a' = 2 (theta - g k s2) a - s2 a^2 - 2 rho,
    rho = -g theta k - g (1 - g) k^2 s2 / 2; gamma = 0: E[ln W_T] = ln w0 + a y^2 / 2 + c,
    a' = 2 theta a + 2 theta k + k^2 s2; c' = -s2 a / 2 in both; a(T) = c(T) = 0.
    An exploding a means E[W_T^g] = inf: utility -inf for g < 0, so CE = 0.
    """
    s2 = sigma**2

    def rhs(t: float, v: np.ndarray) -> list[float]:
        a, kt = v[0], k(t)
        if gamma == 0.0:
            da = 2 * theta * a + 2 * theta * kt + kt * kt * s2
        else:
            rho = -gamma * theta * kt - 0.5 * gamma * (1 - gamma) * kt * kt * s2
            da = 2 * (theta - gamma * kt * s2) * a - s2 * a * a - 2 * rho
        return [da, -0.5 * s2 * a]

    def explode(_: float, v: np.ndarray) -> float:
        return 1e8 - abs(v[0])

    explode.terminal = True  # type: ignore[attr-defined]
    sol = scipy_integrate.solve_ivp(
        rhs,
        (horizon, 0.0),
        [0.0, 0.0],
        rtol=1e-12,
        atol=1e-14,
        method="DOP853",
        events=explode,
    )
    if sol.status == 1:
        assert gamma < 0, "E[W^gamma] cannot explode for 0 < gamma < 1 (duality bound)"
        return 0.0
    a0, c0 = sol.y[:, -1]
    y0 = x0 - mu
    log_ce = a0 * y0 * y0 / 2 + c0
    return float(w0 * math.exp(log_ce if gamma == 0.0 else log_ce / gamma))


def optimal_k(gamma: float, scale: float = 1.0) -> Callable[[float], float]:
    def k(t: float) -> float:
        # q*(t, x, w) = w k(t) (x - mu), read off the engine itself at w = 1, x - mu = 1
        q = mr.power_position(P["mu"] + 1.0, t, gamma=gamma, wealth=1.0, T=T, **P)
        return float(scale * q)

    return k


@pytest.mark.parametrize("gamma", [-3.0, -1.0, 0.0, 0.5, 0.9])
def test_closed_form_ce_matches_exact_evaluation(gamma: float) -> None:
    ce = mr.power_certainty_equivalent(X0, gamma=gamma, T=T, w0=W0, **P)
    exact = evaluate_ce(optimal_k(gamma), gamma, horizon=T, x0=X0, w0=W0, **P)
    assert ce == pytest.approx(exact, rel=1e-10)
    assert ce > W0


@pytest.mark.parametrize("gamma", [-3.0, -1.0, 0.0, 0.5, 0.9])
@pytest.mark.parametrize("scale", [0.5, 0.8, 0.9, 0.99, 1.01, 1.1])
def test_perturbed_strategies_are_worse(gamma: float, scale: float) -> None:
    best = mr.power_certainty_equivalent(X0, gamma=gamma, T=T, w0=W0, **P)
    ce = evaluate_ce(optimal_k(gamma, scale), gamma, horizon=T, x0=X0, w0=W0, **P)
    assert ce < best


@pytest.mark.parametrize("gamma", [-1.0, 0.5])
def test_myopic_merton_rule_is_worse(gamma: float) -> None:
    def k(t: float) -> float:
        return -P["theta"] / ((1 - gamma) * P["sigma"] ** 2)

    best = mr.power_certainty_equivalent(X0, gamma=gamma, T=T, w0=W0, **P)
    assert evaluate_ce(k, gamma, horizon=T, x0=X0, w0=W0, **P) < best


def hjb_fd(gamma: float, steps: int, dy: float = 0.02, half_width: float = 2.0):
    """Finite differences on the HJB of g = ln(gamma V / w^gamma), not on the Riccati:
    g_tau = s2/2 (g_yy + g_y^2) - theta y g_y + gamma max_pi [pi (s2 g_y - theta y)
    - (1 - gamma) s2 pi^2 / 2], the maximising pi from the previous step's g_y, implicit Euler in
    tau, far boundaries by quadratic extrapolation."""
    from scipy.linalg import solve_banded

    theta, sigma = P["theta"], P["sigma"]
    s2, dtau = sigma**2, T / steps
    y = np.arange(-half_width, half_width + dy / 2, dy)
    n = y.size
    g = np.zeros(n)
    for _ in range(steps):
        gy = np.gradient(g, dy)
        pi = (s2 * gy - theta * y) / ((1 - gamma) * s2)
        # the pi s2 g_y and s2/2 g_y^2 terms are implicit in g_y, with pi and one g_y lagged
        drift = -theta * y + gamma * pi * s2 + 0.5 * s2 * gy
        src = -gamma * pi * (theta * y + 0.5 * (1 - gamma) * s2 * pi)
        ab = np.zeros((3, n))
        ab[0, 1:] = -(0.5 * s2 / dy**2 + drift[:-1] / (2 * dy)) * dtau
        ab[1] = 1 + s2 / dy**2 * dtau
        ab[2, :-1] = -(0.5 * s2 / dy**2 - drift[1:] / (2 * dy)) * dtau
        rhs = g + src * dtau
        ab[1, 0], ab[0, 1], rhs[0] = 1.0, 0.0, 3 * g[1] - 3 * g[2] + g[3]
        ab[1, -1], ab[2, -2], rhs[-1] = 1.0, 0.0, 3 * g[-2] - 3 * g[-3] + g[-4]
        g = solve_banded((1, 1), ab, rhs)
    return y, g


@pytest.mark.parametrize("gamma", [-1.0, 0.5])
def test_finite_difference_hjb_agrees(gamma: float) -> None:
    y, g1 = hjb_fd(gamma, 400)
    _, g2 = hjb_fd(gamma, 800)
    g = 2 * g2 - g1  # Richardson in tau: the lagged control makes the scheme first order
    dy = y[1] - y[0]
    mid = int(np.argmin(np.abs(y)))
    a_fd = (g[mid + 1] - 2 * g[mid] + g[mid - 1]) / dy**2
    a = mr.power_coefficients([T], theta=P["theta"], sigma=P["sigma"], gamma=gamma).A[0]
    assert a_fd == pytest.approx(a, rel=1e-5)  # measured 3e-8 (gamma=-1), 4e-7 (gamma=0.5)
    inner = np.abs(y) <= 0.5
    s2 = P["sigma"] ** 2
    q_fd = W0 * (s2 * np.gradient(g, dy) - P["theta"] * y) / ((1 - gamma) * s2)
    q = mr.power_position(P["mu"] + y, 0.0, gamma=gamma, wealth=W0, T=T, **P)
    np.testing.assert_allclose(q_fd[inner], q[inner], rtol=0, atol=1e-5 * np.abs(q[inner]).max())


def test_log_limit_is_kelly() -> None:
    x = np.linspace(-0.5, 1.5, 9)
    kelly = W0 * P["theta"] * (P["mu"] - x) / P["sigma"] ** 2
    q0 = mr.power_position(x, 0.0, gamma=0.0, wealth=W0, T=T, **P)
    np.testing.assert_allclose(q0, kelly, rtol=1e-15)
    for eps in (1e-3, 1e-5, -1e-5, -1e-3):
        q = mr.power_position(x, 0.0, gamma=eps, wealth=W0, T=T, **P)
        # h = 1 + O(gamma): h'(0) lies in (0, 1] (between the two limits 1/(1-g), 1/sqrt(1-g))
        np.testing.assert_allclose(q, kelly, rtol=1.01 * abs(eps))
        assert not np.allclose(q, kelly, rtol=1e-3 * abs(eps))
    ce0 = mr.power_certainty_equivalent(X0, gamma=0.0, T=T, w0=W0, **P)
    ce_small = mr.power_certainty_equivalent(X0, gamma=1e-7, T=T, w0=W0, **P)
    assert ce_small == pytest.approx(ce0, rel=1e-6)


@pytest.mark.parametrize("gamma", [-2.0, 0.5])
def test_merton_at_maturity_and_long_horizon(gamma: float) -> None:
    x = np.array([0.0, 0.3, 1.0])
    myopic = W0 * P["theta"] * (P["mu"] - x) / ((1 - gamma) * P["sigma"] ** 2)
    np.testing.assert_allclose(
        mr.power_position(x, T, gamma=gamma, wealth=W0, T=T, **P), myopic, rtol=1e-14
    )
    far = mr.power_position(x, 0.0, gamma=gamma, wealth=W0, T=100.0, **P)
    np.testing.assert_allclose(far, myopic * math.sqrt(1 - gamma), rtol=1e-13)
    # linear in wealth
    np.testing.assert_allclose(
        mr.power_position(x, 0.0, gamma=gamma, wealth=3 * W0, T=T, **P),
        3 * mr.power_position(x, 0.0, gamma=gamma, wealth=W0, T=T, **P),
        rtol=1e-15,
    )


@pytest.mark.parametrize("gamma", [-20.0, -1.0, 0.5, 0.99, 0.9999])
def test_no_blow_up_for_any_gamma_below_one(gamma: float) -> None:
    """The Riccati root structure rules out a blow-up (see power.rs): solve_ivp with an explosion
    event over theta tau = 60 never fires, and A tends monotonically to theta (1 - k) / sigma^2."""
    theta, sigma = P["theta"], P["sigma"]
    s2 = sigma**2

    def rhs(_: float, v: np.ndarray) -> list[float]:
        return [(s2 * v[0] ** 2 - 2 * theta * v[0] + gamma * theta**2 / s2) / (1 - gamma)]

    def explode(_: float, v: np.ndarray) -> float:
        return 1e12 - abs(v[0])

    explode.terminal = True  # type: ignore[attr-defined]
    tau = np.linspace(0.0, 20.0, 201)
    sol = scipy_integrate.solve_ivp(
        rhs, (0, 20.0), [0.0], t_eval=tau, rtol=1e-12, atol=1e-14, method="LSODA", events=explode
    )
    assert sol.status == 0
    assert sol.t_events[0].size == 0
    co = mr.power_coefficients(tau, theta=theta, sigma=sigma, gamma=gamma)
    assert np.all(np.isfinite(co.A))
    np.testing.assert_allclose(co.A, sol.y[0], rtol=1e-8, atol=1e-9 * abs(co.A).max())
    limit = theta * (1 - math.sqrt(1 - gamma)) / s2
    assert np.all(np.diff(co.A) * np.sign(gamma) >= -1e-14 * abs(limit))
    assert co.A[-1] == pytest.approx(limit, rel=1e-10)


def test_oracle_detects_a_real_blow_up() -> None:
    """Guard on the oracle above: the expected-utility Riccati of a constant, over-levered
    strategy q = w k (x - mu) does explode for gamma < 0, at the analytic horizon
    tau* = (pi/2 - atan(-p sigma / sqrt(D))) / (sigma sqrt(D)) with p = (theta - g k s2) / s2,
    D = -(theta^2 + g k^2 s2^2) / s2 > 0."""
    theta, mu, sigma, gamma = P["theta"], P["mu"], P["sigma"], -1.0
    s2 = sigma**2
    k = -3.0 * theta / s2  # 3x the Kelly leverage, beyond theta / (s2 sqrt(-gamma))
    p = (theta - gamma * k * s2) / s2
    d = -(theta**2 + gamma * k * k * s2 * s2) / s2
    assert d > 0
    tau_star = (math.pi / 2 - math.atan(-p * sigma / math.sqrt(d))) / (sigma * math.sqrt(d))
    assert evaluate_ce(lambda _: k, gamma, theta, mu, sigma, 0.99 * tau_star, X0, W0) > 0
    assert evaluate_ce(lambda _: k, gamma, theta, mu, sigma, 1.01 * tau_star, X0, W0) == 0.0


def test_path_is_self_financed() -> None:
    rng = np.random.default_rng(7)
    n, dt = 300, 1 / 252
    x = np.empty(n)
    x[0] = P["mu"]
    for i in range(1, n):
        x[i] = (
            x[i - 1]
            + P["theta"] * (P["mu"] - x[i - 1]) * dt
            + P["sigma"] * math.sqrt(dt) * rng.standard_normal()
        )
    t = np.arange(n) * dt
    res = mr.power_position_path(x, t, gamma=-1.0, w0=W0, **P)
    assert res.ruined_at is None
    np.testing.assert_allclose(res.wealth[1:], res.wealth[:-1] + res.units[:-1] * np.diff(x))
    q = mr.power_position(x, t, gamma=-1.0, wealth=res.wealth, T=t[-1], **P)
    np.testing.assert_allclose(res.units, q, rtol=1e-15)
    crash = mr.power_position_path([0.2, -3.0, 0.0], [0.0, 0.1, 0.2], gamma=0.5, w0=1.0, **P)
    assert crash.ruined_at == 1
    assert np.all(crash.units[1:] == 0.0)


def test_utility_switch() -> None:
    x = np.array([0.1, 0.9])
    np.testing.assert_array_equal(
        mr.ou_optimal_position(x, 0.2, gamma=2.0, T=T, **P),
        mr.cara_position(x, 0.2, gamma=2.0, T=T, **P),
    )
    np.testing.assert_array_equal(
        mr.ou_optimal_position(x, 0.2, gamma=-1.0, T=T, utility="power", wealth=W0, **P),
        mr.power_position(x, 0.2, gamma=-1.0, wealth=W0, T=T, **P),
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(gamma=1.0), "gamma must be finite and < 1"),
        (dict(gamma=1.5), "gamma must be finite and < 1"),
        (dict(gamma=math.nan), "gamma must be finite and < 1"),
        (dict(sigma=0.0), "sigma must be finite and > 0"),
        (dict(sigma=-0.3), "sigma must be finite and > 0"),
        (dict(theta=0.0), "theta must be finite and > 0"),
        (dict(wealth=0.0), "wealth must be finite and > 0"),
        (dict(wealth=-1.0), "wealth must be finite and > 0"),
        (dict(t=2.0), "t must be <= T"),
    ],
)
def test_bad_inputs(kwargs: dict[str, float], message: str) -> None:
    args: dict[str, float] = dict(P, gamma=-1.0, wealth=W0, T=T, t=0.0) | kwargs
    x = args.pop("x", 0.3)
    t = args.pop("t")
    with pytest.raises(InvalidInput, match=message):
        mr.power_position(x, t, **args)


def test_bad_inputs_elsewhere() -> None:
    with pytest.raises(InvalidInput, match="wealth"):
        mr.power_certainty_equivalent(X0, gamma=0.5, T=T, w0=0.0, **P)
    with pytest.raises(InvalidInput, match="overflows"):
        mr.power_certainty_equivalent(1e3, gamma=-1.0, T=T, w0=W0, **P)
    with pytest.raises(InvalidInput, match="tau must be finite and >= 0"):
        mr.power_coefficients([-1.0], theta=1.0, sigma=1.0, gamma=0.5)
    with pytest.raises(InvalidInput, match="needs the wealth"):
        mr.ou_optimal_position(0.3, gamma=-1.0, utility="power", **P)
    with pytest.raises(InvalidInput, match="utility must be"):
        mr.ou_optimal_position(0.3, gamma=-1.0, utility="crra", **P)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="differ in length"):
        mr.power_position_path([0.1, 0.2, 0.3], [0.0, 0.1], gamma=0.5, w0=1.0, **P)
