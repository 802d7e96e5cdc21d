"""Regime detection with a Gaussian hidden Markov model (docs/compute.md §1).

`fit_hmm` runs EM with restarts in Rust (in parallel, bitwise reproducible for a
seed); `select_n_states` picks the number of states by BIC. States come back
ordered by volatility (ascending variance of the first column).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.analytics.inputs import check_seed, seed_or_random
from core.errors import InvalidInput
from core.native import ext

__all__ = [
    "COVARIANCE_TYPES",
    "HMMResult",
    "Selection",
    "fit_hmm",
    "n_free_params",
    "select_n_states",
]

COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
INITS = ("kmeans++", "hmmlearn")
START_MODES = ("free", "stationary")
ORDERS = ("vol", "mean", "none")

F64 = NDArray[np.float64]


def _as_2d(x: ArrayLike, name: str = "x") -> F64:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be numeric: {exc}") from exc
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise InvalidInput(f"{name} must be shaped (n,) or (n, d), got {arr.shape}")
    if arr.shape[0] < 2:
        raise InvalidInput(f"{name} has {arr.shape[0]} rows; a regime model needs many more")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).any(axis=1).sum())
        raise InvalidInput(f"{name} contains NaN or infinite values in {bad} rows; drop them first")
    # Column by column: numpy's axis-0 reduction over a narrow C-ordered
    # array is ~15x slower than reducing each strided column.
    if any(np.ptp(arr[:, j]) == 0 for j in range(arr.shape[1])):
        raise InvalidInput(f"{name} is constant in at least one column; there are no regimes")
    return np.ascontiguousarray(arr)


def _lengths(lengths: Sequence[int] | NDArray[np.int64] | None, n: int) -> NDArray[np.int64] | None:
    if lengths is None:
        return None
    arr = np.ascontiguousarray(lengths, dtype=np.int64)
    if arr.ndim != 1 or (arr <= 0).any() or int(arr.sum()) != n:
        raise InvalidInput(f"lengths must be positive and sum to the {n} rows of x")
    return arr


def _call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a kernel, turning its ValueError into InvalidInput."""
    try:
        return fn(*args, **kwargs)
    except InvalidInput:
        raise
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc


def n_free_params(
    n_states: int, n_features: int, covariance_type: str, startprob: str = "free"
) -> int:
    """(K-1) + K(K-1) + K d + covariance terms (hmmlearn's count); no start term when stationary."""
    k, d = n_states, n_features
    cov = {
        "full": k * d * (d + 1) // 2,
        "diag": k * d,
        "spherical": k,
        "tied": d * (d + 1) // 2,
    }[covariance_type]
    start = k - 1 if startprob == "free" else 0
    return start + k * (k - 1) + k * d + cov


def full_covars(covars: ArrayLike, covariance_type: str, n_states: int, n_features: int) -> F64:
    """Covariances as (K, d, d) from any hmmlearn shape of `covariance_type`."""
    c = np.asarray(covars, dtype=np.float64)
    k, d = n_states, n_features
    if c.shape == (k, d, d):
        return c.copy()
    if covariance_type == "diag" and c.shape == (k, d):
        return np.stack([np.diag(row) for row in c])
    if covariance_type == "spherical" and c.shape == (k,):
        return c[:, None, None] * np.eye(d)[None]
    if covariance_type == "tied" and c.shape == (d, d):
        return np.repeat(c[None], k, axis=0)
    raise InvalidInput(f"covars of shape {c.shape} do not fit {covariance_type} with K={k}, d={d}")


