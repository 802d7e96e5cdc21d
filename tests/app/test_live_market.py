"""AppTest of the Live Market page against the real ingestion service and demo venue."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from core.ingest.service import stop_all
from pages._shared.format import DOWN, UP
from tests.app.conftest import AppAs

pytestmark = [pytest.mark.app, pytest.mark.slow]
PAGE = "pages/live_market.py"


@pytest.fixture(autouse=True)
def stop_services(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HFT_DEMO_VENUE", "true")
    yield
    stop_all()


def candles(at: AppTest) -> dict[str, Any] | None:
    import json

    for chart in at.get("plotly_chart"):  # the candles, then the order book's charts
        spec = json.loads(chart.proto.spec)
        found = next((t for t in spec["data"] if t["type"] == "candlestick"), None)
        if found is not None:
            return found
    return None


def run_until_chart(at: AppTest, min_candles: int, timeout: float = 40) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        at.run()
        assert not at.exception, at.exception
        trace = candles(at)
        if trace is not None and len(trace["x"]) >= min_candles:
            return trace
        if time.monotonic() > deadline:
            raise AssertionError(f"no chart with {min_candles} candles after {timeout} s")
        time.sleep(0.5)


def test_volume_colours_match_candle_colours(app_as: AppAs) -> None:
    """One pair of colours (format.UP/DOWN) for candles and the volume bar under each."""
    import json

    at = app_as("viewer", PAGE)
    candle = run_until_chart(at, min_candles=30)
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    volume = next(t for t in spec["data"] if t["type"] == "bar")
    assert candle["increasing"]["line"]["color"] == UP
    assert candle["decreasing"]["line"]["color"] == DOWN
    assert candle["increasing"]["fillcolor"] == UP
    assert candle["decreasing"]["fillcolor"] == DOWN
    want = [UP if c >= o else DOWN for o, c in zip(candle["open"], candle["close"], strict=True)]
    assert volume["marker"]["color"] == want


def test_live_market_shows_simulated_candles_and_stream_health(app_as: AppAs) -> None:
    at = app_as("viewer", PAGE)
    trace = run_until_chart(at, min_candles=100)
    assert at.title[0].value == "Live Market"
    assert any("SIMULATED" in w.value for w in at.warning)
    venue, symbol, timeframe = at.selectbox[:3]  # then the recorded books' pickers
    assert venue.value == "demo"
    assert symbol.value == "BTC/USDT"
    assert timeframe.value == "1m"
    assert all(h >= lo for h, lo in zip(trace["high"], trace["low"], strict=True))
    metrics = {m.label: m.value for m in at.metric}
    if metrics["Spread"] != "not known":  # the quote stream may not have ticked yet
        assert float(metrics["Spread"].replace(",", "")) > 0
    assert metrics["Stream lag"].endswith(" s")
    assert any("Last candle" in c.value for c in at.caption)

    # a coarser timeframe is resampled from the 1m stream: fewer, wider candles
    at.selectbox[2].set_value("5m")
    five = run_until_chart(at, min_candles=20)
    assert len(five["x"]) < len(trace["x"])

    at.selectbox[1].set_value("ETH/USDT")
    eth = run_until_chart(at, min_candles=20)
    assert eth["close"][-1] < 10_000  # ETH's model starts near 2,300, BTC's near 42,000


def test_releasing_the_singleton_stops_every_ingest_thread(app_as: AppAs) -> None:
    import threading

    import streamlit as st

    from core.ingest.service import wait_for

    names = {"demo-venue", "ingest-streams", "ingest-flush"}
    at = app_as("viewer", PAGE).run()
    assert not at.exception
    assert names <= {t.name for t in threading.enumerate()}
    st.cache_resource.clear()
    assert wait_for(lambda: not names & {t.name for t in threading.enumerate()}, 20)


def test_home_lists_the_running_streams(app_as: AppAs) -> None:
    """Home (through the router, as a browser sees it) names the demo streams once they run."""
    from pages._shared.format import md_escape
    from tests.app.helpers import texts

    run_until_chart(app_as("viewer", PAGE), min_candles=10)
    home = app_as("viewer").run(timeout=120)
    assert not home.exception, home.exception
    shown = texts(home)
    for symbol in ("BTC/USDT", "ETH/USDT"):
        assert f"{md_escape(symbol)} on demo (SIMULATED)" in shown, shown


def test_a_data_page_alpaca_subscription_shows_on_live_market(
    app_as: AppAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The analyst saves an Alpaca key, subscribes on the Data page; Live Market shows the
    provider's candles, labelled Alpaca, not SIMULATED."""
    from pages._shared.accounts import get_auth
    from pages._shared.format import md_escape
    from tests.app.helpers import texts
    from tests.integration.ingest.test_provider_streams import (
        KEY_ID,
        SECRET,
        ProviderServer,
        alpaca_sessions,
    )

    monkeypatch.setenv("HFT_DEMO_VENUE", "false")
    with ProviderServer("alpaca", alpaca_sessions()) as srv:
        monkeypatch.setenv("HFT_ALPACA_STREAM_URL", srv.url)
        data = app_as("analyst", "pages/data.py").run()
        acc = app_as.last
        get_auth().save_api_keys(
            acc.user.user_id, {"alpaca": f"{KEY_ID}:{SECRET}"}, True, password=acc.password
        )
        data.selectbox(key="sub_venue").set_value("alpaca")
        data.text_input(key="sub_symbol").set_value("AAPL")
        data.selectbox(key="sub_kind").set_value("ohlcv")
        next(b for b in data.button if b.label == "Subscribe").click().run()
        assert not data.exception, data.exception
        assert f"Subscribed to {md_escape('alpaca:AAPL:ohlcv:1m')}" in texts(data)

        at = app_as("viewer", PAGE)
        trace = run_until_chart(at, min_candles=2, timeout=20)
        assert at.selectbox[0].value == "alpaca"
        assert at.selectbox[1].value == "AAPL"
        assert trace["close"] == [211.52, 211.66]
        assert srv.messages(0)[0] == {"action": "auth", "key": KEY_ID, "secret": SECRET}
        assert not any("SIMULATED" in w.value for w in at.warning)
        assert any("Real market data from Alpaca" in c.value for c in at.caption)
        import json

        title = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["title"]["text"]
        assert title == "AAPL · Alpaca · 1m"


