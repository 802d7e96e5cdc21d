"""Heterogeneous-agent market model and its calibration (docs/compute.md §2).

The default simulator is Franke & Westerhoff's (2012) DCA-HPM model:
fundamentalists and chartists whose shares switch by herding, predisposition
and misalignment, giving structural stochastic volatility. `rule=
"chiarella_tanh"` swaps in Chiarella's nonlinear trend rule for the chartists,
and `rule="ma_tanh"` the moving-average rule of Chiarella, He & Hommes (2006).
Returns are in percent, r_t = 100 (p_t - p_{t-1}). All output is SIMULATED.

`calibrate` fits it to a return series by the method of simulated moments:
9 moments (10 with the opt-in kurtosis), common random numbers, a moving-block
bootstrap weight matrix and our own L-SHADE optimiser (core.analytics.optimize).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.analytics.inputs import call_kernel, check_seed, seed_or_random, series
from core.analytics.inputs import workers as kernel_workers
from core.analytics.optimize import Progress
from core.errors import InvalidInput
from core.native import ext

__all__ = [
    "DEFAULT_BOUNDS",
    "DEFAULT_FREE",
    "MOMENT_NAMES",
    "PARAM_LABELS",
    "Calibration",
    "CalibrationJob",
    "ChiarellaParams",
    "Simulation",
    "StylizedFacts",
    "calibrate",
    "chi2_sf",
    "moment_names",
    "moments",
    "objective",
    "percent_returns",
    "simulate",
    "start_calibration",
    "stylized_facts",
    "weight_matrix",
]

Rule = Literal["fw_linear", "chiarella_tanh", "ma_tanh"]
RULES: tuple[str, ...] = ("fw_linear", "chiarella_tanh", "ma_tanh")
MAX_WINDOW = 100_000
MOMENT_NAMES: tuple[str, ...] = (
    "mean |r|",
    "Hill index (5%)",
    "ACF r lag 1",
    "ACF |r| lag 1",
    "ACF |r| lag 5",
    "ACF |r| lag 10",
    "ACF |r| lag 25",
    "ACF |r| lag 50",
    "ACF |r| lag 100",
)
KURTOSIS_NAME = "kurtosis"
FACT_LAGS: tuple[int, ...] = (1, 5, 10, 25, 50, 100)
# FW 2012: beta, mu and alpha0 stay fixed (scale normalisation, weak identification).
DEFAULT_FREE: tuple[str, ...] = ("phi", "chi", "sigma_f", "sigma_c", "alpha_n", "alpha_p")
# How pages show each parameter, in inputs and results alike: its symbol, then its name.
PARAM_LABELS: dict[str, str] = {
    "beta": "β — intensity of choice",
    "mu": "μ — market maker's reaction",
    "phi": "φ — fundamentalist reaction",
    "chi": "χ — chartist reaction",
    "sigma_f": "σ_f — fundamentalist noise",
    "sigma_c": "σ_c — chartist noise",
    "alpha0": "α₀ — predisposition",
    "alpha_n": "α_n — herding",
    "alpha_p": "α_p — misalignment",
    "gamma": "γ — trend sensitivity",
    "alpha_m": "α_M — trend memory weight",
    "ma_window": "L — moving-average days",
}
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    "phi": (0.0, 0.5),
    "chi": (0.0, 3.0),
    "sigma_f": (0.2, 2.0),
    "sigma_c": (0.5, 4.0),
    "alpha_n": (0.0, 4.0),
    "alpha_p": (0.0, 40.0),
}
_NUMERIC = ("beta", "mu", "phi", "chi", "sigma_f", "sigma_c", "alpha0", "alpha_n", "alpha_p")


@dataclass(frozen=True, slots=True)
class ChiarellaParams:
    """DCA-HPM parameters; defaults are FW (2012) estimates for daily S&P 500."""

    beta: float = 1.0
    mu: float = 0.01
    phi: float = 0.12
    chi: float = 1.50
    sigma_f: float = 0.708
    sigma_c: float = 2.147
    alpha0: float = -0.336
    alpha_n: float = 1.839
    alpha_p: float = 19.671
    # Random-walk fundamental step sd; 0 keeps p* = 0.
    sigma_star: float = 0.0
    rule: Rule = "fw_linear"
    # chiarella_tanh: demand chi*tanh(gamma*M), M an EWMA (weight alpha_m) of price changes.
    # ma_tanh: demand chi*tanh(gamma*(p_t - MA_L)), MA_L the mean of the last ma_window
    # log-prices including p_t (padded with p_0 before the start).
    gamma: float = 20.0
    alpha_m: float = 0.1
    ma_window: int = 20
    burn_in: int = 500

    def vector(self) -> list[float]:
        return [float(getattr(self, k)) for k in (*_NUMERIC, "sigma_star")]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _params(params: ChiarellaParams | Mapping[str, Any] | None) -> ChiarellaParams:
    if params is None:
        return ChiarellaParams()
    if isinstance(params, ChiarellaParams):
        p = params
    elif isinstance(params, Mapping):
        known = {f.name for f in fields(ChiarellaParams)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise InvalidInput(f"unknown parameter(s) {unknown}; known: {sorted(known)}")
        p = replace(ChiarellaParams(), **dict(params))
    else:
        raise InvalidInput("params must be a ChiarellaParams, a mapping or None")
    if p.rule not in RULES:
        raise InvalidInput(f"unknown rule {p.rule!r}; choose {', '.join(RULES)}")
    if not all(math.isfinite(v) for v in (*p.vector(), p.gamma, p.alpha_m)):
        raise InvalidInput("every model parameter must be finite")
    w = p.ma_window
    if isinstance(w, bool) or not isinstance(w, int | np.integer) or not 1 <= w <= MAX_WINDOW:
        raise InvalidInput(f"ma_window must be an int in 1..{MAX_WINDOW}, got {w!r}")
    if isinstance(p.burn_in, bool) or not isinstance(p.burn_in, int) or p.burn_in < 0:
        raise InvalidInput(f"burn_in must be an int >= 0, got {p.burn_in!r}")
    return p


def _int(name: str, v: object, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or int(v) < minimum:
        raise InvalidInput(f"{name} must be an int >= {minimum}, got {v!r}")
    return int(v)


def _seed(seed: int | None) -> int:
    return seed_or_random(seed)


@dataclass(frozen=True, slots=True)
class Simulation:
    """SIMULATED paths, each row one path of length n_steps after burn-in."""

    returns: NDArray[np.float64]
    log_price: NDArray[np.float64]
    x: NDArray[np.float64]
    nf: NDArray[np.float64]
    blown_up: NDArray[np.bool_]
    seed: int | None
    params: ChiarellaParams


def simulate(
    params: ChiarellaParams | Mapping[str, Any] | None,
    n_steps: int,
    *,
    n_paths: int = 1,
    seed: int | None = None,
    shocks: ArrayLike | None = None,
    workers: int | None = None,
) -> Simulation:
    """Simulate `n_paths` paths of `n_steps` returns (percent) after burn-in.

    shocks: standard normals of shape (n_paths, burn_in + n_steps, k) or
    (burn_in + n_steps, k), with k = 2 (eps_f, eps_c) or 3 when sigma_star > 0;
    they replace the seeded draws (seed is then ignored).
    A path that blows up (|p| > 1e3 or non-finite) is flagged and NaN from there.
    """
    p = _params(params)
    steps = _int("n_steps", n_steps, 1)
    paths = _int("n_paths", n_paths, 1)
    k = 3 if p.sigma_star > 0 else 2
    sh = None
    used_seed: int | None = None
    if shocks is not None:
        sh = np.ascontiguousarray(shocks, dtype=np.float64)
        if sh.ndim == 2:
            sh = sh[None]
        if sh.ndim != 3 or sh.shape[1:] != (p.burn_in + steps, k):
            raise InvalidInput(
                f"shocks must have shape (n_paths, {p.burn_in + steps}, {k}), got {sh.shape}"
            )
        # the kernel rejects non-finite shocks ("shocks must be finite")
    else:
        used_seed = _seed(seed)
    raw = call_kernel(
        ext.chiarella_simulate,
        p.vector(),
        steps,
        rule=p.rule,
        gamma=p.gamma,
        alpha=p.alpha_m,
        window=int(p.ma_window),
        burn_in=p.burn_in,
        n_paths=paths,
        seed=used_seed or 0,
        shocks=sh,
        full=True,
        workers=kernel_workers(workers),
    )
    return Simulation(
        returns=raw["returns"],
        log_price=raw["log_price"],
        x=raw["x"],
        nf=raw["nf"],
        blown_up=np.asarray(raw["blown_up"], dtype=bool),
        seed=used_seed,
        params=p,
    )


@dataclass(frozen=True, slots=True)
class StylizedFacts:
    n: int
    kurtosis: float
    acf_r: dict[int, float]
    acf_abs: dict[int, float]
    hill: float
    # Kurtosis of non-overlapping h-period sums, h = 1, 5, 20.
    aggregated_kurtosis: dict[int, float]


def stylized_facts(
    returns: ArrayLike, *, lags: Sequence[int] = FACT_LAGS, tail: float = 0.05
) -> StylizedFacts:
    """Pearson kurtosis, ACF of r and |r| (statsmodels acf, adjusted=False) at `lags`,
    and the Hill index of |r| over the top `tail` fraction."""
    r = series(returns, "returns", 30, nonconstant=True)
    lag_list = [_int("lag", k, 1) for k in lags]
    if not 0 < tail < 0.5:
        raise InvalidInput(f"tail must be in (0, 0.5), got {tail}")
    ar = ext.stat_acf(r, lag_list)
    aa = ext.stat_acf(np.abs(r), lag_list)
    return StylizedFacts(
        n=int(r.size),
        kurtosis=ext.stat_kurtosis(r),
        acf_r={k: float(v) for k, v in zip(lag_list, ar, strict=True)},
        acf_abs={k: float(v) for k, v in zip(lag_list, aa, strict=True)},
        hill=ext.stat_hill(r, tail),
        aggregated_kurtosis={h: ext.stat_aggregated_kurtosis(r, h) for h in (1, 5, 20)},
    )


def moment_names(include_kurtosis: bool = False) -> tuple[str, ...]:
    """Names of the MSM moment vector, in order; the kurtosis, when included, is last."""
    return (*MOMENT_NAMES, KURTOSIS_NAME) if include_kurtosis else MOMENT_NAMES


def moments(returns: ArrayLike, *, include_kurtosis: bool = False) -> NDArray[np.float64]:
    """The MSM moments (`moment_names(include_kurtosis)`) of one return series (> 200 values).

    The kurtosis is opt-in: one extreme day moves it a lot, so it is not a robust moment.
    """
    out: NDArray[np.float64] = call_kernel(
        ext.chiarella_moments,
        series(returns, "returns", 201, nonconstant=True),
        kurtosis=bool(include_kurtosis),
    )
    return out


def weight_matrix(
    returns: ArrayLike,
    *,
    block: int = 250,
    n_boot: int = 2000,
    seed: int = 0,
    include_kurtosis: bool = False,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(W, Omega): Omega is the moving-block bootstrap covariance of the moments, W its inverse."""
    r = series(returns, "returns", 201, nonconstant=True)
    reps = call_kernel(
        ext.chiarella_bootstrap_moments,
        r,
        _int("block", block, 1),
        _int("n_boot", n_boot, 10),
        check_seed(seed),
        kurtosis=bool(include_kurtosis),
    )
    omega = np.cov(reps, rowvar=False)
    try:
        w = np.linalg.inv(omega)
    except np.linalg.LinAlgError as exc:
        raise InvalidInput(f"the bootstrap covariance is singular: {exc}") from exc
    if not np.all(np.isfinite(w)):
        raise InvalidInput("the bootstrap covariance is singular")
    return 0.5 * (w + w.T), omega


