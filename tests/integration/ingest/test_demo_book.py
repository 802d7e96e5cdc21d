"""The demo venue's SIMULATED book: consistent with its trades, and synced by the real
ccxt.pro Binance client over Binance's snapshot + diff protocol (#16 item 1)."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import ccxt.pro
import numpy as np
import pytest

from core.ingest.demo_venue import DemoVenue, VenueError
from core.ingest.sim import PriceModel, SimMarket
from core.ingest.sim_book import SimBook

MODEL = PriceModel(s0=42_000.0, trades_per_s=30.0, mean_size=0.05)


def apply(
    book: dict[str, dict[float, float]], side: str, levels: list[tuple[float, float]]
) -> None:
    for price, size in levels:
        if size == 0.0:
            book[side].pop(price, None)
        else:
            book[side][price] = size


def test_trades_consume_the_book_from_the_best_level_outward() -> None:
    book = SimBook(0.01, 0.05, np.random.default_rng(3))
    book.recentre(42_000.0, 2.1)
    _, bids, asks = book.snapshot(1000)
    assert bids[0][0] < 42_000.0 < asks[0][0]
    want = sum(q for _, q in asks[:3]) - asks[2][1] / 2  # two and a half levels
    fills = book.take(True, round(want, 5))
    assert [p for p, _ in fills] == [p for p, _ in asks[:3]]
    assert [q for _, q in fills[:2]] == [q for _, q in asks[:2]]
    assert sum(q for _, q in fills) == pytest.approx(want, abs=1e-5)
    _, _, after = book.snapshot(1000)
    assert after[0][0] == asks[2][0]  # the third level is now the best, partly filled
    assert after[0][1] == pytest.approx(asks[2][1] - fills[2][1], abs=1e-5)


class Watched(SimBook):
    """The real book, recording what each market order met."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.orders: list[tuple[bool, list[tuple[float, float]], list[tuple[float, float]]]] = []

    def take(self, buy: bool, qty: float) -> list[tuple[float, float]]:
        _, bids, asks = self.snapshot(10_000)
        fills = super().take(buy, qty)
        self.orders.append((buy, asks if buy else bids, fills))
        return fills


def test_every_trade_prints_at_a_level_the_book_held() -> None:
    m = SimMarket("BTC/USDT", MODEL, seed=5, start_ms=0)
    m.book = Watched(MODEL.tick, MODEL.mean_size, np.random.default_rng(1))
    trades = []
    for now in range(100, 60_000, 100):
        trades += m.advance(now)
        _, bids, asks = m.book_snapshot(1)
        assert bids[0][0] < asks[0][0], "the book is never crossed"
    assert len(m.book.orders) > 1000
    printed = []
    for buy, side, fills in m.book.orders:
        # fills walk the side from its best level outward, at most each level's size
        assert [p for p, _ in fills] == [p for p, _ in side[: len(fills)]]
        assert all(q <= held + 1e-12 for (_, q), (_, held) in zip(fills, side, strict=False))
        printed += [(p, q, not buy) for p, q in fills]
    assert [(t.price, t.qty, t.buyer_maker) for t in trades] == printed


def test_diffs_after_a_snapshot_rebuild_the_next_snapshot() -> None:
    m = SimMarket("BTC/USDT", MODEL, seed=8, start_ms=0)
    m.advance(1_000)
    m.book_diff()
    last_id, bids, asks = m.book_snapshot(10_000)
    book: dict[str, dict[float, float]] = {"b": dict(bids), "a": dict(asks)}
    expect_first = last_id + 1
    for now in range(1_100, 30_000, 100):
        m.advance(now)
        d = m.book_diff()
        if d is None:
            continue
        assert d.first_id == expect_first, "diff ids are contiguous"
        expect_first = d.last_id + 1
        apply(book, "b", d.bids)
        apply(book, "a", d.asks)
    final_id, bids, asks = m.book_snapshot(10_000)
    assert final_id == expect_first - 1
    assert book == {"b": dict(bids), "a": dict(asks)}


