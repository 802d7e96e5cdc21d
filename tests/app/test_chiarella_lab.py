"""AppTest of the Chiarella lab: simulate, compare with the bundled S&P 500, calibrate with
progress, and cancel a running calibration."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.app.conftest import AppAs
from tests.app.helpers import rerun_until, texts

pytestmark = [pytest.mark.app, pytest.mark.slow]
PAGE = "pages/chiarella_lab.py"
CALIBRATE = "FormSubmitter:ch_calibrate-Calibrate"


def studies(kind: str) -> pl.DataFrame:
    """The studies of `kind` saved in the test's accounts store."""
    from pages._shared.accounts import get_auth

    return get_auth().store.studies.read().filter(pl.col("kind") == kind)


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
    at.button(key=CALIBRATE).click()
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

    # the finished calibration is the typed result and was saved once, with its market
    run = at.session_state["chiarella_fit"]
    assert run.kind == "chiarella_fit"
    assert list(moments["t-ratio"]) == list(run.calibration.t_ratios)
    at.run()
    saved = studies("chiarella_fit")
    assert saved.height == 1
    row = saved.row(0, named=True)
    assert row["title"].startswith("Chiarella calibration · SP500")
    params = json.loads(row["params"])
    assert (params["budget"], params["n_paths"], params["include_kurtosis"]) == (120, 2, True)
    assert params["model"]["rule"] == "ma_tanh"
    assert params["model"]["ma_window"] == 60
    assert json.loads(row["inputs"])[0]["symbol"] == "SP500"
    assert json.loads(row["metrics"])["j"] == run.metrics()["j"]


def test_save_a_simulation_as_a_study(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE, timeout=120).run()
    at.number_input(key="ch_seed").set_value(7)
    at.run()
    assert studies("chiarella_sim").height == 0  # moving a slider saves nothing
    at.button(key="ch_save_sim").click()
    at.run()
    assert not at.exception, at.exception
    assert "Saved as study" in " ".join(c.value for c in at.caption), [w.value for w in at.warning]
    saved = studies("chiarella_sim")
    assert saved.height == 1
    row = saved.row(0, named=True)
    assert json.loads(row["inputs"]) == []
    params = json.loads(row["params"])
    assert (params["seed"], params["n_steps"]) == (7, 5030)
    # the stored kurtosis is the one in the facts table
    kurtosis = json.loads(row["metrics"])["kurtosis"]
    assert kurtosis == pytest.approx(at.dataframe[0].value.iloc[0, 0], rel=1e-12)


def test_cancel_stops_a_running_calibration(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE, timeout=120).run()
    at.number_input(key="ch_budget").set_value(20_000)
    at.number_input(key="ch_paths").set_value(50)
    at.button(key=CALIBRATE).click()
    at.run()
    assert not at.exception, at.exception
    assert at.get("progress")
    at.button(key="ch_cancel").click()
    at.run()
    rerun_until(at, lambda: "cancelled" in texts(at))
    assert "best so far" in texts(at)
    assert "not saved as a study" in texts(at)
    assert studies("chiarella_fit").height == 0
