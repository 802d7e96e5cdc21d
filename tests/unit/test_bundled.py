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


@pytest.mark.parametrize("symbol", list(bundled.DATASETS))
def test_files_parse_as_the_packages_parse_them(symbol: str) -> None:
    import importlib

    import pandas as pd

    ds = bundled.DATASETS[symbol]
    module, _, attr = ds.source.rpartition(".")
    if ds.distribution == "arch":
        want = importlib.import_module(ds.source).load()
    else:
        want = getattr(importlib.import_module(module), attr)
    pd.testing.assert_frame_equal(ds.load_pandas(), want, check_freq=False)


def test_loading_does_not_import_the_packages() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from core.data import bundled; bundled.load_all(); "
        "print(sorted(m for m in ('arch', 'backtesting', 'scipy', 'bokeh') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
