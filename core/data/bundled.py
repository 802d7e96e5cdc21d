"""Real market history that ships inside PyPI packages, usable with no network.

Sources (COMPUTE-SPEC section 7): `arch.data` (S&P 500 and NASDAQ Composite,
daily 1999-2018) and `backtesting.test` (GOOG daily 2004-2013, EUR/USD hourly
2017-2018). Timestamps are taken as UTC (the packages store naive stamps; the
daily ones are dates). Everything is returned in the BARS schema with
venue "bundled".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
import polars as pl

from core.data.schema import BARS, conform
from core.errors import InvalidInput

VENUE = "bundled"


@dataclass(frozen=True, slots=True)
class Dataset:
    symbol: str
    timeframe: str
    description: str
    source: str
    load_pandas: Callable[[], pd.DataFrame]


def _arch(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from importlib import import_module

        frame: pd.DataFrame = import_module(f"arch.data.{name}").load()
        return frame

    return load


def _backtesting(name: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        from backtesting import test

        frame: pd.DataFrame = getattr(test, name)
        return frame

    return load


DATASETS: dict[str, Dataset] = {
    d.symbol: d
    for d in (
        Dataset("SP500", "1d", "S&P 500 index, daily 1999-2018", "arch.data.sp500", _arch("sp500")),
        Dataset(
            "NASDAQ", "1d", "NASDAQ Composite, daily 1999-2018", "arch.data.nasdaq", _arch("nasdaq")
        ),
        Dataset(
            "GOOG",
            "1d",
            "Alphabet (GOOG), daily 2004-2013",
            "backtesting.test.GOOG",
            _backtesting("GOOG"),
        ),
        Dataset(
            "EURUSD",
            "1h",
            "EUR/USD, hourly 2017-2018",
            "backtesting.test.EURUSD",
            _backtesting("EURUSD"),
        ),
    )
}


def load(symbol: str) -> pl.DataFrame:
    """Bars of one bundled dataset, sorted by time, in the BARS schema."""
    try:
        ds = DATASETS[symbol]
    except KeyError:
        known = ", ".join(DATASETS)
        raise InvalidInput(f"no bundled dataset {symbol!r}; choose one of {known}") from None
    raw = ds.load_pandas()
    ts = pd.DatetimeIndex(raw.index).as_unit("us").to_numpy()  # naive, taken as UTC
    frame = pl.DataFrame(
        {
            "ts": pl.Series(ts).dt.replace_time_zone("UTC"),
            "venue": VENUE,
            "symbol": ds.symbol,
            "timeframe": ds.timeframe,
            "open": raw["Open"].to_numpy(dtype="float64"),
            "high": raw["High"].to_numpy(dtype="float64"),
            "low": raw["Low"].to_numpy(dtype="float64"),
            "close": raw["Close"].to_numpy(dtype="float64"),
            "volume": raw["Volume"].to_numpy(dtype="float64"),
        }
    )
    return conform(frame, BARS, f"bundled {symbol}").sort("ts")


def load_all() -> dict[str, pl.DataFrame]:
    return {symbol: load(symbol) for symbol in DATASETS}
