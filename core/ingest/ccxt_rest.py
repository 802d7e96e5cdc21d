"""History over ccxt's REST clients for Binance, Coinbase and Kraken.

Pages through `fetch_ohlcv` / `fetch_trades`, lets ccxt's own rate limiter
space the calls, retries with exponential backoff on NetworkError (which
includes RateLimitExceeded), never retries an ExchangeError, and opens a
circuit breaker when the venue answers HTTP 418 or 429.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import ccxt
import polars as pl

from core.errors import InvalidInput
from core.ingest.base import (
    CircuitBreaker,
    CircuitOpen,
    Progress,
    SourceError,
    SourceUnavailable,
    bars_frame,
    check_timeframe,
    count,
    describe,
    empty_bars,
    empty_trades,
    to_ms,
    trades_frame,
    unreachable,
)
from core.ingest.meter import Meter
from core.ingest.venues import Paging, ccxt_venues

T = TypeVar("T")


VenueRules = Paging
"""How one venue pages its REST history (kept under its old name)."""

VENUES: dict[str, Paging] = {
    name: v.paging for name, v in ccxt_venues().items() if v.paging is not None
}
"""The real venues this source reaches, with their paging rules from the registry."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay_s, self.base_delay_s * 2**attempt))


def make_exchange(venue: str, urls: dict[str, Any] | None = None, **config: Any) -> Any:
    """A sync ccxt exchange with the rate limiter on; `urls` overrides endpoints (loopback)."""
    if venue not in VENUES:
        raise InvalidInput(f"unknown venue {venue!r}; choose one of {', '.join(VENUES)}")
    options: dict[str, Any] = {"enableRateLimit": True, "timeout": 10_000, **config}
    if venue == "binance":
        opts = dict(options.get("options", {}))
        opts.setdefault("fetchMarkets", {"types": ["spot"]})
        options["options"] = opts
    if urls:
        options["urls"] = urls
    return getattr(ccxt, venue)(options)


