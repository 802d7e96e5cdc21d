"""History from Alpaca market data v2: stock and crypto bars, trades and quotes.

Stocks are asked at `/v2/stocks/{bars|trades|quotes}?symbols=`, crypto (a symbol with "/",
such as BTC/USD) at `/v1beta3/crypto/us/...`. Every answer holds at most `limit` items and a
`next_page_token`; the source asks again with `page_token=` until the token is null. Each
page is one request, counted through the meter before it is sent.

The user's key id and secret travel in the `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY`
headers, are read from `key()` for each request and scrubbed from every message and detail
this module raises. Stock history without an end stops 15 minutes ago: the free plan may not
query the most recent 15 minutes of SIP data. Daily bars are stored at 00:00 UTC of their
New York date (as Yahoo's and Alpha Vantage's are); other timestamps are UTC as sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import requests

from core.data.schema import BARS, TRADES, conform
from core.errors import InvalidInput
from core.ingest.base import Progress, SourceError, SourceUnavailable, count
from core.ingest.http import ProviderHttp, scrub
from core.ingest.meter import Meter
from core.ingest.venues import venue

VENUE = venue("alpaca")
TIMEFRAMES = {
    "1m": "1Min",
    "5m": "5Min",
    "15m": "15Min",
    "1h": "1Hour",
    "4h": "4Hour",
    "1d": "1Day",
}
PAGE_LIMIT = 10_000
"""Items per page: the most Alpaca sends in one answer."""
SIP_DELAY = timedelta(minutes=15)
NEW_YORK = ZoneInfo("America/New_York")
QUOTES = pl.Schema(
    {
        "ts": pl.Datetime("us", "UTC"),
        "venue": pl.String(),
        "symbol": pl.String(),
        "bid": pl.Float64(),
        "bid_size": pl.Float64(),
        "ask": pl.Float64(),
        "ask_size": pl.Float64(),
    }
)
"""Best bid and ask history (Alpaca quotes), one row per quote."""
_SIDES = {"B": "buy", "S": "sell"}


def key_pair(stored: str) -> tuple[str, str]:
    """A stored Alpaca key "KEY_ID:SECRET" -> (key id, secret). Alpaca's ids and secrets
    are letters and digits, so the colon is unambiguous. The error names neither part."""
    key_id, sep, secret = stored.strip().partition(":")
    if not sep or not key_id or not secret or ":" in secret:
        raise InvalidInput(
            "the stored Alpaca key must be KEY_ID:SECRET (the key id, a colon, then the "
            "secret); save it again on the API keys page"
        )
    return key_id, secret


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _stamp(value: Any) -> datetime:
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no time zone")
    return when.astimezone(UTC)


class AlpacaSource:
    """Bars, trades and quotes from Alpaca for one user's key; every request goes through
    `meter`. `key()` returns (key id, secret)."""

    venue = VENUE.name

    def __init__(
        self,
        key: Callable[[], tuple[str, str]],
        meter: Meter,
        base_url: str | None = None,
        session: requests.Session | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self._key = key
        self.meter = meter
        self.http = ProviderHttp(
            VENUE.title, meter, base_url or VENUE.url("data"), session, timeout_s
        )
        self._pages: dict[tuple[str, ...], tuple[pl.DataFrame, str | None]] = {}
        """Pages already fetched, by path and query: a job resumed after a quota pause
        does not ask for them again."""
        self._ends: dict[tuple[str, datetime], datetime] = {}
        """The end chosen for an open-ended fetch (no `until`), kept so that a resumed
        job asks for the same pages."""

    # --- one request ---------------------------------------------------------------------
    @property
    def requests(self) -> int:
        return self.http.requests

    def _get(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        key_id, secret = self._key()  # decrypted for this request only
        headers = {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret}
        reply = self.http.get(path, params, headers=headers, secrets=(key_id, secret))
        body = reply.body
        if reply.status != 200:
            said = body.get("message") if isinstance(body, dict) else None
            text = scrub(str(said), (key_id, secret))[:300] if said else reply.text
            raise _refusal(reply.status, text, params.get("symbols", "?"))
        if not isinstance(body, dict):
            raise SourceError("Alpaca sent something that is not a JSON object", reply.text)
        return body

    def _collect(
        self,
        kind: str,
        symbol: str,
        params: dict[str, str],
        since: datetime,
        end: datetime,
        progress: Progress | None,
        timeframe: str = "",
    ) -> pl.DataFrame:
        """Every page of `kind` (bars, trades, quotes) for `symbol`, following the tokens."""
        market = "/v1beta3/crypto/us" if "/" in symbol else "/v2/stocks"
        path = f"{market}/{kind}"
        query = {"symbols": symbol, **params, "start": rfc3339(since), "end": rfc3339(end)}
        query["limit"] = str(PAGE_LIMIT)
        frames: list[pl.DataFrame] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            ask = {**query, "page_token": token} if token else query
            memo = (path, *sorted(f"{k}={v}" for k, v in ask.items()))
            if memo not in self._pages:
                body = self._get(path, ask)
                self._pages[memo] = _page(body, kind, symbol, timeframe)
            frame, token = self._pages[memo]
            frames.append(frame)
            if progress is not None:
                got = count(sum(f.height for f in frames), kind[:-1])
                done = _fraction(frame, token, since, end)
                progress(done, f"{symbol} {kind}: page {len(frames)} ({got} so far)")
            if not token:
                break
            if token in seen:
                raise SourceError("Alpaca sent the same page token twice", f"{path} page_token")
            seen.add(token)
        out = pl.concat(frames)
        return out.filter((pl.col("ts") >= since) & (pl.col("ts") < end))

    def _range(
        self, symbol: str, since: datetime, until: datetime | None
    ) -> tuple[str, datetime, datetime]:
        """(symbol as Alpaca spells it, start, end) of a fetch; InvalidInput when bad."""
        if since.tzinfo is None or (until is not None and until.tzinfo is None):
            raise InvalidInput("since and until must be timezone-aware")
        if not symbol or any(c in symbol for c in " ,\t\n"):
            raise InvalidInput(f"{symbol[:40]!r} is not an Alpaca symbol (AAPL or BTC/USD)")
        if until is not None and until <= since:
            raise InvalidInput("until must be after since")
        if until is None:
            now = datetime.now(UTC)
            until = self._ends.setdefault(
                (symbol, since), now if "/" in symbol else now - SIP_DELAY
            )
        return symbol.upper(), since.astimezone(UTC), until.astimezone(UTC)

    # --- history -------------------------------------------------------------------------
    def fetch_bars(
        self,
        symbol: str,
        timeframe: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        if timeframe not in TIMEFRAMES:
            raise InvalidInput(
                f"Alpaca has no {timeframe} bars; use one of {', '.join(TIMEFRAMES)}"
            )
        symbol, lo, hi = self._range(symbol, since, until)
        if lo >= hi:
            return pl.DataFrame(schema=BARS)
        params = {"timeframe": TIMEFRAMES[timeframe]}
        out = self._collect("bars", symbol, params, lo, hi, progress, timeframe)
        return out.unique("ts", keep="last").sort("ts")

    def fetch_trades(
        self,
        symbol: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        symbol, lo, hi = self._range(symbol, since, until)
        if lo >= hi:
            return pl.DataFrame(schema=TRADES)
        out = self._collect("trades", symbol, {}, lo, hi, progress)
        return out.unique("trade_id", keep="first", maintain_order=True).sort("ts")

    def fetch_quotes(
        self,
        symbol: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        """Best bid and ask history in the QUOTES schema, oldest first."""
        symbol, lo, hi = self._range(symbol, since, until)
        if lo >= hi:
            return pl.DataFrame(schema=QUOTES)
        return self._collect("quotes", symbol, {}, lo, hi, progress).sort("ts")


def _fraction(frame: pl.DataFrame, token: str | None, since: datetime, end: datetime) -> float:
    """How far through [since, end) a page's last row is (1.0 on the last page)."""
    last = frame["ts"].max() if frame.height else None
    if not token or not isinstance(last, datetime):
        return 1.0 if not token else 0.0
    span = (end - since).total_seconds() or 1.0
    return min(1.0, max(0.0, (last - since).total_seconds() / span))


