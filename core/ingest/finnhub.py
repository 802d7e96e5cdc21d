"""History and quotes from Finnhub with the user's own key.

Candles come from `/stock/candle` (a ticker such as AAPL) or `/crypto/candle` (an
`EXCHANGE:PAIR` symbol such as BINANCE:BTCUSDT) as parallel arrays `t, o, h, l, c, v` with a
status `s` ("ok" or "no_data"). Intraday ranges are asked in windows of `CHUNK_DAYS` days, one
request each; daily candles in one request. Many plans lack candles: Finnhub answers 403
and the job fails with a message saying the plan does not include them. `quote()` reads the
latest price (`/quote`) for a live panel.

The key travels in the `X-Finnhub-Token` header (documented next to the `token` query
parameter; a header keeps it out of URLs and their logs). It is read from `key()` for each
request and scrubbed from every message and detail this module raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl
import requests

from core.data.schema import BARS, conform
from core.errors import InvalidInput
from core.ingest.base import Progress, SourceError, SourceUnavailable, count
from core.ingest.http import ProviderHttp, scrub
from core.ingest.meter import Meter
from core.ingest.venues import venue

VENUE = venue("finnhub")
RESOLUTIONS = {"1m": "1", "5m": "5", "15m": "15", "1h": "60", "1d": "D"}
CHUNK_DAYS = 30
"""Intraday candles are asked this many days at a time."""
_QUOTE_FIELDS = {
    "c": "last",
    "d": "change",
    "dp": "change_pct",
    "h": "high",
    "l": "low",
    "o": "open",
    "pc": "prev_close",
}
"""Finnhub's quote fields -> the names `quote()` returns."""