class CcxtRestSource:
    """History of one venue through ccxt's REST client (one instance per venue)."""

    def __init__(
        self,
        venue: str,
        exchange: Any | None = None,
        *,
        retry: RetryPolicy | None = None,
        breaker: CircuitBreaker | None = None,
        sleep: Callable[[float], None] = time.sleep,
        name: str | None = None,
        meter: Meter | None = None,
    ) -> None:
        """`venue` is the ccxt exchange id; `name` the venue written into frames (default: id).
        `meter` counts every HTTP request before ccxt sends it (public venues: per IP)."""
        if venue not in VENUES:
            raise InvalidInput(f"unknown venue {venue!r}; choose one of {', '.join(VENUES)}")
        self.venue = name or venue
        self.exchange = exchange if exchange is not None else make_exchange(venue)
        display = str(getattr(self.exchange, "name", "") or venue)
        # what users read in messages: "Binance", or "demo (Binance API)" for a named copy
        self.label = display if self.venue == venue else f"{self.venue} ({display} API)"
        self.rules = VENUES[venue]
        self.retry = retry or RetryPolicy()
        self.breaker = breaker or CircuitBreaker()
        self._sleep = sleep
        self._lock = threading.Lock()  # a ccxt instance is not thread safe
        self.last_status: int | None = None
        self._retry_after: float | None = None
        self.calls = 0
        self.retries = 0
        self.requests = 0
        """HTTP requests ccxt sent for this source (markets included)."""
        self.meter = meter
        self._hook_responses()
        self._hook_requests()

    def _hook_requests(self) -> None:
        """Every HTTP request passes here first: counted, and refused at the quota's limit."""
        original = self.exchange.fetch

        def fetch(*args: Any, **kwargs: Any) -> Any:
            if self.meter is not None:
                self.meter.take()  # QuotaPause: not sent
            self.requests += 1
            return original(*args, **kwargs)

        self.exchange.fetch = fetch

    def _hook_responses(self) -> None:
        """Record each HTTP status through ccxt's on_rest_response hook (breaker input)."""
        original = self.exchange.on_rest_response

        def on_rest_response(
            code: int,
            reason: str,
            url: str,
            method: str,
            headers: Any,
            body: Any,
            request_headers: Any,
            request_body: Any,
        ) -> Any:
            self.last_status = int(code)
            retry_after = None
            if headers is not None:
                raw = headers.get("Retry-After") or headers.get("retry-after")
                try:
                    retry_after = float(raw) if raw is not None else None
                except ValueError:
                    retry_after = None
            self._retry_after = retry_after
            return original(code, reason, url, method, headers, body, request_headers, request_body)

        self.exchange.on_rest_response = on_rest_response

    # --- one call, with retry and breaker -------------------------------------------------
    def call(self, what: str, fn: Callable[[], T]) -> T:
        with self._lock:
            for attempt in range(self.retry.attempts):
                self.breaker.check(self.venue)
                self.last_status = None
                self.calls += 1
                try:
                    result = fn()
                except ccxt.BadSymbol as exc:
                    raise InvalidInput(f"{self.venue}: {what}: unknown symbol ({exc})") from exc
                except ccxt.NetworkError as exc:
                    if self.last_status in (418, 429):
                        self.breaker.trip(f"HTTP {self.last_status}", self._retry_after)
                        if self.meter is not None:
                            self.meter.exhausted(self._retry_after)
                        raise CircuitOpen(
                            f"{self.venue} answered HTTP {self.last_status} to {what}; "
                            f"pausing calls for {self.breaker.remaining_s():.0f} s"
                        ) from exc
                    if unreachable(exc):
                        # a name that does not resolve or a refused connection: no retries
                        raise SourceUnavailable(
                            f"{self.label} is not reachable from this server (no network?)",
                            describe(exc),
                        ) from exc
                    if attempt + 1 >= self.retry.attempts:
                        raise SourceUnavailable(
                            f"{self.label} did not answer ({self.retry.attempts} attempts); "
                            "check the server's network and try again later",
                            describe(exc),
                        ) from exc
                    self.retries += 1
                    self._sleep(self.retry.delay(attempt))
                    continue
                except ccxt.ExchangeError as exc:
                    raise SourceError(
                        f"{self.label} refused the request ({what})", describe(exc)
                    ) from exc
                except ccxt.BaseError as exc:
                    raise SourceError(f"{self.label}: {what} failed", describe(exc)) from exc
                self.breaker.record_success()
                return result
        raise AssertionError("unreachable")

    def load_markets(self) -> dict[str, Any]:
        markets: dict[str, Any] = self.call("load_markets", self.exchange.load_markets)
        return markets

    def _check_symbol(self, symbol: str) -> None:
        markets = self.load_markets()
        if symbol not in markets:
            raise InvalidInput(
                f"{self.venue} has no market {symbol!r} (symbols look like 'BTC/USDT')"
            )

    # --- bars --------------------------------------------------------------------------------
    def fetch_bars(
        self,
        symbol: str,
        timeframe: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        step_ms = check_timeframe(timeframe) * 1000
        start = to_ms(since)
        end = to_ms(until or datetime.now(UTC))
        if end <= start:
            raise InvalidInput(f"empty time range: since {since} is not before until {until}")
        self._check_symbol(symbol)
        cursor = start - start % step_ms
        rows: list[list[Any]] = []
        limit = self.rules.ohlcv_limit
        while cursor < end:
            params: dict[str, Any] = {}
            if self.rules.ohlcv_until:
                params["until"] = min(end - 1, cursor + limit * step_ms - 1)
            page = self.call(
                f"fetch_ohlcv({symbol}, {timeframe})",
                lambda c=cursor, p=params: self.exchange.fetch_ohlcv(  # type: ignore[misc]
                    symbol, timeframe, since=c, limit=limit, params=p
                ),
            )
            page = [r for r in page if cursor <= r[0] < end]
            if not page:
                # nothing in this stretch (a halt, or before the listing): skip one page ahead
                if not self.rules.ohlcv_until:
                    break
                cursor += limit * step_ms
            else:
                rows.extend(page)
                cursor = int(page[-1][0]) + step_ms
            if progress is not None:
                done = min(1.0, (cursor - start) / (end - start))
                progress(done, f"{symbol} {timeframe}: {count(len(rows), 'bar')} fetched")
        if not rows:
            return empty_bars()
        return bars_frame(rows, self.venue, symbol, timeframe)

    # --- trades ------------------------------------------------------------------------------
    def fetch_trades(
        self,
        symbol: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        start = to_ms(since)
        end = to_ms(until or datetime.now(UTC))
        if end <= start:
            raise InvalidInput(f"empty time range: since {since} is not before until {until}")
        self._check_symbol(symbol)
        window = self.rules.trades_window_ms
        limit = self.rules.trades_limit
        seen: set[str] = set()
        out: list[dict[str, Any]] = []
        cursor = start
        while cursor < end:
            window_end = end if window is None else min(end, cursor + window)
            params = {"until": window_end - 1} if window is not None else {}
            page = self.call(
                f"fetch_trades({symbol})",
                lambda c=cursor, p=params: self.exchange.fetch_trades(  # type: ignore[misc]
                    symbol, since=c, limit=limit, params=p
                ),
            )
            full = len(page) >= limit
            page = [t for t in page if cursor <= t["timestamp"] < end]
            fresh = [t for t in page if str(t["id"]) not in seen]
            for t in fresh:
                seen.add(str(t["id"]))
            out.extend(fresh)
            last = max((int(t["timestamp"]) for t in page), default=cursor)
            if full and fresh:
                cursor = last  # same-millisecond trades are de-duplicated by id
            elif full:
                cursor = last + 1
            elif window is not None:
                cursor = window_end
            else:
                break
            if progress is not None:
                done = min(1.0, (cursor - start) / (end - start))
                progress(done, f"{symbol}: {count(len(out), 'trade')} fetched")
        if not out:
            return empty_trades()
        return trades_frame(out, self.venue, symbol)

    def close(self) -> None:
        session = getattr(self.exchange, "session", None)
        if session is not None:
            session.close()


def source_for(
    venue: str,
    urls: dict[str, Any] | None = None,
    name: str | None = None,
    meter: Meter | None = None,
) -> CcxtRestSource:
    return CcxtRestSource(venue, make_exchange(venue, urls), name=name, meter=meter)


__all__ = ["VENUES", "CcxtRestSource", "RetryPolicy", "VenueRules", "make_exchange", "source_for"]