def _refusal(status: int, text: str, symbol: str) -> Exception:
    """The error for an Alpaca answer other than 200 and 429."""
    low = text.lower()
    if status == 403 and any(w in low for w in ("subscription", "sip", "permit")):
        return SourceError(f"your Alpaca plan does not include this data ({text})", text)
    if status in (401, 403):
        return SourceError(
            "Alpaca refused the API key (key id or secret wrong, or not a market data key); "
            "check it on the API keys page",
            text,
        )
    if status in (400, 404, 422):
        return SourceError(f"Alpaca rejected the request for {symbol}: {text}", text)
    if status >= 500:
        return SourceUnavailable(f"Alpaca answered HTTP {status}; try again later", text)
    return SourceError(f"Alpaca answered HTTP {status}", text)


def _page(
    body: dict[str, Any], kind: str, symbol: str, timeframe: str
) -> tuple[pl.DataFrame, str | None]:
    """One answer -> (rows of `symbol` as a frame, next page token)."""
    token = body.get("next_page_token")
    items = body.get(kind)
    if isinstance(items, dict):
        items = items.get(symbol, [])
    if items is None:
        items = []
    if not isinstance(items, list) or not (token is None or isinstance(token, str)):
        raise SourceError(
            f"Alpaca sent a malformed {kind} page for {symbol}", f"fields: {sorted(body)[:6]}"
        )
    try:
        if kind == "bars":
            frame = _bars(items, symbol, timeframe)
        elif kind == "trades":
            frame = _trades(items, symbol)
        else:
            frame = _quotes(items, symbol)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise SourceError(
            f"Alpaca sent a malformed {kind[:-1]} for {symbol}", f"{type(exc).__name__}: {exc}"
        ) from None
    return frame, token or None


