"""Deterministic synthetic bars for the market store tests (labelled synthetic)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl

from core.data.schema import BARS, TRADES
from core.data.store import MarketStore
from core.sql import SqlExplorer

T0 = dt.datetime(2024, 1, 30, 22, 0, tzinfo=dt.UTC)


def bars(
    n: int,
    *,
    start: dt.datetime = T0,
    venue: str = "synthetic",
    symbol: str = "SYN/USD",
    timeframe: str = "1m",
    step_s: int = 60,
    seed: int = 0,
) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    spread = np.abs(rng.normal(0, 0.05, n))
    ts = [start + dt.timedelta(seconds=step_s * i) for i in range(n)]
    frame = pl.DataFrame(
        {
            "ts": ts,
            "venue": venue,
            "symbol": symbol,
            "timeframe": timeframe,
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.uniform(0.5, 5.0, n),
        }
    )
    return frame.cast(dict(BARS))


def trades(n: int = 6) -> pl.DataFrame:
    """`n` synthetic trades one second apart from T0 (even `n`)."""
    return pl.DataFrame(
        {
            "ts": [T0 + dt.timedelta(seconds=i) for i in range(n)],
            "venue": "synthetic",
            "symbol": "SYN/USD",
            "price": [100.0 + i for i in range(n)],
            "amount": [0.5] * n,
            "side": ["buy", "sell"] * (n // 2),
            "trade_id": [f"t{i}" for i in range(n)],
        }
    ).cast(dict(TRADES))


def explorer_over(root: Path, n: int) -> Iterator[SqlExplorer]:
    """A SQL explorer over a fresh store of `n` synthetic bars; closed (workers and all) after."""
    store = MarketStore(root / "market")
    store.write_bars(bars(n))
    explorer = SqlExplorer(store)
    yield explorer
    explorer.close()
