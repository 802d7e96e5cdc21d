"""A live L2 book as the stream layer holds it: current levels, a short history for the
heatmap, and the changes in the form the recorder stores.

The venue client (ccxt.pro `watch_order_book`) keeps the book in sync with the venue; each
update hands the whole book here. `update` diffs it against the previous one and returns a
list of `BookEvent`s: level changes (size 0 = removed), each with its own sequence number,
and a full snapshot when one is due (the first book, the first after a resync, then one every
`snapshot_every_s`). A
snapshot carries the sequence of the last change before it, so replay from a snapshot applies
the changes with a larger sequence (the contract of the Rust replay kernel).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from core.data.books import ASK, BID, BookEvent

Levels = list[tuple[float, float]]


@dataclass(frozen=True, slots=True)
class BookView:
    """A book at one instant: best first on both sides."""

    ts: datetime
    bids: Levels
    asks: Levels
    seq: int

    @property
    def mid(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return (self.bids[0][0] + self.asks[0][0]) / 2

    @property
    def spread(self) -> float | None:
        if not self.bids or not self.asks:
            return None
        return self.asks[0][0] - self.bids[0][0]


def _levels(raw: Sequence[Sequence[float]], depth: int) -> dict[float, float]:
    out: dict[float, float] = {}
    for level in raw[:depth]:
        price, size = float(level[0]), float(level[1])
        if size > 0:
            out[price] = size
    return out


class LiveBook:
    """One symbol's live book. `update` is called from the stream loop, reads from any thread."""

    def __init__(
        self,
        depth: int = 1000,
        *,
        history_s: float = 600.0,
        sample_s: float = 0.5,
        history_depth: int = 50,
        snapshot_every_s: float = 300.0,
        seq_start: int | None = None,
    ) -> None:
        """`seq_start`: the sequence before the first change; by default the clock in µs
        times 1,000, so a book recorded again after a restart keeps increasing."""
        self.depth = depth
        self.sample_us = int(sample_s * 1e6)
        self.history_depth = history_depth
        self.snapshot_every_us = int(snapshot_every_s * 1e6)
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        self._seq = time.time_ns() // 1000 * 1000 if seq_start is None else seq_start
        self._ts_us = 0
        self._last_snapshot_us: int | None = None
        self._last_sample_us = 0
        self._history: deque[BookView] = deque(maxlen=max(1, int(history_s / sample_s)))
        self._lock = threading.Lock()
        self.updates = 0

    def resync(self) -> None:
        """The next update starts from a fresh venue snapshot: record it as one."""
        with self._lock:
            self._last_snapshot_us = None

    def update(
        self, bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]], ts_us: int
    ) -> list[BookEvent]:
        """Take the venue's whole book (best first); returns what to record: the changes,
        then a snapshot when one is due (the first book after a (re)sync is a snapshot only)."""
        new_b, new_a = _levels(bids, self.depth), _levels(asks, self.depth)
        with self._lock:
            ts_us = max(ts_us, self._ts_us)  # never back in time, whatever the venue stamps
            events: list[BookEvent] = []
            fresh = self._last_snapshot_us is None
            if not fresh:
                change = self._changes(new_b, new_a, ts_us)
                if change is not None:
                    events.append(change)
            last = self._last_snapshot_us
            if last is None or ts_us - last >= self.snapshot_every_us:
                events.append(self._snapshot(new_b, new_a, ts_us))
            self._bids, self._asks, self._ts_us = new_b, new_a, ts_us
            self.updates += 1
            if ts_us - self._last_sample_us >= self.sample_us:
                self._last_sample_us = ts_us
                self._history.append(self._view(self.history_depth))
            return events

    def _changes(
        self, new_b: dict[float, float], new_a: dict[float, float], ts_us: int
    ) -> BookEvent | None:
        side: list[int] = []
        price: list[float] = []
        size: list[float] = []
        for s, old, new in ((BID, self._bids, new_b), (ASK, self._asks, new_a)):
            for p, q in new.items():
                if old.get(p) != q:
                    side.append(s)
                    price.append(p)
                    size.append(q)
            for p in old.keys() - new.keys():
                side.append(s)
                price.append(p)
                size.append(0.0)
        if not side:
            return None
        seq = list(range(self._seq + 1, self._seq + 1 + len(side)))
        self._seq += len(side)
        return BookEvent(ts_us, False, seq, side, price, size)

    def _snapshot(
        self, new_b: dict[float, float], new_a: dict[float, float], ts_us: int
    ) -> BookEvent:
        self._last_snapshot_us = ts_us
        bids = sorted(new_b.items(), reverse=True)
        asks = sorted(new_a.items())
        return BookEvent(
            ts_us,
            True,
            [self._seq],
            [BID] * len(bids) + [ASK] * len(asks),
            [p for p, _ in bids] + [p for p, _ in asks],
            [q for _, q in bids] + [q for _, q in asks],
        )

    def _view(self, depth: int) -> BookView:
        bids = sorted(self._bids.items(), reverse=True)[:depth]
        asks = sorted(self._asks.items())[:depth]
        return BookView(datetime.fromtimestamp(self._ts_us / 1e6, UTC), bids, asks, self._seq)

    def view(self, depth: int = 20) -> BookView | None:
        """The book now, `depth` levels a side; None before the first update."""
        with self._lock:
            return self._view(depth) if self.updates else None

    def history(self) -> list[BookView]:
        """Sampled past books (every `sample_s`, `history_depth` levels), oldest first."""
        with self._lock:
            return list(self._history)