def _columns(n: int, symbol: str, ts: list[datetime]) -> dict[str, pl.Series]:
    return {
        "ts": pl.Series(ts, dtype=pl.Datetime("us", "UTC")),
        "venue": pl.Series([VENUE.name] * n, dtype=pl.String),
        "symbol": pl.Series([symbol] * n, dtype=pl.String),
    }


def _floats(items: list[dict[str, Any]], field: str) -> pl.Series:
    return pl.Series([float(i[field]) for i in items], dtype=pl.Float64)


def _bars(items: list[dict[str, Any]], symbol: str, timeframe: str) -> pl.DataFrame:
    ts = [_stamp(b["t"]) for b in items]
    if timeframe == "1d":  # the session's New York date, at 00:00 UTC
        ts = [datetime.combine(t.astimezone(NEW_YORK).date(), datetime.min.time(), UTC) for t in ts]
    frame = pl.DataFrame(
        {
            **_columns(len(items), symbol, ts),
            "timeframe": pl.Series([timeframe] * len(items), dtype=pl.String),
            **{
                name: _floats(items, f)
                for name, f in zip(("open", "high", "low", "close", "volume"), "ohlcv", strict=True)
            },
        }
    )
    return conform(frame, BARS, f"alpaca {symbol} bars")


def _trades(items: list[dict[str, Any]], symbol: str) -> pl.DataFrame:
    ids = []
    for t in items:  # a stock trade id is unique per exchange: keep the exchange with it
        ids.append(f"{t['x']}-{t['i']}" if t.get("x") else str(t["i"]))
    frame = pl.DataFrame(
        {
            **_columns(len(items), symbol, [_stamp(t["t"]) for t in items]),
            "price": _floats(items, "p"),
            "amount": _floats(items, "s"),
            "side": pl.Series([_SIDES.get(t.get("tks", "")) for t in items], dtype=pl.String),
            "trade_id": pl.Series(ids, dtype=pl.String),
        }
    )
    return conform(frame, TRADES, f"alpaca {symbol} trades")


def _quotes(items: list[dict[str, Any]], symbol: str) -> pl.DataFrame:
    frame = pl.DataFrame(
        {
            **_columns(len(items), symbol, [_stamp(q["t"]) for q in items]),
            "bid": _floats(items, "bp"),
            "bid_size": _floats(items, "bs"),
            "ask": _floats(items, "ap"),
            "ask_size": _floats(items, "as"),
        }
    )
    return conform(frame, QUOTES, f"alpaca {symbol} quotes")
