"""The REST API on a real uvicorn server (loopback, in a thread) with app.py's middleware.

`portal` is the shared test portal (tests/integration/flight/portal.py): eight days of
synthetic 1-minute bars of TEST/USD on testvenue, the bundled history, and tokens by name
(analyst, viewer, account, revoked). `api` is a requests session against it; `strict` is a
second portal whose clock the test moves and whose tokens get 3 calls a minute.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from jsonschema import Draft202012Validator
from starlette.applications import Starlette

from core.config import Settings
from core.serve.openapi import openapi_spec
from core.serve.rest import api_prefix, api_routes
from core.services import Services, build_services
from lakehouse import Argon2Params, LakehouseAuthBackend, User
from pages._shared.http_guard import app_middleware
from tests.integration.flight.portal import PASSWORD, Portal, make_portal


class ApiServer:
    """`api_routes(base, services)` in a Starlette app with app.py's middleware, on uvicorn."""

    def __init__(self, services: Callable[[], Services], base_url_path: str = "") -> None:
        app = Starlette(
            routes=api_routes(base_url_path, services), middleware=app_middleware(base_url_path)
        )
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", ws="none", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="api-test", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the REST API test server did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.root = f"http://127.0.0.1:{port}"
        self.url = self.root + api_prefix(base_url_path)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class Api(requests.Session):
    """A session whose relative URLs are under the API prefix; `as_(token)` sets the bearer."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kw: Any) -> Any:
        full = url if str(url).startswith("http") else f"{self.url}{url!s}"
        kw.setdefault("timeout", 120)
        return super().request(method, full, *args, **kw)

    def as_(self, token: str | None) -> Api:
        self.headers.pop("Authorization", None)
        if token is not None:
            self.headers["Authorization"] = f"Bearer {token}"
        return self


def conforms(body: object, schema: str) -> None:
    """`body` is valid against the named schema of the OpenAPI document."""
    Draft202012Validator(openapi_spec("/api/v1")["components"]["schemas"][schema]).validate(body)


MINUTES = 8 * 1440
"""Synthetic bars in the portal: more than format=json may carry (10,000)."""


@pytest.fixture(scope="package")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portal]:
    p = make_portal(
        tmp_path_factory.mktemp("api") / "data", minutes=MINUTES, api_rate_per_minute=100_000
    )
    yield p
    p.services.close()


@pytest.fixture(scope="package")
def server(portal: Portal) -> Iterator[ApiServer]:
    srv = ApiServer(lambda: portal.services)
    yield srv
    srv.stop()


@pytest.fixture
def api(server: ApiServer) -> Iterator[Api]:
    with Api(server.url) as session:
        yield session


@dataclass
class Strict:
    """Services with a movable clock and 3 calls a minute per token, and its server."""

    services: Services
    server: ApiServer
    now: list[float]

    def token(self, role: str, scopes: list[str], days: int = 30) -> tuple[User, str]:
        auth = self.services.auth
        name = f"{role}-{secrets.token_hex(4)}"
        user = auth.register(name, f"{name}@example.test", PASSWORD)
        if role != "viewer":
            user = auth.set_role_as_operator(name, role)
        return user, auth.create_access_token(user.user_id, "t", scopes, days, password=PASSWORD)


@pytest.fixture(scope="package")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Strict]:
    now = [time.time()]

    def clocked_auth(s: Settings) -> LakehouseAuthBackend:
        return LakehouseAuthBackend(
            s.lakehouse_dir,
            secrets_dir=s.secrets_dir,
            argon2_params=Argon2Params.fast_for_tests(),
            allow_weak_hashing_for_tests=True,
            clock=lambda: now[0],
        )

    data_dir: Path = tmp_path_factory.mktemp("strict") / "data"
    settings = dataclasses.replace(
        Settings(), data_dir=data_dir, demo_venue=False, flight_port=0, api_rate_per_minute=3
    )
    services = build_services(settings, auth_factory=clocked_auth)
    srv = ApiServer(lambda: services)
    yield Strict(services, srv, now)
    srv.stop()
    services.close()
