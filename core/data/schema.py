"""The bar and trade schemas every source and tier agrees on.

Timestamps are UTC microseconds (`pl.Datetime("us", "UTC")`); `ts` of a bar
is the bar's open time.
"""

from __future__ import annotations

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
