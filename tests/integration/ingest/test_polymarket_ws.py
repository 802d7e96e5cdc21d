"""The live prices client against a loopback WebSocket server replaying recorded market-channel
frames (tests/data/polymarket/ws_market_session*.txt): subscription, book and price changes,
trades, keep-alive, a malformed frame, a dropped connection and a server that goes quiet."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from core.config import Settings
from core.errors import InvalidInput
from core.ingest.polymarket_ws import PolymarketPrices, Quote
from core.ingest.service import wait_for
from tests.integration.ingest.recorded import DATA, RecordedWebSocket, frames

YES, NO = json.loads(
    json.loads((DATA / "polymarket" / "market_by_slug.json").read_text())[0]["clobTokenIds"]
)
SESSION1 = frames("polymarket/ws_market_session1.txt")
SESSION2 = frames("polymarket/ws_market_session2.txt")


@pytest.fixture
def server() -> Iterator[RecordedWebSocket]:
    with RecordedWebSocket([SESSION1, SESSION2]) as srv:
        yield srv


@pytest.fixture
def clients() -> Iterator[list[PolymarketPrices]]:
    made: list[PolymarketPrices] = []
    yield made
    for c in made:
        c.stop()


def follow(clients: list[PolymarketPrices], url: str, **kw: object) -> PolymarketPrices:
    c = PolymarketPrices([YES, NO], url, backoff_initial_s=0.1, **kw)  # type: ignore[arg-type]
    clients.append(c)
    return c


def test_subscribes_and_keeps_book_prices_and_trades(
    server: RecordedWebSocket, clients: list[PolymarketPrices]
) -> None:
    seen: list[tuple[str, Quote]] = []
    prices = follow(clients, server.url, on_update=lambda a, q: seen.append((a, q)))
    # the last frame of the session removes the best ask of YES
    assert wait_for(lambda: prices.snapshot(YES).best_ask == 0.78, 10)
    assert json.loads(server.texts(0)[0]) == {"assets_ids": [YES, NO], "type": "market"}
    yes, no = prices.snapshot(YES), prices.snapshot(NO)
    assert yes.best_bid == 0.765  # from the price_change after the book
    assert yes.bids[0] == (0.765, 1250.0)
    assert len(yes.bids) == 6
    assert (0.77, 0.0) not in yes.asks
    assert yes.asks[0][0] == 0.78
    assert (yes.last_trade_price, yes.last_trade_size, yes.last_trade_side) == (0.77, 310.5, "BUY")
    assert yes.updated == datetime.fromtimestamp(1796540503.6, UTC)
    assert (no.best_bid, no.best_ask) == (0.23, 0.235)
    assert no.tick_size == 0.001
    st = prices.status()
    assert st.connected
    assert st.state == "live"
    assert st.malformed == 2  # the cut-off frame and the price that is not a number
    assert "malformed frame skipped" in st.last_error
    assert st.messages == len(SESSION1)
    assert st.reconnects == 0
    # the frame with the bad price changed nothing: the trade before it stands
    assert all(q.last_trade_price in (None, 0.77) for _, q in seen)
    assert {a for a, _ in seen} == {YES, NO}


def test_sends_and_answers_the_keep_alive(
    server: RecordedWebSocket, clients: list[PolymarketPrices]
) -> None:
    prices = follow(clients, server.url, ping_s=0.2)
    assert wait_for(lambda: prices.status().pongs >= 2, 10)
    assert server.texts(0).count("PING") >= 2
    server.send("PING")
    assert wait_for(lambda: "PONG" in server.texts(0), 10)
    assert prices.status().reconnects == 0


def test_a_dropped_connection_reconnects_and_subscribes_again(
    server: RecordedWebSocket, clients: list[PolymarketPrices]
) -> None:
    prices = follow(clients, server.url)
    assert wait_for(lambda: prices.snapshot(YES).best_ask == 0.78, 10)
    server.drop()
    assert wait_for(lambda: prices.snapshot(YES).best_bid == 0.78, 10)  # session 2's book
    st = prices.status()
    assert st.reconnects == 1
    assert st.connected
    assert server.connections == 2
    assert json.loads(server.texts(1)[0])["assets_ids"] == [YES, NO]
    assert prices.snapshot(YES).last_trade_price == 0.77  # kept across the reconnect


def test_a_quiet_server_is_left_for_a_new_connection(clients: list[PolymarketPrices]) -> None:
    with RecordedWebSocket([SESSION1], answer_pings=False) as srv:
        prices = follow(clients, srv.url, ping_s=0.2, stale_s=0.6)
        assert wait_for(lambda: srv.connections >= 2, 10)
        assert wait_for(lambda: prices.status().watchdog_trips >= 1, 5)
        assert prices.status().reconnects >= 1
        assert srv.texts(0).count("PING") >= 1  # it did ask before leaving


def test_unreachable_keeps_trying_and_stops_at_once(clients: list[PolymarketPrices]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    prices = follow(clients, f"ws://127.0.0.1:{port}/ws/market")
    assert wait_for(lambda: prices.status().reconnects >= 2, 10)
    st = prices.status()
    assert not st.connected
    assert st.state == "reconnecting"
    assert "ConnectionRefused" in st.last_error or "Errno" in st.last_error
    prices.stop(timeout=5)
    assert prices.status().state == "stopped"
    assert prices.snapshot(YES) == Quote(YES)


def test_the_url_comes_from_the_settings(
    server: RecordedWebSocket, clients: list[PolymarketPrices], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HFT_POLYMARKET_WS_URL", server.url)
    prices = PolymarketPrices([YES])
    clients.append(prices)
    assert prices.url == server.url
    assert wait_for(lambda: prices.snapshot(YES).best_bid is not None, 10)
    other = PolymarketPrices([NO], settings=Settings(polymarket_ws_url=server.url))
    clients.append(other)
    assert other.url == server.url


def test_bad_asset_ids_are_refused() -> None:
    for ids, message in [([], "one or more"), ("123", "one or more"), (["abc"], "long number")]:
        with pytest.raises(InvalidInput, match=message):
            PolymarketPrices(ids, "ws://127.0.0.1:9")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="must start with ws:// or wss://"):
        PolymarketPrices(["123"], "https://clob.polymarket.com")
    p = PolymarketPrices(["123"], "ws://127.0.0.1:9")
    try:
        with pytest.raises(InvalidInput, match="not subscribed"):
            p.snapshot("456")
    finally:
        p.stop()
