"""The bar and trade schemas every source and tier agrees on.

Timestamps are UTC microseconds (`pl.Datetime("us", "UTC")`); `ts` of a bar
is the bar's open time.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from core.errors import InvalidInput

TS = pl.Datetime("us", "UTC")
_STR: pl.DataType = pl.String()
_F64: pl.DataType = pl.Float64()

BARS = pl.Schema(
    {
        "ts": TS,
        "venue": _STR,
        "symbol": _STR,
        "timeframe": _STR,
        "open": _F64,
        "high": _F64,
        "low": _F64,
        "close": _F64,
        "volume": _F64,
    }
)

TRADES = pl.Schema(
    {
        "ts": TS,
        "venue": _STR,
        "symbol": _STR,
        "price": _F64,
        "amount": _F64,
        "side": _STR,
        "trade_id": _STR,
    }
)

TIMEFRAMES: dict[str, int] = {
    "1m": 60,
    "5m": 300,
    "15m": 900,
    "1h": 3600,
    "4h": 14400,
    "1d": 86400,
}
"""Supported timeframes and their length in seconds."""

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def row_keys(kind: str) -> list[str]:
    """The columns that identify a row of a series: a bar's time, a trade's id."""
    return ["ts"] if kind == "bars" else ["trade_id"]


def to_us(value: object, what: str) -> int | None:
    """None, datetime, date, ISO string, or int µs -> UTC microseconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a time, not a bool")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"{what} {value!r} is not an ISO date or time") from None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        delta = value - _EPOCH
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, dt.date):
        return to_us(dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC), what)
    raise InvalidInput(f"{what} must be a datetime, date, ISO string or µs int, got {value!r}")


def conform(df: pl.DataFrame, schema: pl.Schema, what: str) -> pl.DataFrame:
    """Select and cast `df` to `schema`, or raise InvalidInput naming what is wrong."""
    missing = [c for c in schema.names() if c not in df.columns]
    if missing:
        raise InvalidInput(f"{what} frame is missing column(s): {', '.join(missing)}")
    try:
        if all(df.schema[name] == dtype for name, dtype in schema.items()):
            out = df.select(schema.names())  # already the right types: no cast pass
        else:
            out = df.select(
                [pl.col(name).cast(dtype, strict=True) for name, dtype in schema.items()]
            )
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise InvalidInput(f"{what} frame has a column of the wrong type: {exc}") from exc
    nulls = [c for c in ("ts", "venue", "symbol") if out[c].null_count()]
    if nulls:
        raise InvalidInput(f"{what} frame has nulls in key column(s): {', '.join(nulls)}")
    return out


PRICES = ("open", "high", "low", "close")
SHOW_ROWS = 5
"""How many offending rows an error message names."""
MAX_VALUE = 1e18
"""No real price, volume or amount comes near this; above it, sums and VWAP products could
overflow to infinity."""


def _bad(expr: pl.Expr) -> pl.Expr:
    return expr.fill_null(False)


def bar_rules() -> list[tuple[str, pl.Expr]]:
    """(problem, expression true on a row that has it) for bars in the BARS schema."""
    values = [*PRICES, "volume"]
    return [
        # A null volume is allowed (a source without volumes); a null price is not.
        ("missing price", pl.any_horizontal([pl.col(c).is_null() for c in PRICES])),
        (
            "NaN or infinite value",
            _bad(pl.any_horizontal([~pl.col(c).is_finite() for c in values])),
        ),
        ("negative price", _bad(pl.any_horizontal([pl.col(c) < 0 for c in PRICES]))),
        ("negative volume", _bad(pl.col("volume") < 0)),
        (
            "value above 1e18",
            _bad(pl.any_horizontal([pl.col(c).abs() > MAX_VALUE for c in values])),
        ),
        ("high < low", _bad(pl.col("high") < pl.col("low"))),
        (
            "open outside [low, high]",
            _bad((pl.col("open") < pl.col("low")) | (pl.col("open") > pl.col("high"))),
        ),
        (
            "close outside [low, high]",
            _bad((pl.col("close") < pl.col("low")) | (pl.col("close") > pl.col("high"))),
        ),
    ]


def trade_rules() -> list[tuple[str, pl.Expr]]:
    """(problem, expression true on a row that has it) for trades in the TRADES schema."""
    values = ["price", "amount"]
    return [
        ("missing price or amount", pl.any_horizontal([pl.col(c).is_null() for c in values])),
        (
            "NaN or infinite value",
            _bad(pl.any_horizontal([~pl.col(c).is_finite() for c in values])),
        ),
        ("negative price", _bad(pl.col("price") < 0)),
        ("negative amount", _bad(pl.col("amount") < 0)),
        (
            "value above 1e18",
            _bad(pl.any_horizontal([pl.col(c).abs() > MAX_VALUE for c in values])),
        ),
    ]


def _rules(what: str) -> list[tuple[str, pl.Expr]]:
    return trade_rules() if what == "trades" else bar_rules()


def invalid_rows(frame: pl.DataFrame, what: str) -> pl.Series:
    """Boolean mask of the rows of a conformed bars/trades frame that must not be stored."""
    rules = _rules(what)
    return frame.select(pl.any_horizontal([e for _, e in rules]).alias("bad")).to_series()


def drop_invalid(frame: pl.DataFrame, what: str) -> tuple[pl.DataFrame, int]:
    """(the valid rows, how many were dropped): for live feeds, which skip a bad row."""
    if frame.height == 0:
        return frame, 0
    bad = invalid_rows(frame, what)
    n = int(bad.sum())
    return (frame.filter(~bad), n) if n else (frame, 0)


def check_values(frame: pl.DataFrame, what: str) -> None:
    """Raise InvalidInput naming the offending rows (index and time) of a conformed frame.

    Bars: every price present, prices and volume finite, >= 0 and <= 1e18, high >= low, open and
    close within [low, high]; a zero or null (unknown) volume is fine. Trades: price and
    amount present, finite, >= 0 and <= 1e18."""
    if frame.height == 0:
        return
    rules = _rules(what)
    counts = frame.select([e.sum().alias(f"r{i}") for i, (_, e) in enumerate(rules)]).row(0)
    if not any(counts):
        return
    flags = frame.select([e.alias(f"r{i}") for i, (_, e) in enumerate(rules)])
    any_bad = flags.select(pl.any_horizontal(pl.all())).to_series()
    total = int(any_bad.sum())
    parts = []
    for i, ((label, _), count) in enumerate(zip(rules, counts, strict=True)):
        if not count:
            continue
        idx = flags.get_column(f"r{i}").arg_true().head(SHOW_ROWS).to_list()
        where = ", ".join(f"{j} ({_ts(frame, j)})" for j in idx)
        more = f" and {count - len(idx)} more" if count > len(idx) else ""
        parts.append(f"{label} in {count} row(s): row {where}{more}")
    rule = (
        "prices and volumes must be finite, >= 0 and at most 1e18, with low <= open, close <= high"
        if what == "bars"
        else "price and amount must be finite, >= 0 and at most 1e18"
    )
    raise InvalidInput(
        f"{total} of {frame.height} {what} row(s) refused and nothing of this frame was "
        f"written; {'; '.join(parts)}. Fix or drop those rows ({rule})"
    )


def _ts(frame: pl.DataFrame, row: int) -> str:
    value = frame.get_column("ts")[row]
    return value.isoformat() if value is not None else "no time"
