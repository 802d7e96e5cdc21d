"""Book streams on Kraken and OKX (#16 item 2): through the real stream manager and ccxt.pro
clients, against loopback venues speaking each venue's wire format (venue_books). The live
book equals the venue's; a book that silently diverged, or a wrong checksum, makes the
client resync from a new snapshot (unsubscribe, then subscribe) and is counted; a healthy
stream never resyncs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ccxt
import pytest

from core.ingest.ccxt_ws import StreamKey, StreamManager, StreamStatus, VenueConfig
from core.ingest.service import wait_for
from tests.integration.ingest.recorded import loopback_urls, recorded, serving
from tests.integration.ingest.venue_books import Book, BookVenue, KrakenVenue, OkxVenue

KRAKEN_REST = {
    "/0/public/Assets": [recorded("ccxt/kraken/Assets.json")],
    "/0/public/AssetPairs": [recorded("ccxt/kraken/AssetPairs.json")],
}
OKX_REST = {"/api/v5/public/instruments": [recorded("ccxt/okx/instruments_SPOT.json")]}


@dataclass
class Streams:
    venue: BookVenue
    manager: StreamManager
    key: StreamKey
    depth: int
    """Levels a side the client keeps: Kraken's subscribed depth, OKX's whole book."""


def kraken_urls(rest: str, ws: str) -> dict[str, Any]:
    api = loopback_urls(ccxt.kraken(), rest)["api"]
    api["ws"] = {name: ws for name in ("public", "private", "publicV2", "privateV2")}
    return {"api": api}


def okx_urls(rest: str, ws: str) -> dict[str, Any]:
    return {"api": {"rest": rest, "ws": f"{ws}/ws/v5"}}


@pytest.fixture(params=["kraken", "okx"])
def streams(request: pytest.FixtureRequest) -> Iterator[Streams]:
    venue: BookVenue
    if request.param == "kraken":
        venue, routes, symbol, depth = (
            KrakenVenue(Book(7, "42000", "0.1", "1E-8")),
            KRAKEN_REST,
            "BTC/USD",
            10,
        )
    else:
        venue, routes, symbol, depth = (
            OkxVenue(Book(8, "42000", "0.1", "1E-8")),
            OKX_REST,
            "BTC/USDT",
            400,
        )
    venue.start()
    with serving(routes) as rest:
        ws = f"ws://127.0.0.1:{venue.port}"
        urls = kraken_urls(rest.base, ws) if request.param == "kraken" else okx_urls(rest.base, ws)
        m = StreamManager(lambda k, f: None, lambda k, f, final: None, history_s=0)
        m.add_venue(VenueConfig(request.param, request.param, urls))
        m.start()
        key = m.subscribe(request.param, symbol, "book")
        yield Streams(venue, m, key, depth)
        m.stop()
    venue.stop()


def status(s: Streams) -> StreamStatus:
    return next(st for st in s.manager.status() if st.key == s.key)


def updates(s: Streams) -> int:
    book = s.manager.live_book(s.key)
    return book.updates if book is not None else 0


def matches_venue(s: Streams) -> bool:
    """With the venue held still, the live book comes to equal its best levels exactly."""
    with s.venue.paused():
        with s.venue.lock:
            bids, asks = s.venue.book.top(s.depth)
        want = ([(float(p), float(q)) for p, q in bids], [(float(p), float(q)) for p, q in asks])

        def same() -> bool:
            book = s.manager.live_book(s.key)
            view = book.view(s.depth) if book is not None else None
            return view is not None and (list(view.bids), list(view.asks)) == want

        return wait_for(same, 15)


def book_requests(s: Streams) -> list[str]:
    """What the client asked of the book channel, in order: 'subscribe' / 'unsubscribe'."""
    out = []
    for message in s.venue.sent():
        if not isinstance(message, dict):
            continue
        channel = (message.get("params") or {}).get("channel")
        args = message.get("args") or [{}]
        if channel == "book" or args[0].get("channel") == "books":
            out.append(str(message.get("method") or message.get("op")))
    return out


def test_the_live_book_follows_the_venue(streams: Streams) -> None:
    s = streams
    assert wait_for(lambda: updates(s) >= 30, 30), status(s)
    assert matches_venue(s)
    assert wait_for(lambda: updates(s) >= 60, 30)
    assert matches_venue(s)
    st = status(s)
    assert (st.state, st.resyncs, st.malformed) == ("live", 0, 0), st
    assert book_requests(s) == ["subscribe"]


@pytest.mark.parametrize("fault", ["skip", "checksum"])
def test_a_diverged_book_resyncs_and_is_counted(streams: Streams, fault: str) -> None:
    s = streams
    assert wait_for(lambda: updates(s) >= 10, 30), status(s)
    s.venue.corrupt(fault)
    assert wait_for(lambda: status(s).resyncs >= 1, 30), status(s)
    assert "ChecksumError" in status(s).last_error
    assert wait_for(lambda: book_requests(s) == ["subscribe", "unsubscribe", "subscribe"], 15)
    assert s.venue.connections == 1  # the same connection: no reconnect was needed
    before = updates(s)
    assert wait_for(lambda: updates(s) >= before + 10, 30)
    assert matches_venue(s), "the book is right again after the resync"
    st = status(s)
    assert (st.state, st.resyncs, st.reconnects) == ("live", 1, 0), st


def test_okx_zero_checksums_are_not_checked() -> None:
    """Since June 2026 OKX sends 0 in the checksum field: it is not a mismatch (sequence ids
    remain the check), so a healthy stream is not resynced on every message."""
    venue = OkxVenue(Book(9, "42000", "0.1", "1E-8"))
    venue.checksums = False
    venue.start()
    with serving(OKX_REST) as rest:
        m = StreamManager(lambda k, f: None, lambda k, f, final: None, history_s=0)
        m.add_venue(VenueConfig("okx", "okx", okx_urls(rest.base, f"ws://127.0.0.1:{venue.port}")))
        m.start()
        s = Streams(venue, m, m.subscribe("okx", "BTC/USDT", "book"), 400)
        try:
            assert wait_for(lambda: updates(s) >= 30, 30), status(s)
            assert matches_venue(s)
            assert status(s).resyncs == 0
        finally:
            m.stop()
    venue.stop()
