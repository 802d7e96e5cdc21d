"""A SIMULATED L2 order book that stays consistent with the simulated trades.

Levels sit on a price grid (`step` ticks apart, about half a basis point) around the model's
mid. Makers keep it populated: when the mid moves, levels that would cross it are cancelled
and the gap near the top is refilled; between trades limit orders arrive at and cancel from
random levels near the top (`churn`). A market order (`take`) consumes levels from the best
price outward and returns its fills, so every simulated trade is printed at a price and size
the book held.

Every level change takes one update id. `drain()` hands out the changes since the last call
in Binance's diff form (first id U, last id u, final size per changed level, 0 = removed),
and `snapshot()` returns the top levels with `lastUpdateId`, so a client syncs exactly as it
does against Binance: drop diffs with u <= lastUpdateId, then apply from the first diff with
U <= lastUpdateId + 1 <= u.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DEPTH = 60
"""Levels kept on each side."""
CHURN_PER_S = 40.0
"""Limit-order arrivals and cancellations per second near the top."""
TOP = 8
"""Churn touches the first TOP grid levels of a side."""


@dataclass(frozen=True, slots=True)
class Diff:
    first_id: int
    last_id: int
    bids: Levels
    asks: Levels


Levels = list[tuple[float, float]]
"""(price, size) pairs, best first."""


class SimBook:
    """One symbol's book. Not thread safe: the owning SimMarket holds its lock."""

    def __init__(self, tick: float, mean_size: float, rng: np.random.Generator) -> None:
        self.tick = tick
        self.mean_size = mean_size
        self.rng = rng
        self.step = 1
        self.bids: dict[int, float] = {}  # tick index -> size
        self.asks: dict[int, float] = {}
        self.update_id = 0
        self._pending: tuple[dict[int, float], dict[int, float]] = ({}, {})
        self._first_pending: int | None = None

    # --- prices ------------------------------------------------------------------------------
    def price(self, k: int) -> float:
        return round(k * self.tick, 8)

    def _size(self) -> float:
        return round(max(1e-5, float(self.rng.exponential(self.mean_size * 3))), 5)

    def _set(self, bid: bool, k: int, size: float) -> None:
        side = self.bids if bid else self.asks
        if size <= 0.0:
            if k not in side:
                return
            del side[k]
            size = 0.0
        else:
            side[k] = size
        self.update_id += 1
        if self._first_pending is None:
            self._first_pending = self.update_id
        self._pending[0 if bid else 1][k] = size

    # --- reads -------------------------------------------------------------------------------
    def best_bid(self) -> int | None:
        return max(self.bids) if self.bids else None

    def best_ask(self) -> int | None:
        return min(self.asks) if self.asks else None

    def quote(self) -> tuple[float, float, float, float] | None:
        b, a = self.best_bid(), self.best_ask()
        if b is None or a is None:
            return None
        return self.price(b), self.bids[b], self.price(a), self.asks[a]

    def snapshot(
        self, limit: int
    ) -> tuple[int, list[tuple[float, float]], list[tuple[float, float]]]:
        """(lastUpdateId, bids best first, asks best first), at most `limit` levels a side."""
        bids = sorted(self.bids, reverse=True)[:limit]
        asks = sorted(self.asks)[:limit]
        return (
            self.update_id,
            [(self.price(k), self.bids[k]) for k in bids],
            [(self.price(k), self.asks[k]) for k in asks],
        )

    def drain(self) -> Diff | None:
        """The changes since the last drain, or None when nothing changed."""
        if self._first_pending is None:
            return None
        bids, asks = self._pending
        diff = Diff(
            self._first_pending,
            self.update_id,
            [(self.price(k), bids[k]) for k in sorted(bids, reverse=True)],
            [(self.price(k), asks[k]) for k in sorted(asks)],
        )
        self._pending = ({}, {})
        self._first_pending = None
        return diff

    # --- makers ------------------------------------------------------------------------------
    def recentre(self, mid: float, half_spread: float) -> None:
        """Keep the book around `mid`: cancel what crosses it, refill the top, trim the tail."""
        if self.step == 1 and mid > 0:
            self.step = max(1, round(mid * 0.5e-4 / self.tick))  # about 0.5 bp a level
        s = self.step
        top_bid = math.floor((mid - half_spread) / self.tick / s) * s
        top_ask = math.ceil((mid + half_spread) / self.tick / s) * s
        if top_ask <= top_bid:
            top_ask = top_bid + s
        for k in [k for k in self.bids if k > top_bid]:
            self._set(True, k, 0.0)
        for k in [k for k in self.asks if k < top_ask]:
            self._set(False, k, 0.0)
        for i in range(DEPTH):
            kb, ka = top_bid - i * s, top_ask + i * s
            # the first levels are always quoted; deeper ones leave a few holes
            if kb > 0 and kb not in self.bids and (i < 3 or self.rng.random() < 0.85):
                self._set(True, kb, self._size())
            if ka not in self.asks and (i < 3 or self.rng.random() < 0.85):
                self._set(False, ka, self._size())
        for k in [k for k in self.bids if k <= top_bid - DEPTH * s]:
            self._set(True, k, 0.0)
        for k in [k for k in self.asks if k >= top_ask + DEPTH * s]:
            self._set(False, k, 0.0)

    def churn(self, n: int) -> None:
        """`n` limit-order events near the top: a new order adds size, a cancel takes some."""
        b, a = self.best_bid(), self.best_ask()
        if b is None or a is None:
            return
        for _ in range(n):
            bid = bool(self.rng.random() < 0.5)
            k = (
                (b - int(self.rng.integers(0, TOP)) * self.step)
                if bid
                else (a + int(self.rng.integers(0, TOP)) * self.step)
            )
            side = self.bids if bid else self.asks
            held = side.get(k, 0.0)
            if held > 0 and self.rng.random() < 0.45:
                keep = 0.0 if self.rng.random() < 0.3 else held * float(self.rng.uniform(0.2, 0.9))
                if k in (b, a) and keep == 0.0:
                    keep = round(held * 0.5, 5) or held  # the best level is never emptied here
                self._set(bid, k, round(keep, 5))
            elif k > 0:
                self._set(bid, k, round(held + self._size(), 5))

    # --- takers ------------------------------------------------------------------------------
    def take(self, buy: bool, qty: float) -> list[tuple[float, float]]:
        """A market order of `qty`: consume asks (buy) or bids (sell) from the best outward.
        Returns the fills (price, size); refills the side if the order empties it."""
        fills: list[tuple[float, float]] = []
        left = qty
        side = self.asks if buy else self.bids
        while left > 1e-9 and side:
            k = min(side) if buy else max(side)
            size = side[k]
            done = min(size, left)
            done = round(done, 5) or size
            fills.append((self.price(k), done))
            self._set(not buy, k, round(size - done, 5))
            left = round(left - done, 5)
        return fills
