"""S&P 500 and NASDAQ percent log-returns (arch.data, 1999-2018) from a committed CSV extract."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

CSV = Path(__file__).resolve().parents[1] / "data" / "hmm" / "sp500_nasdaq_returns.csv"


@cache
def returns() -> NDArray[np.float64]:
    """(5030, 2): columns sp500, nasdaq."""
    data = np.loadtxt(CSV, delimiter=",", skiprows=1, usecols=(1, 2))
    data.setflags(write=False)
    return data


def sp500() -> NDArray[np.float64]:
    return np.ascontiguousarray(returns()[:, 0])
