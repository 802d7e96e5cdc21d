"""A loopback HTTP server that replays recorded exchange payloads (tests/data/ccxt).

Each path has a queue of replies served in order (the last one repeats), so a
test can script pages, errors and rate-limit answers. Every request is logged
with its query string and headers (names in lower case) for assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

DATA = Path(__file__).resolve().parents[2] / "data"


@dataclass
class Reply:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


def recorded(name: str, status: int = 200, **headers: str) -> Reply:
    return Reply((DATA / name).read_bytes(), status, dict(headers))


def raw(body: str, status: int = 200, content_type: str = "text/html") -> Reply:
    return Reply(body.encode(), status, content_type=content_type)


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    """Request headers, names in lower case."""


class RecordedServer:
    def __init__(self, routes: dict[str, list[Reply]]) -> None:
        self.routes = {k: list(v) for k, v in routes.items()}
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = server._next(parts.path, query, headers)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(reply.body)))
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _next(self, path: str, query: dict[str, str], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(Request(path, query, headers))
            queue = self.routes.get(path)
            if not queue:
                return Reply(b'{"error":"no recorded reply for this path"}', 404)
            return queue.pop(0) if len(queue) > 1 else queue[0]

    def hits(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextmanager
def serving(routes: dict[str, list[Reply]]) -> Iterator[RecordedServer]:
    srv = RecordedServer(routes)
    try:
        yield srv
    finally:
        srv.stop()


def loopback_urls(exchange: Any, base: str) -> dict[str, Any]:
    """The exchange's `urls['api']` with every host replaced by `base` (paths kept)."""

    def rewrite(api: Any) -> Any:
        if isinstance(api, str):
            return base + urlsplit(api).path
        if isinstance(api, dict):
            return {k: rewrite(v) for k, v in api.items()}
        return api

    return {"api": rewrite(exchange.urls["api"])}


def frames(name: str) -> list[str]:
    """The text frames of a recorded session file, one per line."""
    return [line for line in (DATA / name).read_text().splitlines() if line]


class LoopbackWebSocket(ABC):
    """A WebSocket server on 127.0.0.1, in its own thread and event loop. Subclasses answer
    connections (`_handle`), may run `_background` tasks and close clients in `_closing`."""

    name = "loopback-ws"

    def __init__(self) -> None:
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"the {self.name} server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        quiet = logging.getLogger(f"tests.{self.name}")
        quiet.setLevel(logging.ERROR)
        async with serve(self._handle, "127.0.0.1", 0, logger=quiet) as server:
            self.port = next(iter(server.sockets)).getsockname()[1]
            tasks = [asyncio.create_task(job) for job in self._background()]
            self._ready.set()
            await self._stopping.wait()
            for task in tasks:
                task.cancel()
            await self._closing()

    @abstractmethod
    async def _handle(self, conn: ServerConnection) -> None:
        """Serve one client connection until it closes."""

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        return []

    async def _closing(self) -> None:
        return None


class RecordedWebSocket(LoopbackWebSocket):
    """A loopback WebSocket server: connection i gets `sessions[i]` (the last one repeats)."""

    name = "recorded-ws"

    def __init__(self, sessions: list[list[str]], *, answer_pings: bool = True) -> None:
        super().__init__()
        self.sessions = sessions
        self.answer_pings = answer_pings
        self.received: list[tuple[int, str]] = []
        """(connection number, text) of every message received, in order."""
        self.connections = 0
        self._open: set[ServerConnection] = set()
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/market"

    def __enter__(self) -> RecordedWebSocket:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def texts(self, connection: int | None = None) -> list[str]:
        with self._lock:
            return [t for n, t in self.received if connection is None or n == connection]

    def drop(self) -> None:
        """Cut every open connection without a closing handshake (a network drop)."""
        self._call(self._drop)

    def send(self, text: str) -> None:
        """Send one frame to every open connection."""
        self._call(self._send, text)

    def _call(self, fn: Any, *args: Any) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(fn(*args), self._loop).result(10)

    async def _drop(self) -> None:
        for conn in list(self._open):
            conn.transport.abort()

    async def _send(self, text: str) -> None:
        for conn in list(self._open):
            with contextlib.suppress(ConnectionClosed):
                await conn.send(text)

    async def _closing(self) -> None:
        await self._drop()

    async def _handle(self, conn: ServerConnection) -> None:
        with self._lock:
            number = self.connections
            self.connections += 1
        self._open.add(conn)
        try:
            async for raw in conn:
                text = raw if isinstance(raw, str) else raw.decode()
                with self._lock:
                    self.received.append((number, text))
                    first = sum(1 for n, _ in self.received if n == number) == 1
                if first:
                    for frame in self.sessions[min(number, len(self.sessions) - 1)]:
                        await conn.send(frame)
                elif text == "PING" and self.answer_pings:
                    await conn.send("PONG")
        except ConnectionClosed:
            pass
        finally:
            self._open.discard(conn)
