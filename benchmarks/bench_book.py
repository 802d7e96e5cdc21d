"""Order books: applying level updates against cryptofeed's `order-book` C extension and a
sortedcontainers book, and replaying a recorded day (book_at).

Workload: a seeded random walk of an L2 book around a drifting mid, the shape of a busy
venue's diff stream: updates land within 40 levels of the top, a quarter of them remove a
level. Each engine applies the same updates in the same order and must end with the same
book (checked). HFThot takes a venue message (about 20 levels, Binance's 100 ms diff) per
call, as the stream recorder hands them over; the peers' APIs take one level per call, so
they loop in Python, as cryptofeed does.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from order_book import OrderBook
from sortedcontainers import SortedDict

from benchmarks.common import TABLE_HEAD, Row, fmt_s, median_time
from core.data.books import BookEvent
from core.data.store import MarketStore
from core.native import ext

SECTION = "## Order books"
UPDATES = 1_000_000
MESSAGE = 20
TICK = 0.01


def updates(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mid = 4_200_000 + np.cumsum(rng.integers(-1, 2, n) * (rng.random(n) < 0.02))
    side = (rng.random(n) < 0.5).astype(np.uint8)
    off = rng.integers(1, 40, n)
    ticks = np.where(side == 0, mid - off, mid + off)
    size = np.where(rng.random(n) < 0.25, 0.0, rng.integers(1, 100, n) * 0.25)
    return side, np.round(ticks * TICK, 2), size


def apply_ours(side: np.ndarray, price: np.ndarray, size: np.ndarray) -> object:
    book = ext.L2Book()
    for i in range(0, len(side), MESSAGE):
        book.apply(side[i : i + MESSAGE], price[i : i + MESSAGE], size[i : i + MESSAGE])
    return book


def apply_order_book(side: list[int], price: list[float], size: list[float]) -> OrderBook:
    ob = OrderBook()
    bids, asks = ob.bids, ob.asks
    for s, p, q in zip(side, price, size, strict=True):
        book = bids if s == 0 else asks
        if q == 0.0:
            if p in book:
                del book[p]
        else:
            book[p] = q
    return ob


def apply_sorted(side: list[int], price: list[float], size: list[float]) -> tuple[SortedDict, ...]:
    bids, asks = SortedDict(), SortedDict()
    for s, p, q in zip(side, price, size, strict=True):
        book = bids if s == 0 else asks
        if q == 0.0:
            book.pop(p, None)
        else:
            book[p] = q
    return bids, asks


def same_book(ours: object, ob: OrderBook) -> bool:
    (bp, bs), (ap, as_) = ours.snapshot(1_000_000)  # type: ignore[attr-defined]
    peer_bids = ob.bids.to_list()
    peer_asks = ob.asks.to_list()
    return (
        list(zip(bp.tolist(), bs.tolist(), strict=True)) == peer_bids
        and list(zip(ap.tolist(), as_.tolist(), strict=True)) == peer_asks
    )


def recorded_day(seed: int = 5) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A day of a busy symbol: 50 level updates a second, a 1,000-level snapshot a minute."""
    per_s, day_s, every_s = 50, 86_400, 60
    n = per_s * day_s
    side, price, size = updates(n, seed)
    ts = (np.arange(n) * (1_000_000 // per_s)).astype(np.int64)
    seq = np.arange(1, n + 1, dtype=np.uint64)
    book = ext.L2Book()
    snaps_ts, snaps_seq, offsets = [], [], [0]
    s_side: list[np.ndarray] = []
    s_price: list[np.ndarray] = []
    s_size: list[np.ndarray] = []
    step = per_s * every_s
    for i in range(0, n, step):
        (bp, bs), (ap, as_) = book.snapshot(1_000)
        snaps_ts.append(ts[i] - 1 if i else -1)
        snaps_seq.append(i)
        s_side.append(np.r_[np.zeros(len(bp), np.uint8), np.ones(len(ap), np.uint8)])
        s_price.append(np.r_[bp, ap])
        s_size.append(np.r_[bs, as_])
        offsets.append(offsets[-1] + len(bp) + len(ap))
        book.apply(side[i : i + step], price[i : i + step], size[i : i + step])
    rec = {
        "snap_ts": np.array(snaps_ts, np.int64),
        "snap_seq": np.array(snaps_seq, np.uint64),
        "snap_offsets": np.array(offsets, np.uint64),
        "snap_side": np.concatenate(s_side),
        "snap_price": np.concatenate(s_price),
        "snap_size": np.concatenate(s_size),
        "delta_ts": ts,
        "delta_seq": seq,
        "delta_side": side,
        "delta_price": price,
        "delta_size": size,
    }
    return rec, ts


DAY0_US = 1_764_979_200_000_000  # 2025-12-06 00:00 UTC: the recorded day starts at midnight


def store_day(rec: dict[str, np.ndarray], root: Path) -> MarketStore:
    """The recorded day written through the store's own path (buffer_book, flush): one event
    per venue message of MESSAGE changes, a snapshot event a minute."""
    store = MarketStore(root)
    events: list[BookEvent] = []
    offsets = rec["snap_offsets"]
    for i, (t, seq) in enumerate(zip(rec["snap_ts"], rec["snap_seq"], strict=True)):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        events.append(
            BookEvent(
                DAY0_US + max(int(t), 0),
                True,
                [int(seq)],
                rec["snap_side"][lo:hi].tolist(),
                rec["snap_price"][lo:hi].tolist(),
                rec["snap_size"][lo:hi].tolist(),
            )
        )
    ts, seq = rec["delta_ts"], rec["delta_seq"]
    for i in range(0, len(ts), MESSAGE):
        j = i + MESSAGE
        events.append(
            BookEvent(
                DAY0_US + int(ts[i]),
                False,
                seq[i:j].tolist(),
                rec["delta_side"][i:j].tolist(),
                rec["delta_price"][i:j].tolist(),
                rec["delta_size"][i:j].tolist(),
            )
        )
    events.sort(key=lambda e: (e.seq[-1], e.snapshot))
    store.buffer_book("bench", "BOOK/USD", events)
    store.flush()
    return store


def run() -> str:
    side, price, size = updates(UPDATES)
    ls, lp, lq = side.tolist(), price.tolist(), size.tolist()
    ours = apply_ours(side, price, size)
    if not same_book(ours, apply_order_book(ls, lp, lq)):
        raise AssertionError("the books differ after the same updates")
    t_ours = median_time(lambda: apply_ours(side, price, size), repeats=5)
    t_whole = median_time(lambda: ext.L2Book().apply(side, price, size), repeats=5)
    t_ob = median_time(lambda: apply_order_book(ls, lp, lq), repeats=5)
    t_sd = median_time(lambda: apply_sorted(ls, lp, lq), repeats=5)
    rows = [
        Row(f"apply {UPDATES:,} updates, {MESSAGE} per message", t_ours, "order-book (C)", t_ob),
        Row(f"apply {UPDATES:,} updates, {MESSAGE} per message", t_ours, "sortedcontainers", t_sd),
        Row(f"apply {UPDATES:,} updates in one call (replay)", t_whole, "order-book (C)", t_ob),
    ]
    rec, ts = recorded_day()
    rng = np.random.default_rng(9)
    instants = rng.integers(int(ts[0]), int(ts[-1]), 200)
    state = iter(np.tile(instants, 100))
    t_at = median_time(lambda: ext.book_at(rec, int(next(state)), 50), repeats=200)
    worst = max(
        median_time(lambda t=int(t): ext.book_at(rec, t, 50), repeats=5)
        for t in rec["snap_ts"][1:20] - 2  # just before a snapshot: the longest replay
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = store_day(rec, Path(tmp) / "market")
        laps = []
        for t in instants[:100]:
            t0 = time.perf_counter()
            store.book_at("bench", "BOOK/USD", DAY0_US + int(t), 50)
            laps.append(time.perf_counter() - t0)
        store.close()
    laps.sort()
    t_store, t_store_p95 = statistics.median(laps), laps[int(0.95 * len(laps)) - 1]
    lines = [
        SECTION,
        "",
        "One core. The books are checked equal after the same updates. Per-message calls "
        "are how live streams feed the book; one call is how a replay feeds it.",
        "",
        TABLE_HEAD,
        *(r.markdown() for r in rows),
        "",
        f"- Level updates per second, per message: **{UPDATES / t_ours / 1e6:.2f} M/s** "
        f"(target 2 M/s); in one call: {UPDATES / t_whole / 1e6:.1f} M/s; "
        f"order-book: {UPDATES / t_ob / 1e6:.2f} M/s; sortedcontainers: "
        f"{UPDATES / t_sd / 1e6:.2f} M/s.",
        f"- `book_at` on a recorded day ({len(ts):,} updates, a snapshot a minute, depth 50): "
        f"median {fmt_s(t_at)} over random instants, {fmt_s(worst)} just before a snapshot "
        "(the longest replay); target 10 ms. In memory.",
        f"- `store.book_at` on the same day written through the store (Parquet, one day "
        f"partition): median {fmt_s(t_store)}, p95 {fmt_s(t_store_p95)} over 100 random "
        "instants, reading only the row groups around the instant; target 10 ms.",
        "",
    ]
    return "\n".join(lines)
