# Type stub for the Rust extension built from rust/py. Keep in step with it.
# Arrays are float64 numpy arrays; returned arrays are owned by numpy (no copy).

from collections.abc import Callable
from typing import Any, final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "BUILD_PROFILE",
    "DE_STRATEGIES",
    "CancelledError",
    "Cec2014Problem",
    "HotCache",
    "L2Book",
    "NumericalError",
    "__version__",
    "book_at",
    "book_features",
    "bt_band_states",
    "bt_deflate_grid",
    "bt_deflated_sharpe",
    "bt_expected_max_sharpe",
    "bt_geometric_sharpe",
    "bt_ledger",
    "bt_metrics",
    "bt_sweep",
    "cache_simulate",
    "cec2014_layout",
    "cec2014_minimize",
    "chiarella_bootstrap_moments",
    "chiarella_calibrate",
    "chiarella_moments",
    "chiarella_objective",
    "chiarella_simulate",
    "de_builtin_eval",
    "de_init_population",
    "de_lpsr_size",
    "de_minimize",
    "de_select",
    "de_sobol_points",
    "de_stream_uniforms",
    "de_trials",
    "hmm_fit",
    "hmm_posteriors",
    "hmm_sample",
    "hmm_score",
    "hmm_viterbi",
    "log_returns",
    "mfg_fokker_planck",
    "mfg_solve",
    "ou_cara_ce",
    "ou_cara_position",
    "ou_exact_loglik",
    "ou_fit",
    "ou_fit_irregular",
    "ou_power_ce",
    "ou_power_coefficients",
    "ou_power_path",
    "ou_power_position",
    "ou_rolling",
    "rolling_zscore",
    "sparse_box_tiao",
    "sparse_exhaustive",
    "sparse_greedy",
    "sparse_on_support",
    "sparse_swaps",
    "sparse_tpower",
    "stat_acf",
    "stat_aggregated_kurtosis",
    "stat_hill",
    "stat_kurtosis",
    "sym_condition_number",
]

__version__: str
BUILD_PROFILE: str
DE_STRATEGIES: list[str]

class NumericalError(RuntimeError): ...
class CancelledError(RuntimeError): ...

# --- order books (rust/py/src/book.rs) ---------------------------------------------------
_Side = tuple[NDArray[np.float64], NDArray[np.float64]]

@final
class L2Book:
    def __init__(self) -> None: ...
    def apply(
        self, sides: NDArray[np.uint8], prices: NDArray[np.float64], sizes: NDArray[np.float64]
    ) -> None: ...
    def snapshot(self, depth: int) -> tuple[_Side, _Side]: ...
    def clear(self) -> None: ...
    def crossed(self) -> bool: ...
    def mid(self) -> float: ...
    def __len__(self) -> int: ...

def book_at(recording: dict[str, NDArray[Any]], t: int, depth: int) -> tuple[_Side, _Side, int]: ...
def book_features(
    recording: dict[str, NDArray[Any]], start: int, end: int, every: int, bps: list[float]
) -> dict[str, Any]: ...

# --- series ---
def log_returns(prices: NDArray[np.float64]) -> NDArray[np.float64]: ...
def rolling_zscore(x: NDArray[np.float64], window: int) -> NDArray[np.float64]: ...

# Each domain below is owned by one module of rust/py; add its stubs under its marker.
# --- hmm ---
_HmmParams = tuple[
    NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]
]

def hmm_fit(
    x: NDArray[np.float64],
    n_states: int,
    covariance_type: str,
    *,
    lengths: NDArray[np.int64] | None = None,
    n_init: int = 10,
    max_iter: int = 1000,
    tol: float = 1e-8,
    seed: int = 0,
    init: str = "kmeans++",
    startprob: str = "free",
    reg_covar: float = 1e-6,
    min_covar: float = 1e-6,
    order_by: str = "vol",
    init_params: _HmmParams | None = None,
) -> dict[str, Any]: ...
def hmm_posteriors(
    x: NDArray[np.float64],
    n_states: int,
    params: _HmmParams,
    lengths: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], float]: ...
def hmm_score(
    x: NDArray[np.float64],
    n_states: int,
    params: _HmmParams,
    lengths: NDArray[np.int64] | None = None,
) -> float: ...
def hmm_viterbi(
    x: NDArray[np.float64],
    n_states: int,
    params: _HmmParams,
    lengths: NDArray[np.int64] | None = None,
) -> tuple[NDArray[np.int64], float]: ...
def hmm_sample(
    n_states: int, n_features: int, params: _HmmParams, n: int, seed: int
) -> tuple[NDArray[np.float64], NDArray[np.int64]]: ...

