"""Real market history that ships inside PyPI packages, usable with no network.

Sources and licences (docs/compute.md §7):

- `skfolio` (BSD-3-Clause): daily adjusted closes of 20 S&P 500 stocks and of the S&P 500
  index, 1990-01-02 to 2022-12-28, and of five iShares US factor ETFs, 2014-2022. skfolio
  ships them for tests and examples; its docs caution that they are stale and not meant for
  trading decisions.
- `arch` (NCSA): S&P 500 and NASDAQ Composite OHLCV, daily 1999-2018; the VIX close,
  2014-2019; the WTI crude oil spot price (FRED), 1986-2019.
- `backtesting` (AGPL-3.0): GOOG OHLCV, daily 2004-2013; EUR/USD OHLCV, hourly 2017-2018.

Close-only sources become bars with open = high = low = close and a null (unknown)
volume; nothing is invented, and `Dataset.close_only` says so in every label. Timestamps are
taken as UTC (the packages store naive stamps; the daily ones are dates). Everything is
returned in the BARS schema with venue "bundled".
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import pandas as pd
import polars as pl

from core.data.schema import BARS, conform
from core.errors import InvalidInput

VENUE = "bundled"

LICENCES = {"skfolio": "BSD-3-Clause", "arch": "NCSA", "backtesting": "AGPL-3.0"}
"""The licence of each package the bundled history comes from."""


@dataclass(frozen=True, slots=True)
class Dataset:
    symbol: str
    timeframe: str
    description: str
    """What it is and its date range, e.g. "Apple (AAPL), daily 1990-2022"."""
    source: str
    """The package attribute the data comes from, e.g. "arch.data.sp500"."""
    distribution: str
    path: str  # inside the distribution
    column: str | None = None
    """The column holding this series' closes in a close-only file; None for OHLCV files."""
    kind: str = "equity"
    """equity, index, etf, fx, commodity or volatility."""

    @property
    def close_only(self) -> bool:
        return self.column is not None

    @property
    def licence(self) -> str:
        return LICENCES[self.distribution]

    @property
    def label(self) -> str:
        """ "Apple (AAPL), daily 1990-2022 · skfolio (BSD-3-Clause) · closes only"."""
        return f"{self.description} · {self.origin}"

    @property
    def origin(self) -> str:
        """Where the rows come from, for tables that show the name and range apart:
        "skfolio (BSD-3-Clause) · closes only"."""
        closes = " · closes only" if self.close_only else ""
        return f"{self.distribution} ({self.licence}){closes}"

    def load_pandas(self) -> pd.DataFrame:
        """The package's data file, parsed as the package itself parses it. The file is
        found through the installed distribution's metadata, so the package is not
        imported (importing arch, backtesting or skfolio pulls in scipy, bokeh or
        scikit-learn: seconds)."""
        return _read(self.distribution, self.path, self.source).copy()


@lru_cache(maxsize=8)
def _read(distribution: str, path: str, source: str) -> pd.DataFrame:
    """One package file, parsed once per process (20 stocks share one skfolio file)."""
    try:
        located = Path(str(metadata.distribution(distribution).locate_file(path)))
    except metadata.PackageNotFoundError:
        raise ImportError(f"{distribution} is not installed ({source})") from None
    if not located.is_file():
        raise ImportError(f"{source}: {located} is missing from the installed package")
    if distribution == "arch":  # arch.data.utility.load_file
        frame = pd.read_csv(located)
        frame["Date"] = pd.to_datetime(frame["Date"])
        frame = frame.set_index("Date")
        return frame.apply(pd.to_numeric, errors="coerce")
    if distribution == "skfolio":  # skfolio.datasets._base.load_gzip_compressed_csv_data
        frame = pd.read_csv(located, sep=",", index_col=0)
        frame.index = pd.to_datetime(frame.index, format="%Y-%m-%d")
        return frame
    return pd.read_csv(located, index_col=0, parse_dates=True)  # backtesting.test


