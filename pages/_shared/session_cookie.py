"""The login cookie: how a session token reaches the browser without being readable by scripts.

A Streamlit script talks to the browser over a WebSocket, which cannot set cookies. So app.py
also serves one small HTTP route (`POST <base>/api/session`, added through `st.App`) that sets or
clears an HttpOnly, SameSite=Strict cookie (Secure on HTTPS). The script never hands the token
itself to the browser: it parks the token here under a one-time code (256 random bits, single
use, 2 minutes), a tiny component posts that code back to the route, and the route answers with
`Set-Cookie` (at login also the long-lived device cookie `hfthot_device`, see
lakehouse/devices.py). On the next page load the WebSocket handshake carries the cookie, and
the gate reads it with `st.context.cookies`.

The route accepts only same-origin JSON POSTs (Sec-Fetch-Site / Origin checked), so another site
can neither plant a session (login CSRF) nor clear one. Nothing here imports Streamlit.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lakehouse.devices import DEVICE_TTL_S

COOKIE_NAME = "hfthot_session"
DEVICE_COOKIE_NAME = "hfthot_device"  # signed "this browser signed in before" (device cookie)
DEVICE_MAX_AGE_S = int(DEVICE_TTL_S)  # as long as the backend accepts the token
ROUTE_PATH = "api/session"
CODE_TTL_S = 120.0
_MAX_BODY = 1024


@dataclass(frozen=True, slots=True)
class _Handoff:
    token: str | None  # None clears the cookie
    max_age_s: int
    expires_at: float
    device: str | None = None  # a device token to keep as well (set at login only)


class HandoffStore:
    """One-time codes that stand for "set this token" or "clear the cookie". Thread-safe."""

    def __init__(
        self, ttl_s: float = CODE_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._items: dict[str, _Handoff] = {}

    def issue(self, token: str | None, max_age_s: int = 0, device: str | None = None) -> str:
        code = secrets.token_urlsafe(32)
        now = self._clock()
        with self._lock:
            self._purge(now)
            self._items[code] = _Handoff(token, max_age_s, now + self._ttl_s, device)
        return code

    def pending(self, code: str) -> bool:
        """True while `code` is neither redeemed nor expired."""
        with self._lock:
            item = self._items.get(code)
            return item is not None and item.expires_at > self._clock()

    def redeem(self, code: str) -> _Handoff | None:
        with self._lock:
            item = self._items.pop(code, None)
        if item is None or item.expires_at <= self._clock():
            return None
        return item

    def _purge(self, now: float) -> None:
        for code in [c for c, h in self._items.items() if h.expires_at <= now]:
            del self._items[code]


def _process_store() -> HandoffStore:
    """The one store of this process. Streamlit re-imports every app module after any source
    change, while the route keeps the functions of the first import; so the store hangs on a
    module entry with no file behind it, which the reloader never evicts."""
    holder = sys.modules.setdefault(_HOLDER, types.ModuleType(_HOLDER))
    store: HandoffStore = holder.__dict__.setdefault("store", HandoffStore())
    return store


_HOLDER = "_hfthot_session_handoffs"
HANDOFFS = _process_store()


def _same_origin(request: Request) -> bool:
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    host = request.headers.get("host")
    if not origin or not host:
        return False
    return urlsplit(origin).netloc == host


def _refuse(status: int, reason: str) -> Response:
    return Response(reason, status_code=status, headers={"Cache-Control": "no-store"})


async def session_endpoint(request: Request) -> Response:
    """Set or clear the session cookie for a one-time code posted by the page itself."""
    if not _same_origin(request):
        return _refuse(403, "cross-site request refused")
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return _refuse(415, "expected application/json")
    body = await request.body()
    if len(body) > _MAX_BODY:
        return _refuse(413, "body too large")
    try:
        code = json.loads(body).get("code")
    except (ValueError, AttributeError):
        return _refuse(400, "malformed body")
    if not isinstance(code, str):
        return _refuse(400, "missing code")
    item = HANDOFFS.redeem(code)
    if item is None:
        return _refuse(403, "unknown or expired code")
    response = Response(status_code=204, headers={"Cache-Control": "no-store"})
    secure = request.url.scheme == "https"
    if item.token is None:
        response.delete_cookie(
            COOKIE_NAME, path="/", secure=secure, httponly=True, samesite="strict"
        )
    else:
        response.set_cookie(
            COOKIE_NAME,
            item.token,
            max_age=item.max_age_s,
            path="/",
            secure=secure,
            httponly=True,
            samesite="strict",
        )
    if item.device is not None:  # kept across log-outs: it only says "signed in here before"
        response.set_cookie(
            DEVICE_COOKIE_NAME,
            item.device,
            max_age=DEVICE_MAX_AGE_S,
            path="/",
            secure=secure,
            httponly=True,
            samesite="strict",
        )
    return response


def route_path(base_url_path: str) -> str:
    base = base_url_path.strip("/")
    return f"/{base}/{ROUTE_PATH}" if base else f"/{ROUTE_PATH}"


def routes(base_url_path: str = "") -> list[Route]:
    return [Route(route_path(base_url_path), session_endpoint, methods=["POST"])]
