"""Live Market in Chromium: the last candle moves while the demo venue streams; the demo
venue's order book shows as a depth chart, a ladder and a heatmap."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Server, open_app, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LAST_CANDLE = """() => {
  const gd = [...document.querySelectorAll('.js-plotly-plot')]
    .find(g => g.data && g.data.some(t => t.type === 'candlestick'));
  if (!gd) return null;
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


BOOK_CHARTS = """() => {
  const out = {};
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const raw = gd.layout && gd.layout.title && gd.layout.title.text;
    if (!raw || !gd.data) continue;
    const title = raw.replace(/<[^>]+>/g, '');  // the theme wraps titles in <b>
    const name = title.split(' · ')[0];
    if (name === 'Depth') {
      const bids = gd.data.find(t => t.name === 'bids');
      const asks = gd.data.find(t => t.name === 'asks');
      out.depth = {title, bids: bids.x.length, asks: asks.x.length,
                   best_bid: bids.x[0], best_ask: asks.x[0],
                   drawn: gd.querySelectorAll('.scatterlayer .trace').length};
    }
    if (name === 'Liquidity heatmap') {
      const heat = gd.data.find(t => t.type === 'heatmap');
      const trades = gd.data.find(t => t.name === 'trades');
      out.heatmap = {title, samples: heat.x.length,
                     trades: trades ? trades.x.length : 0,
                     drawn: gd.querySelectorAll('.heatmaplayer image').length};
    }
  }
  return out.depth && out.heatmap && out.heatmap.samples >= 10 && out.heatmap.trades > 0
    && out.depth.drawn === 2 ? out : null;
}"""


def test_the_demo_book_shows_depth_ladder_and_heatmap(live_server: Server, page: Page) -> None:
    open_app(page, live_server, "live_market", role="viewer")
    expect(page.get_by_text("Order book").first).to_be_visible(timeout=60_000)
    charts = page.wait_for_function(BOOK_CHARTS, timeout=90_000).json_value()
    depth, heat = charts["depth"], charts["heatmap"]
    assert "BTC/USDT" in depth["title"]
    assert "SIMULATED" in depth["title"]
    assert "SIMULATED" in heat["title"]
    assert depth["bids"] == depth["asks"] == 20
    assert depth["best_bid"] < depth["best_ask"]
    assert heat["drawn"] >= 1  # the heatmap's image is on the page, not only its data
    # the ladder: a grid with its two-sided headers (the first table on the page)
    ladder = page.get_by_test_id("stDataFrame").first
    expect(ladder).to_be_visible()
    expect(ladder.get_by_text("bid total")).to_have_count(1)
    expect(ladder.get_by_text("ask total")).to_have_count(1)
    assert page.get_by_test_id("stException").count() == 0
    # the app scrolls inside its own container: bring the book into the picture
    page.get_by_text("Order book", exact=True).first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    assert screenshot(page, "live_market_book").stat().st_size > 10_000
