"""AppTest of the Chiarella lab: simulate, compare with the bundled S&P 500, calibrate with
progress, and cancel a running calibration."""

from __future__ import annotations

import pytest

from tests.app.conftest import AppAs
from tests.app.helpers import rerun_until, texts

pytestmark = [pytest.mark.app, pytest.mark.slow]
PAGE = "pages/chiarella_lab.py"


def test_viewer_is_refused(app_as: AppAs) -> None:
    at = app_as("viewer", PAGE).run()
    assert not at.title
    assert "needs the analyst role" in at.error[0].value


def test_simulate_compare_and_calibrate(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE, timeout=120).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Chiarella lab"
    assert "SIMULATED" in texts(at)
    specs = [e.proto.spec for e in at.get("plotly_chart")]
    assert any("SIMULATED daily returns" in s for s in specs)
    facts = at.dataframe[0].value
    assert next(iter(facts.columns)) == "SIMULATED"
    assert "kurtosis" in facts.index
    # the bundled S&P 500 is the default market: its kurtosis is about 11
    assert facts.iloc[0, 1] > 8

    # a slider change re-simulates
    before = facts.iloc[0, 0]
    at.slider(key="ch_an").set_value(0.0)
    at.slider(key="ch_ap").set_value(0.0)
    at.run()
    assert not at.exception, at.exception
    assert at.dataframe[0].value.iloc[0, 0] != before

    # the moving-average rule brings its own window slider, which changes the path
    at.selectbox(key="ch_rule").set_value("ma_tanh")
    at.run()
    assert not at.exception, at.exception
    ma_before = at.dataframe[0].value.iloc[0, 0]
    at.slider(key="ch_ma").set_value(60)
    at.run()
    assert at.dataframe[0].value.iloc[0, 0] != ma_before

    # a small calibration with the kurtosis as 10th moment, followed through the polling
    # fragment to its result
    at.number_input(key="ch_budget").set_value(120)
    at.number_input(key="ch_paths").set_value(2)
    at.checkbox(key="ch_kurt").check()
    at.button[0].click()
    at.run()
    rerun_until(at, lambda: "Calibration done" in texts(at) or "failed" in texts(at))
    assert "J-test" in texts(at), texts(at)
    assert "10 moments" in texts(at)
    assert "moving average" in texts(at)
    moments = at.dataframe[-1].value
    assert list(moments.columns) == ["Data", "SIMULATED (fitted)", "t-ratio"]
    assert len(moments) == 10
    assert moments.index[-1] == "kurtosis"
    # the data kurtosis is the market's, as in the facts table
    assert moments.loc["kurtosis", "Data"] == pytest.approx(facts.iloc[0, 1], rel=1e-12)


def test_cancel_stops_a_running_calibration(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE, timeout=120).run()
    at.number_input(key="ch_budget").set_value(20_000)
    at.number_input(key="ch_paths").set_value(50)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert at.get("progress")
    at.button(key="ch_cancel").click()
    at.run()
    rerun_until(at, lambda: "cancelled" in texts(at))
    assert "best so far" in texts(at)
