"""Mean reversion: OU estimation, CARA and power-utility positions, sparse portfolios, Johansen
(docs/compute.md §3).

The numerics run in the Rust kernels (core._native); this module validates input,
converts units and assembles results. Johansen and ADF live in core.analytics.cointegration
and are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, ParamSpec, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.analytics.cointegration import ADFResult, JohansenResult, adf, johansen
from core.analytics.inputs import call_kernel, matrix, series
from core.errors import InvalidInput
from core.native import ext

__all__ = [
    "ADFResult",
    "BoxTiao",
    "JohansenResult",
    "OUFit",
    "PowerCoefficients",
    "PowerPath",
    "SparsePortfolio",
    "adf",
    "box_tiao",
    "cara_position",
    "certainty_equivalent",
    "cointegration",
    "fit_ou",
    "johansen",
    "ou_exact_loglik",
    "ou_optimal_position",
    "power_certainty_equivalent",
    "power_coefficients",
    "power_position",
    "power_position_path",
    "rolling_ou",
    "select_support",
    "sparse_portfolio",
    "var1_matrices",
]

DAILY = 1.0 / 252.0
F64 = NDArray[np.float64]
P = ParamSpec("P")
R = TypeVar("R")


# --- 3a OU ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OUFit:
    """An OU fit. Time is in years when dt is (default dt = 1/252, daily bars).

    `a`, `b`, `s2` are the AR(1) coefficients (x_t = a + b x_{t-1} + e, var e = s2, MLE).
    `se` holds delta-method standard errors from the OLS covariance of (a, b)
    (divisor n - 2); they are NaN for irregular spacing.
    """

    theta: float
    mu: float
    sigma: float
    half_life_years: float
    half_life_bars: float
    log_likelihood: float
    a: float
    b: float
    s2: float
    n: int
    dt: float
    method: str
    mean_reverting: bool
    se: dict[str, float] = field(default_factory=dict)

    @property
    def sigma_eq(self) -> float:
        """Stationary standard deviation sigma / sqrt(2 theta)."""
        if not self.mean_reverting:
            return math.nan
        return self.sigma / math.sqrt(2.0 * self.theta)


def fit_ou(
    x: ArrayLike,
    dt: float = DAILY,
    *,
    method: Literal["conditional", "exact"] = "conditional",
    times: ArrayLike | None = None,
    bias_correction: bool = False,
) -> OUFit:
    """Fit dX = theta (mu - X) dt + sigma dW with the exact discretisation.

    method="conditional": closed-form MLE given x_0 (= OLS of x_t on x_{t-1}).
    method="exact": adds the stationary density of x_0 (profile likelihood over b).
    times: sampling times in years for irregular spacing (conditional MLE, dt unused).
    When b <= 0 theta is NaN; when b >= 1 theta <= 0 and the half-life is inf;
    both give mean_reverting=False.
    bias_correction: Kendall's AR(1) correction b + (1 + 3b) / n (theta is biased upward by
    about 4 / (n dt) when b is near 1); mu and s2 are kept, theta, sigma and half-lives follow.
    """
    arr = series(x)
    if times is not None:
        if bias_correction:
            raise InvalidInput("bias_correction applies to equal spacing only")
        t = series(times, "times")
        raw = call_kernel(ext.ou_fit_irregular, arr, t)
        used_dt = float((t[-1] - t[0]) / (t.size - 1))
        method_name = "irregular"
    else:
        if method not in ("conditional", "exact"):
            raise InvalidInput(f'method must be "conditional" or "exact", got {method!r}')
        raw = call_kernel(ext.ou_fit, arr, float(dt), method)
        used_dt = float(dt)
        method_name = method
    d = dict(raw)
    if bias_correction and d["mean_reverting"]:
        b = d["b"] + (1.0 + 3.0 * d["b"]) / d["n"]
        if not 0.0 < b < 1.0:
            raise InvalidInput(f"the bias-corrected b = {b:.6f} is not in (0, 1)")
        lnb = math.log1p(b - 1.0)
        theta = -lnb / used_dt
        d |= {
            "b": b,
            "a": d["mu"] * (1.0 - b),
            "theta": theta,
            "sigma": math.sqrt(2.0 * theta * d["s2"] / ((1.0 - b) * (1.0 + b))),
            "half_life_years": math.log(2.0) / theta,
            "half_life_bars": -math.log(2.0) / lnb,
        }
        method_name += "+kendall"
    return OUFit(
        theta=d["theta"],
        mu=d["mu"],
        sigma=d["sigma"],
        half_life_years=d["half_life_years"],
        half_life_bars=d["half_life_bars"],
        log_likelihood=d["llf"],
        a=d["a"],
        b=d["b"],
        s2=d["s2"],
        n=int(d["n"]),
        dt=used_dt,
        method=method_name,
        mean_reverting=bool(d["mean_reverting"]),
        se={k[3:]: d[k] for k in ("se_a", "se_b", "se_theta", "se_mu", "se_half_life_years")},
    )


def ou_exact_loglik(x: ArrayLike, mu: float, b: float, s2: float) -> float:
    """Exact AR(1) log-likelihood with a stationary x_0 (ARIMA(1,0,0) with mean mu)."""
    return float(ext.ou_exact_loglik(series(x), float(mu), float(b), float(s2)))


def rolling_ou(x: ArrayLike, window: int = 252, dt: float = DAILY) -> dict[str, F64]:
    """Conditional OU fits on trailing windows of `window` observations.

    `x` is (T,) or (T, m) (m series fitted in parallel). Each output has the input's
    shape (a transposed view for 2-D input); keys a, b, s2, theta, mu, sigma, half_life_bars.
    The first window - 1 rows are NaN.
    """
    try:
        arr = np.ascontiguousarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"x must be numeric: {exc}") from exc
    if arr.ndim not in (1, 2):
        raise InvalidInput(f"x must be 1-D or 2-D, got shape {arr.shape}")
    if isinstance(window, bool) or not isinstance(window, int):
        raise InvalidInput("window must be an int")
    rows = arr.shape[0]
    cols = 1 if arr.ndim == 1 else arr.shape[1]
    series_major = np.ascontiguousarray(arr.T).reshape(-1)
    names, flat = call_kernel(ext.ou_rolling, series_major, rows, cols, window, float(dt))
    blocks = np.asarray(flat).reshape(cols, len(names), rows)
    if arr.ndim == 1:
        return {k: blocks[0, f] for f, k in enumerate(names)}
    return {k: blocks[:, f, :].T for f, k in enumerate(names)}


# --- 3b CARA -------------------------------------------------------------------------------------


def cara_position(
    x: ArrayLike,
    t: ArrayLike = 0.0,
    *,
    theta: float,
    mu: float,
    sigma: float,
    gamma: float,
    T: float = 1.0,
    horizon: Literal["finite", "myopic", "discrete_myopic"] = "finite",
    dt: float = DAILY,
    q_max: float | None = None,
) -> F64:
    """Optimal units of an OU spread under CARA utility -exp(-gamma W_T), dW = q dX.

    finite: q* = theta (mu - x) / (gamma sigma^2) * (1 + theta (T - t)) (closed form via HJB).
    myopic: theta (mu - x) / (gamma sigma^2).
    discrete_myopic: one-period mean-variance over dt, (mu - x)(1 - b) / (gamma s^2),
    b = exp(-theta dt), s^2 = sigma^2 (1 - b^2) / (2 theta); tends to myopic as dt -> 0.
    q_max clips |q|. Caveat: the clipped strategy is NOT optimal any more, and its
    certainty equivalent is below the closed form.
    Broadcasts x and t.
    """
    xb, tb = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64))
    shape = xb.shape
    q = call_kernel(
        ext.ou_cara_position,
        np.ascontiguousarray(xb).reshape(-1),
        np.ascontiguousarray(tb).reshape(-1),
        float(T),
        float(theta),
        float(mu),
        float(sigma),
        float(gamma),
        horizon,
        float(dt),
        None if q_max is None else float(q_max),
    )
    return np.asarray(q).reshape(shape)


def certainty_equivalent(
    x0: float, *, theta: float, mu: float, sigma: float, gamma: float, T: float, w0: float = 0.0
) -> float:
    """CE at t=0 of the finite-horizon optimum:
    w0 + [theta^2 T (x0 - mu)^2 / (2 sigma^2) + theta^2 T^2 / 4] / gamma."""
    return float(
        call_kernel(
            ext.ou_cara_ce,
            float(x0),
            float(w0),
            float(T),
            float(theta),
            float(mu),
            float(sigma),
            float(gamma),
        )
    )


# --- 3b power utility (Boguslavsky & Boguslavskaya 2004) ----------------------------------------


@dataclass(frozen=True, slots=True)
class PowerCoefficients:
    """Riccati solution per time to maturity tau: V = w^gamma / gamma * exp(A y^2 / 2 + C)
    with y = x - mu, and q* = w theta (mu - x) h / sigma^2."""

    tau: F64
    A: F64
    C: F64
    h: F64


def power_coefficients(
    tau: ArrayLike, *, theta: float, sigma: float, gamma: float
) -> PowerCoefficients:
    """Closed-form A(tau), C(tau) and the position factor h(tau) for U = W^gamma / gamma.

    (1 - gamma) A' = sigma^2 A^2 - 2 theta A + gamma theta^2 / sigma^2, C' = sigma^2 A / 2,
    A(0) = C(0) = 0. With s = theta tau, k = sqrt(1 - gamma), t = tanh(s / k):
    A = theta gamma t / (sigma^2 (k + t)), h = (1 + k t) / (k (k + t)); see
    rust/kernels/src/meanrev/power.rs for C and the (absent) blow-up.
    """
    tb = np.ascontiguousarray(np.atleast_1d(np.asarray(tau, dtype=np.float64)).reshape(-1))
    a, c, h = call_kernel(ext.ou_power_coefficients, tb, float(theta), float(sigma), float(gamma))
    return PowerCoefficients(tb, np.asarray(a), np.asarray(c), np.asarray(h))


def power_position(
    x: ArrayLike,
    t: ArrayLike = 0.0,
    *,
    theta: float,
    mu: float,
    sigma: float,
    gamma: float,
    wealth: ArrayLike,
    T: float = 1.0,
) -> F64:
    """Optimal units of an OU spread under power utility W_T^gamma / gamma (gamma < 1, 0 = log).

    q* = wealth theta (mu - x) / sigma^2 * h(T - t), h = (1 + k tanh(s/k)) / (k (k + tanh(s/k))),
    k = sqrt(1 - gamma), s = theta (T - t). h is the Merton factor 1 / (1 - gamma) at t = T and
    tends to 1 / k for long horizons; gamma = 0 gives the Kelly position (h = 1).
    Linear in wealth and in the mispricing. Broadcasts x, t and wealth.
    """
    xb, tb, wb = np.broadcast_arrays(
        np.asarray(x, dtype=np.float64),
        np.asarray(t, dtype=np.float64),
        np.asarray(wealth, dtype=np.float64),
    )
    q = call_kernel(
        ext.ou_power_position,
        np.ascontiguousarray(xb).reshape(-1),
        np.ascontiguousarray(tb).reshape(-1),
        np.ascontiguousarray(wb).reshape(-1),
        float(T),
        float(theta),
        float(mu),
        float(sigma),
        float(gamma),
    )
    return np.asarray(q).reshape(xb.shape)


def power_certainty_equivalent(
    x0: float, *, theta: float, mu: float, sigma: float, gamma: float, T: float, w0: float
) -> float:
    """CE at t = 0 of the power-utility optimum: w0 exp((A(T) y0^2 / 2 + C(T)) / gamma),
    y0 = x0 - mu (the gamma -> 0 limit for log utility)."""
    return float(
        call_kernel(
            ext.ou_power_ce,
            float(x0),
            float(w0),
            float(T),
            float(theta),
            float(mu),
            float(sigma),
            float(gamma),
        )
    )


@dataclass(frozen=True, slots=True)
class PowerPath:
    """Power-optimal units along a path; wealth[i] is before trading at bar i and
    wealth[i + 1] = wealth[i] + units[i] (x[i + 1] - x[i]) (no costs). ruined_at is the
    first bar with wealth <= 0 (possible only in discrete time); units are 0 from there on."""

    units: F64
    wealth: F64
    ruined_at: int | None


def power_position_path(
    x: ArrayLike,
    t: ArrayLike,
    *,
    theta: float,
    mu: float,
    sigma: float,
    gamma: float,
    w0: float,
    T: float | None = None,
) -> PowerPath:
    """Trade the power-optimal rule self-financed along an observed spread path x at times t
    (years). T defaults to the last time."""
    xs = series(x, "x", 2)
    ts = series(t, "t", 2)
    if ts.shape != xs.shape:
        raise InvalidInput(f"x and t differ in length ({xs.size} vs {ts.size})")
    horizon = float(ts[-1]) if T is None else float(T)
    q, w, ruined = call_kernel(
        ext.ou_power_path,
        xs,
        ts,
        float(w0),
        horizon,
        float(theta),
        float(mu),
        float(sigma),
        float(gamma),
    )
    return PowerPath(np.asarray(q), np.asarray(w), None if ruined is None else int(ruined))


def ou_optimal_position(
    x: ArrayLike,
    t: ArrayLike = 0.0,
    *,
    theta: float,
    mu: float,
    sigma: float,
    gamma: float,
    T: float = 1.0,
    utility: Literal["cara", "power"] = "cara",
    wealth: ArrayLike | None = None,
) -> F64:
    """Finite-horizon optimal units of an OU spread for either utility.

    utility="cara": -exp(-gamma W_T), gamma > 0 absolute risk aversion (`cara_position`);
    wealth is not used. utility="power": W_T^gamma / gamma, gamma < 1 (relative risk aversion
    1 - gamma), needs wealth (`power_position`).
    """
    if utility == "cara":
        return cara_position(x, t, theta=theta, mu=mu, sigma=sigma, gamma=gamma, T=T)
    if utility == "power":
        if wealth is None:
            raise InvalidInput('utility="power" needs the wealth (wealth=...)')
        return power_position(
            x, t, theta=theta, mu=mu, sigma=sigma, gamma=gamma, wealth=wealth, T=T
        )
    raise InvalidInput(f'utility must be "cara" or "power", got {utility!r}')


# --- 3c sparse mean-reverting portfolios ---------------------------------------------------------


def var1_matrices(
    prices: ArrayLike, *, ridge: float = 0.0, jitter: float = 1e-8
) -> tuple[F64, F64, F64, F64]:
    """(M, G, mean, sd) in the scaled basis z = (S - mean) / sd.

    B' = (Z0'Z0 + ridge I)^-1 Z0'Z1, G = Z'Z/T + jitter tr(Z'Z/T)/n I, M = B G B' (symmetrised).
    """
    s = matrix(prices)
    mean = s.mean(axis=0)
    sd = s.std(axis=0)
    z = (s - mean) / sd
    n = z.shape[1]
    z0, z1 = z[:-1], z[1:]
    a = z0.T @ z0 + ridge * np.eye(n)
    cond = float(np.linalg.cond(a))
    if not cond < 1e12:
        raise InvalidInput(
            f"the assets are (nearly) collinear (condition number {cond:.2e}); "
            "drop one of them or set ridge > 0"
        )
    try:
        bt = np.linalg.solve(a, z0.T @ z1)
    except np.linalg.LinAlgError as exc:
        raise InvalidInput("the assets are collinear: the VAR(1) cannot be estimated") from exc
    g = z.T @ z / z.shape[0]
    g = g + jitter * np.trace(g) / n * np.eye(n)
    m = bt.T @ g @ bt
    m = 0.5 * (m + m.T)
    return np.ascontiguousarray(m), np.ascontiguousarray(g), mean, sd


@dataclass(frozen=True, slots=True)
class BoxTiao:
    """Box–Tiao canonical portfolios, ascending predictability (most mean-reverting first).
    Column j of `weights` is portfolio j in price units (||w||_1 = 1)."""

    eigenvalues: F64
    weights: F64


def _to_price_units(w_scaled: F64, sd: F64) -> F64:
    w = w_scaled / sd
    norm = np.abs(w).sum(axis=0)
    return np.asarray(w / np.where(norm > 0, norm, 1.0))


def box_tiao(prices: ArrayLike, *, ridge: float = 0.0, jitter: float = 1e-8) -> BoxTiao:
    m, g, _, sd = var1_matrices(prices, ridge=ridge, jitter=jitter)
    n = m.shape[0]
    vals, vecs = call_kernel(ext.sparse_box_tiao, m.reshape(-1), g.reshape(-1), n)
    v = np.asarray(vecs).reshape(n, n)
    return BoxTiao(np.asarray(vals), _to_price_units(v, sd[:, None]))


def select_support(
    m: ArrayLike,
    g: ArrayLike,
    k: int,
    method: Literal["greedy", "exhaustive", "truncated_power"] = "greedy",
    *,
    max_iter: int = 500,
    swaps: bool = False,
) -> tuple[list[int], float, F64, list[tuple[list[int], float]], int, int, int]:
    """Minimise w'Mw / w'Gw over card(w) <= k for given symmetric M and positive definite G.

    swaps: refine the method's support by 1-in-1-out local search (best improvement, at
    most `max_iter` swaps). Returns (support, nu, weights with w'Gw = 1, greedy path,
    supports tried, iterations, swaps made).
    """
    mm = np.ascontiguousarray(m, dtype=np.float64)
    gg = np.ascontiguousarray(g, dtype=np.float64)
    if mm.ndim != 2 or mm.shape[0] != mm.shape[1] or gg.shape != mm.shape:
        raise InvalidInput("M and G must be square and of the same shape")
    n = mm.shape[0]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInput(f"k must be a positive int, got {k!r}")
    if k > n:
        raise InvalidInput(f"k = {k} is above the number of assets n = {n}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
        raise InvalidInput(f"max_iter must be an int >= 0, got {max_iter!r}")
    mf, gf = mm.reshape(-1), gg.reshape(-1)
    path_raw = call_kernel(ext.sparse_greedy, mf, gf, n, k)
    path = [(list(sup), float(nu)) for sup, nu, _ in path_raw]
    support, nu, w = path_raw[-1]
    tried, iters = 0, 0
    if method == "exhaustive":
        support, nu, w, tried = call_kernel(ext.sparse_exhaustive, mf, gf, n, k)
    elif method == "truncated_power":
        starts = [np.asarray(w)]
        if n <= 200:
            _, vecs = call_kernel(ext.sparse_box_tiao, mf, gf, n)
            starts.append(np.asarray(vecs).reshape(n, n)[:, 0].copy())
        support, nu, w, iters = call_kernel(
            ext.sparse_tpower, mf, gf, n, k, np.concatenate(starts), max_iter
        )
    elif method != "greedy":
        raise InvalidInput(
            f'method must be "greedy", "exhaustive" or "truncated_power", got {method!r}'
        )
    made = 0
    if swaps:
        swapped = call_kernel(ext.sparse_swaps, mf, gf, n, list(support), max_iter)
        made = swapped[3]
        if made:
            support, nu, w = swapped[:3]
    return (
        [int(i) for i in support],
        float(nu),
        np.asarray(w),
        path,
        int(tried),
        int(iters),
        int(made),
    )


@dataclass(frozen=True, slots=True)
class SparsePortfolio:
    """A sparse mean-reverting portfolio.

    support: asset indices; weights: length-n, price units, ||w||_1 = 1; nu: Box–Tiao
    predictability (lower is more mean-reverting); method: e.g. "greedy" or "greedy+swaps";
    path: greedy (support, nu) for k = 1..k; swaps: 1-in-1-out swaps made by the refinement.
    condition_number: of the scaled covariance G (full matrix for n <= 200, else on the support).
    half_life_bars: OU half-life of the portfolio value w'S (NaN when not mean-reverting).
    johansen: Johansen analysis of the assets in the support (2 <= k <= 12; det_order 0, one
    lag), with simulated critical values and `rank()`; None otherwise.
    """

    support: list[int]
    weights: F64
    nu: float
    method: str
    path: list[tuple[list[int], float]]
    subsets_tried: int
    iterations: int
    condition_number: float
    half_life_bars: float
    ou: OUFit | None
    johansen: JohansenResult | None = None
    swaps: int = 0


def sparse_portfolio(
    prices: ArrayLike,
    k: int = 3,
    method: Literal["greedy", "exhaustive", "truncated_power"] = "greedy",
    *,
    ridge: float = 0.0,
    jitter: float = 1e-8,
    max_iter: int = 500,
    swaps: bool = False,
    dt: float = DAILY,
) -> SparsePortfolio:
    """Minimise nu(w) = w'Mw / w'Gw with card(w) <= k (d'Aspremont 2011).

    greedy: forward selection; exhaustive: brute force over C(n, k) supports (small n);
    truncated_power: truncated Rayleigh flow from the greedy solution and the truncated
    Box–Tiao vector (n <= 200), each polished by the exact k x k eigenproblem; never worse
    than greedy. swaps=True then refines the support by 1-in-1-out local search until no
    swap lowers nu (at most `max_iter` swaps); never worse than the method alone.
    """
    s = matrix(prices)
    n = s.shape[1]
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInput(f"k must be a positive int, got {k!r}")
    if k > n:
        raise InvalidInput(f"k = {k} is above the number of assets n = {n}")
    if method not in ("greedy", "exhaustive", "truncated_power"):
        raise InvalidInput(
            f'method must be "greedy", "exhaustive" or "truncated_power", got {method!r}'
        )
    m, g, _, sd = var1_matrices(s, ridge=ridge, jitter=jitter)
    if not isinstance(swaps, bool):
        raise InvalidInput(f"swaps must be True or False, got {swaps!r}")
    support, nu, w, path, tried, iters, made = select_support(
        m, g, k, method, max_iter=max_iter, swaps=swaps
    )
    sub = np.asarray(support)
    cond_src = g if n <= 200 else g[np.ix_(sub, sub)]
    cond = float(
        ext.sym_condition_number(np.ascontiguousarray(cond_src).reshape(-1), cond_src.shape[0])
    )
    weights = _to_price_units(np.asarray(w), sd)
    value = s @ weights
    ou: OUFit | None
    try:
        ou = fit_ou(value, dt)
    except InvalidInput:
        ou = None
    hl = ou.half_life_bars if ou is not None and ou.mean_reverting else math.nan
    joh: JohansenResult | None = None
    if len(support) >= 2:
        try:
            joh = johansen(s[:, sub], det_order=0, k_ar_diff=1)
        except InvalidInput:
            joh = None
    return SparsePortfolio(
        support=[int(i) for i in support],
        weights=weights,
        nu=float(nu),
        method=f"{method}+swaps" if swaps else method,
        path=path,
        subsets_tried=int(tried),
        iterations=int(iters),
        condition_number=cond,
        half_life_bars=hl,
        ou=ou,
        johansen=joh,
        swaps=made,
    )


# --- Johansen ------------------------------------------------------------------------------------


def cointegration(prices: ArrayLike, det_order: int = 0, k_ar_diff: int = 1) -> JohansenResult:
    """Johansen cointegration analysis of the columns of `prices` (see `cointegration.johansen`)."""
    return johansen(prices, det_order=det_order, k_ar_diff=k_ar_diff)
