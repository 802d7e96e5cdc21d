"""The loopback demo venue: a SIMULATED exchange that speaks Binance's public API.

One server on 127.0.0.1 (a free port) serves
- WebSocket market streams in Binance's format: `<id>@trade`, `<id>@aggTrade`,
  `<id>@kline_<interval>`, `<id>@bookTicker` and the diff book stream `<id>@depth@100ms`
  (`depthUpdate` events with first/last update ids U/u); `/ws/...` sends raw events, `/stream...`
  wraps each one in the combined-stream envelope `{"stream": name, "data": event}`; both accept
  `{"method": "SUBSCRIBE"|"UNSUBSCRIBE"|"LIST_SUBSCRIPTIONS", "params": [...], "id": n}`;
- the REST endpoints a ccxt Binance client needs: `/api/v3/exchangeInfo`, `/api/v3/klines`,
  `/api/v3/aggTrades`, `/api/v3/trades`, `/api/v3/depth` (snapshot with `lastUpdateId`),
  `/api/v3/time`, `/api/v3/ping`.

So the real `ccxt.pro.binance` client runs against it with its URLs pointed here.
Prices come from the seeded model in core.ingest.sim; trades are market orders against its
SIMULATED book, so trades and book agree. Tests use the fault hooks: `drop()`,
`stall(seconds)`, `send_malformed(n)`, `burst(symbol, n)`, and for the book
`book_fault(symbol, kind)` with kind "gap", "duplicate", "reorder" or "cross".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from core.errors import HftError
from core.ingest.sim import (
    DEFAULT_MARKETS,
    INTERVALS_MS,
    Kline,
    PriceModel,
    SimMarket,
    Trade,
    market_id,
    warm_up,
)
from core.ingest.sim_book import Diff

_LOG = logging.getLogger("hfthot.demo_venue")
_LOG.setLevel(logging.WARNING)  # websockets logs every connection at INFO

BOOK_FAULTS = ("gap", "duplicate", "reorder", "cross")
DEPTH_STREAM = "depth@100ms"

VENUE = "demo"
"""Venue name of the simulated venue in the store and the UI."""


def now_ms() -> int:
    return int(time.time() * 1000)


def _num(x: float) -> str:
    return f"{x:.8f}"


def trade_event(m: SimMarket, t: Trade, kind: str) -> dict[str, Any]:
    if kind == "aggTrade":
        return {
            "e": "aggTrade",
            "E": now_ms(),
            "s": m.id,
            "a": t.id,
            "p": _num(t.price),
            "q": _num(t.qty),
            "f": t.id,
            "l": t.id,
            "T": t.ts,
            "m": t.buyer_maker,
            "M": True,
        }
    return {
        "e": "trade",
        "E": now_ms(),
        "s": m.id,
        "t": t.id,
        "p": _num(t.price),
        "q": _num(t.qty),
        "T": t.ts,
        "m": t.buyer_maker,
        "M": True,
    }


def depth_event(m: SimMarket, d: Diff) -> dict[str, Any]:
    return {
        "e": "depthUpdate",
        "E": now_ms(),
        "s": m.id,
        "U": d.first_id,
        "u": d.last_id,
        "b": [[_num(p), _num(q)] for p, q in d.bids],
        "a": [[_num(p), _num(q)] for p, q in d.asks],
    }


def kline_event(m: SimMarket, k: Kline, interval: str, closed: bool) -> dict[str, Any]:
    return {
        "e": "kline",
        "E": now_ms(),
        "s": m.id,
        "k": {
            "t": k.open_ms,
            "T": k.open_ms + k.interval_ms - 1,
            "s": m.id,
            "i": interval,
            "f": k.first_id,
            "L": k.last_id,
            "o": _num(k.open),
            "c": _num(k.close),
            "h": _num(k.high),
            "l": _num(k.low),
            "v": _num(k.volume),
            "n": k.count,
            "x": closed,
            "q": _num(k.quote_volume),
            "V": _num(k.taker_buy_volume),
            "Q": _num(k.taker_buy_quote),
            "B": "0",
        },
    }


def kline_row(k: Kline) -> list[Any]:
    return [
        k.open_ms,
        _num(k.open),
        _num(k.high),
        _num(k.low),
        _num(k.close),
        _num(k.volume),
        k.open_ms + k.interval_ms - 1,
        _num(k.quote_volume),
        k.count,
        _num(k.taker_buy_volume),
        _num(k.taker_buy_quote),
        "0",
    ]


def symbol_info(m: SimMarket) -> dict[str, Any]:
    base, quote = m.symbol.split("/")
    tick = f"{m.model.tick:.8f}"
    return {
        "symbol": m.id,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "MARKET"],
        "icebergAllowed": False,
        "ocoAllowed": False,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": tick,
                "maxPrice": "10000000.00000000",
                "tickSize": tick,
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": "0.00001000",
                "maxQty": "9000.00000000",
                "stepSize": "0.00001000",
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
    }


def ccxt_urls(base: str) -> dict[str, Any]:
    """ccxt Binance `urls` for a demo venue at `base` (http://127.0.0.1:PORT)."""
    if not base.startswith("http://127.0.0.1:") and not base.startswith("http://localhost:"):
        raise HftError(f"the demo venue only runs on loopback; got {base!r}")
    ws = "ws://" + base.removeprefix("http://")
    return {
        "api": {
            "ws": {"spot": f"{ws}/stream"},
            "public": f"{base}/api/v3",
            "private": f"{base}/api/v3",
            "v1": f"{base}/api/v1",
        }
    }


@dataclass(eq=False)
class Peer:
    conn: ServerConnection
    combined: bool
    streams: set[str] = field(default_factory=set)


class VenueError(HftError):
    pass


class DemoVenue:
    """The simulated venue. `start()` runs it on its own thread; `stop()` ends it."""

    def __init__(
        self,
        markets: dict[str, PriceModel] | None = None,
        *,
        seed: int = 7,
        history_minutes: int = 240,
        kline_push_s: float = 1.0,
        tick_s: float = 0.1,
        port: int = 0,
    ) -> None:
        start = now_ms()
        self.markets: dict[str, SimMarket] = {}
        for i, (symbol, model) in enumerate((markets or DEFAULT_MARKETS).items()):
            m = SimMarket(symbol, model, seed + 1000 * i, start)
            if history_minutes > 0:
                warm_up(m, history_minutes * 60_000, start)
            self.markets[m.id] = m
        self.kline_push_s = kline_push_s
        self.tick_s = tick_s
        self._port = port
        self.peers: set[Peer] = set()
        self.frames_sent = 0
        self._quote_id = 0
        self._quoted: dict[str, tuple[float, float]] = {}
        self._book_faults: dict[str, str] = {}  # market id -> the fault the next diff gets
        self._held: dict[str, dict[str, Any]] = {}  # a diff held back by "reorder"
        self._last_depth: dict[str, dict[str, Any]] = {}
        self.connections_total = 0
        self._stall_until = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def symbols(self) -> list[str]:
        return [m.symbol for m in self.markets.values()]

    def ccxt_urls(self) -> dict[str, Any]:
        """`urls` override that points a ccxt(.pro) Binance client here (spot only)."""
        return ccxt_urls(self.rest_url)

    def start(self, timeout: float = 10.0) -> DemoVenue:
        self._thread = threading.Thread(target=self._run, name="demo-venue", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise VenueError("the demo venue did not start within the timeout")
        if self._error is not None:
            raise VenueError(f"the demo venue failed to start: {self._error}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> DemoVenue:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        async with serve(
            self._handle,
            "127.0.0.1",
            self._port,
            process_request=self._http,
            ping_interval=20,
            compression=None,
            logger=_LOG,
        ) as server:
            self._server = server
            self.port = next(iter(server.sockets)).getsockname()[1]
            self._ready.set()
            pump = asyncio.create_task(self._pump())
            await self._stopping.wait()
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            for peer in list(self.peers):
                self._abort(peer)

    # --- fault hooks (thread safe) -----------------------------------------------------------
    def _call(self, fn: Any, *args: Any) -> Any:
        if self._loop is None:
            raise VenueError("the demo venue is not running")
        fut = asyncio.run_coroutine_threadsafe(fn(*args), self._loop)
        return fut.result(10)

    def drop(self) -> int:
        """Cut every connection without a close frame (a network drop); returns how many."""

        async def go() -> int:
            peers = list(self.peers)
            for p in peers:
                self._abort(p)
            return len(peers)

        return int(self._call(go))

    def stall(self, seconds: float) -> None:
        """Keep connections open but send nothing for `seconds` (the tape keeps moving)."""
        self._stall_until = time.monotonic() + seconds

    def send_malformed(self, n: int = 5, symbol: str = "BTC/USDT") -> None:
        """Send `n` malformed frames (cycling through five kinds) to every connection."""
        mid = market_id(symbol)
        frames = [
            "{this is not json",
            json.dumps({"e": "trade", "s": mid, "t": "x", "p": "not-a-number", "T": "soon"}),
            json.dumps({"e": "kline", "s": mid, "k": "broken"}),
            "\x00\x01garbage",
            json.dumps([1, 2, 3]),
        ]

        async def go() -> None:
            for i in range(n):
                for peer in list(self.peers):
                    with contextlib.suppress(ConnectionClosed):
                        await peer.conn.send(frames[i % len(frames)])

        self._call(go)

    def burst(self, symbol: str, n: int) -> None:
        """`n` market orders of `symbol` at once (at least `n` trades), pushed like any other."""
        m = self.markets[market_id(symbol)]

        async def go() -> None:
            await self._publish(m, m.burst(now_ms(), n))

        self._call(go)

    def book_fault(self, symbol: str, kind: str) -> None:
        """Corrupt the next diff of `symbol`'s book stream: "gap" (never sent, so the ids
        jump), "duplicate" (the previous diff sent again before it), "reorder" (sent after
        the one that follows it) or "cross" (a bid above the best ask added to it)."""
        if kind not in BOOK_FAULTS:
            raise VenueError(f"unknown book fault {kind!r}; use one of {', '.join(BOOK_FAULTS)}")
        self._book_faults[market_id(symbol)] = kind

    # --- websocket side ----------------------------------------------------------------------
    def _abort(self, peer: Peer) -> None:
        self.peers.discard(peer)
        transport = getattr(peer.conn, "transport", None)
        if transport is not None:
            transport.abort()

    async def _handle(self, conn: ServerConnection) -> None:
        path = urlsplit(conn.request.path if conn.request else "/")
        combined = path.path.startswith("/stream")
        peer = Peer(conn, combined)
        if combined:
            names = parse_qs(path.query).get("streams", [""])[0]
            peer.streams.update(s for s in names.split("/") if self._valid(s))
        else:
            tail = path.path.removeprefix("/ws").strip("/")
            peer.streams.update(s for s in tail.split("/") if self._valid(s))
        self.peers.add(peer)
        self.connections_total += 1
        try:
            async for raw in conn:
                await self._on_request(peer, raw)
        except ConnectionClosed:
            pass
        finally:
            self.peers.discard(peer)

    def _valid(self, stream: str) -> bool:
        sym, _, kind = stream.partition("@")
        if sym.upper() not in self.markets:
            return False
        return kind in ("trade", "aggTrade", "bookTicker", DEPTH_STREAM) or (
            kind.startswith("kline_") and kind.removeprefix("kline_") in INTERVALS_MS
        )

    async def _on_request(self, peer: Peer, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
            method, req_id = msg.get("method"), msg.get("id")
            params = msg.get("params") or []
        except (ValueError, AttributeError):
            await peer.conn.send(json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}))
            return
        if method == "SUBSCRIBE":
            bad = [s for s in params if not self._valid(s)]
            if bad:
                err = {"code": 2, "msg": f"Invalid request: unknown stream(s) {bad}"}
                await peer.conn.send(json.dumps({"error": err, "id": req_id}))
                return
            peer.streams.update(params)
            await peer.conn.send(json.dumps({"result": None, "id": req_id}))
        elif method == "UNSUBSCRIBE":
            peer.streams.difference_update(params)
            await peer.conn.send(json.dumps({"result": None, "id": req_id}))
        elif method == "LIST_SUBSCRIPTIONS":
            await peer.conn.send(json.dumps({"result": sorted(peer.streams), "id": req_id}))
        else:
            await peer.conn.send(
                json.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": req_id})
            )

    async def _send(self, stream: str, event: dict[str, Any]) -> None:
        if time.monotonic() < self._stall_until:
            return
        raw_text = envelope_text = None
        for peer in list(self.peers):
            if stream not in peer.streams:
                continue
            if peer.combined:
                envelope_text = envelope_text or json.dumps({"stream": stream, "data": event})
                text = envelope_text
            else:
                raw_text = raw_text or json.dumps(event)
                text = raw_text
            try:
                await peer.conn.send(text)
                self.frames_sent += 1
            except ConnectionClosed:
                self.peers.discard(peer)

    async def _publish(self, m: SimMarket, trades: Iterable[Trade]) -> None:
        lower = m.id.lower()
        for t in trades:
            for kind in ("trade", "aggTrade"):
                await self._send(f"{lower}@{kind}", trade_event(m, t, kind))

    async def _push_quotes(self) -> None:
        wanted = {s for p in self.peers for s in p.streams if s.endswith("@bookTicker")}
        for stream in wanted:
            m = self.markets[stream.partition("@")[0].upper()]
            bid, bid_qty, ask, ask_qty = m.quote()
            if self._quoted.get(stream) == (bid, ask):
                continue  # only a changed best bid/ask is pushed
            self._quoted[stream] = (bid, ask)
            self._quote_id += 1
            event = {
                "u": self._quote_id,
                "s": m.id,
                "b": _num(bid),
                "B": _num(bid_qty),
                "a": _num(ask),
                "A": _num(ask_qty),
            }
            await self._send(stream, event)

    async def _push_depth(self, m: SimMarket) -> None:
        diff = m.book_diff()  # drained every tick, watched or not
        if diff is None:
            return
        stream = f"{m.id.lower()}@{DEPTH_STREAM}"
        event = depth_event(m, diff)
        fault = self._book_faults.pop(m.id, None)
        held = self._held.pop(m.id, None)
        if fault == "gap":
            return
        if fault == "duplicate" and m.id in self._last_depth:
            await self._send(stream, self._last_depth[m.id])
        if fault == "cross":
            ask = m.quote()[2]
            event["b"] = [[_num(ask + 10 * m.model.tick), _num(1.0)], *event["b"]]
        if fault == "reorder":
            self._held[m.id] = event
            return
        await self._send(stream, event)
        if held is not None:
            await self._send(stream, held)
        self._last_depth[m.id] = event

    async def _pump(self) -> None:
        last_push = 0.0
        open_ms: dict[tuple[str, str], int] = {}
        while True:
            now = now_ms()
            for m in self.markets.values():
                await self._publish(m, m.advance(now))
                await self._push_depth(m)
            await self._push_quotes()
            if time.monotonic() - last_push >= self.kline_push_s:
                last_push = time.monotonic()
                wanted = {s for p in self.peers for s in p.streams if "@kline_" in s}
                for stream in wanted:
                    sym, _, kind = stream.partition("@kline_")
                    m = self.markets[sym.upper()]
                    step = INTERVALS_MS[kind]
                    prev = open_ms.get((sym, kind))
                    cur_open = now - now % step
                    if prev is not None and prev < cur_open:
                        done = m.klines(step, prev, prev, 1)
                        if done:
                            await self._send(stream, kline_event(m, done[0], kind, True))
                    open_ms[(sym, kind)] = cur_open
                    k = m.current_kline(step, now)
                    if k is not None:
                        await self._send(stream, kline_event(m, k, kind, False))
            await asyncio.sleep(self.tick_s)

    # --- REST side ---------------------------------------------------------------------------
    def _http(self, conn: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return None
        parts = urlsplit(request.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            status, body = self._rest(parts.path, query)
        except (KeyError, ValueError) as exc:
            status, body = (
                400,
                {"code": -1100, "msg": f"Illegal characters found in a parameter: {exc}"},
            )
        data = json.dumps(body).encode()
        headers = Headers(
            [
                ("Content-Type", "application/json;charset=UTF-8"),
                ("Content-Length", str(len(data))),
                ("Connection", "close"),
            ]
        )
        return Response(status, HTTPStatus(status).phrase, headers, data)

    def _market(self, query: dict[str, str]) -> SimMarket | None:
        return self.markets.get(query.get("symbol", "").upper())

    def _rest(self, path: str, query: dict[str, str]) -> tuple[int, Any]:
        if path == "/api/v3/ping":
            return 200, {}
        if path == "/api/v3/time":
            return 200, {"serverTime": now_ms()}
        if path == "/api/v3/exchangeInfo":
            return 200, {
                "timezone": "UTC",
                "serverTime": now_ms(),
                "rateLimits": [
                    {
                        "rateLimitType": "REQUEST_WEIGHT",
                        "interval": "MINUTE",
                        "intervalNum": 1,
                        "limit": 6000,
                    }
                ],
                "exchangeFilters": [],
                "symbols": [symbol_info(m) for m in self.markets.values()],
            }
        if path == "/api/v3/depth":
            book = self._market(query)
            if book is None:
                return 400, {"code": -1121, "msg": "Invalid symbol."}
            depth = min(int(query.get("limit", 100)), 5000)
            last_id, bids, asks = book.book_snapshot(depth)
            return 200, {
                "lastUpdateId": last_id,
                "bids": [[_num(p), _num(q)] for p, q in bids],
                "asks": [[_num(p), _num(q)] for p, q in asks],
            }
        if path not in ("/api/v3/klines", "/api/v3/aggTrades", "/api/v3/trades"):
            return 404, {"code": -1000, "msg": f"unknown endpoint {path}"}
        m = self._market(query)
        if m is None:
            return 400, {"code": -1121, "msg": "Invalid symbol."}
        limit = min(int(query.get("limit", 500)), 1000)
        if path == "/api/v3/klines":
            interval = query.get("interval", "")
            if interval not in INTERVALS_MS:
                return 400, {"code": -1120, "msg": "Invalid interval."}
            step = INTERVALS_MS[interval]
            end = int(query.get("endTime", now_ms()))
            if "startTime" in query:
                start = int(query["startTime"])
            else:
                start = end - end % step - (limit - 1) * step
            return 200, [kline_row(k) for k in m.klines(step, start, end, limit)]
        if path == "/api/v3/aggTrades":
            if "startTime" in query:
                start = int(query["startTime"])
                end = int(query.get("endTime", start + 3_600_000))
                if end - start > 3_600_000:
                    return 400, {
                        "code": -1127,
                        "msg": "More than 1 hours between startTime and endTime.",
                    }
                trades = m.trades_between(start, end, limit)
            else:
                trades = m.recent_trades(limit)
            return 200, [
                {k: v for k, v in trade_event(m, t, "aggTrade").items() if k not in ("e", "E", "s")}
                for t in trades
            ]
        return 200, [
            {
                "id": t.id,
                "price": _num(t.price),
                "qty": _num(t.qty),
                "quoteQty": _num(t.price * t.qty),
                "time": t.ts,
                "isBuyerMaker": t.buyer_maker,
                "isBestMatch": True,
            }
            for t in m.recent_trades(limit)
        ]
