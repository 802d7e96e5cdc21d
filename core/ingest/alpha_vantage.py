"""History from Alpha Vantage: daily and intraday time series with the user's own key.

Intraday history is asked month by month (`TIME_SERIES_INTRADAY&month=YYYY-MM`), one request
per month; daily history is one request (`compact`, the last 100 days, or `full`, which some
plans lack). Alpha Vantage answers its limits with HTTP 200 and a JSON `Note` or
`Information` field instead of an error status: those are detected here, the day's budget is
marked spent, and the job pauses. Timestamps are US/Eastern in the payload; bars are stored
in UTC, and a daily bar at 00:00 UTC of its exchange date (as Yahoo's are).

The key travels as the `apikey` query parameter. It is read from `key()` for each request and
scrubbed from every message and detail this module raises.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import requests

from core.data.schema import BARS, conform
from core.errors import InvalidInput
from core.ingest.base import Progress, SourceError, count, months_between
from core.ingest.http import ProviderHttp, scrub
from core.ingest.meter import Meter
from core.ingest.venues import venue

VENUE = venue("alpha_vantage")
INTERVALS = {"1m": "1min", "5m": "5min", "15m": "15min", "1h": "60min"}
COMPACT_DAYS = 100
_THROTTLE_WORDS = ("rate limit", "call frequency", "requests per day", "per minute")


class AlphaVantageSource:
    """Bars from Alpha Vantage for one user's key; every request goes through `meter`."""

    venue = VENUE.name

    def __init__(
        self,
        key: Callable[[], str],
        meter: Meter,
        base_url: str | None = None,
        session: requests.Session | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._key = key
        self.meter = meter
        self.http = ProviderHttp(
            VENUE.title, meter, base_url or VENUE.url("rest"), session, timeout_s
        )
        self._pages: dict[tuple[str, ...], pl.DataFrame] = {}
        """Answers already fetched by this source: a job resumed after a quota pause does
        not ask for them again."""

    # --- one request ---------------------------------------------------------------------
    @property
    def requests(self) -> int:
        return self.http.requests

    def _get(self, params: dict[str, str]) -> dict[str, Any]:
        key = self._key()  # decrypted for this request only
        reply = self.http.get("/query", {**params, "apikey": key}, secrets=(key,))
        if reply.status != 200:
            raise SourceError(f"Alpha Vantage answered HTTP {reply.status}", reply.text)
        if reply.body is None:
            raise SourceError("Alpha Vantage sent something that is not JSON", reply.text)
        if not isinstance(reply.body, dict):
            raise SourceError("Alpha Vantage sent an unexpected answer", str(type(reply.body)))
        return self._check(reply.body, params, key)

    def _check(self, body: dict[str, Any], params: dict[str, str], key: str) -> dict[str, Any]:
        notice = body.get("Note") or body.get("Information")
        if isinstance(notice, str):
            text = notice.lower()
            # throttle notices also advertise the premium plans: check them first
            if any(w in text for w in _THROTTLE_WORDS):
                raise self.meter.exhausted(None)
            if "premium" in text:
                raise SourceError(
                    f"your Alpha Vantage plan does not include {params['function']} with these "
                    "options (a premium feature)",
                    scrub(notice[:300], (key,)),
                )
            raise SourceError("Alpha Vantage refused the request", scrub(notice[:300], (key,)))
        error = body.get("Error Message")
        if isinstance(error, str):
            if "apikey" in error.lower():
                raise SourceError(
                    "Alpha Vantage refused the API key; check it on the API keys page",
                    scrub(error[:300], (key,)),
                )
            raise SourceError(
                f"Alpha Vantage has no data for {params.get('symbol', '?')} "
                f"(unknown symbol or function)",
                scrub(error[:300], (key,)),
            )
        return body

    # --- history -------------------------------------------------------------------------
    def fetch_bars(
        self,
        symbol: str,
        timeframe: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        if timeframe != "1d" and timeframe not in INTERVALS:
            raise InvalidInput(
                f"Alpha Vantage has no {timeframe} bars; use one of 1m, 5m, 15m, 1h, 1d"
            )
        until = until or datetime.now(UTC)
        if since.tzinfo is None or until.tzinfo is None:
            raise InvalidInput("since and until must be timezone-aware")
        if timeframe == "1d":
            frames = [self._daily(symbol, since)]
        else:
            frames = []
            months = months_between(since, until)
            for i, month in enumerate(months):
                frames.append(self._intraday(symbol, timeframe, month))
                if progress is not None:
                    got = sum(f.height for f in frames)
                    progress(
                        (i + 1) / len(months),
                        f"{symbol} {timeframe}: {month} ({count(got, 'bar')} so far)",
                    )
        lo = since.astimezone(UTC)
        hi = until.astimezone(UTC)
        out = pl.concat(frames) if frames else pl.DataFrame(schema=BARS)
        out = out.filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
        out = out.unique("ts", keep="last").sort("ts")
        if progress is not None and timeframe == "1d":
            progress(1.0, f"{symbol} 1d: {count(out.height, 'bar')} fetched")
        return out

    def _page(self, params: dict[str, str], field: str, timeframe: str) -> pl.DataFrame:
        memo = tuple(params.values())
        if memo not in self._pages:
            body = self._get(params)
            self._pages[memo] = _bars(body, field, params["symbol"], timeframe)
        return self._pages[memo]

    def _daily(self, symbol: str, since: datetime) -> pl.DataFrame:
        recent = (datetime.now(UTC).date() - since.date()).days <= COMPACT_DAYS
        params = {
            "function": "TIME_SERIES_DAILY",
            "symbol": symbol,
            "outputsize": "compact" if recent else "full",
        }
        return self._page(params, "Time Series (Daily)", "1d")

    def _intraday(self, symbol: str, timeframe: str, month: str) -> pl.DataFrame:
        interval = INTERVALS[timeframe]
        params = {
            "function": "TIME_SERIES_INTRADAY",
            "symbol": symbol,
            "interval": interval,
            "month": month,
            "outputsize": "full",
            "extended_hours": "false",
        }
        return self._page(params, f"Time Series ({interval})", timeframe)

    def fetch_trades(
        self,
        symbol: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        raise InvalidInput("Alpha Vantage has no trade history; fetch bars instead")


def _bars(body: dict[str, Any], field: str, symbol: str, timeframe: str) -> pl.DataFrame:
    """An Alpha Vantage time series object -> BARS rows in UTC."""
    series = body.get(field)
    meta = body.get("Meta Data", {})
    if not isinstance(series, dict):
        raise SourceError(
            f"Alpha Vantage sent no {field!r} for {symbol}", f"fields: {sorted(body)[:6]}"
        )
    zone_name = "US/Eastern"
    if isinstance(meta, dict):
        for k, v in meta.items():
            if k.endswith("Time Zone") and isinstance(v, str):
                zone_name = v
    try:
        zone = ZoneInfo(zone_name)
    except (KeyError, ValueError):
        raise SourceError(f"Alpha Vantage sent an unknown time zone {zone_name!r}") from None
    rows: dict[str, list[Any]] = {k: [] for k in ("ts", "open", "high", "low", "close", "volume")}
    try:
        for stamp, v in series.items():
            if timeframe == "1d":
                d = date.fromisoformat(stamp)
                ts = datetime(d.year, d.month, d.day, tzinfo=UTC)
            else:
                ts = datetime.fromisoformat(stamp).replace(tzinfo=zone).astimezone(UTC)
            rows["ts"].append(ts)
            rows["open"].append(float(v["1. open"]))
            rows["high"].append(float(v["2. high"]))
            rows["low"].append(float(v["3. low"]))
            rows["close"].append(float(v["4. close"]))
            rows["volume"].append(float(v["5. volume"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(
            f"Alpha Vantage sent a malformed bar for {symbol}", f"{type(exc).__name__}: {exc}"
        ) from None
    n = len(rows["ts"])
    frame = pl.DataFrame(
        {
            "ts": pl.Series(rows["ts"], dtype=pl.Datetime("us", "UTC")),
            "venue": [VENUE.name] * n,
            "symbol": [symbol] * n,
            "timeframe": [timeframe] * n,
            **{k: pl.Series(rows[k], dtype=pl.Float64) for k in ("open", "high", "low", "close")},
            "volume": pl.Series(rows["volume"], dtype=pl.Float64),
        }
    )
    return conform(frame, BARS, f"alpha_vantage {symbol}")
