"""Live book streams (#16 item 2): the stream manager keeps each book equal to the demo
venue's, resyncs after a gap or a crossed update and counts it, and hands the recorder
changes that rebuild the live book exactly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from core.data.books import ASK, BID, BookEvent
from core.ingest.ccxt_ws import StreamKey, StreamManager, VenueConfig
from core.ingest.demo_venue import DemoVenue
from core.ingest.live_book import LiveBook
from core.ingest.service import wait_for
from core.ingest.sim import PriceModel

MODEL = PriceModel(s0=42_000.0, trades_per_s=20.0, mean_size=0.05)


class Recorder:
    """Replays what on_book hands over, as the store's replay will."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[BookEvent] = []

    def __call__(self, key: StreamKey, events: list[BookEvent]) -> None:
        with self.lock:
            self.events.extend(events)

    def book(self) -> tuple[dict[float, float], dict[float, float], int]:
        with self.lock:
            events = list(self.events)
        sides: tuple[dict[float, float], dict[float, float]] = ({}, {})
        seq = 0
        for e in events:
            if e.snapshot:
                sides = ({}, {})
                seq = e.seq[0]
            for i, (side, price, size) in enumerate(zip(e.side, e.price, e.size, strict=True)):
                if not e.snapshot:
                    assert e.seq[i] > seq, "sequence numbers increase"
                    seq = e.seq[i]
                book = sides[0 if side == BID else 1]
                if size == 0.0:
                    book.pop(price, None)
                else:
                    book[price] = size
        return sides[0], sides[1], seq


Streams = tuple[StreamManager, Recorder, StreamKey]


@pytest.fixture
def venue() -> Iterator[DemoVenue]:
    v = DemoVenue({"BTC/USDT": MODEL}, seed=31, history_minutes=5, tick_s=0.5).start()
    yield v
    v.stop()


@pytest.fixture
def streams(venue: DemoVenue) -> Iterator[Streams]:
    rec = Recorder()
    m = StreamManager(lambda k, f: None, lambda k, f, final: None, history_s=0, on_book=rec)
    m.add_venue(VenueConfig("demo", "binance", venue.ccxt_urls(), simulated=True))
    m.start()
    key = m.subscribe("demo", "BTC/USDT", "book")
    yield m, rec, key
    m.stop()


def live(m: StreamManager, key: StreamKey) -> LiveBook:
    book = m.live_book(key)
    assert book is not None
    return book


def matches_venue(m: StreamManager, key: StreamKey, venue: DemoVenue) -> bool:
    """The live book equals the venue's at the same update (retried: both keep moving)."""
    for _ in range(40):
        view = live(m, key).view(10_000)
        _, bids, asks = venue.markets["BTCUSDT"].book_snapshot(10_000)
        if view is not None and view.bids == bids and view.asks == asks:
            return True
        time.sleep(0.05)
    return False


def status(m: StreamManager, key: StreamKey):  # type: ignore[no-untyped-def]
    return next(s for s in m.status() if s.key == key)


def test_the_live_book_follows_the_venue(venue: DemoVenue, streams: Streams) -> None:
    m, _, key = streams
    assert wait_for(lambda: live(m, key).updates >= 5, 30)
    assert matches_venue(m, key, venue)
    view = live(m, key).view(20)
    assert view is not None
    assert len(view.bids) == 20
    assert view.bids[0][0] < view.asks[0][0]
    assert status(m, key).state == "live"
    assert status(m, key).resyncs == 0


@pytest.mark.parametrize("fault", ["gap", "reorder", "cross"])
def test_a_broken_stream_resyncs_and_is_counted(
    venue: DemoVenue, streams: Streams, fault: str
) -> None:
    m, _, key = streams
    assert wait_for(lambda: live(m, key).updates >= 3, 30)
    venue.book_fault("BTC/USDT", fault)
    assert wait_for(lambda: status(m, key).resyncs >= 1, 30), status(m, key)
    before = live(m, key).updates
    assert wait_for(lambda: live(m, key).updates >= before + 3, 30)
    assert matches_venue(m, key, venue), "the book is right again after the resync"
    view = live(m, key).view(1)
    assert view is not None
    assert view.bids[0][0] < view.asks[0][0]


def test_recorded_changes_rebuild_the_live_book(venue: DemoVenue, streams: Streams) -> None:
    m, rec, key = streams
    assert wait_for(lambda: live(m, key).updates >= 8, 30)
    venue.book_fault("BTC/USDT", "gap")  # a resync in the middle: recorded as a snapshot
    assert wait_for(lambda: status(m, key).resyncs >= 1, 30)
    n = live(m, key).updates
    assert wait_for(lambda: live(m, key).updates >= n + 4, 30)
    book = live(m, key)
    m.unsubscribe(key)  # freeze the live book
    assert m.live_book(key) is None
    view = book.view(10_000)
    assert view is not None
    bids, asks, seq = rec.book()
    with rec.lock:
        snapshots = sum(e.snapshot for e in rec.events)
    assert snapshots >= 2, "the first book and the resync are snapshots"
    assert (bids, asks) == (dict(view.bids), dict(view.asks))
    assert seq == view.seq


def test_live_book_diffs_and_snapshots_by_itself() -> None:
    book = LiveBook(snapshot_every_s=1.0, seq_start=0)
    first = book.update([[100.0, 1.0], [99.0, 2.0]], [[101.0, 1.0]], 1_000_000)
    assert [e.snapshot for e in first] == [True]
    assert first[0].seq == [0]
    nxt = book.update([[100.0, 1.5], [99.0, 2.0]], [[101.0, 1.0], [102.0, 3.0]], 1_100_000)
    assert [e.snapshot for e in nxt] == [False]
    changes = sorted(zip(nxt[0].side, nxt[0].price, nxt[0].size, strict=True))
    assert changes == [(BID, 100.0, 1.5), (ASK, 102.0, 3.0)]
    assert nxt[0].seq == [1, 2]
    gone = book.update([[99.0, 2.0]], [[102.0, 3.0]], 2_200_000)  # a snapshot is due
    assert [e.snapshot for e in gone] == [False, True]
    assert sorted(zip(gone[0].side, gone[0].price, gone[0].size, strict=True)) == [
        (BID, 100.0, 0.0),
        (ASK, 101.0, 0.0),
    ]
    assert gone[1].seq == [gone[0].seq[-1]]
    assert book.update([[99.0, 2.0]], [[102.0, 3.0]], 2_300_000) == []
    book.resync()
    again = book.update([[98.0, 1.0]], [[103.0, 1.0]], 2_400_000)
    assert [e.snapshot for e in again] == [True]
    view = book.view()
    assert view is not None
    assert (view.bids, view.asks) == ([(98.0, 1.0)], [(103.0, 1.0)])
