"""Saved queries on the SQL Explorer page: save with the chart, list, load (SQL and chart come
back), run, share with another analyst, update and delete, on real Delta tables."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.analytics import indicators
from pages._shared.services import get_services
from tests.app.conftest import ROOT, AppAs
from tests.app.helpers import texts
from tests.app.test_sql_chart import BARS_SQL, array, draw
from tests.app.test_sql_explorer import PAGE, run_sql

pytestmark = pytest.mark.app


def same_user(app_as: AppAs) -> AppTest:
    """A second tab of the last account: a fresh session, the same signed-in user."""
    from pages._shared.auth import TOKEN_KEY

    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=120)
    at.session_state[TOKEN_KEY] = app_as.last.token
    return at.run()


def click(at: AppTest, label: str, nth: int = 0) -> None:
    [b for b in at.button if b.label == label][nth].click()
    at.run(timeout=120)
    assert not at.exception, at.exception


def save(at: AppTest, name: str, description: str = "", *, shared: bool = False) -> None:
    at.text_input(key="sq-new-name").set_value(name)
    at.text_area(key="sq-new-desc").set_value(description)
    at.checkbox(key="sq-new-shared").set_value(shared)
    click(at, "Save query")


def stored(at: AppTest) -> list[SimpleNamespace]:
    """Every row of the app's `saved_queries` table, the chart JSON parsed."""
    rows = get_services().auth.store.saved_queries.read().sort("created_at").to_dicts()
    for row in rows:
        row["chart"] = json.loads(row["chart"]) if row["chart"] else None
    return [SimpleNamespace(**row) for row in rows]


def shown(elements: Any) -> list[str]:
    """The text of success/warning/error elements as the user reads it (markdown unescaped)."""
    return [str(e.value).replace("\\", "") for e in elements]


def chart_traces(at: AppTest) -> dict[str, Any]:
    [chart] = at.get("plotly_chart")
    return {t["name"]: t for t in json.loads(chart.proto.spec)["data"]}


def test_empty_state_then_save_with_the_chart_and_load_it_in_a_new_session(
    app_as: AppAs,
) -> None:
    at = app_as("analyst", PAGE).run(timeout=120)
    assert "No saved queries yet" in texts(at)
    run_sql(at, BARS_SQL)
    draw(at, "Candlesticks", ["Bollinger"], **{"Bollinger period": 30})
    assert at.checkbox(key="sq-new-shared").value is False
    include = next(c for c in at.checkbox if c.label == "Include the current chart")
    assert include.value is True
    save(at, "SP500 candles", "Daily bars\nwith 30-day bands")
    assert any("Saved “SP500 candles” with its chart (private)" in t for t in shown(at.success))
    assert at.text_input(key="sq-new-name").value == ""  # the form is empty again
    [query] = stored(at)
    assert (query.name, query.sql, query.description) == (
        "SP500 candles",
        BARS_SQL,
        "Daily bars\nwith 30-day bands",
    )
    assert query.chart is not None
    assert query.chart["kind"] == "Candlesticks"
    assert query.chart["overlays"] == ["Bollinger"]
    assert (query.chart["bb_n"], query.chart["bb_k"]) == (30, 2.0)
    assert query.chart["ohlc"] == ["open", "high", "low", "close"]
    label = next(e.label for e in at.expander if "SP500 candles" in e.label)
    assert "you" in label
    assert "private" in label

    at = same_user(app_as)  # a reload: no result, the example SQL in the editor
    assert at.text_area[0].value != BARS_SQL
    assert not at.get("plotly_chart")
    click(at, "Load")
    assert at.text_area[0].value == BARS_SQL
    assert any("Loaded “SP500 candles” and its chart" in t for t in shown(at.success))
    click(at, "Run query")
    # the chart is drawn at once, and the form shows the saved settings
    assert next(s for s in at.selectbox if s.label == "Chart").value == "Candlesticks"
    assert next(m for m in at.multiselect if m.label.startswith("Overlays")).value == ["Bollinger"]
    assert next(n for n in at.number_input if n.label == "Bollinger period").value == 30
    traces = chart_traces(at)
    assert traces["price"]["type"] == "candlestick"
    close = at.session_state["sql_explorer_result"].frame["close"].to_numpy()
    upper, _, lower = indicators.bollinger(close, 30, 2.0)
    np.testing.assert_allclose(array(traces["Bollinger upper (30, 2)"]["y"]), upper, atol=1e-9)
    np.testing.assert_allclose(array(traces["Bollinger lower (30, 2)"]["y"]), lower, atol=1e-9)


