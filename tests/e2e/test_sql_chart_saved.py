"""The issue's path in Chromium: chart a SQL result as candles with a Bollinger overlay, save
the query with its chart, reload the page, load it: the candles and the overlay are back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.e2e.conftest import Server, open_app, screenshot, wait_app_idle

pytestmark = pytest.mark.e2e

SQL = (
    "SELECT ts, open, high, low, close, volume FROM bars "
    "WHERE symbol = 'SP500' ORDER BY ts LIMIT 300"
)
NAME = "SP500 candles with bands"
TRACES = """() => {
  const gd = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  if (!gd || !gd.data) return null;
  return gd.data.map(t => ({type: t.type || 'scatter', name: t.name, n: (t.x || []).length}));
}"""


def traces(page: Page) -> list[dict[str, object]]:
    handle = page.wait_for_function(
        f"(() => {{ const t = ({TRACES})(); return t && t.length ? t : null; }})",
        timeout=60_000,
    )
    found: list[dict[str, object]] = handle.json_value()
    return found


def pick(page: Page, combobox: Locator, option: str) -> None:
    """Choose `option` in a multiselect; reopens the list if a rerun closed it meanwhile."""
    for _ in range(10):
        combobox.click()
        choice = page.get_by_role("option", name=option, exact=True)
        try:
            choice.click(timeout=3000)
        except PlaywrightTimeoutError:
            page.keyboard.press("Escape")
            continue
        page.keyboard.press("Escape")
        return
    raise AssertionError(f"could not choose {option}")


def run_query(page: Page) -> None:
    page.get_by_role("button", name="Run query").click()
    wait_app_idle(page, timeout_ms=60_000)
    expect(page.get_by_text(re.compile(r"^300 rows in"))).to_be_visible(timeout=60_000)


def check_candles_with_bands(page: Page) -> None:
    drawn = {str(t["name"]): t for t in traces(page)}
    assert drawn["price"]["type"] == "candlestick"
    assert drawn["price"]["n"] == 300
    for part in ("upper", "mid", "lower"):
        assert drawn[f"Bollinger {part} (20, 2)"]["n"] == 300


def test_save_a_charted_query_and_load_it_after_a_reload(server: Server, page: Page) -> None:
    open_app(page, server, "sql_explorer", role="analyst")
    editor = page.get_by_role("textbox", name="SQL", exact=True)
    expect(editor).to_be_visible(timeout=60_000)
    editor.fill(SQL)
    run_query(page)
    # An OHLC result offers candlesticks first; add the Bollinger overlay and draw.
    expect(page.get_by_role("combobox", name="Chart", exact=True)).to_be_visible()
    pick(page, page.get_by_role("combobox", name=re.compile("^Overlays")), "Bollinger")
    expect(page.get_by_role("button", name="Remove Bollinger")).to_be_visible()
    page.get_by_role("button", name="Draw chart").click()
    wait_app_idle(page, timeout_ms=60_000)
    check_candles_with_bands(page)

    page.locator("summary").filter(has_text="Save query").click()
    page.get_by_label("Name", exact=True).fill(NAME)
    page.get_by_label("Description", exact=True).fill("300 daily bars, 20-day bands")
    expect(page.get_by_role("checkbox", name="Include the current chart")).to_be_checked()
    page.get_by_role("button", name="Save query").click()
    wait_app_idle(page, timeout_ms=60_000)
    saved = f"Saved “{NAME}” with its chart (private)."
    expect(page.get_by_text(saved)).to_be_visible(timeout=30_000)

    page.reload()
    wait_app_idle(page, timeout_ms=60_000)
    expect(editor).not_to_have_value(SQL, timeout=60_000)
    assert page.get_by_test_id("stPlotlyChart").count() == 0
    page.locator("summary").filter(has_text=NAME).click()
    page.get_by_role("button", name="Load", exact=True).click()
    wait_app_idle(page, timeout_ms=60_000)
    expect(editor).to_have_value(SQL, timeout=30_000)
    expect(page.get_by_text(f"Loaded “{NAME}” and its chart.")).to_be_visible()
    run_query(page)
    check_candles_with_bands(page)
    assert page.get_by_test_id("stException").count() == 0
    page.get_by_test_id("stPlotlyChart").scroll_into_view_if_needed()
    page.wait_for_timeout(500)  # the scroll settles before the picture
    assert screenshot(page, "sql_chart_saved").stat().st_size > 10_000
