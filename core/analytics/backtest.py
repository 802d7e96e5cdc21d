"""Vectorised backtest of the mean-reversion signal with costs (docs/compute.md §6).

Timing (no look-ahead): u[t], the spread units held after the close of bar t, is decided
from data up to bar t and earns u[t] (s[t+1] - s[t]). Trading at bar t costs
sum_i c_i |(u[t] - u[t-1]) w_i| P[t, i] (+ a fixed cost per bar with a trade).
Equity is additive: E[t] = K + sum_{tau <= t} (PnL - C).

Sharpe (default, sharpe_kind="arithmetic"): sqrt(A) mean(r - rf) / sd(r - rf), ddof=1, on
per-bar returns r[t] = E[t] / E[t-1] - 1 (returns="equity") or (PnL - C) / K
(returns="fixed"); A = periods_per_year. sharpe_kind="geometric_bt" reports
backtesting.py's definition instead (annualised geometric return / its annualised vol, on
calendar-day resampled equity).

Prices must be finite: rows with NaN are rejected with a message (drop or fill them first),
rather than forced flat (docs/compute.md §6(g)), because a position cannot be marked through a
missing price. NaN z (warm-up) means flat. Execution is at the close by default, or at the
next open (execution="next_open").

backtesting.py parity (units="integer", close_at_end=True): with trade_on_close=True it logs
bar t's equity before the fills decided at close t, so its equity curve equals ours + cost[t];
its default (next-open fills) matches execution="next_open" directly.

vectorbt parity (Portfolio.from_orders with per-leg target amounts u * w_i, cash sharing):
the equity agrees to rounding. vectorbt's returns also count bar 0 against the initial cash,
so its Sharpe is ours on [capital, *equity]; its trades are per leg (n legs per round trip).

Parameter sweeps report the deflated Sharpe (Bailey & Lopez de Prado 2014) of each point,
the grid being the set of trials.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Real
from typing import Literal, ParamSpec, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.analytics.inputs import call_kernel
from core.analytics.inputs import workers as kernel_workers
from core.analytics.meanrev import DAILY, cara_position, fit_ou, rolling_ou
from core.errors import InvalidInput
from core.native import ext
from core.series import rolling_zscore

__all__ = [
    "BacktestResult",
    "backtest",
    "band_states",
    "deflated_sharpe",
    "equity_metrics",
    "expected_max_sharpe",
    "geometric_sharpe_bt",
    "signal_zscore",
    "sweep",
]

F64 = NDArray[np.float64]
P = ParamSpec("P")
R = TypeVar("R")


def band_states(
    z: ArrayLike,
    z_in: float = 2.0,
    z_out: float = 0.5,
    z_stop: float | None = None,
    cooldown: int = 0,
) -> F64:
    """Band rule with hysteresis as a sequential state machine; states in {-1, 0, +1}.

    flat -> long at z <= -z_in, flat -> short at z >= z_in; long -> flat at z >= -z_out,
    short -> flat at z <= z_out; exit and opposite entry on one bar flip directly.
    |z| >= z_stop forces flat and blocks entries for `cooldown` bars. NaN z is flat.
    """
    zz = np.ascontiguousarray(z, dtype=np.float64)
    if zz.ndim != 1:
        raise InvalidInput("z must be 1-D")
    _cooldown(cooldown)
    return np.asarray(
        call_kernel(
            ext.bt_band_states,
            zz,
            float(z_in),
            float(z_out),
            None if z_stop is None else float(z_stop),
            int(cooldown),
        )
    )


def _cooldown(v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
        raise InvalidInput(f"cooldown must be an int >= 0, got {v!r}")
    return int(v)


def _cost_rates(cost: object, n: int) -> F64:
    """One cost rate per leg from a scalar or a per-leg sequence."""
    try:
        return np.broadcast_to(np.asarray(cost, dtype=np.float64), (n,)).copy()
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"cost {cost!r} must be one rate or one per leg ({n})") from exc


def signal_zscore(
    spread: ArrayLike,
    kind: Literal["rolling", "ou", "ou_fixed"] = "rolling",
    *,
    window: int = 60,
    ou_window: int = 252,
    refit_every: int = 21,
    train: int = 252,
    dt: float = DAILY,
) -> tuple[F64, F64, F64]:
    """z-score of the spread using only data <= t. Returns (z, mu, sigma_eq) per bar.

    rolling: trailing mean / sd (ddof=1) over `window` bars.
    ou: OU fitted on the trailing `ou_window` bars, refitted every `refit_every` bars;
        z = (s - mu) / (sigma / sqrt(2 theta)). Fits that are not mean-reverting give NaN.
    ou_fixed: one OU fit on the first `train` bars, applied from bar train - 1 on.
    """
    s = np.ascontiguousarray(spread, dtype=np.float64)
    n = s.size
    if kind == "rolling":
        if not isinstance(window, int) or window < 3:
            raise InvalidInput("window must be an int >= 3")
        if n < window + 2:
            raise InvalidInput(f"too few rows: {n} bars for a {window}-bar z-score window")
        z = rolling_zscore(s, window)
        # band levels for display: trailing mean and sd via cumulative sums of centred data
        c = s - s.mean()
        c1 = np.r_[0.0, np.cumsum(c)]
        c2 = np.r_[0.0, np.cumsum(c * c)]
        m1 = (c1[window:] - c1[:-window]) / window
        var = ((c2[window:] - c2[:-window]) - window * m1 * m1) / (window - 1)
        mu = np.full(n, np.nan)
        sd = np.full(n, np.nan)
        mu[window - 1 :] = m1 + s.mean()
        sd[window - 1 :] = np.sqrt(np.maximum(var, 0.0))
        return z, mu, sd
    if kind == "ou":
        if n < ou_window + 2:
            raise InvalidInput(f"too few rows: {n} bars for a {ou_window}-bar OU window")
        if refit_every < 1:
            raise InvalidInput("refit_every must be >= 1")
        fits = rolling_ou(s, ou_window, dt)
        idx = np.arange(n)
        first = ou_window - 1
        src = np.where(idx >= first, first + ((idx - first) // refit_every) * refit_every, 0)
        theta = fits["theta"][src]
        mu = fits["mu"][src]
        with np.errstate(invalid="ignore", divide="ignore"):
            sd = fits["sigma"][src] / np.sqrt(2.0 * theta)
        mu[idx < first] = np.nan
        sd[idx < first] = np.nan
    elif kind == "ou_fixed":
        if not 3 <= train <= n:
            raise InvalidInput(f"train must be between 3 and {n} bars, got {train}")
        fit = fit_ou(s[:train], dt)
        mu = np.full(n, fit.mu if fit.mean_reverting else np.nan)
        sd = np.full(n, fit.sigma_eq)
        mu[: train - 1] = np.nan
    else:
        raise InvalidInput(f'kind must be "rolling", "ou" or "ou_fixed", got {kind!r}')
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (s - mu) / sd
    z[~np.isfinite(z)] = np.nan
    return z, mu, sd


def geometric_sharpe_bt(
    equity: ArrayLike,
    timestamps: ArrayLike | None = None,
    periods_per_year: float = 252.0,
    rf: float = 0.0,
) -> float:
    """backtesting.py 0.6.6's "Sharpe Ratio": (annualised geometric return - rf) / annualised vol.

    Equity is resampled to calendar days (last value per day); g = exp(mean log(1 + r)) - 1,
    return (1+g)^A - 1, vol sqrt((var(r, ddof=1) + (1+g)^2)^A - (1+g)^(2A)); A = 252, or 365
    when weekends make up the index. Without timestamps each bar is a day, A = periods_per_year.
    Non-finite equity values, then returns, are dropped; g = 0 when some 1 + r <= 0; NaN
    below 3 points; overflow gives inf as numpy does. Computed in Rust (the code sweep()
    runs per point), equal to the numpy definition to ~1e-15 relative.
    To reproduce backtesting.py's number, pass its equity convention (equity + cost).
    """
    e = np.ascontiguousarray(equity, dtype=np.float64).reshape(-1)
    mask, a = _calendar(timestamps, periods_per_year)
    return float(call_kernel(ext.bt_geometric_sharpe, e, mask, a, float(rf)))


def _calendar(
    timestamps: ArrayLike | None, periods_per_year: float
) -> tuple[NDArray[np.bool_] | None, float]:
    """The geometric Sharpe's calendar: which bars are the last of their calendar day
    (None without timestamps: every bar is a day) and A (periods_per_year without
    timestamps; else 365 when weekends make up the index, 252 otherwise)."""
    if timestamps is None:
        return None, float(periods_per_year)
    ts = np.asarray(timestamps).astype("datetime64[ns]")
    days = ts.astype("datetime64[D]")
    last = np.r_[days[1:] != days[:-1], True]
    dow = (days.astype(np.int64) + 3) % 7  # Monday = 0
    a = 365.0 if np.mean(dow >= 5) > 2 / 7 * 0.6 else 252.0
    return np.ascontiguousarray(last, dtype=np.bool_), a


def equity_metrics(
    equity: ArrayLike, periods_per_year: float = 252.0, rf: float = 0.0
) -> dict[str, float]:
    """Return and risk metrics of an equity curve alone (same definitions as `backtest`).

    Trade statistics (round trips, costs, turnover) are not defined here and are dropped.
    """
    e = np.ascontiguousarray(equity, dtype=np.float64)
    if e.ndim != 1 or e.size < 3 or not np.all(np.isfinite(e)) or not np.all(e > 0):
        raise InvalidInput("equity must be a 1-D series of at least 3 finite values > 0")
    zeros = np.zeros_like(e)
    met, _, _ = call_kernel(
        ext.bt_metrics,
        e,
        zeros,
        zeros,
        zeros,
        zeros,
        float(e[0]),
        float(periods_per_year),
        float(rf),
        False,
    )
    keep = (
        "sharpe",
        "sharpe_tstat",
        "sortino",
        "cagr",
        "volatility",
        "max_drawdown",
        "max_drawdown_ccy",
        "max_drawdown_bars",
        "calmar",
        "final_equity",
    )
    return {k: float(met[k]) for k in keep}


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """Per-bar arrays (length T) plus metrics. `returns` has T - 1 values (bars 1..T-1)."""

    positions: F64
    spread: F64
    z: F64
    pnl: F64
    cost: F64
    notional: F64
    equity: F64
    returns: F64
    metrics: dict[str, float]
    trips: dict[str, object] = field(default_factory=dict)


def _prices(prices: ArrayLike) -> F64:
    try:
        p = np.asarray(prices, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"prices must be numeric: {exc}") from exc
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2 or p.shape[0] < 3 or p.shape[1] < 1:
        raise InvalidInput(f"prices must be (bars x legs) with at least 3 bars, got {p.shape}")
    bad = ~np.isfinite(p)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InvalidInput(
            f"prices have {int(bad.sum())} NaN/inf values (first at row {r}, column {c}); "
            "drop or fill them first"
        )
    return np.ascontiguousarray(p)


def backtest(
    prices: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    rule: Literal["bands", "linear", "cara"] = "bands",
    z: ArrayLike | None = None,
    zscore: Literal["rolling", "ou", "ou_fixed"] = "rolling",
    window: int = 60,
    ou_window: int = 252,
    refit_every: int = 21,
    train: int = 252,
    z_in: float = 2.0,
    z_out: float = 0.5,
    z_stop: float | None = None,
    cooldown: int = 0,
    z_scale: float = 2.0,
    u_max: float = 1.0,
    size: Literal["units", "notional"] = "units",
    gross: float | None = None,
    units: Literal["fractional", "integer"] = "fractional",
    gamma: float = 1.0,
    cara_horizon: Literal["finite", "myopic", "discrete_myopic"] = "myopic",
    cost: float | ArrayLike = 5e-4,
    fixed_cost: float = 0.0,
    capital: float = 1e6,
    periods_per_year: float = 252.0,
    returns: Literal["equity", "fixed"] = "equity",
    rf: float = 0.0,
    close_at_end: bool = False,
    execution: Literal["close", "next_open"] = "close",
    opens: ArrayLike | None = None,
    timestamps: ArrayLike | None = None,
    sharpe_kind: Literal["arithmetic", "geometric_bt"] = "arithmetic",
) -> BacktestResult:
    """Backtest a spread s = P w under a band (hysteresis), linear or CARA rule.

    rule="bands": u = state * u_max (size="units") or gross / sum_i |w_i| P_i fixed at entry
    (size="notional"). rule="linear": u = -clip(z / z_scale, -1, 1) u_max. rule="cara":
    u = q*(t, s) from the OU parameters of the signal (zscore="ou"/"ou_fixed"), clipped to
    +-u_max (clipping makes it sub-optimal). units="integer" truncates u toward zero
    (backtesting.py parity). close_at_end=True is flat from bar T-2 on (backtesting.py's
    finalize_trades with trade_on_close). cost is a rate per leg (scalar or one per leg).

    execution="next_open" fills the decision of close t at the open of bar t + 1 (`opens`, same
    shape as prices); PnL then has a close-to-open and an open-to-close part, costs use the
    open, and `positions` are the holdings over each bar (the decision of the bar before).

    metrics["sharpe"] follows sharpe_kind (see the module docstring); both
    "sharpe_arithmetic" and "sharpe_geometric_bt" are always reported.
    """
    p = _prices(prices)
    t_len, n = p.shape
    w = np.ones(n) if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or not np.any(w != 0):
        raise InvalidInput(f"weights must be {n} finite numbers, not all zero")
    rates = _cost_rates(cost, n)
    if not (u_max > 0 and math.isfinite(u_max)):
        raise InvalidInput("u_max must be finite and > 0")
    spread = p @ w
    mu_sig: tuple[F64, F64] | None = None
    if z is None:
        if np.ptp(spread) == 0:
            raise InvalidInput("the spread is constant; there is nothing to trade")
        if zscore == "rolling" and rule != "cara":
            if not isinstance(window, int) or window < 3:
                raise InvalidInput("window must be an int >= 3")
            if t_len < window + 2:
                raise InvalidInput(f"too few rows: {t_len} bars for a {window}-bar z-score window")
            zz = rolling_zscore(spread, window)
        else:
            zz, mu, sd = signal_zscore(
                spread,
                zscore,
                window=window,
                ou_window=ou_window,
                refit_every=refit_every,
                train=train,
                dt=1.0 / periods_per_year,
            )
            mu_sig = (mu, sd)
    else:
        zz = np.ascontiguousarray(z, dtype=np.float64)
        if zz.shape != (t_len,):
            raise InvalidInput(f"z must have one value per bar ({t_len})")
    if rule == "bands":
        state = band_states(zz, z_in, z_out, z_stop, cooldown)
        if size == "units":
            u = state * u_max
        elif size == "notional":
            if gross is None or not gross > 0:
                raise InvalidInput('size="notional" needs gross > 0')
            denom = np.abs(p) @ np.abs(w)
            entry = (state != 0) & (np.r_[0.0, state[:-1]] != state)
            episode = np.cumsum(entry)
            level = np.where(entry, gross / denom, 0.0)
            per_ep = np.zeros(int(episode.max()) + 1)
            per_ep[episode[entry]] = level[entry]
            u = state * per_ep[episode]
        else:
            raise InvalidInput(f'size must be "units" or "notional", got {size!r}')
    elif rule == "linear":
        if not z_scale > 0:
            raise InvalidInput("z_scale must be > 0")
        u = -np.clip(zz / z_scale, -1.0, 1.0) * u_max
        u[np.isnan(u)] = 0.0
    elif rule == "cara":
        if zscore == "rolling" or mu_sig is None:
            raise InvalidInput('rule="cara" needs OU parameters: use zscore="ou" or "ou_fixed"')
        mu, sd = mu_sig
        ok = np.isfinite(mu) & np.isfinite(sd) & (sd > 0)
        u = np.zeros(t_len)
        dt = 1.0 / periods_per_year
        if zscore == "ou":
            fits = rolling_ou(spread, ou_window, dt)
            first = ou_window - 1
            idx = np.arange(t_len)
            seg = np.where(idx >= first, first + ((idx - first) // refit_every) * refit_every, -1)
            theta, sigma = fits["theta"], fits["sigma"]
        else:
            fit0 = fit_ou(spread[:train], dt)
            seg = np.where(np.arange(t_len) >= train - 1, 0, -1)
            theta, sigma = np.array([fit0.theta]), np.array([fit0.sigma])
        for src in np.unique(seg[ok & (seg >= 0)]):
            rows = np.flatnonzero(ok & (seg == src))
            u[rows] = cara_position(
                spread[rows],
                rows * dt,
                theta=float(theta[src]),
                mu=float(mu[rows[0]]),
                sigma=float(sigma[src]),
                gamma=gamma,
                T=t_len * dt,
                horizon=cara_horizon,
                dt=dt,
                q_max=u_max,
            )
    else:
        raise InvalidInput(f'rule must be "bands", "linear" or "cara", got {rule!r}')
    if units == "integer":
        u = np.trunc(u)
    elif units != "fractional":
        raise InvalidInput(f'units must be "fractional" or "integer", got {units!r}')
    if close_at_end:
        u[-2:] = 0.0
    u = np.ascontiguousarray(u + 0.0)
    inter: dict[str, F64] | None = None
    if execution == "close":
        led = dict(
            call_kernel(
                ext.bt_ledger, p.reshape(-1), n, w, u, rates, float(fixed_cost), float(capital)
            )
        )
    elif execution == "next_open":
        if opens is None:
            raise InvalidInput('execution="next_open" needs the open prices (opens=...)')
        led, u, inter = _next_open_ledger(p, _prices(opens), w, u, rates, fixed_cost, capital)
    else:
        raise InvalidInput(f'execution must be "close" or "next_open", got {execution!r}')
    if returns not in ("equity", "fixed"):
        raise InvalidInput(f'returns must be "equity" or "fixed", got {returns!r}')
    met, r, trips = call_kernel(
        ext.bt_metrics,
        led["equity"],
        led["pnl"],
        led["cost"],
        led["notional"],
        u,
        float(capital),
        float(periods_per_year),
        float(rf),
        returns == "fixed",
    )
    metrics = dict(met)
    if inter is not None:
        # trips on the interleaved ledger, so a bar's gap and intraday PnL go to the right trip
        _, _, trips = call_kernel(
            ext.bt_metrics,
            inter["equity"],
            inter["pnl"],
            inter["cost"],
            inter["notional"],
            inter["units"],
            float(capital),
            float(periods_per_year),
            0.0,
            False,
        )
        trips = dict(trips)
        trips["entry"] = (np.asarray(trips["entry"]) + 1) // 2
        trips["exit"] = (np.asarray(trips["exit"]) + 1) // 2
        held = trips["exit"] - trips["entry"]
        pnl_trips = np.asarray(trips["pnl"])
        metrics["round_trips"] = float(pnl_trips.size)
        metrics["hit_rate"] = float(np.mean(pnl_trips > 0)) if pnl_trips.size else math.nan
        metrics["avg_holding_bars"] = float(held.mean()) if held.size else math.nan
    metrics["sharpe_arithmetic"] = metrics["sharpe"]
    metrics["sharpe_geometric_bt"] = geometric_sharpe_bt(
        led["equity"], timestamps, periods_per_year
    )
    if sharpe_kind == "geometric_bt":
        metrics["sharpe"] = metrics["sharpe_geometric_bt"]
    elif sharpe_kind != "arithmetic":
        raise InvalidInput(
            f'sharpe_kind must be "arithmetic" or "geometric_bt", got {sharpe_kind!r}'
        )
    return BacktestResult(
        positions=u,
        spread=np.asarray(led["spread"]),
        z=zz,
        pnl=np.asarray(led["pnl"]),
        cost=np.asarray(led["cost"]),
        notional=np.asarray(led["notional"]),
        equity=np.asarray(led["equity"]),
        returns=np.asarray(r),
        metrics=metrics,
        trips=dict(trips),
    )


def _next_open_ledger(
    p: F64, o: F64, w: F64, u: F64, rates: F64, fixed_cost: float, capital: float
) -> tuple[dict[str, F64], F64, dict[str, F64]]:
    """Ledger when the decision of close t is filled at the open of t + 1.

    Runs the close ledger on the interleaved series close_0, open_1, close_1, open_2, ...
    (holding u[t-1] up to open t + 1, u[t] after), then folds each open into its bar.
    """
    t_len, n = p.shape
    if o.shape != p.shape:
        raise InvalidInput(f"opens must have the shape of prices {p.shape}, got {o.shape}")
    rows = 2 * t_len - 1
    p2 = np.empty((rows, n))
    p2[0::2] = p
    p2[1::2] = o[1:]
    u2 = np.empty(rows)
    u2[0::2] = np.r_[0.0, u[:-1]]
    u2[1::2] = u[:-1]
    raw = call_kernel(
        ext.bt_ledger, p2.reshape(-1), n, w, u2, rates, float(fixed_cost), float(capital)
    )
    led2 = {k: np.asarray(v) for k, v in raw.items()}
    led: dict[str, F64] = {"spread": led2["spread"][0::2], "equity": led2["equity"][0::2]}
    for key in ("pnl", "cost", "notional"):
        folded = led2[key][0::2].copy()
        folded[1:] += led2[key][1::2]
        led[key] = folded
    led2["units"] = u2
    return led, np.ascontiguousarray(u2[0::2]), led2


def _check_trials(n_trials: int, sharpe_var: float) -> None:
    if not isinstance(n_trials, int) or n_trials < 1:
        raise InvalidInput(f"n_trials must be an int >= 1, got {n_trials!r}")
    if not (sharpe_var >= 0 and math.isfinite(sharpe_var)):
        raise InvalidInput(f"sharpe_var must be finite and >= 0, got {sharpe_var!r}")


def expected_max_sharpe(n_trials: int, sharpe_var: float) -> float:
    """Expected maximum of `n_trials` Sharpe estimates with true Sharpe 0 and variance
    `sharpe_var` (Bailey & Lopez de Prado 2014, eq. 2, Euler-Mascheroni approximation):
    sqrt(V) ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e))). Zero for one trial.
    """
    _check_trials(n_trials, sharpe_var)
    return float(call_kernel(ext.bt_expected_max_sharpe, n_trials, float(sharpe_var)))


def deflated_sharpe(returns: ArrayLike, n_trials: int, sharpe_var: float, rf: float = 0.0) -> float:
    """Deflated Sharpe ratio (Bailey & Lopez de Prado 2014): the probability that the true
    Sharpe exceeds the best of `n_trials` unskilled trials,
    Phi((SR - SR0) sqrt(T - 1) / sqrt(1 - skew SR + (kurt - 1) / 4 SR^2)).

    SR is the per-period (not annualised) Sharpe of `returns` (ddof=1, excess of the
    per-period `rf`), skew and kurt (not excess) are population moments of the returns,
    T their count, SR0 = expected_max_sharpe(n_trials, sharpe_var) with `sharpe_var` the
    variance of the trials' per-period Sharpe estimates. NaN when the Sharpe is undefined.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or r.size < 3 or not np.all(np.isfinite(r)):
        raise InvalidInput("returns must be a 1-D series of at least 3 finite values")
    _check_trials(n_trials, sharpe_var)
    r = np.ascontiguousarray(r)
    return float(call_kernel(ext.bt_deflated_sharpe, r, n_trials, float(sharpe_var), float(rf)))


