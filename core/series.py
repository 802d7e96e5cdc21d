"""Series transforms backed by the Rust kernels."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.errors import InvalidInput
from core.native import ext


def as_f64_1d(x: ArrayLike, name: str = "x") -> NDArray[np.float64]:
    """A C-contiguous float64 1-D view of `x` (copies only when needed)."""
    try:
        arr = np.ascontiguousarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} must be numeric: {exc}") from exc
    if arr.ndim != 1:
        raise InvalidInput(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def log_returns(prices: ArrayLike) -> NDArray[np.float64]:
    """ln(p[t]/p[t-1]); n prices give n - 1 returns. Prices must be finite and > 0."""
    try:
        return ext.log_returns(as_f64_1d(prices, "prices"))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc


def rolling_zscore(x: ArrayLike, window: int) -> NDArray[np.float64]:
    """Trailing z-score with sample sd (ddof=1); NaN during warm-up and on flat windows."""
    if isinstance(window, bool) or not isinstance(window, int):
        raise InvalidInput(f"window must be an int, got {type(window).__name__}")
    try:
        return ext.rolling_zscore(as_f64_1d(x), window)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
