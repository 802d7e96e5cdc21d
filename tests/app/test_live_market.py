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
    charts = at.get("plotly_chart")
    if not charts:
        return None
    import json

    spec = json.loads(charts[0].proto.spec)
    return next(t for t in spec["data"] if t["type"] == "candlestick")


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
    venue, symbol, timeframe = at.selectbox
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