@pytest.fixture
def venue() -> Iterator[DemoVenue]:
    # one pump a second: between two pumps the venue's book does not move
    v = DemoVenue({"BTC/USDT": MODEL}, seed=21, history_minutes=5, tick_s=1.0).start()
    yield v
    v.stop()


def rest(venue: DemoVenue, path: str) -> Any:
    with urllib.request.urlopen(venue.rest_url + path, timeout=5) as r:
        return json.loads(r.read())


def test_rest_snapshot_is_binance_shaped(venue: DemoVenue) -> None:
    snap = rest(venue, "/api/v3/depth?symbol=BTCUSDT&limit=5")
    assert set(snap) == {"lastUpdateId", "bids", "asks"}
    bids = [float(p) for p, _ in snap["bids"]]
    asks = [float(p) for p, _ in snap["asks"]]
    assert (len(bids), len(asks)) == (5, 5)
    assert (bids, asks) == (sorted(bids, reverse=True), sorted(asks))
    assert bids[0] < asks[0]
    with pytest.raises(urllib.error.HTTPError) as err:
        rest(venue, "/api/v3/depth?symbol=NOPE")
    err.value.close()
    assert err.value.code == 400
    with pytest.raises(VenueError, match="unknown book fault"):
        venue.book_fault("BTC/USDT", "scramble")


def client(venue: DemoVenue) -> Any:
    return ccxt.pro.binance(
        {
            "urls": venue.ccxt_urls(),
            "options": {"fetchMarkets": {"types": ["spot"]}},
        }
    )


def venue_book(venue: DemoVenue) -> tuple[int, list[list[float]], list[list[float]]]:
    last_id, bids, asks = venue.markets["BTCUSDT"].book_snapshot(10_000)
    return last_id, [list(x) for x in bids], [list(x) for x in asks]


def test_ccxt_pro_keeps_the_book_equal_to_the_venue(venue: DemoVenue) -> None:
    async def run() -> list[bool]:
        ex = client(venue)
        equal = []
        try:
            for _ in range(6):
                ob = await ex.watch_order_book("BTC/USDT", limit=None)
                last_id, bids, asks = venue_book(venue)
                if ob["nonce"] != last_id:
                    continue  # the venue moved on between the event and this read
                equal.append(ob["bids"] == bids and ob["asks"] == asks)
        finally:
            await ex.close()
        return equal

    equal = asyncio.run(run())
    assert equal, "no book event matched the venue's update id"
    assert all(equal), equal


@pytest.mark.parametrize("fault", ["gap", "reorder"])
def test_a_gap_in_update_ids_makes_ccxt_refuse_the_book(venue: DemoVenue, fault: str) -> None:
    async def run() -> str:
        ex = client(venue)
        try:
            await ex.watch_order_book("BTC/USDT")
            venue.book_fault("BTC/USDT", fault)
            for _ in range(10):
                try:
                    await ex.watch_order_book("BTC/USDT")
                except ccxt.ChecksumError as exc:
                    return str(exc)
            return "no error"
        finally:
            await ex.close()

    assert "BTC/USDT" in asyncio.run(run())


def test_a_duplicate_diff_is_ignored_and_a_crossed_one_shows(venue: DemoVenue) -> None:
    async def run() -> tuple[bool, bool]:
        ex = client(venue)
        try:
            await ex.watch_order_book("BTC/USDT")
            venue.book_fault("BTC/USDT", "duplicate")
            same = False
            for _ in range(4):
                ob = await ex.watch_order_book("BTC/USDT")
                last_id, bids, _ = venue_book(venue)
                same = same or (ob["nonce"] == last_id and ob["bids"] == bids)
            venue.book_fault("BTC/USDT", "cross")
            crossed = False
            for _ in range(3):
                ob = await ex.watch_order_book("BTC/USDT")
                crossed = crossed or ob["bids"][0][0] >= ob["asks"][0][0]
            return same, crossed
        finally:
            await ex.close()

    same, crossed = asyncio.run(run())
    assert same, "after a duplicate the client's book still equals the venue's"
    assert crossed, "a crossed diff reaches the client (the stream layer must resync)"
