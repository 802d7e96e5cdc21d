"""Two ASGI middlewares that wrap every HTTP response the app serves (see app.py).

`BodyLimit` bounds request bodies: a Content-Length above the limit is refused with 413 before
any of the body is read, and a body without one (chunked) is counted as it arrives and refused
with 413 as soon as it crosses the limit, so the rest is never buffered. Streamlit's own
endpoints under `<base>/_stcore/` (file upload, agent API) enforce their own limits
(`server.maxUploadSize`) and pass through untouched. Refusals under the REST API's prefix
are `application/problem+json` (RFC 9457), as every other API error.

`SecurityHeaders` adds the browser-side controls (CSP, frame, sniffing, referrer) to every
response, and HSTS only when the request came over HTTPS: directly, or through a reverse proxy
in HFT_TRUSTED_PROXIES that says so with `X-Forwarded-Proto: https`. See docs/security.md.

`app_middleware` is the list app.py hands to `st.App` (and the API tests to their server).
Nothing here imports Streamlit.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

from starlette.middleware import Middleware

from core.serve.rest import MAX_BODY, api_prefix
from pages._shared.session_cookie import route_path

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Any  # async () -> Message
Send = Any  # async (Message) -> None
ASGIApp = Any  # async (Scope, Receive, Send) -> None

SESSION_BODY_LIMIT = 1024
"""POST <base>/api/session carries one JSON code of ~50 bytes."""
DEFAULT_BODY_LIMIT = 64 * 1024
"""Any other request to a route of ours."""
STREAMLIT_PREFIX = "_stcore/"
"""Streamlit's own endpoints, which bound their bodies themselves."""

HSTS_VALUE = "max-age=31536000; includeSubDomains"


class _BodyTooLarge(Exception):
    """Raised inside the wrapped `receive` once a body crosses its limit."""


async def _send_plain(send: Send, status: int, text: str, problem: bool = False) -> None:
    """A refusal as plain text, or as an RFC 9457 problem when `problem`."""
    kind = b"text/plain; charset=utf-8"
    body = text.encode()
    if problem:
        kind = b"application/problem+json"
        title = {413: "Content Too Large"}.get(status, "Bad Request")
        fields = {"type": "about:blank", "title": title, "status": status, "detail": text}
        body = json.dumps(fields).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"connection", b"close"),  # the unread rest of the body is never read
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _join(base_url_path: str, path: str) -> str:
    base = base_url_path.strip("/")
    return f"/{base}/{path}" if base else f"/{path}"


class BodyLimit:
    """Refuse request bodies larger than the limit of their path with 413.

    `limits` maps exact paths to byte limits; every other path gets `default_limit`, except
    paths under `<base>/_stcore/`, which are left to Streamlit. Paths under `problem_prefix`
    get their refusals as problem+json.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        base_url_path: str = "",
        limits: Mapping[str, int] | None = None,
        default_limit: int = DEFAULT_BODY_LIMIT,
        problem_prefix: str | None = None,
    ) -> None:
        self.app = app
        self.limits = dict(limits) if limits is not None else {}
        self.default_limit = default_limit
        self.exempt_prefix = _join(base_url_path, STREAMLIT_PREFIX)
        self.problem_prefix = problem_prefix

    def limit_for(self, path: str) -> int | None:
        """The body limit of `path` in bytes; None for Streamlit's own endpoints."""
        if path in self.limits:
            return self.limits[path]
        if path.startswith(self.exempt_prefix):
            return None
        return self.default_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        if limit is None:
            await self.app(scope, receive, send)
            return
        problem = self.problem_prefix is not None and scope["path"].startswith(self.problem_prefix)
        too_large = f"request body too large (limit {limit} bytes)"
        declared = _content_length(scope)
        if declared == -1:
            await _send_plain(send, 400, "invalid Content-Length header", problem)
            return
        if declared is not None and declared > limit:
            await _send_plain(send, 413, too_large, problem)
            return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message: Message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _BodyTooLarge:
            if started:
                raise
            await _send_plain(send, 413, too_large, problem)


