"""Loopback order-book venues that speak Kraken's WebSocket v2 `book` channel and OKX's v5
`books` channel on the wire, each keeping a real book.

The book moves by random limit adds, size changes and cancels around a fixed mid. A new
subscriber gets a snapshot, then every change as an update with the venue's checksum,
computed here on the wire strings (independently of core.ingest.book_checksum). A test can
corrupt the stream once: "skip" changes the book without telling anyone (sequence ids stay
continuous, so only the checksum can show it), "checksum" sends a right update with a wrong
checksum. Every message received is kept for assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
import zlib
from abc import abstractmethod
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from tests.integration.ingest.recorded import LoopbackWebSocket

Side = dict[Decimal, Decimal]


def text(value: Decimal) -> str:
    """A number the way OKX writes it: no exponent, no trailing zeros ("31685", "0.01")."""
    return format(value.normalize(), "f")


class Book:
    """A limit order book around a fixed mid: prices on the tick grid, sizes in lots."""

    def __init__(self, seed: int, mid: str, tick: str, lot: str, levels: int = 30) -> None:
        self.rng = random.Random(seed)  # noqa: S311 (a simulated book, not security)
        self.mid, self.tick, self.lot = Decimal(mid), Decimal(tick), Decimal(lot)
        self.bids: Side = {self.mid - self.tick * k: self.size() for k in range(1, levels + 1)}
        self.asks: Side = {self.mid + self.tick * k: self.size() for k in range(1, levels + 1)}

    def size(self) -> Decimal:
        return (self.lot * self.rng.randint(10_000, 300_000_000)).normalize()

    def top(
        self, depth: int
    ) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        bids = sorted(self.bids.items(), reverse=True)[:depth]
        return bids, sorted(self.asks.items())[:depth]

    def step(self, near: bool = False, avoid: Decimal | None = None) -> tuple[str, Decimal]:
        """One random change; `near` keeps it in the best five levels. Returns (side, price)."""
        name = self.rng.choice(("bids", "asks"))
        side, sign = (self.bids, -1) if name == "bids" else (self.asks, 1)
        if not near and len(side) > 15 and self.rng.random() < 0.45:
            price = self.rng.choice(sorted(p for p in side if p != avoid))
            del side[price]
            return name, price
        price = self.mid + sign * self.tick * self.rng.randint(1, 5 if near else 40)
        while price == avoid:
            price = self.mid + sign * self.tick * self.rng.randint(1, 5 if near else 40)
        side[price] = self.size()
        return name, price


class BookVenue(LoopbackWebSocket):
    """The WebSocket server, its book and its ticker; subclasses write the wire format."""

    name = "book-venue"
    depth = 10_000

    def __init__(self, book: Book, *, tick_s: float = 0.05) -> None:
        super().__init__()
        self.book = book
        self.tick_s = tick_s
        self.lock = threading.Lock()
        self.received: list[tuple[int, Any]] = []
        """(connection number, message) of everything clients sent, JSON decoded."""
        self.connections = 0
        self.subscribed: set[ServerConnection] = set()
        self.fault: str | None = None
        self.running = True
        self._hidden: Decimal | None = None

    # --- what subclasses write -----------------------------------------------------------------
    @abstractmethod
    async def on_message(self, conn: ServerConnection, message: Any) -> None:
        """Answer one client message (subscribe, unsubscribe, ping) in the venue's format."""

    @abstractmethod
    def update(self, before: Any, corrupt: bool) -> str | None:
        """The update frame for what changed since `before` (the top levels before this
        tick), or None when nothing visible changed; `corrupt` sends a wrong checksum."""

    # --- control (test thread) -----------------------------------------------------------------
    def corrupt(self, fault: str) -> None:
        """Corrupt the stream once: "skip" or "checksum"."""
        assert fault in ("skip", "checksum"), fault
        with self.lock:
            self.fault = fault

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hold the book still (for comparing it with a client's)."""
        self.running = False
        time.sleep(self.tick_s * 2)
        try:
            yield
        finally:
            self.running = True

    def sent(self, connection: int | None = None) -> list[Any]:
        with self.lock:
            return [m for n, m in self.received if connection is None or n == connection]

    # --- server --------------------------------------------------------------------------------
    def _background(self) -> list[Coroutine[Any, Any, None]]:
        return [self._tick()]

    async def _closing(self) -> None:
        for conn in list(self.subscribed):
            conn.transport.abort()

    async def _handle(self, conn: ServerConnection) -> None:
        with self.lock:
            number = self.connections
            self.connections += 1
        try:
            async for raw in conn:
                data = raw if isinstance(raw, str) else raw.decode()
                message = data if data == "ping" else json.loads(data)
                with self.lock:
                    self.received.append((number, message))
                await self.on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            self.subscribed.discard(conn)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            if not self.running:
                continue
            with self.lock:
                before = self.book.top(self.depth)
                fault, self.fault = self.fault, None
                # a fault changes one of the best levels, so every client sees it
                _, price = self.book.step(near=fault is not None, avoid=self._hidden)
                if fault == "skip":
                    self._hidden = price  # left untouched until an update is sent
                    continue
                frame = self.update(before, fault == "checksum")
                if frame is not None:
                    self._hidden = None
            if frame is not None:
                for conn in list(self.subscribed):
                    with contextlib.suppress(ConnectionClosed):
                        await conn.send(frame)


def kraken_text(levels: list[tuple[Decimal, Decimal]], price_dp: int, qty_dp: int) -> str:
    return "".join(
        f"{p:.{price_dp}f}".replace(".", "").lstrip("0")
        + f"{q:.{qty_dp}f}".replace(".", "").lstrip("0")
        for p, q in levels
    )


class KrakenVenue(BookVenue):
    """wss://ws.kraken.com/v2 `book` at depth 10: numbers as JSON numbers, a CRC32 of the top
    ten levels (unsigned) on the snapshot and every update. A second subscribe to a symbol
    it already streams is refused, so a client must unsubscribe first."""

    depth = 10

    def __init__(self, book: Book, symbol: str = "BTC/USD", **kw: Any) -> None:
        super().__init__(book, **kw)
        self.symbol = symbol
        self.price_dp, self.qty_dp = 1, 8  # AssetPairs XXBTZUSD: pair_decimals, lot_decimals

    def checksum(self, bids: list[Any], asks: list[Any]) -> int:
        return zlib.crc32(
            (
                kraken_text(asks, self.price_dp, self.qty_dp)
                + kraken_text(bids, self.price_dp, self.qty_dp)
            ).encode()
        )

    def levels(self, levels: list[tuple[Decimal, Decimal]]) -> list[dict[str, float]]:
        return [{"price": float(p), "qty": float(q)} for p, q in levels]

    def book_frame(self, kind: str, bids: Any, asks: Any, checksum: int) -> str:
        data: dict[str, Any] = {
            "symbol": self.symbol,
            "bids": self.levels(bids),
            "asks": self.levels(asks),
            "checksum": checksum,
        }
        if kind == "update":
            data["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        return json.dumps({"channel": "book", "type": kind, "data": [data]})

    async def on_message(self, conn: ServerConnection, message: Any) -> None:
        method = message.get("method")
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        reply: dict[str, Any] = {"method": method, "req_id": message.get("req_id")}
        reply |= {"time_in": stamp, "time_out": stamp}
        if method == "ping":
            await conn.send(json.dumps({**reply, "method": "pong"}))
            return
        params = message.get("params") or {}
        if method not in ("subscribe", "unsubscribe") or params.get("channel") != "book":
            return
        result = {"channel": "book", "depth": params.get("depth", 10), "symbol": self.symbol}
        if method == "unsubscribe":
            self.subscribed.discard(conn)
            await conn.send(json.dumps({**reply, "result": result, "success": True}))
            return
        if conn in self.subscribed:
            error = {"error": "Already subscribed", "success": False, "symbol": self.symbol}
            await conn.send(json.dumps({**reply, **error}))
            return
        await conn.send(
            json.dumps({**reply, "result": {**result, "snapshot": True}, "success": True})
        )
        with self.lock:
            bids, asks = self.book.top(self.depth)
            frame = self.book_frame("snapshot", bids, asks, self.checksum(bids, asks))
            self.subscribed.add(conn)
        await conn.send(frame)

    def update(self, before: Any, corrupt: bool) -> str | None:
        bids, asks = self.book.top(self.depth)
        changed = []
        for old, new, full in (
            (before[0], bids, self.book.bids),
            (before[1], asks, self.book.asks),
        ):
            was, now = dict(old), dict(new)
            moves = [(p, q) for p, q in now.items() if was.get(p) != q]
            # a level that left the top ten is deleted only when it left the book
            moves += [(p, Decimal(0)) for p in was if p not in now and p not in full]
            changed.append(moves)
        if not changed[0] and not changed[1]:
            return None
        checksum = self.checksum(bids, asks) ^ (1 if corrupt else 0)
        return self.book_frame("update", changed[0], changed[1], checksum)


def okx_text(bids: list[tuple[Decimal, Decimal]], asks: list[tuple[Decimal, Decimal]]) -> str:
    fields = []
    for i in range(25):
        for side in (bids, asks):
            if i < len(side):
                fields += [text(side[i][0]), text(side[i][1])]
    return ":".join(fields)


class OkxVenue(BookVenue):
    """wss://ws.okx.com:8443/ws/v5/public `books`: the whole book (up to 400 levels) as
    strings [price, size, "0", orders], seqId/prevSeqId, and a signed CRC32 of 25 interleaved
    levels (0 when `checksums` is off, as OKX has sent since June 2026)."""

    def __init__(self, book: Book, inst_id: str = "BTC-USDT", **kw: Any) -> None:
        super().__init__(book, **kw)
        self.inst_id = inst_id
        self.seq = 1_000
        self.checksums = True

    def checksum(self, bids: Any, asks: Any) -> int:
        if not self.checksums:
            return 0
        crc = zlib.crc32(okx_text(bids, asks).encode())
        return crc - (1 << 32) if crc >= 1 << 31 else crc

    def frame(self, action: str, bids: Any, asks: Any, checksum: int, prev: int) -> str:
        data = {
            "asks": [[text(p), text(q), "0", "0" if q == 0 else "1"] for p, q in asks],
            "bids": [[text(p), text(q), "0", "0" if q == 0 else "1"] for p, q in bids],
            "ts": str(int(time.time() * 1000)),
            "checksum": checksum,
            "prevSeqId": prev,
            "seqId": self.seq,
        }
        arg = {"channel": "books", "instId": self.inst_id}
        return json.dumps({"arg": arg, "action": action, "data": [data]})

    async def on_message(self, conn: ServerConnection, message: Any) -> None:
        if message == "ping":
            await conn.send("pong")
            return
        op = message.get("op")
        for arg in message.get("args") or []:
            if arg != {"channel": "books", "instId": self.inst_id}:
                continue
            await conn.send(json.dumps({"event": op, "arg": arg, "connId": "a4d3ae55"}))
            if op == "unsubscribe":
                self.subscribed.discard(conn)
            elif op == "subscribe":
                with self.lock:
                    bids, asks = self.book.top(self.depth)
                    frame = self.frame("snapshot", bids, asks, self.checksum(bids, asks), -1)
                    self.subscribed.add(conn)
                await conn.send(frame)

    def update(self, before: Any, corrupt: bool) -> str | None:
        bids, asks = self.book.top(self.depth)
        changed = []
        for old, new in ((before[0], bids), (before[1], asks)):
            was, now = dict(old), dict(new)
            moves = [(p, q) for p, q in now.items() if was.get(p) != q]
            changed.append(moves + [(p, Decimal(0)) for p in was if p not in now])
        prev, self.seq = self.seq, self.seq + self.book.rng.randint(1, 20)
        checksum = self.checksum(bids, asks)
        if corrupt:
            checksum = checksum + 1 if checksum < (1 << 31) - 1 else checksum - 1
        return self.frame("update", changed[0], changed[1], checksum, prev)
