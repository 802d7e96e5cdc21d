"""AppTest of the Mean reversion page's walk-forward section on the bundled S&P 500 and NASDAQ
history: the numbers shown are those of walk_forward() called directly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.analytics import backtest as bt
from core.analytics.runs.meanrev import MeanReversionStudy, run_walk_forward
from pages._shared.format import num, pct
from pages._shared.walk_forward_view import WF_KEY, walk_forward_params
from tests.app.conftest import AppAs
from tests.app.test_mean_reversion import _values, studies

pytestmark = pytest.mark.app
PAGE = "pages/mean_reversion.py"


def _main_run(app_as: AppAs) -> AppTest:
    at = app_as("analyst", PAGE, timeout=180).run()
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def test_walk_forward_shows_what_walk_forward_computes(app_as: AppAs) -> None:
    at = _main_run(app_as)
    assert "Walk-forward validation" in [s.value for s in at.subheader]
    charts = len(at.get("plotly_chart"))
    at.number_input(key="wf_train").set_value(504)
    at.number_input(key="wf_test").set_value(252)
    at.checkbox(key="wf_anchored").check()
    at.multiselect(key="wf_windows").set_value([20, 60])
    at.multiselect(key="wf_zins").set_value([1.0, 2.0])
    at.multiselect(key="wf_zouts").set_value([0.0, 0.5, 1.0])
    at.button(key="wf_run").click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]

    study: MeanReversionStudy = at.session_state["mean_reversion_result"]
    grid = {"window": (20, 60), "z_in": (1.0, 2.0), "z_out": (0.0, 0.5, 1.0)}
    wf = bt.walk_forward(
        study.basket.closes,
        grid,
        504,
        252,
        True,
        weights=study.portfolio.weights,
        cost=study.config.cost_bp / 1e4,
        timestamps=study.basket.ts,
        u_max=study.units,
        capital=study.config.capital,
        periods_per_year=study.basket.periods_per_year,
    )
    assert len(wf.folds) == 8  # 2,520 bars: 504 to train, then 8 test windows of 252
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Out-of-sample Sharpe"] == num(wf.oos_sharpe)
    assert metrics["Out-of-sample max drawdown"] == pct(wf.oos_max_drawdown)
    assert metrics["In-sample − out-of-sample Sharpe"] == num(wf.gap)
    assert metrics["Deflated Sharpe"] == num(wf.deflated_sharpe)
    assert any("best of 10 unskilled grid points" in c.value for c in at.caption)

    folds = at.dataframe[-1].value
    assert len(folds) == 8
    np.testing.assert_array_equal(folds["window"], [f.window for f in wf.folds])
    np.testing.assert_array_equal(folds["z_in"], [f.z_in for f in wf.folds])
    np.testing.assert_allclose(folds["oos_sharpe"], [f.oos_sharpe for f in wf.folds], rtol=1e-12)
    np.testing.assert_allclose(
        folds["oos_return"], [100 * f.oos_return for f in wf.folds], rtol=1e-12
    )
    assert (folds["train_start_time"] == folds["train_start_time"].iloc[0]).all()  # anchored

    specs = [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
    assert len(specs) == charts + 2
    equity, heat = specs[-2], specs[-1]
    np.testing.assert_allclose(_values(equity["data"][0]["y"]), wf.equity, rtol=1e-12)
    assert [t["name"] for t in heat["data"]] == ["Window 20", "Window 60"]
    panel = heat["data"][1]
    assert panel["x"] == ["0", "0.5", "1"]
    assert panel["y"] == ["1", "2"]
    table = wf.heatmap.filter(wf.heatmap["window"] == 60)
    for i, zi in enumerate((1.0, 2.0)):
        for j, zo in enumerate((0.0, 0.5, 1.0)):
            cell = panel["z"][i][j]
            if zo >= zi:
                assert cell is None  # not a grid point: blank
                continue
            row = table.filter((table["z_in"] == zi) & (table["z_out"] == zo))
            assert cell == pytest.approx(row["oos_sharpe"][0], rel=1e-12)

    # the view's own call is the same call
    params = walk_forward_params(study, (20, 60), (1.0, 2.0), (0.0, 0.5, 1.0), 504, 252, True)
    again = run_walk_forward(study.bars, params)
    np.testing.assert_array_equal(again.walk.equity, at.session_state[WF_KEY].walk.equity)

    # saved as a walk_forward study of this user, with the study's inputs and numbers
    saved = studies("walk_forward")
    assert saved.height == 1
    row = saved.row(0, named=True)
    assert row["user_id"] == app_as.last.user.user_id
    assert row["title"] == "Walk-forward: SP500, NASDAQ"
    assert json.loads(row["params"])["windows"] == [20, 60]
    assert json.loads(row["params"])["anchored"] is True
    assert json.loads(row["metrics"])["oos_sharpe"] == wf.oos_sharpe
    assert [i["symbol"] for i in json.loads(row["inputs"])] == ["SP500", "NASDAQ"]


def test_bad_walk_forward_input_gives_a_clear_message(app_as: AppAs) -> None:
    at = _main_run(app_as)
    at.number_input(key="wf_train").set_value(100)
    at.multiselect(key="wf_windows").set_value([250])
    at.button(key="wf_run").click()
    at.run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error).replace("\\", "")  # md_escape's backslashes
    assert "Cannot run the walk-forward: train (100 bars)" in errors
    assert "at least the largest window + 2" in errors
    assert WF_KEY not in at.session_state
    assert studies("walk_forward").height == 0  # a failed run saves nothing


def test_a_new_main_run_clears_the_walk_forward(app_as: AppAs) -> None:
    at = _main_run(app_as)
    at.number_input(key="wf_test").set_value(504)
    at.button(key="wf_run").click()
    at.run()
    assert WF_KEY in at.session_state
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert WF_KEY not in at.session_state
    assert studies("walk_forward").height == 1  # the saved study stays
    assert studies("meanrev_study").height == 2  # one per main run
    assert "Out-of-sample Sharpe" not in [m.label for m in at.metric]