def _content_length(scope: Scope) -> int | None:
    """The declared Content-Length; None when absent, -1 when malformed."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else -1
    return None


_INLINE_SCRIPT = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.IGNORECASE
)


def inline_script_hashes(html: str) -> tuple[str, ...]:
    """CSP source expressions ('sha256-...') allowing exactly the inline scripts of `html`."""
    out = []
    for match in _INLINE_SCRIPT.finditer(html):
        digest = hashlib.sha256(match.group(1).encode()).digest()
        out.append(f"'sha256-{base64.b64encode(digest).decode()}'")
    return tuple(out)


def content_security_policy(script_hashes: Iterable[str] = ()) -> str:
    """The policy Streamlit runs under: its own bundles (plus the hashed inline bootstrap
    script of its index.html), inline styles (emotion and Plotly set them), images and
    fonts from the app or data:/blob: URLs, workers from blob: URLs, and network access
    (fetch and the WebSocket; CSP 3 'self' covers ws(s) to the same host) to the app only.

    script-src needs blob: because Streamlit imports the JS of a components-v2 component
    declared inline (the login cookie component, pages/_shared/auth.py) from a blob: URL;
    only a script already running on the page can make one. It needs 'unsafe-eval' because
    Plotly draws the WebGL traces the analysis pages use (Scattergl, for 15,000-bar series)
    with regl, which compiles its draw commands with `Function`; that keyword also covers
    the WebAssembly that Streamlit's protobuf decoder compiles. Inline scripts and scripts
    from anywhere but the app itself stay blocked."""
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", "blob:", "'unsafe-eval'", *script_hashes],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "worker-src": ["'self'", "blob:"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


Network = IPv4Network | IPv6Network


def is_https(scope: Scope, trusted_proxies: Sequence[Network]) -> bool:
    """True when the request reached us over HTTPS: directly, or via a trusted proxy that
    sent `X-Forwarded-Proto: https`. A peer outside `trusted_proxies` cannot claim it."""
    if scope.get("scheme") in ("https", "wss"):
        return True
    if not trusted_proxies:
        return False
    client = scope.get("client")
    if not client:
        return False
    try:
        peer = ip_address(client[0])
    except ValueError:
        return False
    if not any(peer in net for net in trusted_proxies):
        return False
    forwarded = [v for n, v in scope.get("headers", ()) if n == b"x-forwarded-proto"]
    if not forwarded:
        return False
    # A chain of proxies appends; the nearest (trusted) proxy's value is the last one.
    last = forwarded[-1].decode("latin-1").split(",")[-1].strip().lower()
    return last in ("https", "wss")


class SecurityHeaders:
    """Add the security headers to every HTTP response (and WebSocket handshake refusal).

    Headers a route already set are kept; ours are added only when missing.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        csp: str | None = None,
        trusted_proxies: Sequence[Network] = (),
    ) -> None:
        self.app = app
        self.trusted_proxies = tuple(trusted_proxies)
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-security-policy", (csp or content_security_policy()).encode()),
            (b"x-frame-options", b"DENY"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        extra = list(self.headers)
        if is_https(scope, self.trusted_proxies):
            extra.append((b"strict-transport-security", HSTS_VALUE.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def app_middleware(
    base_url_path: str, *, csp: str | None = None, trusted_proxies: Sequence[Network] = ()
) -> list[Middleware]:
    """The middleware of app.py: security headers outside, body limits inside (the login
    cookie route's 1 KB, the REST API's POST routes' 64 KB, 64 KB for anything else ours)."""
    api = api_prefix(base_url_path)
    limits = {
        route_path(base_url_path): SESSION_BODY_LIMIT,
        f"{api}/sql": MAX_BODY,
        f"{api}/analytics/regimes": MAX_BODY,
    }
    return [
        Middleware(SecurityHeaders, csp=csp, trusted_proxies=trusted_proxies),
        Middleware(
            BodyLimit,
            base_url_path=base_url_path,
            limits=limits,
            problem_prefix=f"{api}/",
        ),
    ]