def chi2_sf(x: float, dof: int) -> float:
    """P(chi2_dof > x) for integer dof >= 1 (closed forms of the incomplete gamma)."""
    if dof < 1 or not math.isfinite(x):
        return math.nan
    if x <= 0:
        return 1.0
    h = x / 2.0
    if dof % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, dof // 2):
            term *= h / i
            total += term
        return min(1.0, math.exp(-h) * total)
    total = math.erfc(math.sqrt(h))
    for i in range(1, (dof - 1) // 2 + 1):
        total += math.exp((i - 0.5) * math.log(h) - h - math.lgamma(i + 0.5))
    return min(1.0, total)


def _free_and_bounds(
    free: Sequence[str], bounds: Mapping[str, tuple[float, float]] | None
) -> tuple[list[str], NDArray[np.float64], NDArray[np.float64]]:
    names = list(free)
    if not names or len(set(names)) != len(names):
        raise InvalidInput("free must list distinct parameter names")
    for n in names:
        if n not in _NUMERIC:
            raise InvalidInput(f"cannot free {n!r}; choose from {', '.join(_NUMERIC)}")
    b = {**DEFAULT_BOUNDS, **(bounds or {})}
    missing = [n for n in names if n not in b]
    if missing:
        raise InvalidInput(f"no bounds for {missing}")
    lo = np.array([b[n][0] for n in names], dtype=np.float64)
    hi = np.array([b[n][1] for n in names], dtype=np.float64)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)) and np.all(lo < hi)):
        raise InvalidInput("every bound must be finite with low < high")
    return names, lo, hi


