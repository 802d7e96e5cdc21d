"""The simulated market behind the demo venue: a seeded price model and a trade tape.

Price model (documented, deterministic for a seed): geometric Brownian motion
with Merton jumps. Over a step of dt years the log price moves by

    (mu - sigma^2 / 2) dt + sigma sqrt(dt) Z + sum_{k=1..N} J_k,
    Z ~ N(0, 1),  N ~ Poisson(jump_rate dt),  J_k ~ N(jump_mean, jump_std^2).

Trades arrive as a Poisson process of `trades_per_s`; each is a market order with an
exponential size and a random side against a SIMULATED L2 book that makers keep around the
model price (core.ingest.sim_book), printed once per level it consumes. The warm-up history
(`advance_bulk`) has no book: its trades print at the model price rounded to the tick.
Everything here is SIMULATED data, labelled as such wherever it is shown.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from core.ingest.sim_book import CHURN_PER_S, Diff, Levels, SimBook

YEAR_MS = 365.25 * 86_400_000
INTERVALS_MS: dict[str, int] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}


@dataclass(frozen=True, slots=True)
class PriceModel:
    s0: float
    mu: float = 0.0
    sigma: float = 0.8
    """Annualised volatility; crypto-like by default."""
    jump_rate: float = 365.0 * 4
    """Expected jumps per year (about four a day)."""
    jump_mean: float = 0.0
    jump_std: float = 0.004
    tick: float = 0.01
    trades_per_s: float = 4.0
    mean_size: float = 0.05
    spread_bps: float = 1.0
    """Quoted bid/ask spread around the last price, in basis points (at least one tick)."""


@dataclass(frozen=True, slots=True)
class Trade:
    id: int
    ts: int
    """epoch milliseconds"""
    price: float
    qty: float
    buyer_maker: bool


DEFAULT_MARKETS: dict[str, PriceModel] = {
    "BTC/USDT": PriceModel(s0=42_000.0, tick=0.01, mean_size=0.02),
    "ETH/USDT": PriceModel(s0=2_300.0, sigma=0.9, tick=0.01, mean_size=0.3),
    "SOL/USDT": PriceModel(s0=95.0, sigma=1.1, tick=0.01, mean_size=4.0),
}


def market_id(symbol: str) -> str:
    return symbol.replace("/", "")


class SimMarket:
    """One symbol's price path and trade tape (bounded), safe to read from other threads."""

    def __init__(
        self, symbol: str, model: PriceModel, seed: int, start_ms: int, tape_size: int = 200_000
    ) -> None:
        self.symbol = symbol
        self.id = market_id(symbol)
        self.model = model
        self.rng = np.random.default_rng(seed)
        self.price = model.s0
        self.last_ms = start_ms
        self.next_id = 1
        self.tape: deque[Trade] = deque(maxlen=tape_size)
        self.lock = threading.Lock()
        self._next_arrival = start_ms + self._gap_ms()
        # the book draws from its own stream, so the price path does not depend on it
        self.book = SimBook(model.tick, model.mean_size, np.random.default_rng([seed, 1]))
        self._churned_ms = start_ms

    def _gap_ms(self) -> float:
        return float(self.rng.exponential(1000.0 / self.model.trades_per_s))

    def _move(self, dt_ms: float) -> None:
        m = self.model
        dt = max(dt_ms, 0.0) / YEAR_MS
        ret = (m.mu - 0.5 * m.sigma**2) * dt + m.sigma * math.sqrt(dt) * self.rng.standard_normal()
        jumps = int(self.rng.poisson(m.jump_rate * dt))
        if jumps:
            ret += float(self.rng.normal(m.jump_mean, m.jump_std, size=jumps).sum())
        self.price *= math.exp(ret)

    def _half_spread(self) -> float:
        m = self.model
        return max(m.tick, self.price * m.spread_bps / 1e4) / 2

    def _take(self, ts: int) -> list[Trade]:
        """A market order against the book at `ts`: one trade per level it consumes."""
        m = self.model
        self.book.recentre(self.price, self._half_spread())
        buy = bool(self.rng.random() >= 0.5)
        qty = round(max(1e-5, float(self.rng.exponential(m.mean_size))), 5)
        out = []
        for price, size in self.book.take(buy, qty):
            trade = Trade(self.next_id, ts, price, size, not buy)
            self.next_id += 1
            self.tape.append(trade)
            out.append(trade)
        return out

    def _churn(self, now_ms: int) -> None:
        if now_ms > self._churned_ms:
            lam = CHURN_PER_S * (now_ms - self._churned_ms) / 1000.0
            self.book.churn(int(self.rng.poisson(lam)))
            self._churned_ms = now_ms

    def advance(self, now_ms: int) -> list[Trade]:
        """Every trade that arrived up to `now_ms`, appended to the tape. Trades are market
        orders against the book (`self.book`), which makers keep around the model price."""
        out: list[Trade] = []
        with self.lock:
            if not self.book.bids:
                self.book.recentre(self.price, self._half_spread())
            while self._next_arrival <= now_ms:
                ts = int(self._next_arrival)
                self._churn(ts)
                self._move(ts - self.last_ms)
                self.last_ms = ts
                out.extend(self._take(ts))
                self._next_arrival += self._gap_ms()
            self._churn(now_ms)
        return out

    def book_diff(self) -> Diff | None:
        """The book changes since the last call (Binance diff form), or None."""
        with self.lock:
            return self.book.drain()

    def book_snapshot(self, limit: int) -> tuple[int, Levels, Levels]:
        with self.lock:
            if not self.book.bids:
                self.book.recentre(self.price, self._half_spread())
            return self.book.snapshot(limit)

    def advance_bulk(self, now_ms: int) -> int:
        """`advance` over a long span (the warm-up): the same model drawn as arrays, so
        hours of history take milliseconds. Returns the number of trades added."""
        m = self.model
        gap = 1000.0 / m.trades_per_s
        with self.lock:
            if self._next_arrival > now_ms:
                return 0
            n = int((now_ms - self._next_arrival) / gap * 1.1) + 64
            arrivals = self._next_arrival + np.concatenate(
                ([0.0], np.cumsum(self.rng.exponential(gap, n)))
            )
            while arrivals[-1] <= now_ms:
                more = arrivals[-1] + np.cumsum(self.rng.exponential(gap, n))
                arrivals = np.concatenate((arrivals, more))
            k = int(np.searchsorted(arrivals, now_ms, side="right"))
            self._next_arrival = float(arrivals[k])
            ts = arrivals[:k].astype(np.int64)
            dt = np.maximum(np.diff(ts, prepend=self.last_ms), 0) / YEAR_MS
            z = self.rng.standard_normal(k)
            ret = (m.mu - 0.5 * m.sigma**2) * dt + m.sigma * np.sqrt(dt) * z
            jumps = self.rng.poisson(m.jump_rate * dt)
            if jumps.any():
                sizes = self.rng.normal(m.jump_mean, m.jump_std, int(jumps.sum()))
                ret += np.bincount(np.repeat(np.arange(k), jumps), weights=sizes, minlength=k)
            path = self.price * np.exp(np.cumsum(ret))
            prices = np.round(np.maximum(m.tick, np.round(path / m.tick) * m.tick), 8)
            qty = np.round(np.maximum(1e-5, self.rng.exponential(m.mean_size, k)), 5)
            maker = self.rng.random(k) < 0.5
            ids = range(self.next_id, self.next_id + k)
            self.tape.extend(
                map(Trade, ids, ts.tolist(), prices.tolist(), qty.tolist(), maker.tolist())
            )
            self.next_id += k
            self.price = float(path[-1])
            self.last_ms = int(ts[-1])
            return k

    def burst(self, now_ms: int, n: int) -> list[Trade]:
        """`n` market orders at once (a news spike), all stamped `now_ms`; an order that
        walks the book prints one trade per level, so at least `n` trades."""
        out: list[Trade] = []
        with self.lock:
            for _ in range(n):
                self._move(1.0)
                out.extend(self._take(max(now_ms, self.last_ms)))
            self.last_ms = max(now_ms, self.last_ms)
        return out

    def quote(self) -> tuple[float, float, float, float]:
        """(bid, bid size, ask, ask size): the book's best levels once it is quoted, before
        that a spread around the last price."""
        m = self.model
        with self.lock:
            top = self.book.quote()
            if top is not None:
                return top
            mid = self.price
            width = max(m.tick, mid * m.spread_bps / 1e4)
            bid = math.floor((mid - width / 2) / m.tick) * m.tick
            ask = bid + math.ceil(width / m.tick) * m.tick
            sizes = self.rng.exponential(m.mean_size * 5, size=2)
        return round(bid, 8), round(float(sizes[0]), 5), round(ask, 8), round(float(sizes[1]), 5)

    # --- history reads (REST) ----------------------------------------------------------------
    def _since(self, start_ms: int) -> list[Trade]:
        """Trades with ts >= start_ms, oldest first (scans back from the newest)."""
        with self.lock:
            newest_first = list(
                itertools.takewhile(lambda t: t.ts >= start_ms, reversed(self.tape))
            )
        newest_first.reverse()
        return newest_first

    def trades_between(self, start_ms: int, end_ms: int, limit: int) -> list[Trade]:
        picked = [t for t in self._since(start_ms) if t.ts <= end_ms]
        return picked[:limit]

    def recent_trades(self, limit: int) -> list[Trade]:
        with self.lock:
            n = len(self.tape)
            return [self.tape[i] for i in range(max(0, n - limit), n)]

    def first_ts(self) -> int | None:
        with self.lock:
            return self.tape[0].ts if self.tape else None

    def klines(self, interval_ms: int, start_ms: int, end_ms: int, limit: int) -> list[Kline]:
        """Candles whose open time lies in [start_ms, end_ms], built from the tape."""
        trades = self._since(start_ms - start_ms % interval_ms)
        out: dict[int, Kline] = {}
        for t in trades:
            open_ms = t.ts - t.ts % interval_ms
            if open_ms < start_ms or open_ms > end_ms:
                continue
            k = out.get(open_ms)
            if k is None:
                if len(out) >= limit:
                    break
                k = out[open_ms] = Kline(open_ms, interval_ms)
            k.add(t)
        return list(out.values())

    def current_kline(self, interval_ms: int, now_ms: int) -> Kline | None:
        open_ms = now_ms - now_ms % interval_ms
        found = self.klines(interval_ms, open_ms, open_ms, 1)
        return found[0] if found else None


