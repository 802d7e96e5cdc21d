"""The interface every market data source shares, its errors, and small helpers.

A source turns one venue's API into frames in the BARS / TRADES schemas
(core.data.schema). History sources implement `fetch_bars` and, where the
venue has them, `fetch_trades`; both page through the venue's API themselves
and report progress through an optional callback.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import polars as pl

from core.data.schema import BARS, TIMEFRAMES, TRADES, conform
from core.errors import HftError, InvalidInput, RetryableError

Progress = Callable[[float, str], None]
"""progress(fraction in [0, 1], message): called while a long fetch pages through history."""


class SourceError(HftError):
    """A venue answered, but with an error retrying will not fix (bad symbol, no data).

    The message is for the user ("Binance refused the request"); `detail` keeps the
    technical cause (exception type, URL) for a folded-away "Details" section."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


class SourceUnavailable(RetryableError):
    """The venue could not be reached, or kept failing after the retries.

    The message is for the user ("Binance is not reachable from this server (no
    network?)"); `detail` keeps the technical cause."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


def unreachable(exc: BaseException) -> bool:
    """True when `exc` was caused by a host name that does not resolve or a refused
    connection: retrying in a few seconds will not help, so callers fail at once."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, socket.gaierror | ConnectionRefusedError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def count(n: int, noun: str) -> str:
    """ "1 bar", "2 bars", "1,440 bars": counts in job messages (never "1 bars")."""
    return f"{n:,} {noun if n == 1 else noun + 's'}"


def describe(exc: BaseException) -> str:
    """The technical detail of a failure: each exception of the chain, one per line."""
    lines: list[str] = []
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen and len(lines) < 6:
        seen.add(id(cause))
        lines.append(f"{type(cause).__name__}: {cause}"[:400])
        cause = cause.__cause__ or cause.__context__
    return "\n".join(lines)


class CircuitOpen(RetryableError):
    """The venue told us to back off (HTTP 418/429); calls are refused until the pause ends."""


