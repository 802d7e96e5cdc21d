"""Chart indicators: SMA, EMA, Bollinger bands, RSI, MACD and VWAP.

Each function returns arrays as long as its input, NaN during the warm-up (and everywhere
when the input is shorter than the warm-up). The definitions follow TA-Lib's defaults, which
the tests use as the oracle (docs/compute.md §9):

- `sma(x, n)`: the mean of the last n values; first value at index n - 1.
- `ema(x, n)`: seeded with the SMA of the first n values at index n - 1, then
  e[t] = e[t-1] + a (x[t] - e[t-1]) with a = 2 / (n + 1).
- `bollinger(x, n, k)`: SMA +- k population standard deviations of the last n values.
- `rsi(x, n)`: Wilder's smoothing of gains and losses, seeded with their plain means over the
  first n changes; first value at index n. Where the average gain and loss are both 0 (a flat
  stretch) the RSI is undefined and NaN here; TA-Lib writes 0 there.
- `macd(x, fast, slow, signal)`: TA-Lib's alignment: both EMAs start at index slow - 1, each
  seeded with the SMA of its own last `period` values there, and the signal EMA starts at
  index (slow - 1) + (signal - 1); all three outputs are NaN before that.
- `vwap(price, volume, session=...)`: cumulative sum(price * volume) / sum(volume), restarted
  whenever the session key changes (e.g. the day of each bar); NaN while the volume is 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray

from core.analytics.inputs import F64, series
from core.errors import InvalidInput

__all__ = ["bollinger", "ema", "macd", "rsi", "sma", "vwap"]


def _period(n: object, name: str = "n", low: int = 2) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise InvalidInput(f"{name} must be an int, got {type(n).__name__}")
    if n < low:
        raise InvalidInput(f"{name} must be at least {low}, got {n}")
    return int(n)


def _values(x: ArrayLike, name: str = "x") -> F64:
    return series(x, name, min_len=1)


def _windows(x: F64, n: int) -> F64 | None:
    """The (len - n + 1, n) view of trailing windows, or None when x is shorter than n."""
    return sliding_window_view(x, n) if x.size >= n else None


def _window_std(windows: F64) -> F64:
    """Population std of each window (two-pass, exact), a block of rows at a time so the
    temporaries stay near 32 MB whatever the window."""
    out = np.empty(windows.shape[0])
    rows = max(1, 4_000_000 // windows.shape[1])
    for start in range(0, windows.shape[0], rows):
        out[start : start + rows] = windows[start : start + rows].std(axis=1)
    return out


def sma(x: ArrayLike, n: int) -> F64:
    """Simple moving average of the last n values (TA-Lib SMA)."""
    n, arr = _period(n), _values(x)
    out = np.full(arr.size, np.nan)
    windows = _windows(arr, n)
    if windows is not None:
        out[n - 1 :] = windows.mean(axis=1)
    return out


def _ema_from(x: F64, n: int, start: int) -> F64:
    """EMA seeded at index `start` with the mean of x[start - n + 1 .. start]."""
    out = np.full(x.size, np.nan)
    if start >= x.size:
        return out
    alpha = 2.0 / (n + 1)
    prev = float(x[start - n + 1 : start + 1].mean())
    values = x[start:].tolist()
    result = [prev]
    for value in values[1:]:  # the recursion: each value needs the one before
        prev = (value - prev) * alpha + prev
        result.append(prev)
    out[start:] = result
    return out


def ema(x: ArrayLike, n: int) -> F64:
    """Exponential moving average with a = 2 / (n + 1), seeded like TA-Lib EMA."""
    n, arr = _period(n), _values(x)
    return _ema_from(arr, n, n - 1)


def bollinger(x: ArrayLike, n: int = 20, k: float = 2.0) -> tuple[F64, F64, F64]:
    """(upper, mid, lower): the SMA and SMA +- k population std of the last n values."""
    n, arr = _period(n), _values(x)
    if isinstance(k, bool) or not isinstance(k, int | float | np.floating | np.integer):
        raise InvalidInput(f"k must be a number, got {type(k).__name__}")
    if not math.isfinite(k) or k <= 0:
        raise InvalidInput(f"k must be a positive number of standard deviations, got {k}")
    mid = np.full(arr.size, np.nan)
    width = np.full(arr.size, np.nan)
    windows = _windows(arr, n)
    if windows is not None:
        mid[n - 1 :] = windows.mean(axis=1)
        width[n - 1 :] = float(k) * _window_std(windows)
    return mid + width, mid, mid - width


def _wilder(changes: F64, n: int) -> F64:
    """Wilder's average of the changes: the plain mean of the first n, then
    a[t] = (a[t-1] (n - 1) + c[t]) / n."""
    prev = float(changes[:n].sum()) / n
    result = [prev]
    for value in changes[n:].tolist():
        prev = (prev * (n - 1) + value) / n
        result.append(prev)
    return np.asarray(result)


def rsi(x: ArrayLike, n: int = 14) -> F64:
    """Relative strength index, 0..100, with Wilder's smoothing (TA-Lib RSI)."""
    n, arr = _period(n), _values(x)
    out = np.full(arr.size, np.nan)
    if arr.size <= n:
        return out
    change = np.diff(arr)
    gain = _wilder(np.where(change > 0, change, 0.0), n)
    loss = _wilder(np.where(change < 0, -change, 0.0), n)
    total = gain + loss
    with np.errstate(invalid="ignore", divide="ignore"):
        out[n:] = np.where(total > 0, 100.0 * gain / total, np.nan)
    return out


