"""Child process for the book crash tests: records a book batch by batch, flushing after each,
and prints "ack <i>" once the flush of batch i returned.

argv: root, first_batch, batches, crash_point ("" for none), crash_after (batches)
Batch i is one update of a SYNTHETIC book at T0 + 10 s * i (`batches`); the recorder is a real
LiveBook (changes, plus a snapshot every 60 s of book time), so the rows are what a live stream
records.
"""

from __future__ import annotations

import datetime as dt
import os
import sys

import numpy as np

from core.data.books import BookEvent
from core.data.store import MarketStore
from core.ingest.live_book import LiveBook

VENUE, SYMBOL = "synthetic", "BOOK/USD"
T0 = int(dt.datetime(2026, 12, 1, 23, 50, tzinfo=dt.UTC).timestamp() * 1e6)
STEP_US = 10_000_000
LEVELS = 30

Side = dict[float, float]


def batches(n: int, start: int = 0) -> list[tuple[int, list[BookEvent], Side, Side]]:
    """(ts, events, bids, asks) of the first `n` batches: each moves some levels of a
    30-level book around 100 (sizes change, levels empty and refill); midnight falls at
    batch 60. A recorder started at batch `start` (a process started after a crash) begins
    with a snapshot, numbering its changes from start * 100,000 as a restarted stream numbers
    them from the clock; batches before `start` have no events."""
    rng = np.random.default_rng(5)
    live = LiveBook(seq_start=start * 100_000, snapshot_every_s=60.0)
    bids = {round(99.9 - 0.1 * k, 1): 1.0 + k for k in range(LEVELS)}
    asks = {round(100.1 + 0.1 * k, 1): 1.0 + k for k in range(LEVELS)}
    out = []
    for i in range(n):
        for side in (bids, asks):
            for price in rng.choice(sorted(side), size=4, replace=False):
                side[float(price)] = float(rng.choice([0.0, round(rng.uniform(0.1, 9.0), 3)]))
        b = {p: s for p, s in bids.items() if s > 0}
        a = {p: s for p, s in asks.items() if s > 0}
        ts = T0 + STEP_US * i
        events = []
        if i >= start:
            events = live.update(sorted(b.items(), reverse=True), sorted(a.items()), ts)
        out.append((ts, events, b, a))
    return out


def main() -> None:
    root, first, count, point, after = sys.argv[1:6]
    store = MarketStore(root, buffer_age_s=3600)
    todo = batches(int(first) + int(count), int(first))
    for i in range(int(first), int(first) + int(count)):
        if point and i - int(first) == int(after):
            os.environ["HFT_STORE_CRASH_AT"] = point
        store.buffer_book(VENUE, SYMBOL, todo[i][1])
        store.flush()
        print(f"ack {i}", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main()
