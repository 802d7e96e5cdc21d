"""Input checks and the kernel-call wrapper every analytics façade shares."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.errors import InvalidInput
from core.native import ext
from core.series import as_f64_1d

P = ParamSpec("P")
R = TypeVar("R")
F64 = NDArray[np.float64]


def series(x: ArrayLike, name: str = "x", min_len: int = 3, *, nonconstant: bool = False) -> F64:
    """A finite, contiguous float64 vector of at least `min_len` values."""
    arr = as_f64_1d(x, name)
    if arr.size < min_len:
        raise InvalidInput(f"{name} needs at least {min_len} values, got {arr.size}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InvalidInput(
            f"{name} has {int(bad.sum())} NaN/inf values (first at {int(bad.argmax())}); "
            "drop them first"
        )
    if nonconstant and np.all(arr == arr[0]):
        raise InvalidInput(f"{name} is constant; the statistics are undefined")
    return arr


def matrix(prices: ArrayLike, min_rows: int = 10) -> F64:
    """A finite (bars x assets) float64 matrix with no constant column."""
    try:
        arr = np.ascontiguousarray(prices, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"prices must be numeric: {exc}") from exc
    if arr.ndim != 2:
        raise InvalidInput(f"prices must be 2-D (bars x assets), got shape {arr.shape}")
    if arr.shape[0] < min_rows:
        raise InvalidInput(f"prices need at least {min_rows} rows, got {arr.shape[0]}")
    bad = ~np.isfinite(arr)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise InvalidInput(
            f"prices have {int(bad.sum())} NaN/inf values (first at row {r}, column {c})"
        )
    flat = np.ptp(arr, axis=0) == 0
    if flat.any():
        raise InvalidInput(f"asset column(s) {np.flatnonzero(flat).tolist()} are constant")
    return arr


def call_kernel(fn: Callable[P, R], *args: P.args, **kw: P.kwargs) -> R:
    """Call a kernel, turning its input and numerical errors into InvalidInput."""
    try:
        return fn(*args, **kw)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    except ext.NumericalError as exc:
        raise InvalidInput(f"the numerics failed: {exc}") from exc


def workers(n: object) -> int:
    """A rayon thread count for the kernels: 0 (all cores) for None or -1, else 1..256."""
    if n is None or (type(n) is int and n == -1):
        return 0
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= 256:
        raise InvalidInput(f"workers must be None, -1 (all cores) or an int in 1..256, got {n!r}")
    return int(n)


SEED_MAX = 2**64 - 1
"""Seeds are unsigned 64-bit integers in every kernel."""


def check_seed(value: object, name: str = "seed") -> int:
    """A seed: an int (or numpy integer) in 0..2**64-1; anything else is InvalidInput."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise InvalidInput(
            f"{name} must be an int in 0..2**64-1, got {type(value).__name__} {value!r}"
        )
    v = int(value)
    if not 0 <= v <= SEED_MAX:
        raise InvalidInput(f"{name} must be an int in 0..2**64-1, got {v}")
    return v


def seed_or_random(value: object, name: str = "seed") -> int:
    """`check_seed(value)`, or a fresh seed from the OS for None (reported to the caller)."""
    if value is None:
        return int.from_bytes(os.urandom(8), "little") >> 1
    return check_seed(value, name)
