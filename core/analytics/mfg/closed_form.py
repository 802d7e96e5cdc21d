"""Closed forms of the two benchmark MFGs (docs/compute.md §5), numpy only.

- Problem A, Cardaliaguet–Lehalle trade crowding: h2(t) (Riccati), the mean inventory
  E(t) (a constant-coefficient second-order ODE), μ = E', h1 and the variance V(t); with a
  Gaussian m0 the whole density is N(E, V).
- Problem B, LQ mean attraction (Bensoussan–Frehse–Yam): P(t) (Riccati), the mean and S
  (a linear two-point BVP, solved by exact two-solve shooting) and the variance Σ(t).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.errors import InvalidInput

__all__ = [
    "CrowdingClosedForm",
    "CrowdingParams",
    "LQClosedForm",
    "LQParams",
    "crowding_closed_form",
    "lq_closed_form",
]

Array = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class CrowdingParams:
    """Problem A. Defaults are the test instance of docs/compute.md §5(a)."""

    kappa: float = 0.2  # temporary impact (control cost κν²)
    phi: float = 0.1  # running inventory penalty φ
    alpha: float = 0.5  # permanent impact of the crowd's flow
    A: float = 2.0  # terminal inventory penalty
    T: float = 1.0
    E0: float = 1.0  # initial mean inventory
    V0: float = 0.04  # initial inventory variance
    eps: float = 0.005  # inventory noise, dq = ν dt + sqrt(2ε) dB
    lo: float = -1.5  # domain [lo, hi]
    hi: float = 3.0


@dataclass(frozen=True, slots=True)
class LQParams:
    """Problem B: minimise E∫[ν²/2 + q/2 (X - κ_m m̄)²] dt + c_T/2 (X_T - κ_T m̄_T)²."""

    q: float = 2.0
    c_T: float = 0.5
    kappa_m: float = 0.5
    kappa_T: float = 0.5
    sigma: float = 0.3  # dX = ν dt + σ dB
    T: float = 1.0
    mean0: float = 1.0
    var0: float = 0.04
    lo: float = -2.0
    hi: float = 3.0


@dataclass(frozen=True, slots=True)
class CrowdingClosedForm:
    t: Array
    E: Array  # mean inventory
    mu: Array  # E'(t), the crowd's trading speed
    h2: Array  # curvature of the value function
    h1: Array
    V: Array  # inventory variance (m(t) = N(E, V) when m0 is Gaussian)


@dataclass(frozen=True, slots=True)
class LQClosedForm:
    t: Array
    P: Array
    S: Array
    mean: Array
    var: Array


_GAUSS_64 = np.polynomial.legendre.leggauss(64)


def _riccati_d(t: Array, T: float, root: float, terminal: float) -> tuple[Array, Array]:
    """D(t) = r cosh(r(T-t)) + c sinh(r(T-t)) and D'(t); p = -D'/D solves p' = p² - r²,
    p(T) = c."""
    s = T - t
    d = root * np.cosh(root * s) + terminal * np.sinh(root * s)
    dd = -(root**2) * np.sinh(root * s) - terminal * root * np.cosh(root * s)
    return d, dd


def _gaussian_variance(
    t: Array, T: float, root: float, terminal: float, var0: float, noise: float
) -> Array:
    """Σ(t) for Σ' = -2pΣ + noise: (D_t/D_0)² Σ0 + noise ∫_0^t (D_t/D_s)² ds (Gauss–Legendre)."""
    nodes, weights = _GAUSS_64
    d0 = _riccati_d(np.array([0.0]), T, root, terminal)[0][0]
    dt_ = _riccati_d(t, T, root, terminal)[0]
    s = 0.5 * t[:, None] * (nodes[None, :] + 1.0)
    ds = _riccati_d(s, T, root, terminal)[0]
    integral = 0.5 * t * np.sum(weights[None, :] * (dt_[:, None] / ds) ** 2, axis=1)
    return np.asarray((dt_ / d0) ** 2 * var0 + noise * integral)