@dataclass(frozen=True)
class HMMResult:
    """A fitted Gaussian HMM. covars is always (K, d, d)."""

    startprob: F64
    transmat: F64
    means: F64
    covars: F64
    log_likelihood: float
    n_iter: int
    converged: bool
    covariance_type: str = "full"
    startprob_mode: str = "free"
    n_obs: int = 0
    seed: int = 0
    history: F64 = field(default_factory=lambda: np.empty(0))
    monotone: bool = True
    reinitialised: bool = False
    restart_log_likelihoods: F64 = field(default_factory=lambda: np.empty(0))

    @property
    def n_states(self) -> int:
        return int(self.startprob.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.means.shape[1])

    @property
    def state_vol(self) -> F64:
        """Standard deviation of the first column in each state."""
        return np.sqrt(self.covars[:, 0, 0])

    @property
    def expected_durations(self) -> F64:
        """Expected stay in each state, 1 / (1 - A_kk), in rows."""
        stay = np.diag(self.transmat)
        with np.errstate(divide="ignore"):
            return np.where(stay < 1.0, 1.0 / (1.0 - stay), np.inf)

    @property
    def stationary_distribution(self) -> F64:
        k = self.n_states
        a = self.transmat.T - np.eye(k)
        a[-1, :] = 1.0
        b = np.zeros(k)
        b[-1] = 1.0
        pi = np.linalg.lstsq(a, b, rcond=None)[0]
        pi = np.clip(pi, 0.0, None)
        out: F64 = pi / pi.sum()
        return out

    def _params(self) -> tuple[F64, F64, F64, F64]:
        return (
            np.ascontiguousarray(self.startprob, dtype=np.float64),
            np.ascontiguousarray(self.transmat, dtype=np.float64).ravel(),
            np.ascontiguousarray(self.means, dtype=np.float64).ravel(),
            np.ascontiguousarray(self.covars, dtype=np.float64).ravel(),
        )

    def _x(self, x: ArrayLike) -> F64:
        arr = np.asarray(x, dtype=np.float64)
        arr = arr[:, None] if arr.ndim == 1 else arr
        if arr.ndim != 2 or arr.shape[1] != self.n_features or arr.shape[0] == 0:
            raise InvalidInput(f"x must have {self.n_features} column(s) and at least one row")
        if not np.isfinite(arr).all():
            raise InvalidInput("x contains NaN or infinite values; drop them first")
        return np.ascontiguousarray(arr)

    def score(self, x: ArrayLike, lengths: Sequence[int] | None = None) -> float:
        """Forward log-likelihood of x under the model."""
        arr = self._x(x)
        ln = _lengths(lengths, arr.shape[0])
        return float(_call(ext.hmm_score, arr, self.n_states, self._params(), ln))

    def _posteriors(self, x: ArrayLike, lengths: Sequence[int] | None) -> tuple[F64, F64, float]:
        arr = self._x(x)
        ln = _lengths(lengths, arr.shape[0])
        g, f, ll = _call(ext.hmm_posteriors, arr, self.n_states, self._params(), ln)
        k = self.n_states
        return g.reshape(-1, k), f.reshape(-1, k), float(ll)

    def posteriors(self, x: ArrayLike, lengths: Sequence[int] | None = None) -> F64:
        """Smoothed state probabilities P(s_t | x_1..x_T), shape (n, K)."""
        return self._posteriors(x, lengths)[0]

    def filtered(self, x: ArrayLike, lengths: Sequence[int] | None = None) -> F64:
        """Real-time state probabilities P(s_t | x_1..x_t) (no look-ahead), shape (n, K)."""
        return self._posteriors(x, lengths)[1]

    def decode(
        self, x: ArrayLike, lengths: Sequence[int] | None = None
    ) -> tuple[float, NDArray[np.int64]]:
        """(max log p(x, s), Viterbi path), like hmmlearn's decode."""
        arr = self._x(x)
        ln = _lengths(lengths, arr.shape[0])
        path, lp = _call(ext.hmm_viterbi, arr, self.n_states, self._params(), ln)
        return float(lp), path

    def viterbi(self, x: ArrayLike, lengths: Sequence[int] | None = None) -> NDArray[np.int64]:
        """Most likely state path (state 0 = calmest)."""
        return self.decode(x, lengths)[1]

    @property
    def n_params(self) -> int:
        return n_free_params(
            self.n_states, self.n_features, self.covariance_type, self.startprob_mode
        )

    def bic(self, x: ArrayLike, lengths: Sequence[int] | None = None) -> float:
        """-2 log L + p ln T, T = rows of x (hmmlearn's convention)."""
        arr = self._x(x)
        return -2.0 * self.score(arr, lengths) + self.n_params * float(np.log(arr.shape[0]))

    def aic(self, x: ArrayLike, lengths: Sequence[int] | None = None) -> float:
        """-2 log L + 2 p."""
        return -2.0 * self.score(x, lengths) + 2.0 * self.n_params

    def sample(self, n: int, seed: int = 0) -> tuple[F64, NDArray[np.int64]]:
        """Draw n rows and their states from the model (simulated data)."""
        if n < 1:
            raise InvalidInput("n must be at least 1")
        s = check_seed(seed)
        xs, states = _call(ext.hmm_sample, self.n_states, self.n_features, self._params(), n, s)
        return xs.reshape(n, self.n_features), states


