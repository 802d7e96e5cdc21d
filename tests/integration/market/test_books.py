"""Recorded books in the store (#16 item 3): the demo venue's live book recorded through the
stream manager, replayed by `book_at` level for level as the live client held it, kept across
a restart, and measured by `book_features` as a plain Python reference does."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from core.data.books import BookEvent
from core.data.store import MarketStore
from core.errors import InvalidInput
from core.ingest.ccxt_ws import StreamKey, StreamManager, VenueConfig
from core.ingest.demo_venue import DemoVenue
from core.ingest.live_book import BookView
from core.ingest.service import wait_for
from core.ingest.sim import PriceModel

MODEL = PriceModel(s0=42_000.0, trades_per_s=20.0, mean_size=0.05)


class Tap:
    """Records into the store and remembers the live book after every update."""

    def __init__(self, store: MarketStore) -> None:
        self.store = store
        self.manager: StreamManager | None = None
        self.views: list[BookView] = []
        self.lock = threading.Lock()

    def __call__(self, key: StreamKey, events: list[BookEvent]) -> None:
        self.store.buffer_book(key.venue, key.symbol, events)
        assert self.manager is not None
        book = self.manager.live_book(key)
        assert book is not None
        view = book.view(50)
        assert view is not None
        with self.lock:
            self.views.append(view)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[BookView]]:
    """Some seconds of the demo venue's BTC/USDT book, recorded and flushed."""
    tmp_path = tmp_path_factory.mktemp("books")
    store = MarketStore(tmp_path / "market")
    tap = Tap(store)
    venue = DemoVenue({"BTC/USDT": MODEL}, seed=41, history_minutes=5, tick_s=0.1).start()
    m = StreamManager(lambda k, f: None, lambda k, f, final: None, history_s=0, on_book=tap)
    tap.manager = m
    m.add_venue(VenueConfig("demo", "binance", venue.ccxt_urls(), simulated=True))
    m.start()
    key = m.subscribe("demo", "BTC/USDT", "book")
    try:
        assert wait_for(lambda: len(tap.views) >= 40, 60)
        store.flush()  # some on disk ...
        venue.book_fault("BTC/USDT", "gap")  # ... a resync in the middle ...
        n = len(tap.views)
        assert wait_for(lambda: len(tap.views) >= n + 40, 60)
        m.unsubscribe(key)
    finally:
        m.stop()
        venue.stop()
    store.close()  # ... and the rest flushed on close
    return tmp_path / "market", list(tap.views)


def instants(views: list[BookView]) -> list[BookView]:
    """Views whose update is the last one stamped at its time (what book_at(ts) sees)."""
    return [v for v, nxt in itertools.pairwise(views) if nxt.ts > v.ts]


def test_replay_equals_the_live_book_at_random_instants(
    recorded: tuple[Path, list[BookView]],
) -> None:
    root, views = recorded
    store = MarketStore(root)  # a new process's view: everything from disk
    candidates = instants(views)
    picked = np.random.default_rng(4).choice(len(candidates), 25, replace=False)
    for view in (candidates[int(i)] for i in picked):
        book = store.book_at("demo", "BTC/USDT", view.ts, depth=50)
        assert book.bids.rows() == view.bids, view.ts
        assert book.asks.rows() == view.asks, view.ts
        assert book.seq == view.seq
    store.close()


def test_book_at_refuses_what_was_not_recorded(recorded: tuple[Path, list[BookView]]) -> None:
    root, views = recorded
    store = MarketStore(root)
    early = views[0].ts - dt.timedelta(minutes=1)
    with pytest.raises(InvalidInput, match="no recorded book"):
        store.book_at("demo", "BTC/USDT", early)
    with pytest.raises(InvalidInput, match="no recorded book"):
        store.book_at("demo", "ETH/USDT", views[-1].ts)
    with pytest.raises(InvalidInput, match="depth"):
        store.book_at("demo", "BTC/USDT", views[-1].ts, depth=0)
    with pytest.raises(InvalidInput, match="every"):
        store.book_features("demo", "BTC/USDT", views[0].ts, views[-1].ts, every="7s")
    store.close()


