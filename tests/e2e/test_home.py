from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Server, open_app, screenshot

pytestmark = pytest.mark.e2e


def test_home_in_chromium(server: Server, page: Page) -> None:
    """A viewer's Home: their pages, the analytics pages they could get, the markets with
    freshness; none of the engine's diagnostics, which an admin finds on System."""
    page.set_viewport_size({"width": 1400, "height": 2000})
    open_app(page, server, "", role="viewer")
    main = page.get_by_test_id("stMain")
    expect(main.get_by_role("heading", name="What you can do")).to_be_visible(timeout=30_000)
    expect(main.get_by_role("link", name="Live Market")).to_be_visible()
    expect(main.get_by_text("The analytics pages need the analyst role")).to_be_visible()
    expect(main.get_by_role("heading", name="Markets")).to_be_visible()
    expect(main.get_by_test_id("stDataFrame").first).to_be_visible()
    expect(main.get_by_text("Rust extension core._native")).to_have_count(0)
    expect(main.get_by_text("Free disk")).to_have_count(0)
    assert page.get_by_test_id("stException").count() == 0
    assert screenshot(page, "home").stat().st_size > 10_000

    open_app(page, server, "admin_system", role="admin")
    expect(page.get_by_text("Rust extension core._native")).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("stMetricValue").filter(has_text="loaded")).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0
    screenshot(page, "system")
