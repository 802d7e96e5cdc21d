"""Global box-constrained minimisation: DE/rand/1/bin, SHADE and L-SHADE (COMPUTE-SPEC 4).

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

from core.errors import InvalidInput
from core.native import ext

__all__ = [
    "BUILTINS",
    "METHODS",
    "OptimizeResult",
    "Progress",
    "builtin_bounds",
    "evaluate_builtin",
    "minimize",
]

Method = Literal["lshade", "shade", "de"]
METHODS: tuple[str, ...] = ("lshade", "shade", "de")
PRESETS: tuple[str, ...] = ("lshade2014", "lshade_cec21")

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


def _positive_int(name: str, v: object, minimum: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or int(v) < minimum:
        raise InvalidInput(f"{name} must be an int >= {minimum}, got {v!r}")
    return int(v)


def _seed(seed: int | None) -> int:
    if seed is None:
        return int.from_bytes(os.urandom(8), "little") >> 1
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidInput(f"seed must be a non-negative int or None, got {seed!r}")
    return int(seed) & (2**64 - 1)


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
    mutation: float = 0.5,
    recombination: float = 0.9,
    repair: Literal["midpoint", "resample"] | None = None,
    init: ArrayLike | None = None,
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
    "shade" or "de" (DE/rand/1/bin with F=`mutation`, CR=`recombination`).
    max_evals: the evaluation budget (default 10 000·D); it is never exceeded.
    seed: None draws one from the OS and reports it in the result.
    workers: threads for built-in objectives (rayon; -1 = all cores) or, for a
    scalar Python callable, a thread pool (useful only if it releases the GIL).
    target: stop once the best value is <= target (success means reaching it).
    stagnation: stop after that many generations without improvement.
    repair: out-of-bound rule; midpoint (SHADE default) or resample (DE default,
    as SciPy).
    init: an (N, D) initial population (sets N).
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
    for name, v in (("mutation", mutation), ("recombination", recombination)):
        if not np.isfinite(v) or v < 0 or (name == "recombination" and v > 1):
            raise InvalidInput(f"{name} out of range: {v!r}")
    if updating not in ("deferred", "immediate"):
        raise InvalidInput(f"unknown updating {updating!r}; choose deferred or immediate")
    if updating == "immediate" and method != "de":
        raise InvalidInput('updating="immediate" is only defined for method="de"')
    if tol is not None and not (np.isfinite(tol) and tol >= 0):
        raise InvalidInput(f"tol must be >= 0, got {tol!r}")
    if not (np.isfinite(atol) and atol >= 0):
        raise InvalidInput(f"atol must be >= 0, got {atol!r}")
    init_arr = None
    if init is not None:
        init_arr = np.ascontiguousarray(init, dtype=np.float64)
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
            mutation=float(mutation),
            recombination=float(recombination),
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
    stop = str(raw["stop"])
    finished = ("maxevals", "stagnation", "collapse")
    success = stop == "target" if target is not None else stop in finished
    return OptimizeResult(
        x=raw["x"],
        fun=float(raw["fun"]),
        nfev=int(raw["nfev"]),
        nit=int(raw["nit"]),
        success=success,
        message=str(raw["message"]),
        history=raw["history"],
        method=method,
        seed=run_seed,
        stop=stop,
        mem_cr=raw["mem_cr"],
        mem_f=raw["mem_f"],
        final_pop_size=int(raw["final_pop_size"]),
    )
