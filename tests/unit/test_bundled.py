from __future__ import annotations

from pathlib import Path

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
        ("SPX", 8313, "1990-01-02", "1d"),
        ("AAPL", 8313, "1990-01-02", "1d"),
        ("XOM", 8313, "1990-01-02", "1d"),
        ("MTUM", 2264, "2014-01-02", "1d"),
        ("VIX", 1259, "2014-01-03", "1d"),
        ("WTI", 8321, "1986-01-02", "1d"),
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


def test_skfolio_values_are_the_real_ones() -> None:
    # First and last rows of skfolio's sp500_dataset and sp500_index files.
    aapl, spx = bundled.load("AAPL"), bundled.load("SPX")
    assert aapl["close"][0] == pytest.approx(0.264)
    assert aapl["close"][-1] == pytest.approx(125.674)
    assert spx["close"][-1] == pytest.approx(3783.22)


def test_at_least_20_real_series_with_source_and_sane_ranges() -> None:
    assert len(bundled.DATASETS) >= 20
    kinds = {d.kind for d in bundled.DATASETS.values()}
    assert {"equity", "index", "fx", "etf", "commodity"} <= kinds
    for symbol, ds in bundled.DATASETS.items():
        frame = bundled.load(symbol)
        assert ds.licence in ds.label
        assert ds.distribution in ds.label
        first, last = frame["ts"][0], frame["ts"][-1]
        # the description's date range is the data's
        assert f"{first.year}-{last.year}" in ds.description, (symbol, first, last)
        assert first.year >= 1980
        assert last.year <= 2025
        assert frame["ts"].n_unique() == frame.height
        assert (frame["close"] > 0).all()
    equities = [d.symbol for d in bundled.DATASETS.values() if d.kind == "equity"]
    recent = [s for s in equities if bundled.load(s)["ts"][-1].year >= 2022]
    assert len(recent) >= 20


def test_close_only_series_are_honest_bars() -> None:
    """A source with closes only gives open = high = low = close and an unknown volume;
    its label says so."""
    frame = bundled.load("MSFT")
    assert bundled.DATASETS["MSFT"].close_only
    assert "closes only" in bundled.DATASETS["MSFT"].label
    for column in ("open", "high", "low"):
        assert frame[column].equals(frame["close"])
    assert frame["volume"].null_count() == frame.height
    assert not bundled.DATASETS["SP500"].close_only
    assert "closes only" not in bundled.DATASETS["SP500"].label


def test_the_basket_of_20_stocks_is_bundled() -> None:
    basket = bundled.BASKETS["20 S&P 500 stocks, 1990-2022"]
    assert len(basket) == 20
    assert all(bundled.DATASETS[s].kind == "equity" for s in basket)


def test_engine_coverage_names_the_source(tmp_path: Path) -> None:
    from core.config import Settings
    from core.engine import Engine

    engine = Engine(Settings(data_dir=tmp_path))
    cov = engine.coverage()
    by_symbol = {r["symbol"]: r["source"] for r in cov.iter_rows(named=True)}
    assert set(bundled.DATASETS) <= set(by_symbol)
    assert by_symbol["AAPL"] == bundled.DATASETS["AAPL"].origin
    assert by_symbol["AAPL"] == "skfolio (BSD-3-Clause) · closes only"
    assert by_symbol["SP500"] == "arch (NCSA)"


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
        if callable(want):  # skfolio.datasets.load_*
            want = want()
    pd.testing.assert_frame_equal(ds.load_pandas(), want, check_freq=False)


def test_loading_does_not_import_the_packages() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from core.data import bundled; bundled.load_all(); "
        "print(sorted(m for m in ('arch', 'backtesting', 'scipy', 'bokeh', 'skfolio', 'sklearn') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
