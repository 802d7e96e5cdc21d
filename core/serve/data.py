"""What the REST API and the Flight service hand out: typed requests, Arrow answers.

Both servers parse their input into these requests and call the functions below, so a bar
read, a query or the coverage is the same answer whichever door it came through. Nothing
here knows about HTTP, Flight or tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from core.data.schema import TIMEFRAMES
from core.errors import InvalidInput

if TYPE_CHECKING:
    from core.engine import Engine
    from core.sql import QueryResult

MAX_LAST = 10_000_000
BARS_FIELDS = ("symbol", "venue", "timeframe", "start", "end", "last")


def _text(params: Mapping[str, object], name: str, default: str | None = None) -> str | None:
    value = params.get(name, default)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be text, got {type(value).__name__}")
    value = value.strip()
    if len(value) > 200:
        raise InvalidInput(f"{name} is longer than 200 characters")
    return value or default


@dataclass(frozen=True, slots=True)
class BarsRequest:
    """One series' bars: `start <= ts < end` (ISO times, UTC when no zone), or the newest
    `last` bars; coarser timeframes are resampled from the finest stored data."""

    symbol: str
    venue: str | None = None
    timeframe: str = "1m"
    start: str | None = None
    end: str | None = None
    last: int | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> BarsRequest:
        """From query parameters or a JSON ticket; unknown names are refused by name."""
        unknown = sorted(set(params) - set(BARS_FIELDS) - {"format"})
        if unknown:
            raise InvalidInput(
                f"unknown parameter {', '.join(unknown)}; use {', '.join(BARS_FIELDS)}"
            )
        symbol = _text(params, "symbol")
        if symbol is None:
            raise InvalidInput("symbol is required, e.g. symbol=BTC/USDT")
        timeframe = _text(params, "timeframe", "1m") or "1m"
        if timeframe not in TIMEFRAMES:
            raise InvalidInput(
                f"unknown timeframe {timeframe!r}; use one of {', '.join(TIMEFRAMES)}"
            )
        return cls(
            symbol=symbol,
            venue=_text(params, "venue"),
            timeframe=timeframe,
            start=_text(params, "start"),
            end=_text(params, "end"),
            last=_last(params.get("last")),
        )

    def as_params(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in BARS_FIELDS if getattr(self, k) is not None}


def _last(value: object) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidInput("last must be a whole number of bars")
    try:
        n = int(value) if isinstance(value, (int, str)) else int(str(value))
    except ValueError:
        raise InvalidInput(f"last must be a whole number of bars, got {value!r}") from None
    if not 1 <= n <= MAX_LAST:
        raise InvalidInput(f"last must be between 1 and {MAX_LAST:,}")
    return n


def bars(engine: Engine, req: BarsRequest) -> pl.DataFrame:
    """The bars `req` names (ts, venue, symbol, timeframe, open, high, low, close, volume);
    REST encodes the frame's Arrow, Flight streams it, the regimes route fits it."""
    return engine.store.get_bars(
        req.symbol, req.start, req.end, req.timeframe, req.venue, last=req.last
    )


def series(engine: Engine) -> pa.Table:
    """The coverage: one row per stored series, with where its data comes from."""
    return engine.coverage().to_arrow()


@dataclass(frozen=True, slots=True)
class SqlRequest:
    sql: str
    timeout_s: float | None = None
    max_rows: int | None = None

    @classmethod
    def from_json(cls, body: object) -> SqlRequest:
        if not isinstance(body, Mapping):
            raise InvalidInput('send a JSON object: {"sql": "SELECT ...", "max_rows": 1000}')
        unknown = sorted(set(body) - {"sql", "timeout_s", "max_rows"})
        if unknown:
            raise InvalidInput(f"unknown field {', '.join(unknown)}; use sql, timeout_s, max_rows")
        sql = body.get("sql")
        if not isinstance(sql, str) or not sql.strip():
            raise InvalidInput("sql must be a non-empty string")
        timeout = body.get("timeout_s")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float))
        ):
            raise InvalidInput("timeout_s must be a number of seconds")
        rows = body.get("max_rows")
        if rows is not None and (isinstance(rows, bool) or not isinstance(rows, int)):
            raise InvalidInput("max_rows must be a whole number")
        return cls(sql, None if timeout is None else float(timeout), rows)


def sql(engine: Engine, req: SqlRequest, *, user_id: str) -> QueryResult:
    """The explorer's sandbox and limits; the query lands in the user's SQL history. A
    caller may ask for less time or fewer rows than the server's limits, never more."""
    settings = engine.settings
    timeout = settings.sql_timeout_s if req.timeout_s is None else req.timeout_s
    rows = settings.sql_max_rows if req.max_rows is None else req.max_rows
    if timeout > settings.sql_timeout_s:
        raise InvalidInput(f"timeout_s may be at most {settings.sql_timeout_s:g} s here")
    if rows > settings.sql_max_rows:
        raise InvalidInput(f"max_rows may be at most {settings.sql_max_rows:,} here")
    return engine.sql.execute(req.sql, timeout_s=timeout, max_rows=rows, user=user_id)
