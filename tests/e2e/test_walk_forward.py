"""The issue's walk-forward path in Chromium: run the Mean reversion study on a pair, run a
walk-forward over a small grid, read its numbers and the parameter robustness heatmap, and
find both runs saved as studies."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Server, open_app, screenshot, wait_app_idle

pytestmark = pytest.mark.e2e


def test_walk_forward_on_a_pair_shows_the_heatmap(server: Server, page: Page) -> None:
    open_app(page, server, "mean_reversion", role="analyst")
    expect(page.get_by_role("heading", name="Mean reversion").first).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Run", exact=True).click()
    wait_app_idle(page, timeout_ms=180_000)
    expect(page.get_by_text("Walk-forward validation")).to_be_visible(timeout=180_000)
    page.get_by_role("button", name="Run walk-forward").click()
    wait_app_idle(page, timeout_ms=180_000)
    expect(page.get_by_text("Out-of-sample Sharpe").first).to_be_visible(timeout=180_000)
    heatmap = page.get_by_test_id("stPlotlyChart").filter(has_text="Parameter robustness")
    expect(heatmap).to_be_visible(timeout=60_000)
    expect(heatmap.locator(".heatmaplayer, .hm").first).to_be_attached(timeout=30_000)
    expect(page.get_by_text("Saved as study").first).to_be_visible(timeout=30_000)
    assert page.get_by_test_id("stException").count() == 0
    assert screenshot(page, "walk_forward").stat().st_size > 10_000
    open_app(page, server, "studies", role=None)
    wait_app_idle(page, timeout_ms=60_000)
    expect(page.get_by_text("Walk-forward").first).to_be_visible(timeout=60_000)
