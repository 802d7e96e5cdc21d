"""Alerts on real services (Delta tables, a MarketStore, fast hashing) and a real loopback
HTTP receiver that checks each webhook's signature."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from core.alerts import webhook
from core.services import Services
from lakehouse import User
from tests.lakehouse_support import PASSWORD, make_admin
from tests.serve_support import analyst, fast_services

VENUE, SYMBOL = "synthetic", "ALRT/USD"


@dataclass
class Hit:
    headers: dict[str, str]
    body: bytes
    valid: bool

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers `plan` statuses in turn (the last one forever) and records every request."""

    plan: list[int] = field(default_factory=lambda: [200])
    secret: str = ""
    retry_after: str | None = None
    hits: list[Hit] = field(default_factory=list)
    url: str = ""

    def wait_for(self, n: int, timeout: float = 20.0) -> list[Hit]:
        end = time.monotonic() + timeout
        while len(self.hits) < n and time.monotonic() < end:
            time.sleep(0.02)
        return list(self.hits)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            stamp = self.headers.get(webhook.TIMESTAMP_HEADER, "")
            sig = self.headers.get(webhook.SIGNATURE_HEADER, "")
            valid = webhook.verify(rec.secret, stamp, body, sig)
            status = rec.plan[min(len(rec.hits), len(rec.plan) - 1)]
            rec.hits.append(Hit(dict(self.headers), body, valid))
            self.send_response(status if valid else 401)
            if rec.retry_after and (status == 429 or status >= 500):
                self.send_header("Retry-After", rec.retry_after)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/tok-SECRETPATH?k=1"
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Team:
    services: Services
    alice: User
    bob: User
    viewer: User
    admin: User


@pytest.fixture
def team(tmp_path: Path) -> Iterator[Team]:
    services = fast_services(
        tmp_path / "data",
        alert_interval_s=0.05,
        alert_query_interval_s=0.2,
        alert_webhook_allow_private=True,
        alert_webhook_backoff_s=0.05,
    )
    try:
        admin = make_admin(services.auth)
        viewer = services.auth.register("vic", "vic@example.org", PASSWORD)
        yield Team(
            services,
            analyst(services, admin, "alice"),
            analyst(services, admin, "bob"),
            viewer,
            admin,
        )
    finally:
        services.close()


def bar_frame(closes: list[float], start: dt.datetime) -> pl.DataFrame:
    n = len(closes)
    return pl.DataFrame(
        {
            "ts": [start + dt.timedelta(minutes=i) for i in range(n)],
            "venue": [VENUE] * n,
            "symbol": [SYMBOL] * n,
            "timeframe": ["1m"] * n,
            "open": closes,
            "high": closes,
            "low": closes,
            "close": closes,
            "volume": [1.0] * n,
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return check()