def test_the_book_stream_health_counts_resyncs(app_as: AppAs) -> None:
    """A gap in the demo venue's diff stream makes the client rebuild the book from a
    snapshot; the book section's stream health shows the count the stream measured."""
    from core.ingest.service import wait_for
    from pages._shared.format import integer, md_escape
    from pages._shared.live import get_ingest
    from tests.app.helpers import rerun_until, texts

    at = app_as("viewer", PAGE)
    rerun_until(at, lambda: "0 resyncs" in texts(at), timeout=60, pause=0.5)
    service = get_ingest()
    assert service.demo is not None

    def book_status() -> Any:
        return next(s for s in service.stream_status("demo", "BTC/USDT") if s.key.kind == "book")

    book = service.live_book("demo", "BTC/USDT")
    assert book is not None
    # a gap while the client still syncs from the REST snapshot would be covered by it
    assert wait_for(lambda: book.updates >= 3, 60)
    service.demo.book_fault("BTC/USDT", "gap")
    assert wait_for(lambda: book_status().resyncs >= 1, 60), book_status()
    rerun_until(at, lambda: f"{integer(book_status().resyncs)} resyncs" in texts(at), 30)
    assert f"Book stream {md_escape('demo:BTC/USDT:book')}" in texts(at)
    assert "0 resyncs" not in texts(at)


def test_a_book_only_symbol_says_why_there_are_no_candles(app_as: AppAs) -> None:
    """A symbol streamed only as a book: the page says there is no candle stream (instead of
    waiting for candles forever) and takes the spread from the live book."""
    from core.ingest.service import wait_for
    from pages._shared.format import md_escape
    from pages._shared.live import get_ingest
    from tests.app.helpers import rerun_until, texts

    at = app_as("viewer", PAGE).run()
    service = get_ingest()
    service.subscribe("demo", "SOL/USDT", "book")
    book = service.live_book("demo", "SOL/USDT")
    assert book is not None
    assert wait_for(lambda: book.updates > 0, 60)
    assert not service.streams_candles("demo", "SOL/USDT")
    assert service.streams_candles("demo", "BTC/USDT")
    at.run()
    at.selectbox[1].set_value("SOL/USDT").run()
    note = md_escape("No candle stream for SOL/USDT (streamed: book).")
    rerun_until(at, lambda: note in texts(at), timeout=30, pause=0.5)
    assert "Waiting for the first candles" not in texts(at)
    spread = next(m for m in at.metric if m.label == "Spread")
    quote = service.spread("demo", "SOL/USDT")
    assert quote is not None
    assert quote["source"] == "book"
    assert quote["bid"] < quote["ask"]
    assert spread.value != "not known"
    assert "from the order book" in spread.help