def objective(
    params: ChiarellaParams | Mapping[str, Any] | None,
    data_moments: ArrayLike,
    weight: ArrayLike,
    *,
    n_steps: int,
    n_paths: int = 50,
    seed: int = 0,
    include_kurtosis: bool = False,
) -> tuple[float, NDArray[np.float64] | None]:
    """J at `params` under the common random numbers of `seed`, and the mean simulated
    moments (None when a path blows up, J is then 1e6)."""
    p = _params(params)
    target = np.ascontiguousarray(data_moments, dtype=np.float64)
    w = np.ascontiguousarray(weight, dtype=np.float64)
    q = len(moment_names(include_kurtosis))
    if target.shape != (q,) or w.shape != (q, q):
        raise InvalidInput(
            f"need {q} data moments and a {q}x{q} weight matrix, got {target.shape} and {w.shape}"
        )
    j, m = call_kernel(
        ext.chiarella_objective,
        p.vector(),
        [],
        [],
        target,
        w,
        n_steps=_int("n_steps", n_steps, 201),
        n_paths=_int("n_paths", n_paths, 1),
        seed=check_seed(seed),
        rule=p.rule,
        gamma=p.gamma,
        alpha=p.alpha_m,
        window=int(p.ma_window),
        burn_in=p.burn_in,
        kurtosis=bool(include_kurtosis),
    )
    return float(j), m


