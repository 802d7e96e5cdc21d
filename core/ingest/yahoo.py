"""History from Yahoo Finance through yfinance.

yfinance is not thread safe and shares a cookie/crumb state, so calls run one
at a time (a process-wide lock). Offline, yfinance returns an EMPTY frame
instead of raising; an empty frame is therefore an error here (SourceError),
never silently "no data".
"""

from __future__ import annotations

import threading
import warnings
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import polars as pl

from core.data.schema import BARS, conform
from core.errors import InvalidInput
from core.ingest.base import Progress, SourceError, check_timeframe, count, describe

VENUE = "yahoo"
INTERVALS = {"1m": "1m", "5m": "5m", "15m": "15m", "1h": "1h", "1d": "1d"}
_LOCK = threading.Lock()


class YahooSource:
    """Daily and intraday bars from Yahoo Finance; `session` is handed to yfinance."""

    venue = VENUE

    def __init__(self, session: Any | None = None, timeout_s: float = 30.0) -> None:
        self.session = session
        self.timeout_s = timeout_s

    def fetch_bars(
        self,
        symbol: str,
        timeframe: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        check_timeframe(timeframe)
        if timeframe not in INTERVALS:
            raise InvalidInput(
                f"Yahoo has no {timeframe!r} bars; choose one of {', '.join(INTERVALS)}"
            )
        if since.tzinfo is None:
            raise InvalidInput("since has no time zone; pass a UTC datetime")
        end = until or datetime.now(UTC)
        if end <= since:
            raise InvalidInput(f"empty time range: since {since} is not before until {end}")
        import yfinance as yf

        with _LOCK, warnings.catch_warnings():
            # yfinance's own pandas deprecation noise; it is not ours to fix
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            ticker = yf.Ticker(symbol, session=self.session)
            try:
                raw = ticker.history(
                    start=since,
                    end=end,
                    interval=INTERVALS[timeframe],
                    auto_adjust=False,
                    actions=False,
                    timeout=self.timeout_s,
                )
            except Exception as exc:
                raise SourceError(f"Yahoo Finance failed for {symbol}", describe(exc)) from exc
        if raw is None or raw.empty:
            raise SourceError(
                f"Yahoo Finance returned no bars for {symbol} {timeframe} from "
                f"{since:%Y-%m-%d} (unknown symbol, no data in range, or no network)"
            )
        frame = to_bars(raw, symbol, timeframe)
        if progress is not None:
            progress(1.0, f"{symbol} {timeframe}: {count(frame.height, 'bar')} fetched")
        return frame

    def fetch_trades(
        self,
        symbol: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        raise InvalidInput("Yahoo Finance has no trade history; fetch bars instead")


def to_bars(raw: pd.DataFrame, symbol: str, timeframe: str) -> pl.DataFrame:
    index = pd.DatetimeIndex(raw.index)
    if timeframe == "1d":
        # a daily bar is stamped with its exchange-local date, at 00:00 UTC
        index = index.tz_localize(None).normalize().tz_localize("UTC")
    else:
        index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    frame = pl.DataFrame(
        {
            "ts": pl.Series(index.as_unit("us").tz_localize(None).to_numpy()).dt.replace_time_zone(
                "UTC"
            ),
            "venue": VENUE,
            "symbol": symbol,
            "timeframe": timeframe,
            "open": raw["Open"].to_numpy(dtype="float64"),
            "high": raw["High"].to_numpy(dtype="float64"),
            "low": raw["Low"].to_numpy(dtype="float64"),
            "close": raw["Close"].to_numpy(dtype="float64"),
            "volume": raw["Volume"].to_numpy(dtype="float64"),
        }
    )
    # yfinance marks an interval without trades with NaN prices: drop those rows; a NaN
    # volume is an unknown volume (null).
    out = conform(frame, BARS, f"yahoo {symbol}").fill_nan(None)
    return out.drop_nulls(["open", "high", "low", "close"]).unique("ts", keep="last").sort("ts")
