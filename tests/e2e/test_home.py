from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Server, open_app, screenshot

pytestmark = pytest.mark.e2e


def test_home_in_chromium(server: Server, page: Page) -> None:
    open_app(page, server, "", role="viewer")
    expect(page.get_by_text("Rust extension core._native")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stMetricValue").filter(has_text="loaded")).to_be_visible()
    expect(page.get_by_text("data", exact=False).first).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0
    assert screenshot(page, "home").stat().st_size > 10_000