class Source(Protocol):
    """One venue's history API."""

    venue: str

    def fetch_bars(
        self,
        symbol: str,
        timeframe: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        """Bars with open time in [since, until), oldest first, in the BARS schema."""
        ...

    def fetch_trades(
        self,
        symbol: str,
        since: datetime,
        until: datetime | None = None,
        progress: Progress | None = None,
    ) -> pl.DataFrame:
        """Trades with time in [since, until), oldest first, in the TRADES schema."""
        ...


def check_timeframe(timeframe: str) -> int:
    """Length of `timeframe` in seconds, or InvalidInput listing the valid ones."""
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        raise InvalidInput(
            f"unknown timeframe {timeframe!r}; choose one of {', '.join(TIMEFRAMES)}"
        ) from None


def to_ms(when: datetime) -> int:
    if when.tzinfo is None:
        raise InvalidInput(f"timestamp {when.isoformat()} has no time zone; pass a UTC datetime")
    return int(when.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def months_between(since: datetime, until: datetime) -> list[str]:
    """ "YYYY-MM" of every calendar month from `since` to `until`, both included."""
    out: list[str] = []
    y, m = since.year, since.month
    while (y, m) <= (until.year, until.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def parse_since(text: str) -> datetime:
    """'2024-01-01' or an ISO timestamp -> aware UTC datetime."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a date; use YYYY-MM-DD or an ISO timestamp") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def bars_frame(
    rows: Sequence[Sequence[Any]], venue: str, symbol: str, timeframe: str
) -> pl.DataFrame:
    """[[ms, open, high, low, close, volume], ...] -> BARS frame (sorted, unique by ts)."""
    cols: list[list[Any]] = [[], [], [], [], [], []]
    for row in rows:
        for i in range(6):
            cols[i].append(row[i])
    frame = pl.DataFrame(
        {
            "ts": pl.Series(cols[0], dtype=pl.Int64).cast(pl.Datetime("ms", "UTC")),
            "venue": pl.repeat(venue, len(rows), dtype=pl.String, eager=True),
            "symbol": pl.repeat(symbol, len(rows), dtype=pl.String, eager=True),
            "timeframe": pl.repeat(timeframe, len(rows), dtype=pl.String, eager=True),
            "open": pl.Series(cols[1], dtype=pl.Float64),
            "high": pl.Series(cols[2], dtype=pl.Float64),
            "low": pl.Series(cols[3], dtype=pl.Float64),
            "close": pl.Series(cols[4], dtype=pl.Float64),
            "volume": pl.Series(cols[5], dtype=pl.Float64),
        }
    )
    out = conform(frame, BARS, f"{venue} {symbol} bars")
    return out.unique(subset=["ts"], keep="last").sort("ts")


def trades_frame(trades: Sequence[dict[str, Any]], venue: str, symbol: str) -> pl.DataFrame:
    """ccxt trade structures -> TRADES frame (sorted by time, unique by trade id)."""
    frame = pl.DataFrame(
        {
            "ts": pl.Series([t["timestamp"] for t in trades], dtype=pl.Int64).cast(
                pl.Datetime("ms", "UTC")
            ),
            "venue": pl.repeat(venue, len(trades), dtype=pl.String, eager=True),
            "symbol": pl.repeat(symbol, len(trades), dtype=pl.String, eager=True),
            "price": pl.Series([t["price"] for t in trades], dtype=pl.Float64),
            "amount": pl.Series([t["amount"] for t in trades], dtype=pl.Float64),
            "side": pl.Series([t.get("side") for t in trades], dtype=pl.String),
            "trade_id": pl.Series(
                [None if t.get("id") is None else str(t["id"]) for t in trades], dtype=pl.String
            ),
        }
    )
    out = conform(frame, TRADES, f"{venue} {symbol} trades")
    return dedupe_trades(out)


def dedupe_trades(frame: pl.DataFrame) -> pl.DataFrame:
    """Drop repeated trades: same id (or, without an id, same time, price and amount)."""
    key = pl.coalesce(
        pl.col("trade_id"),
        pl.format("{}|{}|{}", pl.col("ts").dt.epoch("us"), pl.col("price"), pl.col("amount")),
    )
    return frame.with_columns(_k=key).unique(subset=["_k"], keep="first").drop("_k").sort("ts")


def empty_bars() -> pl.DataFrame:
    return pl.DataFrame(schema=BARS)


def empty_trades() -> pl.DataFrame:
    return pl.DataFrame(schema=TRADES)


class CircuitBreaker:
    """Opens when the venue says back off (HTTP 418/429); stays open for `cooldown_s`.

    Every later call fails fast with CircuitOpen until the pause has passed; a
    repeat offence doubles the pause, up to `max_cooldown_s`.
    """

    def __init__(self, cooldown_s: float = 30.0, max_cooldown_s: float = 600.0) -> None:
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._cooldown_s = cooldown_s
        self._open_until = 0.0
        self._lock = threading.Lock()
        self.trips = 0
        self.last_reason = ""

    def trip(self, reason: str, retry_after_s: float | None = None) -> None:
        with self._lock:
            pause = max(self._cooldown_s, retry_after_s or 0.0)
            self._open_until = time.monotonic() + pause
            self._cooldown_s = min(self._cooldown_s * 2, self.max_cooldown_s)
            self.trips += 1
            self.last_reason = reason

    def remaining_s(self) -> float:
        with self._lock:
            return max(0.0, self._open_until - time.monotonic())

    def check(self, venue: str) -> None:
        left = self.remaining_s()
        if left > 0:
            raise CircuitOpen(
                f"{venue} asked us to back off ({self.last_reason}); calls resume in {left:.0f} s"
            )

    def record_success(self) -> None:
        with self._lock:
            self._cooldown_s = self.base_cooldown_s


__all__ = [
    "CircuitBreaker",
    "CircuitOpen",
    "Progress",
    "Source",
    "SourceError",
    "SourceUnavailable",
    "bars_frame",
    "check_timeframe",
    "count",
    "dedupe_trades",
    "describe",
    "empty_bars",
    "empty_trades",
    "from_ms",
    "parse_since",
    "to_ms",
    "trades_frame",
    "unreachable",
]