def test_run_loads_runs_and_draws_in_one_click(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run(timeout=120)
    run_sql(at, "SELECT ts, close FROM bars WHERE symbol = 'SP500' ORDER BY ts LIMIT 200")
    draw(at, "Line", ["SMA"], **{"SMA period": 10})
    save(at, "SP500 close")
    at = same_user(app_as)
    click(at, "Run")
    assert any("rows in" in t for t in shown(at.success))
    traces = chart_traces(at)
    assert set(traces) == {"Close", "SMA 10"}
    close = at.session_state["sql_explorer_result"].frame["close"].to_numpy()
    np.testing.assert_allclose(array(traces["SMA 10"]["y"]), indicators.sma(close, 10), atol=1e-9)


def test_shared_with_another_analyst_who_cannot_change_it_and_delete(app_as: AppAs) -> None:
    alice = app_as("analyst", PAGE).run(timeout=120)
    run_sql(alice, "SELECT count(*) AS n FROM bars")
    save(alice, "Bar count")
    bob = app_as("analyst", PAGE).run(timeout=120)
    assert "No saved queries yet" in texts(bob)

    click(alice, "Share")
    assert any("“Bar count” is now shared with the team" in t for t in shown(alice.success))
    bob.run(timeout=120)
    label = next(e.label for e in bob.expander if "Bar count" in e.label)
    assert app_as.accounts[0].username in label.replace("\\", "")
    assert "shared" in label
    labels = {b.label for b in bob.button}
    assert {"Load", "Run"} <= labels
    assert not {"Share", "Unshare", "Delete", "Update"} & labels  # not bob's to change
    click(bob, "Run")
    assert bob.dataframe[-1].value["n"][0] > 1000

    click(alice, "Delete")
    assert any("for good?" in t for t in shown(alice.warning))
    click(alice, "Cancel")
    assert len(stored(alice)) == 1
    click(alice, "Delete")
    click(alice, "Yes, delete")
    assert any("Deleted “Bar count”" in t for t in shown(alice.success))
    assert stored(alice) == []
    bob.run(timeout=120)
    assert "No saved queries yet" in texts(bob)


def test_update_overwrites_the_sql_and_the_chart(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run(timeout=120)
    run_sql(at, BARS_SQL)
    save(at, "Bars")
    [query] = stored(at)
    assert query.chart is None  # no chart drawn: none saved
    sql = "SELECT ts, close FROM bars WHERE symbol = 'GOOG' ORDER BY ts LIMIT 100"
    run_sql(at, sql)
    draw(at, "Area", ["EMA"])
    qid = query.query_id
    at.radio(key=f"sq-chart-{qid}").set_value("Use the current chart")
    at.text_input(key=f"sq-name-{qid}").set_value("GOOG area")
    click(at, "Update")
    assert any("Updated “GOOG area”" in t for t in shown(at.success))
    [query] = stored(at)
    assert (query.name, query.sql) == ("GOOG area", sql)
    assert query.chart is not None
    assert (query.chart["kind"], query.chart["overlays"]) == ("Area", ["EMA"])
    run_sql(at, "SELECT 1 AS one")
    assert not at.get("plotly_chart")  # the drawn chart does not fit this result
    at.radio(key=f"sq-chart-{qid}").set_value("No chart")
    at.checkbox(key=f"sq-sql-{qid}").uncheck()
    click(at, "Update")
    [query] = stored(at)
    assert (query.sql, query.chart) == (sql, None)


def test_refused_saves_say_why_and_keep_nothing(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run(timeout=120)
    save(at, "")
    assert any("Not saved: a query name must be 1 to 100 characters" in t for t in shown(at.error))
    run_sql(at, "DROP TABLE bars")
    save(at, "Dropper")
    assert any("Not saved: the SQL Explorer would refuse this query" in t for t in shown(at.error))
    assert at.text_input(key="sq-new-name").value == "Dropper"  # kept to fix and retry
    run_sql(at, "SELECT 1 AS one")
    name = "One *star* [link](https://x.test)"
    save(at, name)
    # user text is shown literally, never as markdown
    assert any("\\*star\\* \\[link\\]\\(https" in s.value for s in at.success)
    assert any("One \\*star\\* \\[link\\]" in e.label for e in at.expander)
    save(at, name.upper())
    assert any("already have a saved query named" in t for t in shown(at.error))
    assert [q.name for q in stored(at)] == [name]


def test_a_chart_that_cannot_be_restored_still_loads_the_sql(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run(timeout=120)
    # written through the API: the store checks the chart is a small JSON dict, the page
    # checks it is a chart it can draw
    odd = {"version": 1, "kind": "Pie", "x": "symbol"}
    get_services().queries.save(app_as.last.user, "Odd chart", "SELECT 2 AS two", chart=odd)
    at.run(timeout=120)
    click(at, "Load")
    assert at.text_area[0].value == "SELECT 2 AS two"
    warning = "Loaded the SQL; its chart could not be restored: unknown chart kind 'Pie'"
    assert any(warning in t for t in shown(at.warning))
    click(at, "Run query")
    assert at.dataframe[-1].value["two"][0] == 2
    assert not at.get("plotly_chart")