@dataclass(frozen=True, slots=True)
class Calibration:
    params: ChiarellaParams
    theta: dict[str, float]
    J: float
    # J / (1 + 1/S), asymptotically chi2 with dof = q - len(theta) when W = Omega^-1.
    j_stat: float
    dof: int
    p_value: float
    t_ratios: NDArray[np.float64]
    data_moments: NDArray[np.float64]
    sim_moments: NDArray[np.float64] | None
    omega: NDArray[np.float64]
    weight: NDArray[np.float64]
    nfev: int
    nit: int
    history: NDArray[np.float64]
    cancelled: bool
    message: str
    n_paths: int
    seed: int
    # Names of data_moments / sim_moments / t_ratios, in order.
    moment_names: tuple[str, ...] = MOMENT_NAMES

    def rejected(self, level: float = 0.05) -> bool:
        """True when the J-test rejects the model at `level`: the simulated moments differ
        from the data's by more than sampling noise explains."""
        return bool(self.dof > 0 and self.p_value < level)


def calibrate(
    returns: ArrayLike,
    *,
    budget: int = 3000,
    seed: int = 0,
    progress: Callable[[Progress], object] | None = None,
    cancel: threading.Event | None = None,
    n_paths: int = 50,
    free: Sequence[str] = DEFAULT_FREE,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    base: ChiarellaParams | Mapping[str, Any] | None = None,
    omega: ArrayLike | None = None,
    block: int = 250,
    n_boot: int = 2000,
    pop_size: int | None = None,
    workers: int | None = None,
    include_kurtosis: bool = False,
) -> Calibration:
    """Fit the free parameters to `returns` (percent) by simulated moments.

    S = n_paths simulated paths of the data's length share fixed shocks (common
    random numbers from `seed`), so J is deterministic. The weight is the inverse
    of `omega`, by default the moving-block bootstrap covariance (block, n_boot).
    L-SHADE spends `budget` J evaluations. `include_kurtosis` adds the kurtosis as a
    10th moment (it is not robust to single extreme days). progress(Progress) is called after
    each generation (returning True stops); setting `cancel` stops after the
    current generation and returns the best point so far (cancelled=True).
    """
    r = series(returns, "returns", 201, nonconstant=True)
    p0 = _params(base)
    names, lo, hi = _free_and_bounds(free, bounds)
    s = _int("n_paths", n_paths, 1)
    run_budget = _int("budget", budget, 10)
    run_seed = check_seed(seed)
    kurt = bool(include_kurtosis)
    names_m = moment_names(kurt)
    q = len(names_m)
    data_m = moments(r, include_kurtosis=kurt)
    if omega is None:
        w, om = weight_matrix(r, block=block, n_boot=n_boot, seed=run_seed, include_kurtosis=kurt)
    else:
        om = np.ascontiguousarray(omega, dtype=np.float64)
        if om.shape != (q, q) or not np.all(np.isfinite(om)):
            raise InvalidInput(f"omega must be a finite {q}x{q} matrix, got shape {om.shape}")
        try:
            w = np.asarray(np.linalg.inv(om), dtype=np.float64)
        except np.linalg.LinAlgError as exc:
            raise InvalidInput(f"omega is singular: {exc}") from exc
        w = 0.5 * (w + w.T)

    def hook(generation: int, nfev: int, max_evals: int, best: float) -> bool:
        if cancel is not None and cancel.is_set():
            return True
        if progress is not None and progress(Progress(generation, nfev, max_evals, best)):
            return True
        return bool(cancel is not None and cancel.is_set())

    raw = call_kernel(
        ext.chiarella_calibrate,
        p0.vector(),
        names,
        lo,
        hi,
        data_m,
        np.ascontiguousarray(w),
        n_steps=int(r.size),
        n_paths=s,
        seed=run_seed,
        budget=run_budget,
        pop_size=pop_size,
        rule=p0.rule,
        gamma=p0.gamma,
        alpha=p0.alpha_m,
        window=int(p0.ma_window),
        burn_in=p0.burn_in,
        kurtosis=kurt,
        callback=hook,
        workers=kernel_workers(workers),
    )
    theta = {n: float(v) for n, v in zip(names, raw["x"], strict=True)}
    fitted = replace(p0, **theta)  # type: ignore[arg-type]
    sim_m = raw["sim_moments"]
    scale = np.sqrt(np.diag(om) * (1.0 + 1.0 / s))
    t = (sim_m - data_m) / scale if sim_m is not None else np.full(q, np.nan)
    j = float(raw["fun"])
    dof = q - len(names)
    j_stat = j / (1.0 + 1.0 / s)
    return Calibration(
        params=fitted,
        theta=theta,
        J=j,
        j_stat=j_stat,
        dof=dof,
        p_value=chi2_sf(j_stat, dof) if dof >= 1 else math.nan,
        t_ratios=t,
        data_moments=data_m,
        sim_moments=sim_m,
        omega=om,
        weight=w,
        nfev=int(raw["nfev"]),
        nit=int(raw["nit"]),
        history=raw["history"],
        cancelled=raw["stop"] == "cancelled",
        message=str(raw["message"]),
        n_paths=s,
        seed=run_seed,
        moment_names=names_m,
    )