def windows(timeframe: str, since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """The [start, end) windows a bars fetch asks for, one request each."""
    if timeframe == "1d":
        return [(since, until)]
    out: list[tuple[datetime, datetime]] = []
    start = since
    while start < until:
        end = min(until, start + timedelta(days=CHUNK_DAYS))
        out.append((start, end))
        start = end
    return out


class FinnhubSource:
    """Candles and quotes from Finnhub for one user's key; every request goes through
    `meter`."""

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
        self._pages: dict[tuple[str, ...], pl.DataFrame | None] = {}
        """Windows already fetched (None: Finnhub said no_data): a job resumed after a
        quota pause does not ask for them again."""
        self._ends: dict[tuple[str, datetime], datetime] = {}
        """The end chosen for an open-ended fetch, kept so a resumed job asks the same."""

    # --- one request ---------------------------------------------------------------------
    @property
    def requests(self) -> int:
        return self.http.requests

    def _get(self, path: str, params: dict[str, str], what: str) -> Any:
        key = self._key()  # decrypted for this request only
        reply = self.http.get(path, params, headers={"X-Finnhub-Token": key}, secrets=(key,))
        body, status = reply.body, reply.status
        said = body.get("error") if isinstance(body, dict) else None
        text = scrub(str(said), (key,))[:300] if said else reply.text
        if status == 401:
            raise SourceError("Finnhub refused the API key; check it on the API keys page", text)
        if status == 403:
            raise SourceError(f"your Finnhub plan does not include {what} ({text})", text)
        if status >= 500:
            raise SourceUnavailable(f"Finnhub answered HTTP {status}; try again later", text)
        if status != 200:
            raise SourceError(f"Finnhub answered HTTP {status}", text)
        if body is None:
            raise SourceError("Finnhub sent something that is not JSON", text)
        if said:
            raise SourceError(f"Finnhub refused the request: {text}", text)
        return body

    def fetch_bars(
        self,
        symbol: str,
        timeframe: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        if timeframe not in RESOLUTIONS:
            raise InvalidInput(
                f"Finnhub has no {timeframe} candles; use one of {', '.join(RESOLUTIONS)}"
            )
        if since.tzinfo is None or (until is not None and until.tzinfo is None):
            raise InvalidInput("since and until must be timezone-aware")
        if not symbol or any(c in symbol for c in " ,\t\n"):
            raise InvalidInput(f"{symbol[:40]!r} is not a Finnhub symbol (AAPL or BINANCE:BTCUSDT)")
        if until is not None and until <= since:
            raise InvalidInput("until must be after since")
        lo = since.astimezone(UTC)
        hi = (until or self._ends.setdefault((symbol, since), datetime.now(UTC))).astimezone(UTC)
        frames: list[pl.DataFrame] = []
        spans = windows(timeframe, lo, hi)
        for i, (start, end) in enumerate(spans):
            frame = self._window(symbol, timeframe, start, end)
            if frame is not None:
                frames.append(frame)
            if progress is not None:
                got = sum(f.height for f in frames)
                progress(
                    (i + 1) / len(spans),
                    f"{symbol} {timeframe}: {start:%Y-%m-%d} ({count(got, 'bar')} so far)",
                )
        if not frames:
            raise SourceError(
                f"Finnhub has no bars for {symbol} {timeframe} from {lo:%Y-%m-%d} to "
                f"{hi:%Y-%m-%d} (it answered no_data: unknown symbol, or none in that range)"
            )
        out = pl.concat(frames).filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
        return out.unique("ts", keep="last").sort("ts")

    def _window(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> pl.DataFrame | None:
        path = "/crypto/candle" if ":" in symbol else "/stock/candle"
        params = {
            "symbol": symbol,
            "resolution": RESOLUTIONS[timeframe],
            "from": str(math.floor(start.timestamp())),
            "to": str(math.ceil(end.timestamp()) - 1),  # `to` is inclusive
        }
        memo = (path, *params.values())
        if memo not in self._pages:
            body = self._get(path, params, "candles")
            self._pages[memo] = _candles(body, symbol, timeframe)
        return self._pages[memo]

    def fetch_trades(
        self,
        symbol: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        raise InvalidInput("Finnhub trade history is not available here; fetch bars instead")

    # --- latest price --------------------------------------------------------------------
    def quote(self, symbol: str) -> dict[str, Any]:
        """The latest quote: symbol, last, change, change_pct, high, low, open, prev_close
        (floats; change and change_pct None when Finnhub has none) and ts (UTC)."""
        if not symbol or any(c in symbol for c in " ,\t\n"):
            raise InvalidInput(f"{symbol[:40]!r} is not a Finnhub symbol")
        body = self._get("/quote", {"symbol": symbol}, "quotes")
        if not isinstance(body, dict):
            raise SourceError("Finnhub sent an unexpected quote", str(type(body)))
        try:
            out: dict[str, Any] = {"symbol": symbol}
            for field, name in _QUOTE_FIELDS.items():
                value = body[field]
                out[name] = None if value is None else float(value)
            stamp = int(body["t"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError(
                f"Finnhub sent a malformed quote for {symbol}", f"{type(exc).__name__}: {exc}"
            ) from None
        if stamp == 0 and not out["last"]:
            raise SourceError(f"Finnhub has no quote for {symbol} (unknown symbol?)")
        out["ts"] = datetime.fromtimestamp(stamp, tz=UTC)
        return out


def _candles(body: Any, symbol: str, timeframe: str) -> pl.DataFrame | None:
    """A Finnhub candle answer -> BARS rows in UTC, or None for `s: "no_data"`."""
    if not isinstance(body, dict):
        raise SourceError("Finnhub sent an unexpected candle answer", str(type(body)))
    status = body.get("s")
    if status == "no_data":
        return None
    if status != "ok":
        raise SourceError(
            f"Finnhub sent candles for {symbol} with status {str(status)[:40]!r}",
            f"fields: {sorted(body)[:8]}",
        )
    try:
        cols = {f: list(body[f]) for f in ("t", "o", "h", "l", "c", "v")}
        n = len(cols["t"])
        if any(len(v) != n for v in cols.values()):
            raise ValueError("the t, o, h, l, c, v arrays differ in length")
        ts = [datetime.fromtimestamp(int(t), tz=UTC) for t in cols["t"]]
        if timeframe == "1d":  # the candle's date at 00:00 UTC
            ts = [datetime.combine(t.date(), datetime.min.time(), UTC) for t in ts]
        frame = pl.DataFrame(
            {
                "ts": pl.Series(ts, dtype=pl.Datetime("us", "UTC")),
                "venue": pl.Series([VENUE.name] * n, dtype=pl.String),
                "symbol": pl.Series([symbol] * n, dtype=pl.String),
                "timeframe": pl.Series([timeframe] * n, dtype=pl.String),
                "open": pl.Series([float(x) for x in cols["o"]], dtype=pl.Float64),
                "high": pl.Series([float(x) for x in cols["h"]], dtype=pl.Float64),
                "low": pl.Series([float(x) for x in cols["l"]], dtype=pl.Float64),
                "close": pl.Series([float(x) for x in cols["c"]], dtype=pl.Float64),
                "volume": pl.Series([float(x) for x in cols["v"]], dtype=pl.Float64),
            }
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise SourceError(
            f"Finnhub sent malformed candles for {symbol}", f"{type(exc).__name__}: {exc}"
        ) from None
    return conform(frame, BARS, f"finnhub {symbol}")
