"""Live Market in Chromium: the last candle moves while the demo venue streams."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Server, open_app, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LAST_CANDLE = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  if (!gd || !gd.data) return null;
  const c = gd.data.find(t => t.type === 'candlestick');
  if (!c || !c.x.length) return null;
  const i = c.x.length - 1;
  return {n: c.x.length, x: String(c.x[i]), o: c.open[i], h: c.high[i], l: c.low[i],
          c: c.close[i], title: gd.layout.title && gd.layout.title.text};
}"""


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Its own app process and data dir, so the demo's live bars stay out of other suites."""
    srv = Server(tmp_path_factory.mktemp("e2e-live") / "data", {"HFT_DEMO_VENUE": "true"})
    yield srv
    srv.stop()


def test_last_candle_changes_while_the_demo_venue_streams(live_server: Server, page: Page) -> None:
    open_app(page, live_server, "live_market", role="viewer")
    expect(page.get_by_text("Live Market").first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("SIMULATED").first).to_be_visible(timeout=60_000)
    # The fragment redraws the chart every second, so read the candle in the same call
    # that waits for it (a second evaluate can land mid-redraw and see no chart).
    handle = page.wait_for_function(
        f"(() => {{ const c = ({LAST_CANDLE})(); return c && c.n > 50 ? c : null; }})",
        timeout=60_000,
    )
    first = handle.json_value()
    assert "SIMULATED" in first["title"]
    changed = None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        page.wait_for_timeout(500)
        now = page.evaluate(LAST_CANDLE)
        if now is not None and now != first:
            changed = now
            break
    assert changed is not None, f"the last candle did not change in 15 s: {first}"
    assert page.get_by_test_id("stException").count() == 0
    expect(page.get_by_test_id("stMetricValue").filter(has_text=" s").first).to_be_visible()
    assert screenshot(page, "live_market").stat().st_size > 10_000
