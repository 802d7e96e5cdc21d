from __future__ import annotations

import polars as pl
import pytest

from core.data import bundled, catalog
from core.data.schema import BARS
from core.errors import InvalidInput


@pytest.mark.parametrize(
    ("symbol", "rows", "first", "timeframe"),
    [
        ("SP500", 5031, "1999-01-04", "1d"),
        ("NASDAQ", 5031, "1999-01-04", "1d"),
        ("GOOG", 2148, "2004-08-19", "1d"),
        ("EURUSD", 5000, "2017-04-19 09:00", "1h"),
    ],
)
def test_bundled_real_history(symbol: str, rows: int, first: str, timeframe: str) -> None:
    df = bundled.load(symbol)
    assert df.schema == BARS
    assert df.height == rows
    assert str(df["ts"][0]).startswith(first)
    assert (df["timeframe"] == timeframe).all()
    assert df["ts"].is_sorted()
    assert (df["high"] >= df["low"]).all()


def test_sp500_values_are_the_real_ones() -> None:
    df = bundled.load("SP500")
    # First close of 1999 and last close of 2018 from arch.data.sp500.
    assert df["close"][0] == pytest.approx(1228.099976)
    assert df["close"][-1] == pytest.approx(2506.850098)


def test_unknown_dataset_is_clear() -> None:
    with pytest.raises(InvalidInput, match="choose one of SP500"):
        bundled.load("NOPE")


def test_catalog_lists_bundled_without_a_store() -> None:
    refs = catalog.list_series()
    assert catalog.SeriesRef("bundled", "SP500", "1d") in refs
    frame = catalog.load_series(catalog.SeriesRef("bundled", "GOOG", "1d"))
    assert isinstance(frame, pl.DataFrame)
    assert frame.height == 2148
    with pytest.raises(InvalidInput, match="no bars stored"):
        catalog.load_series(catalog.SeriesRef("binance", "BTC/USDT", "1m"))