class Kline:
    __slots__ = (
        "close",
        "count",
        "first_id",
        "high",
        "interval_ms",
        "last_id",
        "low",
        "open",
        "open_ms",
        "quote_volume",
        "taker_buy_quote",
        "taker_buy_volume",
        "volume",
    )

    def __init__(self, open_ms: int, interval_ms: int) -> None:
        self.open_ms = open_ms
        self.interval_ms = interval_ms
        self.open = self.high = self.low = self.close = math.nan
        self.volume = self.quote_volume = self.taker_buy_volume = self.taker_buy_quote = 0.0
        self.count = 0
        self.first_id = self.last_id = -1

    def add(self, t: Trade) -> None:
        if self.count == 0:
            self.open = self.high = self.low = t.price
            self.first_id = t.id
        self.high = max(self.high, t.price)
        self.low = min(self.low, t.price)
        self.close = t.price
        self.last_id = t.id
        self.count += 1
        self.volume += t.qty
        self.quote_volume += t.qty * t.price
        if not t.buyer_maker:
            self.taker_buy_volume += t.qty
            self.taker_buy_quote += t.qty * t.price


def warm_up(market: SimMarket, history_ms: int, now_ms: int) -> None:
    """Fill the tape with `history_ms` of past trades, ending at `now_ms`."""
    market.last_ms = now_ms - history_ms
    market._next_arrival = market.last_ms + market._gap_ms()
    market.advance_bulk(now_ms)
