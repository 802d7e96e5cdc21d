"""The first kernel across the boundary, checked against numpy."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from core import series
from core.errors import InvalidInput


def numpy_zscore(x: np.ndarray, w: int) -> np.ndarray:
    """Two-pass reference on each window shifted by its first value (exact differences)."""
    out = np.full(x.shape, np.nan)
    win = sliding_window_view(x, w)
    d = win - win[:, :1]
    sd = d.std(axis=1, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (d[:, -1] - d.mean(axis=1)) / sd
    z[~(sd > 0)] = np.nan
    out[w - 1 :] = z
    return out


@pytest.fixture
def prices() -> np.ndarray:
    rng = np.random.default_rng(7)
    return 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 20_000)))


def test_log_returns_match_numpy(prices: np.ndarray) -> None:
    got = series.log_returns(prices)
    want = np.diff(np.log(prices))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("window", [2, 5, 20, 60, 252])
def test_rolling_zscore_matches_numpy(prices: np.ndarray, window: int) -> None:
    got = series.rolling_zscore(prices, window)
    want = numpy_zscore(prices, window)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_rolling_zscore_on_returns_and_strided_input(prices: np.ndarray) -> None:
    r = np.diff(np.log(prices))
    strided = r[::2]  # not contiguous: the façade copies, the kernel still matches
    np.testing.assert_allclose(
        series.rolling_zscore(strided, 30),
        numpy_zscore(np.ascontiguousarray(strided), 30),
        rtol=1e-12,
        atol=1e-12,
    )


def test_result_is_numpy_owned_rust_memory(prices: np.ndarray) -> None:
    out = series.rolling_zscore(prices, 20)
    assert out.dtype == np.float64
    assert out.flags.c_contiguous
    # into_pyarray hands the Rust Vec to numpy: the array wraps foreign memory
    # (its base is the Rust container), so no copy was made on the way out.
    assert out.base is not None
    assert not out.flags.owndata
    assert type(out.base).__name__ == "PySliceContainer"


def test_kernel_releases_the_gil() -> None:
    big = np.random.default_rng(1).normal(size=30_000_000)
    done = threading.Event()

    def work() -> None:
        series.rolling_zscore(big, 50)
        done.set()

    t = threading.Thread(target=work)
    ticks = 0
    t.start()
    time.sleep(0.001)
    while not done.is_set():
        ticks += 1
    t.join()
    # With the GIL held for the whole kernel call this loop could not run at all.
    assert ticks > 1000


@pytest.mark.parametrize(
    ("prices", "match"),
    [
        ([1.0], "at least 2"),
        ([1.0, 0.0], "index 1"),
        ([1.0, float("nan")], "finite"),
        ([[1.0, 2.0]], "1-D"),
        (["a", "b"], "numeric"),
    ],
)
def test_log_returns_bad_input(prices: object, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        series.log_returns(prices)  # type: ignore[arg-type]


def test_rolling_zscore_bad_window() -> None:
    with pytest.raises(InvalidInput, match="window must be >= 2"):
        series.rolling_zscore([1.0, 2.0, 3.0], 1)
    with pytest.raises(InvalidInput, match="must be an int"):
        series.rolling_zscore([1.0, 2.0, 3.0], 2.5)  # type: ignore[arg-type]


def test_constant_and_nan_windows() -> None:
    x = np.array([1.0, 1.0, 1.0, 2.0, np.nan, 3.0, 4.0, 5.0, 6.0])
    z = series.rolling_zscore(x, 3)
    assert np.isnan(z[:2]).all()  # warm-up
    assert np.isnan(z[2])  # flat window
    assert np.isfinite(z[3])
    assert np.isnan(z[4:7]).all()  # NaN inside the window
    np.testing.assert_allclose(z[7:], numpy_zscore(x, 3)[7:], rtol=1e-12)