class CalibrationJob:
    """A calibration running in its own daemon thread; poll it, cancel it.

    The owner (e.g. a page session) keeps the object; `progress`, `result` and
    `error` are safe to read from any thread.
    """

    def __init__(self, returns: ArrayLike, **kwargs: Any) -> None:
        for banned in ("progress", "cancel"):
            if banned in kwargs:
                raise InvalidInput(f"{banned} is managed by the job")
        self._returns = series(returns, "returns", 201, nonconstant=True)
        if "seed" in kwargs:
            check_seed(kwargs["seed"])  # refused here, not later in the thread
        self._kwargs = kwargs
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._progress: Progress | None = None
        self.result: Calibration | None = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="chiarella-calibration", daemon=True)

    def start(self) -> CalibrationJob:
        self._thread.start()
        return self

    def _on_progress(self, p: Progress) -> None:
        with self._lock:
            self._progress = p

    def _run(self) -> None:
        try:
            self.result = calibrate(
                self._returns, progress=self._on_progress, cancel=self._cancel, **self._kwargs
            )
        except Exception as exc:  # reported to the owner, never lost in the thread
            self.error = f"{type(exc).__name__}: {exc}"

    @property
    def progress(self) -> Progress | None:
        with self._lock:
            return self._progress

    @property
    def done(self) -> bool:
        return self._thread.ident is not None and not self._thread.is_alive()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelling(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done


def start_calibration(returns: ArrayLike, **kwargs: Any) -> CalibrationJob:
    """Validate, then run `calibrate(returns, **kwargs)` in a background thread."""
    return CalibrationJob(returns, **kwargs).start()


def percent_returns(prices: ArrayLike) -> NDArray[np.float64]:
    """100 · log returns of a price series (the model's unit), NaN rows dropped."""
    try:
        p = np.asarray(prices, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"prices must be numeric: {exc}") from exc
    if p.ndim != 1:
        raise InvalidInput(f"prices must be 1-D, got shape {p.shape}")
    p = p[np.isfinite(p)]
    if p.size < 2:
        raise InvalidInput("need at least 2 finite prices")
    if np.any(p <= 0):
        raise InvalidInput("prices must be > 0 for log returns")
    return np.ascontiguousarray(100.0 * np.diff(np.log(p)))