# sweep() runs these keyword arguments in the Rust kernel; any other keyword, or rule/zscore/
# size/execution at a value other than the one below, runs the per-point backtest() loop.
_NATIVE_SWEEP_KEYS = frozenset(
    {
        "z_stop",
        "cooldown",
        "u_max",
        "units",
        "fixed_cost",
        "capital",
        "periods_per_year",
        "returns",
        "rf",
        "close_at_end",
        "timestamps",
        "sharpe_kind",
        "rule",
        "zscore",
        "size",
        "execution",
    }
)
_NATIVE_SWEEP_FIXED = {"rule": "bands", "zscore": "rolling", "size": "units", "execution": "close"}


def sweep(
    prices: ArrayLike,
    weights: ArrayLike | None = None,
    *,
    windows: tuple[int, ...] = (60,),
    z_ins: tuple[float, ...] = (2.0,),
    z_outs: tuple[float, ...] = (0.5,),
    costs: tuple[float, ...] = (5e-4,),
    workers: int | None = None,
    **kwargs: object,
) -> list[dict[str, float]]:
    """Band-rule backtests over a (window, z_in, z_out, cost) grid; the rolling z-score is
    computed once per window and reused. Returns one row of parameters and metrics per point
    (combinations with z_out >= z_in are skipped). Other keyword arguments go to `backtest`.

    The grid runs in parallel in Rust on `workers` threads (None or -1: all cores); every row
    equals the single `backtest()` run bitwise, whatever `workers`. The Rust path covers the
    band rule with units sizing and close execution and the keywords z_stop, cooldown, u_max,
    units, fixed_cost, capital, periods_per_year, returns, rf, close_at_end, timestamps and
    sharpe_kind; other keywords (e.g. size="notional", execution="next_open", rule="linear")
    run one `backtest()` per point in Python, where `workers` has no effect.

    Each row also has "deflated_sharpe" (see `deflated_sharpe`) with the grid as the set of
    trials: N = "n_trials" = points with a defined Sharpe, V = the sample variance (ddof=1)
    of their per-period Sharpes. Grid points are correlated, so N overstates the number of
    independent trials and the deflation errs on the strict side.
    """
    p = _prices(prices)
    w = np.ones(p.shape[1]) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (p.shape[1],):
        raise InvalidInput(f"weights must be {p.shape[1]} numbers")
    threads = kernel_workers(workers)
    for window in windows:
        if not isinstance(window, int) or window < 3 or p.shape[0] < window + 2:
            raise InvalidInput(f"window {window!r} does not fit {p.shape[0]} bars")
    bands = (*z_ins, *z_outs)
    if any(isinstance(v, bool) or not isinstance(v, Real) for v in bands):
        raise InvalidInput(f"z_ins and z_outs must be numbers, got {z_ins!r} and {z_outs!r}")
    # (window index, cost index, window, z_in, z_out, cost) in the order of the rows
    grid = [
        (k, c, window, z_in, z_out, cost)
        for k, window in enumerate(windows)
        for z_in in z_ins
        for z_out in z_outs
        if not z_out >= z_in
        for c, cost in enumerate(costs)
    ]
    native = set(kwargs) <= _NATIVE_SWEEP_KEYS and all(
        kwargs.get(key, value) == value for key, value in _NATIVE_SWEEP_FIXED.items()
    )
    if native:
        return _sweep_native(p, w, windows, costs, grid, threads, kwargs)
    rows, returns = _sweep_loop(p, w, windows, grid, kwargs)
    _deflate(rows, returns, kwargs)
    return rows