def crowding_closed_form(params: CrowdingParams, t: ArrayLike) -> CrowdingClosedForm:
    """E, μ = E', h2, h1 and V of problem A at times t (docs/compute.md §5(a))."""
    p = params
    tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if not (p.phi > 0 and p.kappa > 0):
        raise InvalidInput("the crowding closed form needs kappa > 0 and phi > 0")
    c = 2.0 * math.sqrt(p.kappa * p.phi)
    omega = math.sqrt(p.phi / p.kappa)
    g0 = p.A / math.sqrt(p.kappa * p.phi)
    th = np.tanh(omega * (p.T - tt))
    h2 = c * (g0 + th) / (1.0 + g0 * th)
    disc = math.sqrt(p.alpha**2 + 16.0 * p.kappa * p.phi)
    r_plus = (-p.alpha + disc) / (4.0 * p.kappa)
    r_minus = (-p.alpha - disc) / (4.0 * p.kappa)
    # E(0) = E0 and κE'(T) + A E(T) = 0; scale the exponentials at T to avoid overflow.
    ep, em = math.exp(r_plus * p.T), math.exp(r_minus * p.T)
    mat = np.array([[1.0, 1.0], [(p.kappa * r_plus + p.A) * ep, (p.kappa * r_minus + p.A) * em]])
    ca, cb = np.linalg.solve(mat, np.array([p.E0, 0.0]))
    E = ca * np.exp(r_plus * tt) + cb * np.exp(r_minus * tt)
    mu = ca * r_plus * np.exp(r_plus * tt) + cb * r_minus * np.exp(r_minus * tt)
    h1 = 2.0 * p.kappa * mu + h2 * E
    # V' = -(h2/κ)V + 2ε, and h2/(2κ) = -D'/D with root ω, terminal A/κ.
    V = _gaussian_variance(tt, p.T, omega, p.A / p.kappa, p.V0, 2.0 * p.eps)
    return CrowdingClosedForm(tt, E, mu, h2, h1, V)


def _rk4(
    rhs: Callable[[float, list[float]], list[float]], y0: list[float], t: Array, max_step: float
) -> Array:
    """Fixed-step RK4 on plain floats (a handful of unknowns), reporting at the increasing
    times t, starting at t[0]."""
    out = np.empty((t.size, len(y0)))
    y = list(y0)
    out[0] = y
    for i in range(1, t.size):
        span = float(t[i] - t[i - 1])
        steps = max(1, math.ceil(span / max_step))
        h = span / steps
        s = float(t[i - 1])
        for _ in range(steps):
            k1 = rhs(s, y)
            k2 = rhs(s + h / 2, [a + h / 2 * b for a, b in zip(y, k1, strict=True)])
            k3 = rhs(s + h / 2, [a + h / 2 * b for a, b in zip(y, k2, strict=True)])
            k4 = rhs(s + h, [a + h * b for a, b in zip(y, k3, strict=True)])
            y = [
                a + h / 6 * (b1 + 2 * b2 + 2 * b3 + b4)
                for a, b1, b2, b3, b4 in zip(y, k1, k2, k3, k4, strict=True)
            ]
            s += h
        out[i] = y
    return out


def lq_closed_form(params: LQParams, t: ArrayLike) -> LQClosedForm:
    """P (closed form), the mean and S (linear BVP by exact two-solve shooting with RK4)
    and the variance (closed form) of problem B."""
    p = params
    if not (p.q > 0 and p.c_T >= 0):
        raise InvalidInput("the LQ closed form needs q > 0 and c_T >= 0")
    tt = np.atleast_1d(np.asarray(t, dtype=np.float64))
    root = math.sqrt(p.q)

    def riccati(s: Array) -> Array:
        d, dd = _riccati_d(np.asarray(s, dtype=np.float64), p.T, root, p.c_T)
        return np.asarray(-dd / d)

    def rhs(s: float, y: list[float]) -> list[float]:
        a = root * (p.T - s)
        ch, sh = math.cosh(a), math.sinh(a)
        ps = root * (root * sh + p.c_T * ch) / (root * ch + p.c_T * sh)  # -D'/D
        qk = p.q * p.kappa_m
        return [
            -(ps * y[0] + y[1]),
            ps * y[1] + qk * y[0],
            -(ps * y[2] + y[3]),
            ps * y[3] + qk * y[2],
        ]

    grid = np.union1d(tt, [0.0, p.T])
    sol = _rk4(rhs, [p.mean0, 0.0, 0.0, 1.0], grid, max_step=1e-3)
    # S(T) + c_T κ_T m̄(T) is affine in S(0): base + S0 * unit.
    base = sol[-1, 1] + p.c_T * p.kappa_T * sol[-1, 0]
    unit = sol[-1, 3] + p.c_T * p.kappa_T * sol[-1, 2]
    s0 = -base / unit
    idx = np.searchsorted(grid, tt)
    mean = sol[idx, 0] + s0 * sol[idx, 2]
    S = sol[idx, 1] + s0 * sol[idx, 3]
    var = _gaussian_variance(tt, p.T, root, p.c_T, p.var0, p.sigma**2)
    return LQClosedForm(tt, riccati(tt), S, mean, var)
