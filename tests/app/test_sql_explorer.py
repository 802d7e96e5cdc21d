from __future__ import annotations

import pytest

from pages._shared.format import md_escape
from tests.app.conftest import AppAs

pytestmark = pytest.mark.app

PAGE = "pages/sql_explorer.py"


def run_sql(at: object, sql: str) -> None:
    at.text_area[0].set_value(sql)  # type: ignore[attr-defined]
    next(b for b in at.button if b.label == "Run query").click()  # type: ignore[attr-defined]
    at.run(timeout=120)  # type: ignore[attr-defined]


def test_runs_a_query_and_keeps_history(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run(timeout=120)
    assert not at.exception
    assert [e.label for e in at.expander][:3] == ["bars", "trades", "daily"]
    run_sql(at, "SELECT symbol, count(*) AS n FROM bars GROUP BY symbol ORDER BY symbol")
    assert not at.exception
    assert any("rows in" in s.value for s in at.success)
    frame = at.dataframe[-1].value
    assert {"EURUSD", "GOOG", "NASDAQ", "SP500"} <= set(frame["symbol"])
    assert list(frame["symbol"]) == sorted(frame["symbol"])
    assert all(n > 1000 for n in frame["n"])
    history = [e.label for e in at.expander if "rows" in e.label]
    assert history
    assert f"{len(frame):,} rows" in history[0]


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("ATTACH '/tmp/x.db'", "ATTACH"),
        ("SELECT 1; SELECT 2", "one statement"),
    ],
)
def test_refusals_are_clear(app_as: AppAs, sql: str, needle: str) -> None:
    at = app_as("analyst", PAGE).run(timeout=120)
    run_sql(at, sql)
    assert not at.exception
    # Messages echo user text, so the page shows them escaped (literal on screen).
    assert any(md_escape(needle) in e.value and e.value.startswith("Refused") for e in at.error)


def test_viewer_is_turned_away(app_as: AppAs) -> None:
    at = app_as("viewer", PAGE).run(timeout=120)
    assert any("analyst" in e.value for e in at.error)
    assert not any(b.label == "Run query" for b in at.button)


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("SELEC 1", "The SQL could not be parsed"),
        ("SELECT " + "(" * 45 + "1" + ")" * 45, "flatten"),
        (
            'SELECT y.* FROM (WITH "duckdb_views" AS (SELECT 1 AS a) SELECT a FROM '
            '"duckdb_views") x, "duckdb_views" y',
            "unknown table",
        ),
    ],
)
def test_failures_are_clean_messages(app_as: AppAs, sql: str, needle: str) -> None:
    at = app_as("analyst", PAGE).run(timeout=120)
    run_sql(at, sql)
    assert not at.exception
    assert any(needle in e.value for e in at.error)
    assert not any("Traceback" in e.value or "/market/" in e.value for e in at.error)


def test_duplicate_columns_are_renamed_with_a_note(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run(timeout=120)
    run_sql(at, "SELECT * FROM bars a, bars b LIMIT 1")
    assert not at.exception
    assert any("close_2" in i.value for i in at.info)
    assert "close_2" in list(at.dataframe[-1].value.columns)
