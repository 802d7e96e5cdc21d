"""The analysis pages' pickers: bundled series labelled with source and date range, and a
basket of the 20 bundled S&P 500 stocks one choice away."""

from __future__ import annotations

import pytest

from core.data import bundled
from tests.app.conftest import AppAs

pytestmark = [pytest.mark.app, pytest.mark.slow]


def test_mean_reversion_offers_the_basket_of_20_stocks(app_as: AppAs) -> None:
    at = app_as("analyst", "pages/mean_reversion.py").run()
    assert not at.exception, at.exception
    basket = at.selectbox(key="mr_series_basket")
    name = "20 S&P 500 stocks, 1990-2022"
    assert name in basket.options
    basket.set_value(name).run()
    assert not at.exception, at.exception
    picked = at.multiselect(key="mr_series").value
    assert sorted(r.symbol for r in picked) == sorted(bundled.SP500_STOCKS)
    assert {r.venue for r in picked} == {"bundled"}
    assert not at.warning, [w.value for w in at.warning]


def test_series_labels_say_source_and_date_range(app_as: AppAs) -> None:
    at = app_as("analyst", "pages/regimes.py").run()
    assert not at.exception, at.exception
    options = at.selectbox(key="regimes_series").options
    assert "AAPL · Apple (AAPL), daily 1990-2022 · skfolio (BSD-3-Clause) · closes only" in options
    assert "SP500 · S&P 500 index, daily 1999-2018 · arch (NCSA)" in options
    assert len([o for o in options if "· skfolio" in o]) >= 26
