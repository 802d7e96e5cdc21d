"""Series kernels (log returns, rolling z-score) against numpy."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from benchmarks.common import TABLE_HEAD, Row, median_time
from core import series


def numpy_zscore(x: np.ndarray, w: int) -> np.ndarray:
    out = np.full(x.shape, np.nan)
    win = sliding_window_view(x, w)
    out[w - 1 :] = (x[w - 1 :] - win.mean(axis=1)) / win.std(axis=1, ddof=1)
    return out


def run() -> str:
    rng = np.random.default_rng(0)
    rows: list[Row] = []
    for n in (100_000, 1_000_000):
        p = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        rows.append(
            Row(
                f"log returns, n={n:,}",
                median_time(lambda p=p: series.log_returns(p)),
                "numpy diff(log)",
                median_time(lambda p=p: np.diff(np.log(p))),
            )
        )
        for w in (20, 252):
            rows.append(
                Row(
                    f"rolling z-score, n={n:,}, window={w}",
                    median_time(lambda p=p, w=w: series.rolling_zscore(p, w)),
                    "numpy sliding_window_view",
                    median_time(lambda p=p, w=w: numpy_zscore(p, w)),
                )
            )
    lines = ["## Series kernels", "", TABLE_HEAD, *(r.markdown() for r in rows)]
    return "\n".join(lines)
