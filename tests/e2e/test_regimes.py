from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Server, open_app, screenshot, wait_app_idle

pytestmark = pytest.mark.e2e


def test_fit_regimes_in_chromium(server: Server, page: Page) -> None:
    open_app(page, server, "regimes", role="analyst")
    expect(page.get_by_role("heading", name="Regimes").first).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Fit regimes").click()
    wait_app_idle(page, timeout_ms=180_000)
    expect(page.get_by_text("price coloured by Viterbi state")).to_be_visible(timeout=180_000)
    charts = page.get_by_test_id("stPlotlyChart")
    expect(charts.first).to_be_visible(timeout=60_000)
    expect(charts).to_have_count(3)
    # plotly drew the regime markers into the first chart
    expect(charts.first.locator(".legendtext").filter(has_text="State 0")).to_be_visible()
    expect(page.get_by_text("BIC across K")).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0
    assert screenshot(page, "regimes").stat().st_size > 10_000