def _sweep_loop(
    p: F64,
    w: F64,
    windows: tuple[int, ...],
    grid: list[tuple[int, int, int, float, float, float]],
    kwargs: dict[str, object],
) -> tuple[list[dict[str, float]], F64]:
    """The sweep as one `backtest()` per point (any keyword `backtest` takes)."""
    spread = p @ w
    zs = [rolling_zscore(spread, window) for window in windows]
    rows: list[dict[str, float]] = []
    returns: list[F64] = []
    for k, _, window, z_in, z_out, cost in grid:
        res = backtest(p, w, z=zs[k], z_in=z_in, z_out=z_out, cost=cost, **kwargs)  # type: ignore[arg-type]
        row = {"window": float(window), "z_in": z_in, "z_out": z_out, "cost": cost}
        rows.append(row | res.metrics)
        returns.append(res.returns)
    return rows, np.array(returns).reshape(len(rows), p.shape[0] - 1)


def _sweep_native(
    p: F64,
    w: F64,
    windows: tuple[int, ...],
    costs: tuple[float, ...],
    grid: list[tuple[int, int, int, float, float, float]],
    threads: int,
    kw: dict[str, object],
) -> list[dict[str, float]]:
    """The sweep in the Rust kernel, deflated Sharpe included; checks and row layout as
    `backtest()` and `_deflate` have them."""
    n = p.shape[1]
    if not np.all(np.isfinite(w)) or not np.any(w != 0):
        raise InvalidInput(f"weights must be {n} finite numbers, not all zero")

    def number(key: str, default: float) -> float:
        v = kw.get(key, default)
        if isinstance(v, bool) or not isinstance(v, Real):
            raise InvalidInput(f"{key} must be a number, got {v!r}")
        return float(v)

    u_max = number("u_max", 1.0)
    if not (u_max > 0 and math.isfinite(u_max)):
        raise InvalidInput("u_max must be finite and > 0")
    z_stop = None if kw.get("z_stop") is None else number("z_stop", 0.0)
    cooldown = _cooldown(kw.get("cooldown", 0))
    units, ret_kind = kw.get("units", "fractional"), kw.get("returns", "equity")
    sharpe_kind = kw.get("sharpe_kind", "arithmetic")
    if units not in ("fractional", "integer"):
        raise InvalidInput(f'units must be "fractional" or "integer", got {units!r}')
    if ret_kind not in ("equity", "fixed"):
        raise InvalidInput(f'returns must be "equity" or "fixed", got {ret_kind!r}')
    if sharpe_kind not in ("arithmetic", "geometric_bt"):
        raise InvalidInput(
            f'sharpe_kind must be "arithmetic" or "geometric_bt", got {sharpe_kind!r}'
        )
    if not grid:
        return []
    rates = [_cost_rates(cost, n) for cost in costs]
    spread = p @ w
    zs = np.stack([rolling_zscore(spread, window) for window in windows])
    ppy = number("periods_per_year", 252.0)
    # the calendar of the geometric Sharpe, once for the grid (as backtest() computes it)
    last_of_day, geometric_periods = _calendar(kw.get("timestamps"), ppy)  # type: ignore[arg-type]
    out = call_kernel(
        ext.bt_sweep,
        p,
        w,
        zs,
        np.stack(rates),
        [g[0] for g in grid],
        [float(g[3]) for g in grid],
        [float(g[4]) for g in grid],
        [g[1] for g in grid],
        u_max=u_max,
        z_stop=z_stop,
        cooldown=cooldown,
        integer_units=units == "integer",
        close_at_end=bool(kw.get("close_at_end", False)),
        fixed_cost=number("fixed_cost", 0.0),
        capital=number("capital", 1e6),
        periods_per_year=ppy,
        rf=number("rf", 0.0),
        fixed_capital=ret_kind == "fixed",
        last_of_day=last_of_day,
        geometric_periods=geometric_periods,
        workers=threads,
    )
    columns = {key: col.tolist() for key, col in out["metrics"].items()}
    geometric = out["sharpe_geometric_bt"].tolist()
    deflated = out["deflated_sharpe"].tolist()
    n_trials = float(out["n_trials"])
    rows: list[dict[str, float]] = []
    for i, (_, _, window, zi, zo, cost) in enumerate(grid):
        met = {key: col[i] for key, col in columns.items()}
        # the tail backtest() adds after the kernel metrics, in the same order
        met["sharpe_arithmetic"] = met["sharpe"]
        met["sharpe_geometric_bt"] = geometric[i]
        if sharpe_kind == "geometric_bt":
            met["sharpe"] = met["sharpe_geometric_bt"]
        met["n_trials"] = n_trials
        met["deflated_sharpe"] = deflated[i]
        rows.append({"window": float(window), "z_in": zi, "z_out": zo, "cost": cost} | met)
    return rows


def _deflate(rows: list[dict[str, float]], returns: F64, kwargs: dict[str, object]) -> None:
    """Add the deflated Sharpe to each sweep row, the grid being the set of trials.
    `returns` holds one row of per-period returns per sweep row."""
    a = kwargs.get("periods_per_year", 252.0)
    rf = kwargs.get("rf", 0.0)
    if not isinstance(a, Real) or not isinstance(rf, Real):
        raise InvalidInput("periods_per_year and rf must be numbers")
    sharpe = np.array([row["sharpe_arithmetic"] for row in rows], dtype=np.float64)
    values, n = call_kernel(
        ext.bt_deflate_grid, np.ascontiguousarray(returns), sharpe, float(a), float(rf)
    )
    for row, value in zip(rows, np.asarray(values).tolist(), strict=True):
        row["n_trials"] = float(n)
        row["deflated_sharpe"] = value


from core.analytics.walkforward import (  # noqa: E402, I001  re-export (walkforward imports backtest lazily)
    Fold as Fold,
    Grid as Grid,
    WalkForward as WalkForward,
    walk_forward as walk_forward,
)