def _seed(seed: int | None) -> int:
    return seed_or_random(seed)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise InvalidInput(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def fit_hmm(
    x: ArrayLike,
    n_states: int,
    *,
    covariance_type: str = "full",
    n_init: int = 10,
    max_iter: int = 1000,
    tol: float = 1e-8,
    seed: int | None = None,
    lengths: Sequence[int] | None = None,
    init: str = "kmeans++",
    startprob: str = "free",
    reg_covar: float = 1e-6,
    min_covar: float = 1e-6,
    order_by: str = "vol",
    init_params: dict[str, ArrayLike] | None = None,
) -> HMMResult:
    """Fit a K-state Gaussian HMM to x ((n,) or (n, d)) by EM with `n_init` restarts.

    tol is relative: stop when the gain is below tol * max(1, |log L|).
    reg_covar and min_covar are in units of each column's variance.
    startprob="stationary" ties the initial law to the chain's stationary law.
    init_params (startprob, transmat, means, covars in hmmlearn shapes) runs
    one EM from that point instead of restarts.
    """
    arr = _as_2d(x)
    n, d = arr.shape
    if isinstance(n_states, bool) or not isinstance(n_states, (int, np.integer)) or n_states < 1:
        raise InvalidInput(f"n_states must be a positive integer, got {n_states!r}")
    k = int(n_states)
    _check_choice("covariance_type", covariance_type, COVARIANCE_TYPES)
    _check_choice("init", init, INITS)
    _check_choice("startprob", startprob, START_MODES)
    _check_choice("order_by", order_by, ORDERS)
    if n_init < 1 or max_iter < 0:
        raise InvalidInput("n_init must be >= 1 and max_iter >= 0")
    p = n_free_params(k, d, covariance_type, startprob)
    if n <= max(p, k):
        raise InvalidInput(
            f"{n} rows are too few for {k} states ({p} free parameters); "
            "use fewer states or more data"
        )
    ln = _lengths(lengths, n)
    s = _seed(seed)
    start = None
    if init_params is not None:
        start = (
            np.ascontiguousarray(init_params["startprob"], dtype=np.float64).ravel(),
            np.ascontiguousarray(init_params["transmat"], dtype=np.float64).ravel(),
            np.ascontiguousarray(init_params["means"], dtype=np.float64).ravel(),
            full_covars(init_params["covars"], covariance_type, k, d).ravel(),
        )
    r = _call(
        ext.hmm_fit,
        arr,
        k,
        covariance_type,
        lengths=ln,
        n_init=int(n_init),
        max_iter=int(max_iter),
        tol=float(tol),
        seed=s,
        init=init,
        startprob=startprob,
        reg_covar=float(reg_covar),
        min_covar=float(min_covar),
        order_by=order_by,
        init_params=start,
    )
    return HMMResult(
        startprob=r["startprob"],
        transmat=r["transmat"].reshape(k, k),
        means=r["means"].reshape(k, d),
        covars=r["covars"].reshape(k, d, d),
        log_likelihood=float(r["log_likelihood"]),
        n_iter=int(r["n_iter"]),
        converged=bool(r["converged"]),
        covariance_type=covariance_type,
        startprob_mode=startprob,
        n_obs=n,
        seed=s,
        history=r["history"],
        monotone=bool(r["monotone"]),
        reinitialised=bool(r["reinitialised"]),
        restart_log_likelihoods=r["restart_log_likelihoods"],
    )


@dataclass(frozen=True)
class Selection:
    """BIC across K: `table` rows are (K, log L, free parameters, BIC, AIC)."""

    n_states: int
    best: HMMResult
    fits: dict[int, HMMResult]
    table: list[tuple[int, float, int, float, float]]


def select_n_states(
    x: ArrayLike,
    k_max: int = 5,
    *,
    k_min: int = 1,
    covariance_type: str = "full",
    n_init: int = 10,
    seed: int | None = None,
    lengths: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    **fit_kwargs: Any,
) -> Selection:
    """Fit K = k_min..k_max and keep the minimum BIC. progress(done, total) is called per K."""
    arr = _as_2d(x)
    if not 1 <= k_min <= k_max:
        raise InvalidInput(f"need 1 <= k_min <= k_max, got k_min={k_min}, k_max={k_max}")
    n, d = arr.shape
    too_big = [k for k in range(k_min, k_max + 1) if n <= n_free_params(k, d, covariance_type)]
    if too_big:
        raise InvalidInput(f"{n} rows are too few for K={too_big[0]}; lower k_max")
    s = _seed(seed)
    fits: dict[int, HMMResult] = {}
    table: list[tuple[int, float, int, float, float]] = []
    ks = list(range(k_min, k_max + 1))
    for i, k in enumerate(ks):
        r = fit_hmm(
            arr,
            k,
            covariance_type=covariance_type,
            n_init=n_init,
            seed=s,
            lengths=lengths,
            **fit_kwargs,
        )
        fits[k] = r
        p = r.n_params
        ll = r.log_likelihood
        table.append((k, ll, p, -2.0 * ll + p * float(np.log(n)), -2.0 * ll + 2.0 * p))
        if progress is not None:
            progress(i + 1, len(ks))
    best_k = min(table, key=lambda row: row[3])[0]
    return Selection(n_states=best_k, best=fits[best_k], fits=fits, table=table)
