"""Bad market data is refused whole, with the offending rows named; rollups stay finite."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from core.data import bundled
from core.data.schema import check_values, drop_invalid
from core.data.store import MarketStore
from core.errors import InvalidInput
from tests.unit.market.helpers import T0, bars, trades

Mutate = Callable[[pl.DataFrame], pl.DataFrame]


def at(rows: list[int], column: str, value: float | None) -> Mutate:
    """Set `column` to `value` on the given rows."""

    def mutate(frame: pl.DataFrame) -> pl.DataFrame:
        hit = pl.int_range(pl.len()).is_in(rows)
        return frame.with_columns(
            pl.when(hit).then(pl.lit(value, pl.Float64)).otherwise(pl.col(column)).alias(column)
        )

    return mutate


BAD_BARS: list[tuple[str, Mutate, str]] = [
    ("nan close", at([3], "close", math.nan), "NaN or infinite"),
    ("inf high", at([4, 9], "high", math.inf), "NaN or infinite"),
    ("-inf low", at([0], "low", -math.inf), "NaN or infinite"),
    ("nan volume", at([7], "volume", math.nan), "NaN or infinite"),
    ("inf volume", at([7], "volume", math.inf), "NaN or infinite"),
    ("null close", at([2], "close", None), "missing price"),
    ("negative volume", at([5], "volume", -1.0), "negative volume"),
    (
        "negative prices",
        lambda f: f.with_columns(pl.col(c) - 1000.0 for c in ("open", "high", "low", "close")),
        "negative price",
    ),
    ("close above high", at([6], "close", 1e6), "close outside \\[low, high\\]"),
    ("open below low", at([8], "open", 1.0), "open outside \\[low, high\\]"),
    ("high below low", at([1], "high", 1.0), "high < low"),
]


@pytest.mark.parametrize(("case", "mutate", "needle"), BAD_BARS, ids=[c[0] for c in BAD_BARS])
@pytest.mark.parametrize("method", ["write_bars", "buffer_bars"])
def test_bad_bars_are_refused_whole(
    tmp_path: Path, method: str, case: str, mutate: Mutate, needle: str
) -> None:
    store = MarketStore(tmp_path)
    good = bars(20)
    store.write_bars(good)
    before = store.daily()
    incoming = pl.concat([mutate(bars(20, seed=9)), bars(10, symbol="OTHER/USD")])
    with pytest.raises(InvalidInput, match=needle) as err:
        getattr(store, method)(incoming)
    msg = str(err.value)
    assert "nothing of this frame was written" in msg
    first = int(re.search(r"row (\d+) \(", msg).group(1))  # type: ignore[union-attr]
    assert incoming["ts"][first].isoformat() in msg
    store.flush()
    assert_frame_equal(store.get_bars("SYN/USD", cache=False), good)
    assert store.get_bars("OTHER/USD").height == 0  # the valid series of the frame too
    assert_frame_equal(store.daily(), before)
    assert_frame_equal(MarketStore(tmp_path).get_bars("SYN/USD"), good)


def test_the_message_counts_and_names_the_first_rows(tmp_path: Path) -> None:
    frame = at(list(range(2, 30, 2)), "close", math.nan)(bars(40))
    with pytest.raises(InvalidInput) as err:
        MarketStore(tmp_path).write_bars(frame)
    msg = str(err.value)
    assert msg.startswith("14 of 40 bars row(s) refused")
    assert "NaN or infinite value in 14 row(s): row 2 (2024-01-30T22:02:00+00:00), 4 (" in msg
    assert "and 9 more" in msg


def test_zero_volume_and_boundary_prices_are_fine(tmp_path: Path) -> None:
    frame = bars(30).with_columns(
        volume=pl.when(pl.int_range(pl.len()) % 3 == 0).then(0.0).otherwise(pl.col("volume")),
        open=pl.col("low"),
        close=pl.col("high"),
    )
    store = MarketStore(tmp_path)
    assert store.write_bars(frame) == 30
    assert_frame_equal(store.get_bars("SYN/USD", cache=False), frame)
    flat = bars(5, symbol="FLAT", start=T0 + dt.timedelta(days=3)).with_columns(
        open=pl.lit(0.0), high=pl.lit(0.0), low=pl.lit(0.0), close=pl.lit(0.0), volume=pl.lit(0.0)
    )
    assert store.write_bars(flat) == 5
    assert_finite_rollups(store)


def test_a_null_volume_is_unknown_volume(tmp_path: Path) -> None:
    """Stored as null; the rollup counts it as zero volume, so it stays finite."""
    frame = at([2, 3], "volume", None)(bars(10))
    store = MarketStore(tmp_path)
    assert store.write_bars(frame) == 10
    assert_frame_equal(store.get_bars("SYN/USD", cache=False), frame)
    day = store.daily().row(0, named=True)
    assert day["volume"] == pytest.approx(frame["volume"].sum())
    assert_finite_rollups(store)
    silent = at(list(range(10)), "volume", None)(bars(10, symbol="NOVOL"))
    store.write_bars(silent)
    assert store.daily(["NOVOL"])["vwap"].is_null().all()
    assert_finite_rollups(store)


def assert_finite_rollups(store: MarketStore) -> None:
    daily = store.daily()
    assert daily.height
    for c in ("open", "high", "low", "close", "volume", "vwap"):
        values = daily[c].drop_nulls().to_numpy()
        assert np.isfinite(values).all(), c
    # VWAP is null only for a day without volume.
    assert (daily["vwap"].is_null() == (daily["volume"] == 0)).all()


def test_rollups_are_finite_after_refused_and_accepted_writes(tmp_path: Path) -> None:
    store = MarketStore(tmp_path)
    store.write_bars(bars(3000))
    for _, mutate, _ in BAD_BARS:
        with pytest.raises(InvalidInput):
            store.write_bars(mutate(bars(50, seed=4, start=T0 + dt.timedelta(days=5))))
    store.write_bars(bars(100, seed=5).with_columns(pl.col("high") + 1))  # an update
    assert_finite_rollups(store)
    store.close()
    assert_finite_rollups(MarketStore(tmp_path))


BAD_TRADES: list[tuple[str, Mutate, str]] = [
    ("nan price", at([1], "price", math.nan), "NaN or infinite"),
    ("inf amount", at([2], "amount", math.inf), "NaN or infinite"),
    ("negative price", at([3], "price", -5.0), "negative price"),
    ("negative amount", at([4], "amount", -0.1), "negative amount"),
    ("null price", at([0], "price", None), "missing price or amount"),
]


@pytest.mark.parametrize(("case", "mutate", "needle"), BAD_TRADES, ids=[c[0] for c in BAD_TRADES])
@pytest.mark.parametrize("method", ["write_trades", "buffer_trades"])
def test_bad_trades_are_refused_whole(
    tmp_path: Path, method: str, case: str, mutate: Mutate, needle: str
) -> None:
    store = MarketStore(tmp_path)
    with pytest.raises(InvalidInput, match=needle):
        getattr(store, method)(mutate(trades()))
    store.flush()
    assert store.get_trades("SYN/USD").height == 0
    assert store.write_trades(trades()) == 6


def test_drop_invalid_keeps_the_good_rows() -> None:
    frame = at([1], "close", math.nan)(at([4], "volume", -2.0)(bars(10)))
    good, dropped = drop_invalid(frame, "bars")
    assert dropped == 2
    assert_frame_equal(good, bars(10).filter(~pl.int_range(pl.len()).is_in([1, 4])))
    check_values(good, "bars")
    assert drop_invalid(bars(10), "bars")[1] == 0


@pytest.mark.parametrize("symbol", list(bundled.DATASETS))
def test_the_bundled_real_history_is_valid(symbol: str) -> None:
    """Real provider data (with NASDAQ's zero-volume days) passes the checks as it is."""
    frame = bundled.load(symbol)
    check_values(frame, "bars")
    assert drop_invalid(frame, "bars")[1] == 0
