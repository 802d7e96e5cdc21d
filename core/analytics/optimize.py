"""Global box-constrained minimisation: DE/rand/1/bin, SHADE and L-SHADE (docs/compute.md §4).

`minimize` runs the Rust optimiser with the GIL released. The objective is the
name of a built-in Rust function (evaluated in parallel) or a Python callable,
called once per point (with a 1-D array) or, with `vectorized=True`, once per
generation with an (N, D) array. Every generation's randomness comes from its
own counter-based stream, so a seed gives the same run whatever the threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.analytics.inputs import seed_or_random
from core.errors import InvalidInput
from core.native import ext

__all__ = [
    "BUILTINS",
    "INITS",
    "METHODS",
    "STRATEGIES",
    "OptimizeResult",
    "Progress",
    "builtin_bounds",
    "evaluate_builtin",
    "initial_population",
    "minimize",
]

Method = Literal["lshade", "shade", "de"]
METHODS: tuple[str, ...] = ("lshade", "shade", "de")
PRESETS: tuple[str, ...] = ("lshade2014", "lshade_cec21")
# Classic DE strategies (mutation x crossover, SciPy's names), for method="de"; the
# Rust kernel's list, so the two cannot drift.
STRATEGIES: tuple[str, ...] = tuple(ext.DE_STRATEGIES)
# Layouts of the first population; "sobol" supports up to SOBOL_MAX_DIM dimensions.
INITS: tuple[str, ...] = ("uniform", "lhs", "sobol")
SOBOL_MAX_DIM = 64

# Built-in objectives and their conventional search box (minimum 0 for each).
BUILTINS: dict[str, tuple[float, float]] = {
    "sphere": (-100.0, 100.0),
    "rosenbrock": (-30.0, 30.0),
    "rastrigin": (-5.12, 5.12),
    "ackley": (-32.768, 32.768),
    "griewank": (-600.0, 600.0),
    "schwefel": (-500.0, 500.0),
}


@dataclass(frozen=True, slots=True)
class Progress:
    """What a progress callback receives after each generation."""

    generation: int
    nfev: int
    max_evals: int
    best: float

    @property
    def fraction(self) -> float:
        return min(1.0, self.nfev / self.max_evals) if self.max_evals else 1.0


@dataclass(frozen=True, slots=True)
class OptimizeResult:
    x: NDArray[np.float64]
    fun: float
    nfev: int
    nit: int
    success: bool
    message: str
    # Best value after each generation (index 0 = the initial population).
    history: NDArray[np.float64]
    method: str
    seed: int
    stop: str
    mem_cr: NDArray[np.float64] = field(repr=False)
    mem_f: NDArray[np.float64] = field(repr=False)
    final_pop_size: int = 0

    @classmethod
    def from_native(
        cls, raw: dict[str, Any], method: str, seed: int, target: float | None
    ) -> OptimizeResult:
        """The result of a native run: success means the target was reached, or (with no
        target) the run ended normally (budget, stagnation or population collapse)."""
        stop = str(raw["stop"])
        finished = ("maxevals", "stagnation", "collapse")
        return cls(
            x=raw["x"],
            fun=float(raw["fun"]),
            nfev=int(raw["nfev"]),
            nit=int(raw["nit"]),
            success=stop == "target" if target is not None else stop in finished,
            message=str(raw["message"]),
            history=raw["history"],
            method=method,
            seed=seed,
            stop=stop,
            mem_cr=raw["mem_cr"],
            mem_f=raw["mem_f"],
            final_pop_size=int(raw["final_pop_size"]),
        )


def builtin_bounds(name: str, dim: int) -> list[tuple[float, float]]:
    """The conventional box of a built-in function in `dim` dimensions."""
    if name not in BUILTINS:
        raise InvalidInput(f"unknown objective {name!r}; choose one of {', '.join(BUILTINS)}")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise InvalidInput(f"dim must be a positive int, got {dim!r}")
    return [BUILTINS[name]] * dim


def evaluate_builtin(name: str, x: ArrayLike) -> NDArray[np.float64]:
    """Values of a built-in function at each row of `x` (shape (N, D) or (D,))."""
    if name not in BUILTINS:
        raise InvalidInput(f"unknown objective {name!r}; choose one of {', '.join(BUILTINS)}")
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise InvalidInput(f"x must have shape (N, D), got {arr.shape}")
    return ext.de_builtin_eval(name, arr)


def _bounds(bounds: Sequence[tuple[float, float]] | ArrayLike) -> tuple[Any, Any]:
    try:
        b = np.asarray(bounds, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"bounds must be (low, high) pairs: {exc}") from exc
    if b.ndim != 2 or b.shape[1] != 2 or b.shape[0] < 1:
        raise InvalidInput(f"bounds must be a list of (low, high) pairs, got shape {b.shape}")
    lo, hi = np.ascontiguousarray(b[:, 0]), np.ascontiguousarray(b[:, 1])
    if not (np.all(np.isfinite(b)) and np.all(lo < hi)):
        raise InvalidInput("every bound must be finite with low < high")
    return lo, hi


def initial_population(
    bounds: Sequence[tuple[float, float]] | ArrayLike,
    n: int,
    *,
    init: str = "uniform",
    seed: int,
) -> NDArray[np.float64]:
    """The (n, D) first population `minimize` would start from for this seed and init."""
    lo, hi = _bounds(bounds)
    if init not in INITS:
        raise InvalidInput(f"unknown init {init!r}; choose one of {', '.join(INITS)}")
    try:
        return ext.de_init_population(init, _positive_int("n", n), lo, hi, _seed(seed))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc


def _mutation(v: object, method: str) -> tuple[float, tuple[float, float] | None]:
    """A float F, or a (lo, hi) pair for dither (method="de" only)."""
    if isinstance(v, tuple | list):
        if len(v) != 2 or method != "de":
            raise InvalidInput("mutation=(lo, hi) (dither) is only defined for method='de'")
        lo, hi = float(v[0]), float(v[1])
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo <= hi <= 2):
            raise InvalidInput(f"dither mutation needs 0 <= lo <= hi <= 2, got {v!r}")
        return lo, (lo, hi)
    if isinstance(v, bool) or not isinstance(v, int | float | np.floating | np.integer):
        raise InvalidInput(f"mutation must be a float or a (lo, hi) pair, got {v!r}")
    f = float(v)
    if not np.isfinite(f) or f < 0 or (method == "de" and f > 2):
        raise InvalidInput(f"mutation out of range: {v!r}")
    return f, None


def _positive_int(name: str, v: object, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or int(v) < minimum:
        raise InvalidInput(f"{name} must be an int >= {minimum}, got {v!r}")
    return int(v)


def _seed(seed: int | None) -> int:
    return seed_or_random(seed)


def _hook(
    callback: Callable[[Progress], object] | None, cancel: threading.Event | None
) -> Callable[[int, int, int, float], bool] | None:
    if callback is None and cancel is None:
        return None

    def hook(generation: int, nfev: int, max_evals: int, best: float) -> bool:
        if cancel is not None and cancel.is_set():
            return True
        if callback is not None and callback(Progress(generation, nfev, max_evals, best)):
            return True
        return bool(cancel is not None and cancel.is_set())

    return hook


def _threaded(
    f: Callable[[NDArray[np.float64]], float], workers: int
) -> Callable[[NDArray[np.float64]], list[float]]:
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="minimize")

    def batch(xs: NDArray[np.float64]) -> list[float]:
        return [float(v) for v in pool.map(f, list(xs))]

    batch.pool = pool  # type: ignore[attr-defined]
    return batch


def minimize(
    f: str | Callable[..., Any],
    bounds: Sequence[tuple[float, float]] | ArrayLike,
    *,
    method: Method = "lshade",
    max_evals: int | None = None,
    seed: int | None = None,
    vectorized: bool = False,
    workers: int = 1,
    preset: str = "lshade2014",
    pop_size: int | None = None,
    target: float | None = None,
    stagnation: int | None = None,
    mutation: float | tuple[float, float] = 0.5,
    recombination: float = 0.9,
    strategy: str = "rand1bin",
    repair: Literal["midpoint", "resample"] | None = None,
    init: str | ArrayLike = "uniform",
    callback: Callable[[Progress], object] | None = None,
    cancel: threading.Event | None = None,
    updating: Literal["deferred", "immediate"] = "deferred",
    tol: float | None = None,
    atol: float = 0.0,
) -> OptimizeResult:
    """Minimise `f` over the box `bounds` (a list of (low, high) pairs).

    f: a built-in name (see BUILTINS) or a Python callable. A scalar callable
    gets a 1-D array and returns a float; with `vectorized=True` it gets an
    (N, D) array and returns N values.
    method: "lshade" (default, preset "lshade2014" or "lshade_cec21"),
    "shade" or "de" (classic DE with F=`mutation`, CR=`recombination`).
    strategy (method="de" only): mutation x crossover, as SciPy names them:
    rand1bin (default), best1bin, currenttobest1bin, randtobest1bin, rand2bin,
    best2bin, and the *exp variants (exponential crossover). "best" is the
    current population's best member.
    mutation: F, or for method="de" a (lo, hi) pair: F ~ U[lo, hi] drawn once per
    generation (dither, as SciPy).
    max_evals: the evaluation budget (default 10 000·D); it is never exceeded.
    seed: None draws one from the OS and reports it in the result.
    workers: threads for built-in objectives (rayon; -1 = all cores) or, for a
    scalar Python callable, a thread pool (useful only if it releases the GIL).
    target: stop once the best value is <= target (success means reaching it).
    stagnation: stop after that many generations without improvement.
    repair: out-of-bound rule, per violated coordinate; midpoint between the
    parent and the bound (SHADE/L-SHADE default) or a uniform resample inside
    the bounds (DE default, as SciPy).
    init: "uniform" (default), "lhs" (Latin hypercube: one point per stratum per
    coordinate), "sobol" (shifted Sobol points, D <= 64), or an (N, D) initial
    population (sets N; finite and inside the bounds).
    updating: "deferred" (generation-synchronous, the default) or, for method="de"
    only, "immediate" (Storn–Price order, each trial replaces its parent at once).
    tol, atol: stop when std(population f) <= atol + tol·|mean f| (off when tol is None).
    callback(progress) after each generation; returning True stops the run.
    cancel: a threading.Event; setting it stops the run after the current
    generation. A stopped run returns its best point with success=False.
    """
    if method not in METHODS:
        raise InvalidInput(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if preset not in PRESETS:
        raise InvalidInput(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    lo, hi = _bounds(bounds)
    dim = lo.shape[0]
    evals = 10_000 * dim if max_evals is None else _positive_int("max_evals", max_evals)
    run_seed = _seed(seed)
    if (
        isinstance(workers, bool)
        or not isinstance(workers, int)
        or workers == 0
        or not -1 <= workers <= 256
    ):
        raise InvalidInput(f"workers must be -1 or an int in 1..256, got {workers!r}")
    if pop_size is not None:
        _positive_int("pop_size", pop_size, 4 if method == "de" else 2)
    if stagnation is not None:
        _positive_int("stagnation", stagnation)
    f_value, dither = _mutation(mutation, method)
    if not np.isfinite(recombination) or not 0 <= recombination <= 1:
        raise InvalidInput(f"recombination out of range: {recombination!r}")
    if strategy not in STRATEGIES:
        raise InvalidInput(f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    if strategy != "rand1bin" and method != "de":
        raise InvalidInput("strategy is only defined for method='de'")
    if updating not in ("deferred", "immediate"):
        raise InvalidInput(f"unknown updating {updating!r}; choose deferred or immediate")
    if updating == "immediate" and method != "de":
        raise InvalidInput('updating="immediate" is only defined for method="de"')
    if tol is not None and not (np.isfinite(tol) and tol >= 0):
        raise InvalidInput(f"tol must be >= 0, got {tol!r}")
    if not (np.isfinite(atol) and atol >= 0):
        raise InvalidInput(f"atol must be >= 0, got {atol!r}")
    init_arr = None
    init_method = "uniform"
    if isinstance(init, str):
        if init not in INITS:
            raise InvalidInput(
                f"unknown init {init!r}; choose one of {', '.join(INITS)} or an (N, D) array"
            )
        if init == "sobol" and dim > SOBOL_MAX_DIM:
            raise InvalidInput(
                f'init="sobol" supports at most {SOBOL_MAX_DIM} dimensions, got {dim}; '
                'use "lhs" or "uniform"'
            )
        init_method = init
    else:
        try:
            init_arr = np.ascontiguousarray(init, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"init must be a name or an (N, D) array of floats: {exc}") from exc
        if init_arr.ndim != 2 or init_arr.shape[1] != dim:
            raise InvalidInput(f"init must have shape (N, {dim}), got {init_arr.shape}")
        if np.any(init_arr < lo) or np.any(init_arr > hi) or not np.all(np.isfinite(init_arr)):
            raise InvalidInput("init must lie inside the bounds")
    if isinstance(f, str):
        if f not in BUILTINS:
            raise InvalidInput(f"unknown objective {f!r}; choose one of {', '.join(BUILTINS)}")
        objective: Any = f
        threads = 0 if workers == -1 else workers
    elif callable(f):
        objective = f
        threads = 0
        if workers != 1 and not vectorized:
            n = (os.cpu_count() or 1) if workers == -1 else workers
            objective, vectorized = _threaded(f, n), True
    else:
        raise InvalidInput("f must be a built-in objective name or a callable")
    try:
        raw = ext.de_minimize(
            objective,
            lo,
            hi,
            method=method,
            preset=preset,
            pop_size=pop_size,
            max_evals=evals,
            seed=run_seed,
            target=target,
            stagnation=stagnation,
            mutation=f_value,
            recombination=float(recombination),
            strategy=strategy,
            dither=dither,
            init_method=init_method,
            repair=repair,
            init=init_arr,
            vectorized=vectorized,
            workers=threads,
            callback=_hook(callback, cancel),
            updating=updating,
            tol=tol,
            atol=float(atol),
        )
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    finally:
        pool = getattr(objective, "pool", None)
        if pool is not None:
            pool.shutdown(wait=False)
    return OptimizeResult.from_native(raw, method, run_seed, target)
