"""AppTest of the Prediction markets page against loopback Polymarket servers (Gamma, CLOB and
the market WebSocket) replaying recorded payloads, and against a closed port (offline)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.ingest.meter import public_meter
from core.ingest.service import wait_for
from core.ingest.venues import venue
from tests.app.conftest import AppAs
from tests.app.helpers import rerun_until, texts
from tests.integration.ingest.recorded import (
    DATA,
    RecordedServer,
    RecordedWebSocket,
    Reply,
    frames,
    recorded,
    serving,
)

pytestmark = pytest.mark.app
PAGE = "pages/prediction_markets.py"
PAGE1 = "search_fed_page1.json"
UNREACHABLE = "Polymarket is not reachable from this server (no network?)"
MARKET = json.loads((DATA / "polymarket" / "market_by_slug.json").read_text())[0]
YES, NO = json.loads(MARKET["clobTokenIds"])


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    st.cache_data.clear()  # the history cache is process-wide
    yield
    st.cache_data.clear()


def first_token(name: str) -> str:
    """The first outcome token of the first market of a recorded Gamma answer."""
    body = json.loads((DATA / "polymarket" / name).read_text())
    market = body["events"][0]["markets"][0] if isinstance(body, dict) else body[0]
    return str(json.loads(market["clobTokenIds"])[0])


def pm(name: str, status: int = 200) -> Reply:
    return recorded(f"polymarket/{name}", status)


def recent_history() -> Reply:
    """The recorded 10-minute points, moved so the last one is an hour old (the page asks
    for the last week)."""
    history = json.loads((DATA / "polymarket" / "prices_history_10min.json").read_text())
    points = history["history"]
    shift = int(time.time()) - 3600 - points[-1]["t"]
    moved = [{"t": p["t"] + shift, "p": p["p"]} for p in points]
    return Reply(json.dumps({"history": moved}, separators=(",", ":")).encode())


def routes() -> dict[str, list[Reply]]:
    return {
        "/markets": [pm("markets_top_offset0.json")],
        "/public-search": [pm("search_fed_page1.json"), pm("search_fed_page2.json")],
        "/prices-history": [recent_history()],
        "/book": [pm("book_no_change_yes.json")],
    }


def point_at(monkeypatch: pytest.MonkeyPatch, base: str) -> None:
    monkeypatch.setenv("HFT_POLYMARKET_GAMMA_URL", base)
    monkeypatch.setenv("HFT_POLYMARKET_CLOB_URL", base)


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def chart(at: AppTest, key: str) -> dict[str, Any]:
    for c in at.get("plotly_chart"):
        spec = json.loads(c.proto.spec)
        if key in json.dumps(spec.get("layout", {}).get("title", "")):
            return spec
    raise AssertionError(f"no chart {key!r}")


def search(at: AppTest, query: str) -> AppTest:
    at.text_input(key="pm_query").input(query)
    next(b for b in at.button if b.label == "Search").click()
    return at.run()


def open_market(app_as: AppAs, monkeypatch: pytest.MonkeyPatch, srv: RecordedServer) -> AppTest:
    point_at(monkeypatch, srv.base)
    at = app_as("viewer", PAGE).run()
    assert not at.exception, at.exception
    at = search(at, "fed")
    at.selectbox(key="pm_market").set_value(MARKET["id"]).run()
    assert not at.exception, at.exception
    return at


def test_search_pick_chart_and_book(app_as: AppAs, monkeypatch: pytest.MonkeyPatch) -> None:
    meter = public_meter(venue("polymarket"))
    before = meter.requests
    with serving(routes()) as srv:
        point_at(monkeypatch, srv.base)
        at = app_as("viewer", PAGE).run()
        assert not at.exception, at.exception
        assert [t.value for t in at.title] == ["Prediction markets"]
        shown = texts(at)
        assert "never trades" in shown
        assert at.code[0].value.isdigit()  # the token id a Data page job needs
        assert "2 markets with the most volume in 24 hours" in shown
        assert srv.hits("/markets")[0].query["order"] == "volume24hr"

        at = search(at, "fed")
        assert not at.exception, at.exception
        assert "5 markets for “fed”" in texts(at)
        table = at.dataframe[0].value
        assert "Yes 76.5% · No 23.5%" in list(table["prices"])
        assert [r.query["page"] for r in srv.hits("/public-search")] == ["1", "2"]

        at.selectbox(key="pm_market").set_value(MARKET["id"]).run()
        assert not at.exception, at.exception
        # the chart follows the market on screen: the first one shown, then the one picked
        asked = [r.query["market"] for r in srv.hits("/prices-history")]
        assert asked == [first_token("markets_top_offset0.json"), first_token(PAGE1), YES]
        assert srv.hits("/prices-history")[-1].query["fidelity"] == "10"
        spec = chart(at, "probability")
        assert spec["layout"]["yaxis"]["range"] == [0, 100]
        line = spec["data"][-1]
        assert len(line["y"]) >= 24
        assert all(0 <= y <= 100 for y in line["y"])
        assert metrics(at)["Last"].endswith("%")
        assert not srv.hits("/book")  # the book waits until asked for

        at.button(key="pm_book_load").click().run()
        assert not at.exception, at.exception
        assert srv.hits("/book")[0].query == {"token_id": YES}
        shown = metrics(at)
        assert (shown["Best bid"], shown["Best ask"], shown["Spread"]) == ("75.0%", "77.0%", "2.0%")
        bids = at.dataframe[-2].value
        assert list(bids["price"])[:2] == [75.0, 74.0]  # best first, in %
        chart(at, "Depth")
        assert "Polymarket requests from this server" in texts(at)
        seen = len(srv.requests)
    assert seen == 7  # top markets, two search pages, three charts, the book
    assert meter.requests - before == seen


def test_the_book_is_for_the_outcome_on_screen(
    app_as: AppAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serving(routes() | {"/book": [pm("error_no_orderbook.json", 404)]}) as srv:
        at = open_market(app_as, monkeypatch, srv)
        at.radio(key="pm_outcome").set_value("No").run()
        assert srv.hits("/prices-history")[-1].query["market"] == NO
        at.button(key="pm_book_load").click().run()
        assert not at.exception, at.exception
        [error] = [e.value for e in at.error]
        assert error.startswith("Could not read the order book: Polymarket has no order book")
        assert "Best bid" not in metrics(at)


def test_offline_says_polymarket_is_not_reachable(
    app_as: AppAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    point_at(monkeypatch, f"http://127.0.0.1:{port}")
    at = app_as("viewer", PAGE).run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Prediction markets"]
    assert any(UNREACHABLE in w.value.replace("\\", "") for w in at.warning)  # md-escaped
    assert not at.error  # offline is a state to explain, not a failure of the page
    assert not at.dataframe
    assert not at.markdown  # the notice, the captions and nothing stray
    assert "Polymarket requests from this server" in texts(at)


def test_live_panel_only_while_switched_on(app_as: AppAs, monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = [frames("polymarket/ws_market_session1.txt")]
    with serving(routes()) as srv, RecordedWebSocket(sessions) as ws:
        monkeypatch.setenv("HFT_POLYMARKET_WS_URL", ws.url)
        at = open_market(app_as, monkeypatch, srv)
        assert ws.connections == 0  # nothing is streamed while the panel is off
        at.toggle(key="pm_live").set_value(True).run()
        rerun_until(at, lambda: metrics(at).get("Live best ask") == "78.0%", timeout=30)
        assert metrics(at)["Live best bid"] == "76.5%"
        assert metrics(at)["Last trade"] == "77.0%"
        assert json.loads(ws.texts(0)[0]) == {"assets_ids": [YES], "type": "market"}
        assert ws.connections == 1  # one client for the token, reused by every rerun
        st.cache_resource.clear()  # releases the client, which stops it
        assert wait_for(lambda: not streams_running(), 10)


def streams_running() -> bool:
    return any(t.name == "polymarket-ws" and t.is_alive() for t in threading.enumerate())
