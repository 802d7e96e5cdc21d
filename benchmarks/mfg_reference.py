"""A numpy + scipy peer of the MFG scheme in rust/kernels/src/mfg (docs/compute.md §5).

This is the speed anchor of docs/compute.md §5 and an independent implementation for the
tests: the same grid, the same implicit upwind HJB (policy lagged, node controls),
the same adjoint Fokker–Planck (the transposed HJB generator), mu = sum(nu m^n) dx,
and the same damped Picard / fictitious-play loop, but written with numpy
and one sparse (`scipy.sparse.linalg.spsolve`) or banded
(`scipy.linalg.solve_banded`) solve per time step.

Running reward  -kappa*nu^2 - phi*x^2 + f1(t)*x + f0(t),  terminal  -g2*x^2 + g1*x + g0.
coupling "controls": f1 = alpha*mu(t)  (problem A, mu = mean control)
coupling "mean":     f1 = 2*phi*kappa_m*mbar, f0 = -phi*(kappa_m*mbar)^2, and the same
                     shape at T with g2, kappa_t  (problem B, mbar = mean state)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.linalg import solve_banded
from scipy.sparse.linalg import spsolve

Arr = NDArray[np.float64]


@dataclass(frozen=True)
class RefProblem:
    a: float
    b: float
    n: int
    t_end: float
    nt: int
    kappa: float
    eps: float
    phi: float
    g2: float
    coupling: Literal["controls", "mean"]
    alpha: float = 0.0
    kappa_m: float = 1.0
    kappa_t: float = 1.0


@dataclass
class RefResult:
    m: Arr  # (nt+1, n)
    u: Arr  # (nt+1, n)
    nu: Arr  # (nt, n) node controls
    z: Arr  # the mean-field object of the last best response (mu, nt values; or mbar, nt+1)
    mean: Arr
    var: Arr
    iterations: int
    residuals: list[float]


def _generator(nu: Arr, eps: float, dx: float) -> tuple[Arr, Arr, Arr]:
    """Lower, diagonal, upper of Q = nu+ D+ + nu- D- + eps * Neumann Laplacian (rows sum to 0)."""
    d = eps / dx**2
    up = np.zeros(nu.size)
    dn = np.zeros(nu.size)
    up[:-1] = np.maximum(nu[:-1], 0.0) / dx + d
    dn[1:] = -np.minimum(nu[1:], 0.0) / dx + d
    return dn[1:], -(up + dn), up[:-1]


def _solve(lower: Arr, diag: Arr, upper: Arr, rhs: Arr, solver: str) -> Arr:
    if solver == "banded":
        ab = np.zeros((3, diag.size))
        ab[0, 1:] = upper
        ab[1] = diag
        ab[2, :-1] = lower
        return np.asarray(solve_banded((1, 1), ab, rhs))
    mat = sp.diags([lower, diag, upper], [-1, 0, 1], format="csc")
    return np.asarray(spsolve(mat, rhs))


def best_response(p: RefProblem, m0: Arr, z: Arr, solver: str = "spsolve") -> tuple[Arr, Arr, Arr]:
    """One HJB sweep backward and one FP sweep forward for a fixed mean-field object z."""
    x = np.linspace(p.a, p.b, p.n)
    dx = (p.b - p.a) / (p.n - 1)
    dt = p.t_end / p.nt
    if p.coupling == "controls":
        f1 = p.alpha * z
        f0 = np.zeros(p.nt)
        g1 = g0 = 0.0
    else:
        f1 = 2.0 * p.phi * p.kappa_m * z[:-1]
        f0 = -p.phi * (p.kappa_m * z[:-1]) ** 2
        g1 = 2.0 * p.g2 * p.kappa_t * z[-1]
        g0 = -p.g2 * (p.kappa_t * z[-1]) ** 2
    u = np.empty((p.nt + 1, p.n))
    u[-1] = -p.g2 * x**2 + g1 * x + g0
    nu = np.empty((p.nt, p.n))
    for k in range(p.nt - 1, -1, -1):
        nu_f = np.diff(u[k + 1]) / (2.0 * p.kappa * dx)
        nu_n = np.empty(p.n)
        nu_n[1:-1] = 0.5 * (nu_f[1:] + nu_f[:-1])
        nu_n[0] = nu_f[0]
        nu_n[-1] = nu_f[-1]
        nu[k] = nu_n
        lo, di, up = _generator(nu_n, p.eps, dx)
        rhs = u[k + 1] + dt * (-p.kappa * nu_n**2 - p.phi * x**2 + f1[k] * x + f0[k])
        u[k] = _solve(-dt * lo, 1.0 - dt * di, -dt * up, rhs, solver)
    m = np.empty((p.nt + 1, p.n))
    m[0] = m0
    for k in range(p.nt):
        lo, di, up = _generator(nu[k], p.eps, dx)
        # transpose: the sub-diagonal of Q^T is Q's super-diagonal
        m[k + 1] = _solve(-dt * up, 1.0 - dt * di, -dt * lo, m[k], solver)
    return u, m, nu


def mean_field(p: RefProblem, m: Arr, nu: Arr) -> Arr:
    """The object the agents react to, recomputed from a best response."""
    x = np.linspace(p.a, p.b, p.n)
    dx = (p.b - p.a) / (p.n - 1)
    if p.coupling == "mean":
        return np.asarray(m @ x * dx)
    return np.asarray(np.sum(nu * m[:-1], axis=1) * dx)


def solve(
    p: RefProblem,
    m0: Arr,
    *,
    init: float = 0.0,
    damping: float = 0.5,
    method: str = "picard",
    tol: float = 1e-10,
    max_iter: int = 500,
    solver: str = "spsolve",
    fixed_iterations: int | None = None,
) -> RefResult:
    """Damped Picard (or fictitious play) on the mean-field object."""
    x = np.linspace(p.a, p.b, p.n)
    dx = (p.b - p.a) / (p.n - 1)
    size = p.nt if p.coupling == "controls" else p.nt + 1
    z = np.full(size, float(init))
    m_prev: Arr | None = None
    residuals: list[float] = []
    it = 0
    limit = fixed_iterations if fixed_iterations is not None else max_iter
    while it < limit:
        u, m, nu = best_response(p, m0, z, solver)
        tz = mean_field(p, m, nu)
        w = damping if method == "picard" else 1.0 / (it + 1)
        residual = float(np.max(np.abs(tz - z)))
        moved = w * residual if method == "picard" else residual
        dm = np.inf if m_prev is None else float(np.max(np.abs(m - m_prev).sum(axis=1) * dx))
        residuals.append(residual)
        done = moved <= tol * (1.0 + float(np.max(np.abs(z)))) and dm <= tol
        it += 1
        if (fixed_iterations is None and done) or it >= limit:
            break
        z = z + w * (tz - z)
        m_prev = m
    mean = m @ x * dx
    var = m @ (x**2) * dx - mean**2
    return RefResult(m, u, nu, z, mean, var, it, residuals)
