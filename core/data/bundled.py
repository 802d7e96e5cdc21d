"""Real market history that ships inside PyPI packages, usable with no network.

Sources (docs/compute.md §7): `arch.data` (S&P 500 and NASDAQ Composite,
daily 1999-2018) and `backtesting.test` (GOOG daily 2004-2013, EUR/USD hourly
2017-2018). Timestamps are taken as UTC (the packages store naive stamps; the
daily ones are dates). Everything is returned in the BARS schema with
venue "bundled".
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

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
    distribution: str
    path: str  # inside the distribution

    def load_pandas(self) -> pd.DataFrame:
        """The package's data file, parsed as the package itself parses it. The file is
        found through the installed distribution's metadata, so the package is not
        imported (importing arch and backtesting pulls in scipy and bokeh: seconds)."""
        try:
            located = Path(str(metadata.distribution(self.distribution).locate_file(self.path)))
        except metadata.PackageNotFoundError:
            raise ImportError(f"{self.distribution} is not installed ({self.source})") from None
        if not located.is_file():
            raise ImportError(f"{self.source}: {located} is missing from the installed package")
        if self.distribution == "arch":  # arch.data.utility.load_file
            frame = pd.read_csv(located)
            frame["Date"] = pd.to_datetime(frame["Date"], format="%m/%d/%Y")
            frame = frame.set_index("Date")
            return frame.apply(pd.to_numeric, errors="coerce")
        return pd.read_csv(located, index_col=0, parse_dates=True)  # backtesting.test


DATASETS: dict[str, Dataset] = {
    d.symbol: d
    for d in (
        Dataset(
            "SP500",
            "1d",
            "S&P 500 index, daily 1999-2018",
            "arch.data.sp500",
            "arch",
            "arch/data/sp500/sp500.csv.gz",
        ),
        Dataset(
            "NASDAQ",
            "1d",
            "NASDAQ Composite, daily 1999-2018",
            "arch.data.nasdaq",
            "arch",
            "arch/data/nasdaq/nasdaq.csv.gz",
        ),
        Dataset(
            "GOOG",
            "1d",
            "Alphabet (GOOG), daily 2004-2013",
            "backtesting.test.GOOG",
            "backtesting",
            "backtesting/test/GOOG.csv",
        ),
        Dataset(
            "EURUSD",
            "1h",
            "EUR/USD, hourly 2017-2018",
            "backtesting.test.EURUSD",
            "backtesting",
            "backtesting/test/EURUSD.csv",
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