_SKFOLIO = "skfolio/datasets/data/"
SP500_STOCKS = {
    "AAPL": "Apple",
    "AMD": "Advanced Micro Devices",
    "BAC": "Bank of America",
    "BBY": "Best Buy",
    "CVX": "Chevron",
    "GE": "General Electric",
    "HD": "Home Depot",
    "JNJ": "Johnson & Johnson",
    "JPM": "JPMorgan Chase",
    "KO": "Coca-Cola",
    "LLY": "Eli Lilly",
    "MRK": "Merck & Co.",
    "MSFT": "Microsoft",
    "PEP": "PepsiCo",
    "PFE": "Pfizer",
    "PG": "Procter & Gamble",
    "RRC": "Range Resources",
    "UNH": "UnitedHealth Group",
    "WMT": "Walmart",
    "XOM": "Exxon Mobil",
}
FACTOR_ETFS = {
    "MTUM": "iShares MSCI USA Momentum Factor ETF",
    "QUAL": "iShares MSCI USA Quality Factor ETF",
    "SIZE": "iShares MSCI USA Size Factor ETF",
    "USMV": "iShares MSCI USA Min Vol Factor ETF",
    "VLUE": "iShares MSCI USA Value Factor ETF",
}

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
            kind="index",
        ),
        Dataset(
            "NASDAQ",
            "1d",
            "NASDAQ Composite, daily 1999-2018",
            "arch.data.nasdaq",
            "arch",
            "arch/data/nasdaq/nasdaq.csv.gz",
            kind="index",
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
            kind="fx",
        ),
        Dataset(
            "SPX",
            "1d",
            "S&P 500 index, daily 1990-2022",
            "skfolio.datasets.load_sp500_index",
            "skfolio",
            _SKFOLIO + "sp500_index.csv.gz",
            column="SP500",
            kind="index",
        ),
        *(
            Dataset(
                ticker,
                "1d",
                f"{name} ({ticker}), daily 1990-2022",
                "skfolio.datasets.load_sp500_dataset",
                "skfolio",
                _SKFOLIO + "sp500_dataset.csv.gz",
                column=ticker,
            )
            for ticker, name in SP500_STOCKS.items()
        ),
        *(
            Dataset(
                ticker,
                "1d",
                f"{name} ({ticker}), daily 2014-2022",
                "skfolio.datasets.load_factors_dataset",
                "skfolio",
                _SKFOLIO + "factors_dataset.csv.gz",
                column=ticker,
                kind="etf",
            )
            for ticker, name in FACTOR_ETFS.items()
        ),
        Dataset(
            "VIX",
            "1d",
            "CBOE Volatility Index (VIX), daily 2014-2019",
            "arch.data.vix",
            "arch",
            "arch/data/vix/vix.csv.gz",
            column="vix",
            kind="volatility",
        ),
        Dataset(
            "WTI",
            "1d",
            "WTI crude oil spot price (FRED), daily 1986-2019",
            "arch.data.wti",
            "arch",
            "arch/data/wti/wti.csv.gz",
            column="DCOILWTICO",
            kind="commodity",
        ),
    )
}

BASKETS: dict[str, tuple[str, ...]] = {
    "20 S&P 500 stocks, 1990-2022": tuple(SP500_STOCKS),
    "5 US factor ETFs, 2014-2022": tuple(FACTOR_ETFS),
    "US indices (S&P 500, NASDAQ), 1999-2018": ("SP500", "NASDAQ"),
}
"""Named groups of bundled symbols that the basket pages (mean reversion) offer at once."""


def load(symbol: str) -> pl.DataFrame:
    """Bars of one bundled dataset, sorted by time, in the BARS schema."""
    try:
        ds = DATASETS[symbol]
    except KeyError:
        known = ", ".join(DATASETS)
        raise InvalidInput(f"no bundled dataset {symbol!r}; choose one of {known}") from None
    raw = ds.load_pandas()
    if ds.column is not None:
        # closes only: a bar whose open, high and low are the close, volume unknown
        close = raw[ds.column].dropna()
        ts = pd.DatetimeIndex(close.index).as_unit("us").to_numpy()
        values = close.to_numpy(dtype="float64")
        prices = {"open": values, "high": values, "low": values, "close": values}
        volume = pl.Series("volume", [None] * len(values), dtype=pl.Float64)
    else:
        ts = pd.DatetimeIndex(raw.index).as_unit("us").to_numpy()  # naive, taken as UTC
        prices = {c.lower(): raw[c].to_numpy(dtype="float64") for c in ("Open", "High", "Low")}
        prices["close"] = raw["Close"].to_numpy(dtype="float64")
        volume = pl.Series("volume", raw["Volume"].to_numpy(dtype="float64"))
    frame = pl.DataFrame(
        {
            "ts": pl.Series(ts).dt.replace_time_zone("UTC"),
            "venue": VENUE,
            "symbol": ds.symbol,
            "timeframe": ds.timeframe,
            **prices,
            "volume": volume,
        }
    )
    return conform(frame, BARS, f"bundled {symbol}").sort("ts")


def load_all() -> dict[str, pl.DataFrame]:
    return {symbol: load(symbol) for symbol in DATASETS}


def sources() -> pl.DataFrame:
    """One row per bundled series: venue, symbol, timeframe and where it comes from."""
    rows = [(VENUE, d.symbol, d.timeframe, d.origin) for d in DATASETS.values()]
    return pl.DataFrame(
        rows,
        schema=dict.fromkeys(("venue", "symbol", "timeframe", "source"), pl.String),
        orient="row",
    )
