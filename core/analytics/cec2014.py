"""The CEC 2014 benchmark suite F1..F30 (Liang, Qu & Suganthan 2013), in Rust.

`Problem(fn_id, dim, shift, rotation, shuffle)` holds one function and its data;
the caller loads the data (shift vectors o, rotation matrices M, shuffle
permutations S as the competition files ship them). `evaluate` takes a point
(D,) or a batch (N, D) and runs in parallel with the GIL released;
`minimize` runs our optimiser on it with the objective evaluated natively.

Semantics follow the competition's reference code: hybrid functions rotate the
whole shifted point, then permute it, and each block is scaled by its basic
function's rate; the fifth component of F23 and the first of F24 are not rotated.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.analytics.inputs import seed_or_random
from core.analytics.optimize import METHODS, PRESETS, OptimizeResult, Progress
from core.errors import InvalidInput
from core.native import ext

__all__ = ["BOUNDS", "DIMS", "Problem", "layout"]

DIMS: tuple[int, ...] = (10, 20, 30, 50, 100)
BOUNDS: tuple[float, float] = (-100.0, 100.0)
# CEC rule: an error below this counts as solved.
SOLVED = 1e-8


def _fn_id(fn_id: object) -> int:
    if isinstance(fn_id, bool) or not isinstance(fn_id, int | np.integer) or not 1 <= fn_id <= 30:
        raise InvalidInput(f"fn_id must be an int in 1..30, got {fn_id!r}")
    return int(fn_id)


def layout(fn_id: int) -> tuple[int, bool, bool]:
    """(components k, needs rotation, needs shuffle) of F<fn_id>: shift is (k, D),
    rotation (k·D, D) and shuffle (k·D,)."""
    k, rot, shuf = ext.cec2014_layout(_fn_id(fn_id))
    return int(k), bool(rot), bool(shuf)


def _floats(name: str, a: ArrayLike, shape: tuple[int, int]) -> NDArray[np.float64]:
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be numeric: {exc}") from exc
    if arr.size != shape[0] * shape[1] or arr.ndim not in (1, 2):
        raise InvalidInput(f"{name} must have shape {shape}, got {arr.shape}")
    if arr.ndim == 2 and arr.shape != shape:
        raise InvalidInput(f"{name} must have shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInput(f"{name} has NaN or infinite values")
    return np.ascontiguousarray(arr.reshape(shape))


class Problem:
    """CEC 2014 function F<fn_id> in `dim` dimensions; minimum f_global = 100·fn_id at x_global."""

    def __init__(
        self,
        fn_id: int,
        dim: int,
        shift: ArrayLike,
        rotation: ArrayLike | None = None,
        shuffle: ArrayLike | None = None,
    ) -> None:
        fid = _fn_id(fn_id)
        if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim not in DIMS:
            raise InvalidInput(f"dim must be one of {DIMS} (as CEC 2014 defines), got {dim!r}")
        d = int(dim)
        k, needs_rot, needs_shuf = layout(fid)
        o = _floats("shift", shift, (k, d))
        m = None
        if needs_rot:
            if rotation is None:
                raise InvalidInput(f"F{fid} needs rotation matrices of shape ({k * d}, {d})")
            m = _floats("rotation", rotation, (k * d, d))
        s = None
        if needs_shuf:
            if shuffle is None:
                raise InvalidInput(f"F{fid} needs shuffle permutations of shape ({k * d},)")
            raw = np.asarray(shuffle)
            if raw.size != k * d or not np.issubdtype(raw.dtype, np.number):
                raise InvalidInput(f"shuffle must hold {k * d} integers, got shape {raw.shape}")
            if not np.all(np.isfinite(raw)) or np.any(raw != np.round(raw)):
                raise InvalidInput("shuffle must hold integers (1-based, as the CEC files)")
            s = np.ascontiguousarray(raw.reshape(-1), dtype=np.int64)
        try:
            self._native = ext.Cec2014Problem(fid, d, o, m, s)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        self.fn_id, self.dim = fid, d

    @property
    def f_global(self) -> float:
        return float(self._native.f_global)

    @property
    def x_global(self) -> NDArray[np.float64]:
        return self._native.x_global

    @property
    def bounds(self) -> list[tuple[float, float]]:
        return [BOUNDS] * self.dim

    def __repr__(self) -> str:
        return f"Problem(F{self.fn_id}, dim={self.dim})"

    def evaluate(self, x: ArrayLike, workers: int = 0) -> Any:
        """F at a point (D,) -> float, or at each row of (N, D) -> (N,) array.
        workers: threads (0 = all cores); values never depend on it."""
        try:
            arr = np.ascontiguousarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"x must be numeric: {exc}") from exc
        single = arr.ndim == 1
        if single:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise InvalidInput(
                f"x must have shape ({self.dim},) or (N, {self.dim}), got {np.shape(x)}"
            )
        if not np.all(np.isfinite(arr)):
            raise InvalidInput("x has NaN or infinite values")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise InvalidInput(f"workers must be an int >= 0, got {workers!r}")
        out = self._native.evaluate(arr, workers)
        return float(out[0]) if single else out

    def __call__(self, x: ArrayLike) -> Any:
        return self.evaluate(x)

    def minimize(
        self,
        *,
        method: str = "lshade",
        preset: str = "lshade2014",
        max_evals: int | None = None,
        seed: int | None = None,
        target_error: float | None = None,
        workers: int = 1,
        callback: Callable[[Progress], object] | None = None,
        cancel: threading.Event | None = None,
    ) -> OptimizeResult:
        """Run our optimiser on this function over [-100, 100]^D with the objective
        evaluated in Rust (no Python per generation). Budget 10 000·D by default.
        target_error: stop once f - f_global <= target_error (success means reaching it)."""
        if method not in METHODS:
            raise InvalidInput(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        if preset not in PRESETS:
            raise InvalidInput(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        evals = 10_000 * self.dim if max_evals is None else max_evals
        if isinstance(evals, bool) or not isinstance(evals, int) or evals < 1:
            raise InvalidInput(f"max_evals must be a positive int, got {max_evals!r}")
        seed = seed_or_random(seed)
        if target_error is not None and not (np.isfinite(target_error) and target_error >= 0):
            raise InvalidInput(f"target_error must be >= 0, got {target_error!r}")
        if isinstance(workers, bool) or not isinstance(workers, int) or not -1 <= workers <= 256:
            raise InvalidInput(f"workers must be -1 (all cores) or 1..256, got {workers!r}")
        target = None if target_error is None else self.f_global + target_error
        hook = None
        if callback is not None or cancel is not None:

            def hook(generation: int, nfev: int, max_evals: int, best: float) -> bool:
                if cancel is not None and cancel.is_set():
                    return True
                progress = Progress(generation, nfev, max_evals, best)
                return bool(callback is not None and callback(progress))

        lo = np.full(self.dim, BOUNDS[0])
        hi = np.full(self.dim, BOUNDS[1])
        try:
            raw = ext.cec2014_minimize(
                self._native, lo, hi, method=method, preset=preset, max_evals=evals,
                seed=seed, target=target, workers=0 if workers == -1 else workers,
                callback=hook,
            )  # fmt: skip
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
        return OptimizeResult.from_native(raw, method, seed, target)
