from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Server, open_app, screenshot, wait_app_idle

pytestmark = pytest.mark.e2e


def test_run_a_query_in_chromium(server: Server, page: Page) -> None:
    open_app(page, server, "sql_explorer", role="analyst")
    expect(page.get_by_text("SQL Explorer").first).to_be_visible(timeout=60_000)
    editor = page.get_by_role("textbox", name="SQL", exact=True)
    editor.fill(
        "SELECT symbol, count(*) AS n FROM bars WHERE venue = 'bundled' "
        "GROUP BY symbol ORDER BY symbol"
    )
    page.get_by_role("button", name="Run query").click()
    wait_app_idle(page, timeout_ms=60_000)
    expect(page.get_by_text(re.compile(r"^[\d,]+ rows in"))).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Download CSV")).to_be_visible()
    editor.fill("SELECT * FROM read_csv('/etc/passwd')")
    page.get_by_role("button", name="Run query").click()
    wait_app_idle(page, timeout_ms=60_000)
    expect(page.get_by_text("Refused: table function read_csv()")).to_be_visible(timeout=30_000)
    editor.fill("SELECT * FROM bars a, bars b LIMIT 1")
    page.get_by_role("button", name="Run query").click()
    wait_app_idle(page, timeout_ms=60_000)
    expect(page.get_by_text("renamed to 'close_2'")).to_be_visible(timeout=30_000)
    editor.fill("SELECT " + "(" * 45 + "1" + ")" * 45)
    page.get_by_role("button", name="Run query").click()
    wait_app_idle(page, timeout_ms=60_000)
    expect(page.get_by_text("Refused: the query nests parentheses")).to_be_visible(timeout=30_000)
    assert page.get_by_test_id("stException").count() == 0
    assert screenshot(page, "sql_explorer").stat().st_size > 10_000