def macd(x: ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[F64, F64, F64]:
    """(macd, signal, hist): EMA(fast) - EMA(slow), its EMA(signal), and their difference,
    aligned as TA-Lib MACD (NaN until index (slow - 1) + (signal - 1))."""
    fast, slow = _period(fast, "fast"), _period(slow, "slow")
    signal = _period(signal, "signal", low=1)
    if fast >= slow:
        raise InvalidInput(f"fast ({fast}) must be shorter than slow ({slow})")
    arr = _values(x)
    start = (slow - 1) + (signal - 1)
    nan = np.full(arr.size, np.nan)
    if start >= arr.size:
        return nan, nan.copy(), nan.copy()
    line = _ema_from(arr, fast, slow - 1) - _ema_from(arr, slow, slow - 1)
    sig = np.full(arr.size, np.nan)
    sig[slow - 1 :] = _ema_from(line[slow - 1 :], signal, signal - 1)
    line[:start] = np.nan
    return line, sig, line - sig


def vwap(
    price: ArrayLike,
    volume: ArrayLike,
    *,
    session: Sequence[object] | NDArray[Any] | pl.Series | None = None,
) -> F64:
    """Volume-weighted average price, cumulative from the first row or from the start of
    each session (a new session starts where `session[i] != session[i - 1]`)."""
    p, v = _values(price, "price"), _values(volume, "volume")
    if p.size != v.size:
        raise InvalidInput(f"price and volume differ in length ({p.size} and {v.size})")
    if (v < 0).any():
        raise InvalidInput(f"volume has {int((v < 0).sum())} negative values")
    frame = pl.DataFrame({"pv": p * v, "v": v})
    if session is None:
        frame = frame.with_columns(pl.lit(0).alias("session"))
    else:
        try:
            keys = session if isinstance(session, pl.Series) else pl.Series(values=session)
        except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
            raise InvalidInput("session must hold one key of one type per row") from exc
        if keys.len() != p.size:
            raise InvalidInput(
                f"session has {keys.len()} values but price has {p.size}; give one per row"
            )
        if keys.null_count():
            raise InvalidInput(f"session has {keys.null_count()} missing values")
        starts = (keys != keys.shift(1)).fill_null(True)
        frame = frame.with_columns(starts.cum_sum().alias("session"))
    result = frame.select(
        pl.col("pv").cum_sum().over("session") / pl.col("v").cum_sum().over("session")
    ).to_series()
    out = result.to_numpy().astype(np.float64, copy=True)
    out[~np.isfinite(out)] = np.nan  # 0 / 0 before the first traded volume
    return out
