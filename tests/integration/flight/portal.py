"""A test portal: fast services over a tmp data dir, synthetic bars, accounts and tokens.

Shared by the Flight, client and notebook tests. Tokens (by name):
  analyst  - every scope, analyst role
  viewer   - market:read and sql:run on a viewer account (sql:run needs analyst: 403)
  account  - account:read only (bars: 403)
  revoked  - every scope, revoked after creation (401)
"""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import uvicorn

from core.services import Services
from tests.serve_support import fast_services

SYMBOL = "TEST/USD"
VENUE = "testvenue"
START = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
PASSWORD = "correct horse battery staple 9"
ALL_SCOPES = ("market:read", "sql:run", "analytics:run", "account:read")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def synthetic_bars(minutes: int, symbol: str = SYMBOL, venue: str = VENUE) -> pl.DataFrame:
    """Seeded random-walk 1-minute bars from START, in the BARS schema."""
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.001, minutes)))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0, 0.0005, minutes)) * close
    ts = np.datetime64(START.replace(tzinfo=None), "us") + np.arange(minutes) * np.timedelta64(
        60, "s"
    )
    return pl.DataFrame(
        {
            "ts": pl.Series(ts).dt.replace_time_zone("UTC"),
            "venue": venue,
            "symbol": symbol,
            "timeframe": "1m",
            "open": open_,
            "high": np.maximum(open_, close) + wick,
            "low": np.minimum(open_, close) - wick,
            "close": close,
            "volume": rng.gamma(2.0, 5.0, minutes),
        }
    )


@dataclass
class Portal:
    services: Services
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, str] = field(default_factory=dict)


def make_portal(data_dir: Path, minutes: int = 3 * 1440, **settings: object) -> Portal:
    """Services over `data_dir` with `minutes` synthetic bars of SYMBOL and the four tokens."""
    services = fast_services(data_dir, **settings)
    services.engine.store.write_bars(synthetic_bars(minutes))
    portal = Portal(services)
    auth = services.auth
    for username, role in (("ana", "analyst"), ("vic", "viewer")):
        user = auth.register(username, f"{username}@example.test", PASSWORD)
        if role != "viewer":
            auth.set_role_as_operator(username, role)
        portal.user_ids[username] = user.user_id
    ana, vic = portal.user_ids["ana"], portal.user_ids["vic"]
    make = auth.create_access_token
    portal.tokens["analyst"] = make(ana, "all", ALL_SCOPES, 30, password=PASSWORD)
    portal.tokens["viewer"] = make(vic, "viewer", ["market:read", "sql:run"], 30, password=PASSWORD)
    portal.tokens["account"] = make(ana, "account", ["account:read"], 30, password=PASSWORD)
    portal.tokens["revoked"] = make(ana, "gone", ALL_SCOPES, 30, password=PASSWORD)
    gone = next(t for t in auth.list_access_tokens(ana) if t.name == "gone")
    auth.revoke_access_token(ana, gone.token_id)
    return portal


class RestServer:
    """The REST API (core.serve.rest) under uvicorn in a thread on a free loopback port."""

    def __init__(self, services: Callable[[], Services]) -> None:
        from starlette.applications import Starlette

        from core.serve.rest import api_routes

        app = Starlette(routes=api_routes("", services))
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", ws="none", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="rest-api", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the REST API server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
