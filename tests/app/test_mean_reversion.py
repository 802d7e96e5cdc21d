"""AppTest of the Mean reversion page on the bundled S&P 500 and NASDAQ history."""

from __future__ import annotations

import base64
import json

import numpy as np
import polars as pl
import pytest

from core.analytics.cointegration import johansen_critical_values
from tests.app.conftest import AppAs

pytestmark = pytest.mark.app
PAGE = "pages/mean_reversion.py"


def studies(kind: str) -> pl.DataFrame:
    """The studies of `kind` saved in the test's accounts store."""
    from pages._shared.accounts import get_auth

    return get_auth().store.studies.read().filter(pl.col("kind") == kind)


def test_viewer_is_refused(app_as: AppAs) -> None:
    at = app_as("viewer", PAGE).run()
    assert not at.title or at.title[0].value != "Mean reversion"


def test_run_shows_fit_bands_positions_and_backtest(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE, timeout=120).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Mean reversion"
    assert any("Run" in i.value for i in at.info)
    at.selectbox(key="mr_method").set_value("exhaustive")
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Bars used"] == "2,520"
    assert "bars" in metrics["Half-life"]
    weights, path, johansen, ou, adf_crit, table = (d.value for d in at.dataframe)
    assert list(johansen.index) == ["rank ≤ 0", "rank ≤ 1"]
    assert (johansen["Trace statistic"] >= johansen["Max-eigenvalue statistic"] - 1e-9).all()
    trace_crit, max_crit = johansen_critical_values(2, 0)
    np.testing.assert_array_equal(johansen["Trace 95%"], trace_crit[:, 1])
    np.testing.assert_array_equal(johansen["Max-eig 99%"], max_crit[:, 2])
    decision = [m.value for m in at.markdown if "Sequential trace test at 5%" in m.value]
    assert len(decision) == 1
    rejected = [*(johansen["Trace statistic"] > johansen["Trace 95%"]), False]
    expected_rank = rejected.index(False)
    assert f"cointegration rank {expected_rank} of 2" in decision[0]
    assert list(adf_crit.index) == ["1%", "5%", "10%"]
    assert adf_crit["Critical value"].is_monotonic_increasing
    assert float(metrics["ADF statistic"]) < 0
    assert metrics["Observations"].replace(",", "").isdigit()
    assert list(weights["Asset"]) == ["SP500", "NASDAQ"]
    study = at.session_state["mean_reversion_result"]
    port = study.portfolio
    assert abs(np.abs(port.weights).sum() - 1) < 1e-12
    assert list(path["Assets (k)"]) == [1, 2]
    assert float(ou.loc["Half-life (bars)", "Estimate"].replace(",", "")) > 0
    assert set(table.columns) == {"Bands", "CARA"}
    assert int(table.loc["Round trips", "Bands"].replace(",", "")) >= 1
    assert float(table.loc["Total costs", "Bands"].replace(",", "")) > 0
    specs = [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
    assert len(specs) == 4
    equity = specs[3]["data"]
    assert [t["name"] for t in equity] == ["Bands", "CARA"]
    assert any("ddof = 1" in c.value for c in at.caption)

    # the run was saved as a study of this user, with both input series and its numbers
    saved = studies("meanrev_study")
    assert saved.height == 1
    row = saved.row(0, named=True)
    assert row["user_id"] == app_as.last.user.user_id
    assert row["title"] == "Mean reversion: SP500, NASDAQ"
    params = json.loads(row["params"])
    assert (params["names"], params["method"], params["k"]) == (
        ["SP500", "NASDAQ"],
        "exhaustive",
        2,
    )
    inputs = json.loads(row["inputs"])
    assert [(i["symbol"], i["rows"]) for i in inputs] == [("SP500", 2520), ("NASDAQ", 2520)]
    stored = json.loads(row["metrics"])
    assert stored["bands_sharpe"] == study.bands.metrics["sharpe"]
    assert stored["nu"] == port.nu
    assert any("Saved as study" in c.value for c in at.caption)


def test_swap_refinement_is_offered_and_reported(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE, timeout=120).run()
    at.selectbox(key="mr_method").set_value("greedy")
    at.checkbox(key="mr_swaps").check()
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    # two markets and k = 2: the support is everything, so no swap is possible
    assert any(
        "Selection: Greedy, refined by 0 one-in-one-out swaps" in c.value for c in at.caption
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("mr_k", 3, "above the number of assets"), ("mr_last", 10, "too few rows")],
)
def test_clear_messages(app_as: AppAs, key: str, value: int, message: str) -> None:
    at = app_as("analyst", PAGE, timeout=120).run()
    at.number_input(key=key).set_value(value)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert message in errors
    assert "SP500" in errors


def test_a_single_market_is_refused(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE, timeout=120).run()
    at.multiselect(key="mr_series").set_value([at.multiselect(key="mr_series").value[0]])
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert "at least two markets" in " ".join(e.value for e in at.error)


def _values(arr: object) -> np.ndarray:
    """A plotly trace array from its JSON spec (a list, or base64 with a dtype)."""
    if isinstance(arr, dict):
        return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=arr["dtype"])
    return np.asarray(arr, dtype=np.float64)


def test_power_utility_position_path(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE, timeout=120).run()
    at.selectbox(key="mr_utility").set_value("power")
    at.run()
    at.number_input(key="mr_power_gamma").set_value(-2.0)
    at.number_input(key="mr_wealth").set_value(5e5)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    specs = [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
    assert len(specs) == 5
    titles = [s["layout"].get("title", {}).get("text", "") for s in specs]
    assert titles[2] == "Bands and the CARA rule (backtest)"
    assert titles[3] == "Power utility W^γ/γ, γ = -2: optimal position"
    traces = specs[3]["data"]
    assert [t["name"] for t in traces] == ["Power utility γ = -2", "Wealth"]
    units, wealth = _values(traces[0]["y"]), _values(traces[1]["y"])
    res = at.session_state["mean_reversion_result"]
    fit, spread = res.fit, res.spread
    assert wealth[0] == 5e5
    np.testing.assert_allclose(wealth[1:], wealth[:-1] + units[:-1] * np.diff(spread), rtol=1e-12)
    # first bar: q = W0 theta (mu - s) / sigma^2 * h(T), h = (1 + k tanh) / (k (k + tanh))
    k = np.sqrt(3.0)
    th = np.tanh(fit.theta * (spread.size - 1) / res.basket.periods_per_year / k)
    h = (1 + k * th) / (k * (k + th))
    q0 = 5e5 * fit.theta * (fit.mu - spread[0]) / fit.sigma**2 * h
    assert units[0] == pytest.approx(q0, rel=1e-12)
    assert any("Power utility W_T^γ/γ with γ = -2" in c.value for c in at.caption)
