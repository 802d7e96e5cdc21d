"""A loopback HTTP server that replays recorded exchange payloads (tests/data/ccxt).

Each path has a queue of replies served in order (the last one repeats), so a
test can script pages, errors and rate-limit answers. Every request is logged
with its query string for assertions.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

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
                reply = server._next(parts.path, query)
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

    def _next(self, path: str, query: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(Request(path, query))
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
