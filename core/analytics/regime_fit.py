"""Regimes of one price series, as the Regimes page and the REST API compute them.

`fit_series` turns closes into percent log-returns, fits K = 1..k_max Gaussian HMMs
(diagonal covariance, EM with restarts) and keeps the K of the lowest BIC, or a fixed K.
`RegimeFit.summary()` is the answer in plain numbers: per-state mean and volatility,
transition matrix, stationary law, fit quality and the most likely current state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core import series
from core.analytics.regime import HMMResult, Selection, select_n_states
from core.errors import InvalidInput

MAX_STATES = 6
"""The most states the page and the API fit."""
MAX_RESTARTS = 20
DEFAULT_K_MAX = 4
DEFAULT_RESTARTS = 10
COVARIANCE = "diag"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

F64 = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class RegimeSummary:
    """A fit in numbers. Means and volatilities are of percent log-returns per bar."""

    n_states: int
    selected_by: str
    """"bic" (the K of the lowest BIC among 1..k_max) or "fixed"."""
    n_returns: int
    first: datetime
    last: datetime
    """The input range: open times of the first and last bar used."""
    means: tuple[float, ...]
    volatilities: tuple[float, ...]
    expected_durations: tuple[float, ...]
    """Expected stay in each state, in bars (inf when a state never leaves)."""
    transition_matrix: tuple[tuple[float, ...], ...]
    stationary_distribution: tuple[float, ...]
    log_likelihood: float
    bic: float
    converged: bool
    n_iter: int
    current_state: int
    current_probability: float
    """The state with the highest filtered probability at the last bar, and that probability."""
    bic_table: tuple[tuple[int, float, int, float, float], ...]
    """(K, log-likelihood, free parameters, BIC, AIC) for every K fitted."""


@dataclass(frozen=True)
class RegimeFit:
    """Everything the Regimes page draws: returns, their times, the fits across K."""

    selection: Selection
    n_states: int
    auto: bool
    bar_ts: NDArray[np.datetime64]
    """Open times of every bar used (one more than the returns)."""
    closes: F64
    returns: F64

    @property
    def ts(self) -> NDArray[np.datetime64]:
        """Times of the returns: each bar after the first."""
        return self.bar_ts[1:]

    @property
    def prices(self) -> F64:
        """Closes aligned with the returns."""
        return self.closes[1:]

    @property
    def model(self) -> HMMResult:
        return self.selection.fits[self.n_states]

    def summary(self) -> RegimeSummary:
        model = self.model
        now = model.filtered(self.returns)[-1]
        state = int(np.argmax(now))
        return RegimeSummary(
            n_states=self.n_states,
            selected_by="bic" if self.auto else "fixed",
            n_returns=int(self.returns.size),
            first=_when(self.bar_ts[0]),
            last=_when(self.bar_ts[-1]),
            means=_floats(model.means[:, 0]),
            volatilities=_floats(model.state_vol),
            expected_durations=_floats(model.expected_durations),
            transition_matrix=tuple(_floats(row) for row in model.transmat),
            stationary_distribution=_floats(model.stationary_distribution),
            log_likelihood=float(model.log_likelihood),
            bic=float(model.bic(self.returns)),
            converged=bool(model.converged),
            n_iter=int(model.n_iter),
            current_state=state,
            current_probability=float(now[state]),
            bic_table=tuple(self.selection.table),
        )


def _floats(values: ArrayLike) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64))


def _when(value: np.datetime64) -> datetime:
    micros = int(value.astype("datetime64[us]").astype(np.int64))
    return EPOCH + timedelta(microseconds=micros)


def check_whole(name: str, value: object, low: int, high: int) -> int:
    """`value` as an int in [low, high]; InvalidInput naming `name` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInput(f"{name} must be a whole number from {low} to {high}")
    if not low <= int(value) <= high:
        raise InvalidInput(f"{name} must be from {low} to {high}, got {value}")
    return int(value)


def fit_series(
    ts: ArrayLike,
    closes: ArrayLike,
    *,
    k: int | None = None,
    k_max: int = DEFAULT_K_MAX,
    n_init: int = DEFAULT_RESTARTS,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> RegimeFit:
    """Fit regimes on the percent log-returns of `closes` (bar open times `ts`).

    K = 1..max(k_max, k) are fitted with the same seed; the answer uses `k` when given,
    else the K of the lowest BIC. progress(done, total) is called once per K."""
    times = np.asarray(ts).astype("datetime64[us]")
    prices = np.asarray(closes, dtype=np.float64)
    if times.shape != prices.shape or prices.ndim != 1:
        raise InvalidInput("times and closes must be two columns of the same length")
    k_max = check_whole("k_max", k_max, 1, MAX_STATES)
    fixed = None if k is None else check_whole("k", k, 1, MAX_STATES)
    n_init = check_whole("n_init", n_init, 1, MAX_RESTARTS)
    seed = check_whole("seed", seed, 0, 2**31 - 1)
    if prices.size < 3:
        raise InvalidInput(f"{prices.size} bars are too few to fit regimes; use a longer range")
    returns = 100.0 * series.log_returns(prices)
    sel = select_n_states(
        returns,
        k_max=max(k_max, fixed or 1),
        covariance_type=COVARIANCE,
        n_init=n_init,
        seed=seed,
        progress=progress,
    )
    return RegimeFit(
        selection=sel,
        n_states=sel.n_states if fixed is None else fixed,
        auto=fixed is None,
        bar_ts=times,
        closes=prices,
        returns=returns,
    )