# --- optimize ---
def de_minimize(
    objective: object,
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    *,
    method: str = ...,
    preset: str = ...,
    pop_size: int | None = ...,
    max_evals: int,
    seed: int,
    target: float | None = ...,
    stagnation: int | None = ...,
    mutation: float = ...,
    recombination: float = ...,
    repair: str | None = ...,
    init: NDArray[np.float64] | None = ...,
    vectorized: bool = ...,
    workers: int = ...,
    callback: Callable[[int, int, int, float], bool] | None = ...,
    updating: str = ...,
    tol: float | None = ...,
    atol: float = ...,
    strategy: str = ...,
    dither: tuple[float, float] | None = ...,
    init_method: str = ...,
) -> dict[str, Any]: ...
def de_init_population(
    init: str,
    n: int,
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    seed: int,
) -> NDArray[np.float64]: ...
def de_sobol_points(n: int, d: int) -> NDArray[np.float64]: ...
def de_builtin_eval(name: str, x: NDArray[np.float64]) -> NDArray[np.float64]: ...
def de_trials(
    method: str,
    pop: NDArray[np.float64],
    fit: NDArray[np.float64],
    archive: NDArray[np.float64],
    mem_cr: NDArray[np.float64],
    mem_f: NDArray[np.float64],
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    tape: NDArray[np.float64],
    *,
    p: float = ...,
    f: float = ...,
    cr: float = ...,
    repair: str | None = ...,
    strategy: str = ...,
    dither: tuple[float, float] | None = ...,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], int]: ...
def de_select(
    method: str,
    pop: NDArray[np.float64],
    fit: NDArray[np.float64],
    archive: NDArray[np.float64],
    mem_cr: NDArray[np.float64],
    mem_f: NDArray[np.float64],
    mem_pos: int,
    trials: NDArray[np.float64],
    trial_cr: NDArray[np.float64],
    trial_f: NDArray[np.float64],
    trial_fit: NDArray[np.float64],
    tape: NDArray[np.float64],
    *,
    nfev: int,
    n_init: int,
    max_evals: int,
    n_min: int = ...,
    arc_rate: float = ...,
) -> tuple[
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    int,
    int,
]: ...
def de_lpsr_size(n_init: int, n_min: int, nfev: int, max_evals: int) -> int: ...
def de_stream_uniforms(seed: int, generation: int, n: int) -> NDArray[np.float64]: ...

# --- chiarella ---
def chiarella_simulate(
    params: list[float],
    n_steps: int,
    *,
    rule: str = ...,
    gamma: float = ...,
    alpha: float = ...,
    window: int = ...,
    burn_in: int = ...,
    n_paths: int = ...,
    seed: int = ...,
    shocks: NDArray[np.float64] | None = ...,
    full: bool = ...,
    workers: int = ...,
) -> dict[str, Any]: ...
def stat_kurtosis(x: NDArray[np.float64]) -> float: ...
def stat_acf(x: NDArray[np.float64], lags: list[int]) -> NDArray[np.float64]: ...
def stat_hill(x: NDArray[np.float64], q: float) -> float: ...
def stat_aggregated_kurtosis(x: NDArray[np.float64], h: int) -> float: ...
def chiarella_moments(r: NDArray[np.float64], *, kurtosis: bool = ...) -> NDArray[np.float64]: ...
def chiarella_bootstrap_moments(
    r: NDArray[np.float64], block: int, n_boot: int, seed: int, *, kurtosis: bool = ...
) -> NDArray[np.float64]: ...
def chiarella_objective(
    params: list[float],
    free: list[str],
    theta: list[float],
    target: NDArray[np.float64],
    weight: NDArray[np.float64],
    *,
    n_steps: int,
    n_paths: int,
    seed: int,
    rule: str = ...,
    gamma: float = ...,
    alpha: float = ...,
    window: int = ...,
    burn_in: int = ...,
    kurtosis: bool = ...,
) -> tuple[float, NDArray[np.float64] | None]: ...
def chiarella_calibrate(
    params: list[float],
    free: list[str],
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    target: NDArray[np.float64],
    weight: NDArray[np.float64],
    *,
    n_steps: int,
    n_paths: int,
    seed: int,
    budget: int,
    pop_size: int | None = ...,
    rule: str = ...,
    gamma: float = ...,
    alpha: float = ...,
    window: int = ...,
    burn_in: int = ...,
    kurtosis: bool = ...,
    callback: Callable[[int, int, int, float], bool] | None = ...,
    workers: int = ...,
) -> dict[str, Any]: ...