def reference_features(
    root: Path, start: dt.datetime, end: dt.datetime, every_us: int
) -> pl.DataFrame:
    """Replay the Parquet files with dicts and compute each feature the slow way."""
    base = root / "book_snapshots"
    snaps = pl.read_parquet(sorted(base.rglob("*.parquet"))).sort("seq", "ts")
    deltas = pl.read_parquet(sorted((root / "book_deltas").rglob("*.parquet"))).sort("seq")
    lo = int(start.timestamp() * 1e6)
    hi = int(end.timestamp() * 1e6)
    us = pl.col("ts").dt.epoch("us")
    first_seq = snaps.filter(us <= lo)["seq"].max()
    events: list[tuple[int, int, int, str, object]] = []  # (seq, order, ts, kind, payload)
    for (ts, seq), rows in snaps.filter(pl.col("seq") >= first_seq).group_by(
        us.alias("t"), "seq", maintain_order=True
    ):
        events.append((int(seq), 1, int(ts), "snap", rows))
    for r in deltas.filter(pl.col("seq") > first_seq).with_columns(t=us).iter_rows(named=True):
        events.append((r["seq"], 0, r["t"], "delta", r))
    events.sort(key=lambda e: (e[0], e[1]))
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}

    def tops() -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
        b = max(bids) if bids else None
        a = min(asks) if asks else None
        return (b, bids[b]) if b else None, (a, asks[a]) if a else None

    out: dict[str, list[float]] = {k: [] for k in ("mid", "spread", "microprice", "ofi")}
    out |= {"depth_bid_10bps": [], "depth_ask_10bps": [], "imbalance": []}
    i, acc = 0, 0.0
    for k, g in enumerate(range(lo, hi, every_us)):
        while i < len(events) and events[i][2] <= g:
            (b0, a0) = tops()
            _, _, _, kind, payload = events[i]
            if kind == "snap":
                rows = payload.to_dicts()  # type: ignore[attr-defined]
                bids = {r["price"]: r["size"] for r in rows if r["side"] == 0}
                asks = {r["price"]: r["size"] for r in rows if r["side"] == 1}
            else:
                r = payload  # type: ignore[assignment]
                side = bids if r["side"] == 0 else asks  # type: ignore[index]
                if r["size"] == 0.0:  # type: ignore[index]
                    side.pop(r["price"], None)  # type: ignore[index]
                else:
                    side[r["price"]] = r["size"]  # type: ignore[index]
            (b1, a1) = tops()
            if b0 and b1:
                acc += (b1[1] if b1[0] >= b0[0] else 0) - (b0[1] if b1[0] <= b0[0] else 0)
            if a0 and a1:
                acc += -(a1[1] if a1[0] <= a0[0] else 0) + (a0[1] if a1[0] >= a0[0] else 0)
            i += 1
        (b, bq), (a, aq) = tops()  # type: ignore[misc]
        mid = (b + a) / 2
        out["mid"].append(mid)
        out["spread"].append(a - b)
        out["microprice"].append((a * bq + b * aq) / (bq + aq))
        out["imbalance"].append((bq - aq) / (bq + aq))
        out["depth_bid_10bps"].append(sum(q for p, q in bids.items() if p >= mid * (1 - 1e-3)))
        out["depth_ask_10bps"].append(sum(q for p, q in asks.items() if p <= mid * (1 + 1e-3)))
        out["ofi"].append(float("nan") if k == 0 else acc)
        acc = 0.0
    return pl.DataFrame(out)


def test_features_match_a_plain_python_replay(recorded: tuple[Path, list[BookView]]) -> None:
    root, views = recorded
    store = MarketStore(root)
    start, end = views[2].ts, views[-1].ts
    got = store.book_features("demo", "BTC/USDT", start, end, every="250ms")
    want = reference_features(root, start, end, 250_000)
    assert got.height == want.height > 10
    assert got.columns == [
        "ts",
        "mid",
        "spread",
        "microprice",
        "depth_bid_10bps",
        "depth_ask_10bps",
        "depth_bid_50bps",
        "depth_ask_50bps",
        "imbalance",
        "ofi",
    ]
    for col in want.columns:
        np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(), rtol=1e-9)
    assert (got["spread"] > 0).all()
    assert got["ofi"].is_nan().sum() == 1
    store.close()


def test_flushed_book_rows_survive_a_new_store(tmp_path: Path) -> None:
    from core.ingest.live_book import LiveBook

    book = LiveBook(seq_start=0)
    store = MarketStore(tmp_path / "m")
    t0 = int(dt.datetime(2026, 12, 1, 23, 59, 59, tzinfo=dt.UTC).timestamp() * 1e6)
    store.buffer_book("demo", "X/Y", book.update([[10.0, 1.0]], [[11.0, 2.0]], t0))
    # the next change lands after midnight: a second day partition
    store.buffer_book("demo", "X/Y", book.update([[10.5, 1.0]], [[11.0, 2.0]], t0 + 2_000_000))
    assert store.flush() == 4
    again = MarketStore(tmp_path / "m")
    at = again.book_at("demo", "X/Y", t0 + 3_000_000)
    assert at.bids.rows() == [(10.5, 1.0)]
    assert at.asks.rows() == [(11.0, 2.0)]
    days = sorted(p.name for p in (tmp_path / "m" / "book_deltas").rglob("date=*"))
    assert days == ["date=2026-12-02"]
    store.close()
    again.close()


def test_the_sql_explorer_reads_recorded_and_buffered_book_rows(tmp_path: Path) -> None:
    from core.ingest.live_book import LiveBook
    from core.sql import EXAMPLES, SqlExplorer

    book = LiveBook(seq_start=0)
    store = MarketStore(tmp_path / "m")
    t0 = int(dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC).timestamp() * 1e6)
    store.buffer_book("demo", "X/Y", book.update([[10.0, 1.0], [9.0, 2.0]], [[11.0, 2.0]], t0))
    store.flush()
    store.buffer_book("demo", "X/Y", book.update([[10.5, 1.0]], [[11.0, 2.0]], t0 + 1000))
    sql = SqlExplorer(store)
    snaps = sql.run("SELECT side, price, size FROM book_snapshots ORDER BY price")
    assert snaps.rows() == [("bid", 9.0, 2.0), ("bid", 10.0, 1.0), ("ask", 11.0, 2.0)]
    deltas = sql.run("SELECT seq, side, price, size FROM book_deltas ORDER BY seq")
    assert deltas.rows() == [(1, "bid", 10.5, 1.0), (2, "bid", 9.0, 0.0), (3, "bid", 10.0, 0.0)]
    spread = sql.run(EXAMPLES["Recorded book: spread and top sizes per snapshot"])
    assert spread["spread"].to_list() == [1.0]
    changes = sql.run(EXAMPLES["Book changes per minute"])
    assert changes.select("changes", "removed").rows() == [(3, 2)]
    store.close()
