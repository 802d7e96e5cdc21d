"""Cointegration diagnostics: the Johansen test and the augmented Dickey-Fuller test.

Critical values and p-values come from our own simulation (scripts/gen_critical_values.py,
stored in core/analytics/critical_values_data.py); see that script for the functionals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.analytics import critical_values_data as cv
from core.analytics.inputs import matrix, series
from core.errors import InvalidInput
from core.native import ext

__all__ = ["ADFResult", "JohansenResult", "adf", "johansen"]

F64 = NDArray[np.float64]
MAX_ASSETS = 12
LEVELS = (0.10, 0.05, 0.01)  # columns of the critical-value arrays: 90 / 95 / 99 %
ADF_TERMS = {"n": 0, "c": 1, "ct": 2, "ctt": 3}


@cache
def _johansen_table() -> F64:
    return np.array(cv.JOHANSEN.split(), dtype=np.float64).reshape(MAX_ASSETS, 3, 2, 3)


@cache
def _adf_table() -> tuple[F64, F64]:
    q = np.array(cv.ADF_QUANTILES.split(), dtype=np.float64)
    coef = np.array(cv.ADF_SURFACE.split(), dtype=np.float64).reshape(4, q.size, 3)
    return q, coef


def johansen_critical_values(n: int, det_order: int) -> tuple[F64, F64]:
    """(trace, max-eigenvalue) critical values for n assets: rows r = 0..n-1 (null rank <= r,
    m = n - r random-walk dimensions), columns 90/95/99 %. Asymptotic, simulated."""
    if not 1 <= n <= MAX_ASSETS:
        raise InvalidInput(
            f"Johansen critical values are tabulated for 1 to {MAX_ASSETS} assets, got {n}"
        )
    if det_order not in (-1, 0, 1):
        raise InvalidInput(f"det_order must be -1, 0 or 1, got {det_order}")
    rows = _johansen_table()[n - 1 :: -1][:n, det_order + 1]  # m = n, n-1, ..., 1
    return np.ascontiguousarray(rows[:, 0]), np.ascontiguousarray(rows[:, 1])


def _level_column(level: float) -> int:
    for col, lv in enumerate(LEVELS):
        if math.isclose(level, lv):
            return col
    raise InvalidInput(f"level must be one of 0.10, 0.05 or 0.01, got {level!r}")


@dataclass(frozen=True, slots=True)
class JohansenResult:
    """Johansen (1991) reduced-rank analysis of a VECM.

    eig: descending eigenvalues; evec: cointegrating vectors as columns (evec' S_kk evec = I);
    trace_stat[r] tests rank <= r against rank n; max_eig_stat[r] tests r against r + 1.
    trace_crit / max_eig_crit: rows r = 0..n-1, columns 90/95/99 %, asymptotic values we
    simulated (scripts/gen_critical_values.py) for this det_order.
    """

    eig: F64
    evec: F64
    trace_stat: F64
    max_eig_stat: F64
    nobs: int
    det_order: int
    k_ar_diff: int
    trace_crit: F64
    max_eig_crit: F64

    def rank(self, level: float = 0.05) -> int:
        """Cointegration rank by the sequential trace test: the first r not rejected."""
        col = _level_column(level)
        r = 0
        while r < self.eig.size and self.trace_stat[r] > self.trace_crit[r, col]:
            r += 1
        return r


def _detrend(x: F64, order: int) -> F64:
    if order < 0:
        return x
    if order == 0:
        return np.asarray(x - x.mean(axis=0))
    t = np.arange(x.shape[0], dtype=np.float64)
    basis = np.vander(t / max(t[-1], 1.0), order + 1)
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    return np.asarray(x - basis @ coef)


def _resid(y: F64, z: F64) -> F64:
    if z.shape[1] == 0:
        return y
    coef, *_ = np.linalg.lstsq(z, y, rcond=None)
    return np.asarray(y - z @ coef)


def johansen(
    prices: ArrayLike,
    det_order: int = 0,
    k_ar_diff: int = 1,
    *,
    statsmodels_compat: bool = False,
) -> JohansenResult:
    """Johansen test. det_order: -1 none, 0 constant, 1 linear trend; k_ar_diff lagged differences.

    The VECM is dx_t = Pi x_{t-1} + sum_{i=1..k} G_i dx_{t-i} + deterministic terms. Regresses
    dx_t and x_{t-1} on the lagged differences (after detrending as statsmodels does: levels
    by a polynomial of order det_order, differences by a constant when det_order >= 0), then
    solves S_k0 S_00^-1 S_0k v = lambda S_kk v.

    statsmodels' coint_johansen pairs dx_t with x_{t-k} (k = k_ar_diff). For k >= 1 that
    gives the same eigenvalues (x_{t-k} - x_{t-1} lies in the span of the lagged differences),
    but at k = 0 it pairs dx_t with x_t, which is not the Johansen model: the textbook
    VAR(1) in levels is dx_t = Pi x_{t-1} + e_t. statsmodels_compat=True reproduces
    statsmodels exactly (x_{t-k}, so x_t at k = 0).

    Critical values: det_order -1 no deterministic terms; 0 an unrestricted constant (linear
    trend in the data, Johansen's H_1, statsmodels' and Osterwald-Lenum's table 1); 1 an
    unrestricted trend (quadratic trend in the data, Osterwald-Lenum's table 2). n <= 12.
    """
    x = matrix(prices)
    n = x.shape[1]
    if det_order not in (-1, 0, 1):
        raise InvalidInput(f"det_order must be -1, 0 or 1, got {det_order}")
    if isinstance(k_ar_diff, bool) or not isinstance(k_ar_diff, int) or k_ar_diff < 0:
        raise InvalidInput(f"k_ar_diff must be an int >= 0, got {k_ar_diff!r}")
    if n > MAX_ASSETS:
        raise InvalidInput(
            f"Johansen critical values are tabulated for up to {MAX_ASSETS} assets, got {n}"
        )
    if x.shape[0] < k_ar_diff + n + 5:
        raise InvalidInput("too few rows for this many lags and assets")
    f = 0 if det_order > -1 else -1
    x = _detrend(x, det_order)
    dx = np.diff(x, axis=0)
    n_obs = dx.shape[0] - k_ar_diff
    lags = [dx[k_ar_diff - j : k_ar_diff - j + n_obs] for j in range(1, k_ar_diff + 1)]
    z = np.hstack(lags) if lags else np.empty((n_obs, 0))
    z = _detrend(z, f) if z.shape[1] else z
    r0 = _resid(_detrend(dx[k_ar_diff:], f), z)
    start = 1 if statsmodels_compat else k_ar_diff  # x_{t-k} or x_{t-1}
    lx = x[start : start + n_obs]
    rk = _resid(_detrend(lx, f), z)
    skk = rk.T @ rk / n_obs
    sk0 = rk.T @ r0 / n_obs
    s00 = r0.T @ r0 / n_obs
    sig = sk0 @ np.linalg.solve(s00, sk0.T)
    sig = 0.5 * (sig + sig.T)
    try:
        vals, vecs = ext.sparse_box_tiao(
            np.ascontiguousarray(sig).reshape(-1), np.ascontiguousarray(skk).reshape(-1), n
        )
    except Exception as exc:
        raise InvalidInput(f"Johansen eigenproblem failed: {exc}") from exc
    order = np.argsort(np.asarray(vals))[::-1]
    eig = np.asarray(vals)[order]
    evec = np.asarray(vecs).reshape(n, n)[:, order]
    log1m = np.log1p(-eig)
    trace = -n_obs * np.cumsum(log1m[::-1])[::-1]
    trace_crit, max_crit = johansen_critical_values(n, det_order)
    return JohansenResult(
        eig, evec, trace, -n_obs * log1m, n_obs, det_order, k_ar_diff, trace_crit, max_crit
    )


# --- ADF -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ADFResult:
    """Augmented Dickey-Fuller test of a unit root (null) against stationarity.

    stat: t-statistic of the lagged level; lag: lagged differences used; n_obs: rows of the
    final regression; crit: critical values {"1%", "5%", "10%"} at n_obs; p_value: from
    the same simulated finite-sample distribution, clipped to [0.0005, 0.9995] (the range
    simulated); ic: the best information criterion (None without autolag).
    """

    stat: float
    p_value: float
    lag: int
    n_obs: int
    crit: dict[str, float]
    regression: str
    max_lag: int
    ic: float | None

    @property
    def p_value_clipped(self) -> bool:
        """True when the p-value is at the edge of the simulated range."""
        return self.p_value <= 0.0005 or self.p_value >= 0.9995


def _adf_design(x: F64, dx: F64, lags: int, rows: int, terms: int) -> tuple[F64, F64]:
    """Regression of the last `rows` differences on x_{t-1}, `lags` lagged differences and
    `terms` deterministic terms (1, t, t^2 with t = 1..rows, as statsmodels' add_trend)."""
    y = dx[dx.size - rows :]
    cols = [x[x.size - rows - 1 : x.size - 1]]
    cols += [dx[dx.size - rows - j : dx.size - j] for j in range(1, lags + 1)]
    t = np.arange(1, rows + 1, dtype=np.float64)
    cols += [t**p for p in range(terms)]
    return np.ascontiguousarray(np.column_stack(cols)), np.ascontiguousarray(y)


def _ols(xm: F64, y: F64) -> tuple[float, float]:
    """(t-statistic of the first coefficient, ssr) by QR."""
    q, r = np.linalg.qr(xm)
    if np.min(np.abs(np.diag(r))) <= 1e-12 * np.max(np.abs(np.diag(r))):
        raise InvalidInput("the ADF regression is singular (is the series a pure trend?)")
    qty = q.T @ y
    beta = np.linalg.solve(r, qty)
    resid = y - xm @ beta
    ssr = float(resid @ resid)
    rinv0 = np.linalg.solve(r.T, np.eye(r.shape[0])[:, 0])  # row 0 of R^-1 via R' z = e_0
    var0 = ssr / (y.size - xm.shape[1]) * float(rinv0 @ rinv0)
    return float(beta[0] / math.sqrt(var0)), ssr


def _select_lag(x: F64, dx: F64, max_lag: int, terms: int, method: str) -> tuple[float, int]:
    """(best criterion, lag) over lags 0..max_lag fitted on the same rows. The models are
    nested prefixes of [trend, level, lag 1..max_lag], so one QR gives every ssr:
    ssr_k = ssr_full + sum_{j >= k} (Q'y)_j^2."""
    rows = dx.size - max_lag
    xm, y = _adf_design(x, dx, max_lag, rows, terms)
    xm = np.ascontiguousarray(np.column_stack([xm[:, xm.shape[1] - terms :], xm[:, : 1 + max_lag]]))
    q, r = np.linalg.qr(xm)
    diag = np.abs(np.diag(r))
    if rows <= xm.shape[1] or diag.min() <= 1e-12 * diag.max():
        raise InvalidInput("the ADF lag search is singular: lower max_lag")
    qty = q.T @ y
    resid = y - q @ qty
    tail = np.cumsum((qty * qty)[::-1])[::-1]  # tail[k] = sum_{j >= k} qty_j^2
    best: tuple[float, int] | None = None
    for p in range(max_lag + 1):
        k = terms + 1 + p
        ssr = float(resid @ resid) + (float(tail[k]) if k < tail.size else 0.0)
        penalty = 2.0 * k if method == "AIC" else k * math.log(rows)
        llf = -0.5 * rows * (math.log(2.0 * math.pi) + math.log(ssr / rows) + 1.0)
        crit = -2.0 * llf + penalty
        if best is None or crit < best[0]:
            best = (crit, p)
    assert best is not None
    return best


def adf_distribution(
    stat: float, n_obs: int, regression: str = "c"
) -> tuple[float, dict[str, float]]:
    """(p-value, critical values) of an ADF statistic with n_obs observations."""
    q, coef = _adf_table()
    c = coef[list(ADF_TERMS).index(regression)]
    quant = c[:, 0] + c[:, 1] / n_obs + c[:, 2] / n_obs**2
    p = float(np.interp(stat, quant, q))
    crit = {
        name: float(np.interp(level, q, quant))
        for name, level in (("1%", 0.01), ("5%", 0.05), ("10%", 0.10))
    }
    return p, crit


def adf(
    x: ArrayLike,
    *,
    regression: Literal["n", "c", "ct", "ctt"] = "c",
    max_lag: int | None = None,
    autolag: Literal["AIC", "BIC"] | None = "AIC",
) -> ADFResult:
    """Augmented Dickey-Fuller test with statsmodels' adfuller conventions.

    max_lag defaults to ceil(12 (n / 100)^(1/4)) capped at n // 2 - terms - 1. With autolag
    every lag 0..max_lag is fitted on the same rows and the lowest AIC/BIC wins (ties: the
    shorter lag); the chosen lag is then refitted on all the rows it allows. Without autolag
    max_lag lags are used. p-values and critical values are finite-sample quantiles of our
    simulated Dickey-Fuller distribution (Gaussian errors; response surface in 1/T fitted on
    T = 25..2000, so shorter samples are extrapolated).
    """
    arr = series(x, min_len=10, nonconstant=True)
    if regression not in ADF_TERMS:
        raise InvalidInput(f'regression must be "n", "c", "ct" or "ctt", got {regression!r}')
    if autolag is not None and autolag.upper() not in ("AIC", "BIC"):
        raise InvalidInput(f'autolag must be "AIC", "BIC" or None, got {autolag!r}')
    terms = ADF_TERMS[regression]
    n = arr.size
    cap = n // 2 - terms - 1
    if max_lag is None:
        max_lag = min(cap, math.ceil(12.0 * (n / 100.0) ** 0.25))
        if max_lag < 0:
            raise InvalidInput(f"the series is too short ({n}) for regression {regression!r}")
    elif isinstance(max_lag, bool) or not isinstance(max_lag, int) or max_lag < 0:
        raise InvalidInput(f"max_lag must be an int >= 0, got {max_lag!r}")
    elif max_lag > cap:
        raise InvalidInput(
            f"max_lag = {max_lag} is above n // 2 - terms - 1 = {cap} for {n} values"
        )
    dx = np.diff(arr)
    lag, ic = max_lag, None
    if autolag is not None:
        ic, lag = _select_lag(arr, dx, max_lag, terms, autolag.upper())
    rows = dx.size - lag
    if rows <= 1 + lag + terms:
        raise InvalidInput(f"too few rows ({rows}) for {lag} lags")
    xm, y = _adf_design(arr, dx, lag, rows, terms)
    stat, _ = _ols(xm, y)
    p_value, crit_values = adf_distribution(stat, rows, regression)
    return ADFResult(
        stat=stat,
        p_value=p_value,
        lag=lag,
        n_obs=rows,
        crit=crit_values,
        regression=regression,
        max_lag=max_lag,
        ic=ic,
    )