# --- meanrev ---
def ou_fit(x: NDArray[np.float64], dt: float, method: str) -> dict[str, Any]: ...
def ou_fit_irregular(x: NDArray[np.float64], t: NDArray[np.float64]) -> dict[str, Any]: ...
def ou_exact_loglik(x: NDArray[np.float64], mu: float, b: float, s2: float) -> float: ...
def ou_rolling(
    x: NDArray[np.float64], rows: int, cols: int, window: int, dt: float
) -> tuple[list[str], NDArray[np.float64]]: ...
def ou_cara_position(
    x: NDArray[np.float64],
    t: NDArray[np.float64],
    horizon_t: float,
    theta: float,
    mu: float,
    sigma: float,
    gamma: float,
    kind: str,
    dt: float,
    q_max: float | None = None,
) -> NDArray[np.float64]: ...
def ou_cara_ce(
    x0: float, w0: float, horizon_t: float, theta: float, mu: float, sigma: float, gamma: float
) -> float: ...
def ou_power_coefficients(
    tau: NDArray[np.float64], theta: float, sigma: float, gamma: float
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]: ...
def ou_power_position(
    x: NDArray[np.float64],
    t: NDArray[np.float64],
    wealth: NDArray[np.float64],
    horizon_t: float,
    theta: float,
    mu: float,
    sigma: float,
    gamma: float,
) -> NDArray[np.float64]: ...
def ou_power_ce(
    x0: float, w0: float, horizon_t: float, theta: float, mu: float, sigma: float, gamma: float
) -> float: ...
def ou_power_path(
    x: NDArray[np.float64],
    t: NDArray[np.float64],
    w0: float,
    horizon_t: float,
    theta: float,
    mu: float,
    sigma: float,
    gamma: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64], int | None]: ...
def sparse_box_tiao(
    m: NDArray[np.float64], g: NDArray[np.float64], n: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]: ...
def sparse_greedy(
    m: NDArray[np.float64], g: NDArray[np.float64], n: int, k_max: int
) -> list[tuple[list[int], float, NDArray[np.float64]]]: ...
def sparse_exhaustive(
    m: NDArray[np.float64], g: NDArray[np.float64], n: int, k: int
) -> tuple[list[int], float, NDArray[np.float64], int]: ...
def sparse_tpower(
    m: NDArray[np.float64],
    g: NDArray[np.float64],
    n: int,
    k: int,
    starts: NDArray[np.float64],
    max_iter: int,
) -> tuple[list[int], float, NDArray[np.float64], int]: ...
def sparse_swaps(
    m: NDArray[np.float64], g: NDArray[np.float64], n: int, support: list[int], max_swaps: int
) -> tuple[list[int], float, NDArray[np.float64], int]: ...
def sparse_on_support(
    m: NDArray[np.float64], g: NDArray[np.float64], n: int, support: list[int]
) -> tuple[list[int], float, NDArray[np.float64]]: ...
def sym_condition_number(a: NDArray[np.float64], n: int) -> float: ...

# --- backtest ---
def bt_band_states(
    z: NDArray[np.float64],
    z_in: float,
    z_out: float,
    z_stop: float | None = None,
    cooldown: int = 0,
) -> NDArray[np.float64]: ...
def bt_ledger(
    prices: NDArray[np.float64],
    n: int,
    weights: NDArray[np.float64],
    units: NDArray[np.float64],
    cost_rates: NDArray[np.float64],
    fixed_cost: float,
    capital: float,
) -> dict[str, NDArray[np.float64]]: ...
def bt_metrics(
    equity: NDArray[np.float64],
    pnl: NDArray[np.float64],
    cost: NDArray[np.float64],
    notional: NDArray[np.float64],
    units: NDArray[np.float64],
    capital: float,
    periods_per_year: float,
    rf: float,
    fixed_capital: bool,
) -> tuple[dict[str, float], NDArray[np.float64], dict[str, Any]]: ...
def bt_sweep(
    prices: NDArray[np.float64],
    weights: NDArray[np.float64],
    zs: NDArray[np.float64],
    cost_rates: NDArray[np.float64],
    z_index: list[int],
    z_in: list[float],
    z_out: list[float],
    cost_index: list[int],
    *,
    u_max: float,
    z_stop: float | None = None,
    cooldown: int = 0,
    integer_units: bool = False,
    close_at_end: bool = False,
    fixed_cost: float = 0.0,
    capital: float = 1e6,
    periods_per_year: float = 252.0,
    rf: float = 0.0,
    fixed_capital: bool = False,
    last_of_day: NDArray[np.bool_] | None = None,
    geometric_periods: float | None = None,
    workers: int = 0,
) -> dict[str, Any]: ...
def bt_geometric_sharpe(
    equity: NDArray[np.float64],
    last_of_day: NDArray[np.bool_] | None,
    periods_per_year: float,
    rf: float = 0.0,
) -> float: ...
def bt_expected_max_sharpe(n_trials: int, sharpe_var: float) -> float: ...
def bt_deflated_sharpe(
    returns: NDArray[np.float64], n_trials: int, sharpe_var: float, rf: float = 0.0
) -> float: ...
def bt_deflate_grid(
    returns: NDArray[np.float64],
    sharpe: NDArray[np.float64],
    periods_per_year: float,
    rf: float,
) -> tuple[NDArray[np.float64], int]: ...

# --- mfg ---
def mfg_solve(
    m0: NDArray[np.float64],
    init: NDArray[np.float64],
    *,
    a: float,
    b: float,
    t_end: float,
    nt: int,
    kappa: float,
    eps: float,
    phi: float,
    g2: float,
    coupling: str,
    alpha: float = 0.0,
    kappa_m: float = 1.0,
    kappa_t: float = 1.0,
    method: str = "picard",
    damping: float = 0.5,
    depth: int = 5,
    tol: float = 1e-10,
    max_iter: int = 500,
    callback: Callable[[int, float], object] | None = None,
    report_every: float = 0.1,
) -> dict[str, Any]: ...
def mfg_fokker_planck(
    m0: NDArray[np.float64],
    nu: NDArray[np.float64],
    *,
    a: float,
    b: float,
    t_end: float,
    eps: float,
) -> dict[str, Any]: ...

# --- cache ---
@final
class HotCache:
    """Byte-budgeted cache of Python objects keyed by str (S3-FIFO or LRU)."""

    def __new__(cls, capacity_bytes: int, policy: str = "s3fifo") -> HotCache: ...
    def get(self, key: str) -> object | None: ...
    def put(self, key: str, value: object, weight: int) -> bool: ...
    def remove(self, key: str) -> bool: ...
    def remove_prefix(self, prefix: str) -> int: ...
    def clear(self) -> None: ...
    def reset_counters(self) -> None: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: str, /) -> bool: ...
    @property
    def policy(self) -> str: ...
    def stats(self) -> dict[str, int]: ...

def cache_simulate(
    keys: NDArray[np.uint64],
    weights: NDArray[np.uint64],
    capacity_bytes: int,
    policy: str = "s3fifo",
) -> tuple[int, int]: ...

# --- cec2014 ---
@final
class Cec2014Problem:
    """One CEC 2014 function (F1..F30) with its shift, rotation and shuffle data."""

    def __new__(
        cls,
        fn_id: int,
        dim: int,
        shift: NDArray[np.float64],
        rotation: NDArray[np.float64] | None = None,
        shuffle: NDArray[np.int64] | None = None,
    ) -> Cec2014Problem: ...
    def evaluate(self, x: NDArray[np.float64], workers: int = 0) -> NDArray[np.float64]: ...
    @property
    def fn_id(self) -> int: ...
    @property
    def dim(self) -> int: ...
    @property
    def f_global(self) -> float: ...
    @property
    def x_global(self) -> NDArray[np.float64]: ...

def cec2014_layout(fn_id: int) -> tuple[int, bool, bool]: ...
def cec2014_minimize(
    problem: Cec2014Problem,
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    *,
    method: str = "lshade",
    preset: str = "lshade2014",
    pop_size: int | None = None,
    max_evals: int,
    seed: int,
    target: float | None = None,
    stagnation: int | None = None,
    workers: int = 0,
    callback: Callable[[int, int, int, float], bool] | None = None,
) -> dict[str, Any]: ...
