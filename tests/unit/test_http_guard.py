"""The HTTP guard middlewares on a real Starlette app (the real session route plus an echo
route), driven through the ASGI interface: bodies are bounded before or while they are read,
and every response carries the security headers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import tomllib
from ipaddress import ip_network
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from pages._shared.http_guard import (
    DEFAULT_BODY_LIMIT,
    SESSION_BODY_LIMIT,
    BodyLimit,
    SecurityHeaders,
    content_security_policy,
    inline_script_hashes,
)
from pages._shared.session_cookie import route_path, routes

ROOT = Path(__file__).resolve().parents[2]


async def _echo(request: Request) -> Response:
    body = await request.body()
    return PlainTextResponse(str(len(body)))


async def _framed(request: Request) -> Response:
    return PlainTextResponse("ok", headers={"X-Frame-Options": "SAMEORIGIN"})


def make_app(base: str = "", trusted: str = "") -> Starlette:
    nets = tuple(ip_network(c) for c in trusted.split(",") if c)
    return Starlette(
        routes=[
            *routes(base),
            Route(f"{base}/echo", _echo, methods=["POST"]),
            Route(f"{base}/_stcore/upload_file/s/f", _echo, methods=["PUT"]),
            Route(f"{base}/framed", _framed),
        ],
        middleware=[
            Middleware(SecurityHeaders, trusted_proxies=nets),
            Middleware(
                BodyLimit,
                base_url_path=base,
                limits={route_path(base): SESSION_BODY_LIMIT},
            ),
        ],
    )


class Result:
    def __init__(self, status: int, headers: dict[str, str], body: bytes, pulled: int) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.pulled = pulled  # body chunks the app asked for


def call(
    app: Starlette,
    path: str,
    chunks: list[bytes] | None = None,
    *,
    method: str = "POST",
    headers: dict[str, str] | None = None,
    scheme: str = "http",
    client: str = "127.0.0.1",
) -> Result:
    chunks = chunks if chunks is not None else [b""]
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), *raw_headers],
        "client": (client, 50000),
        "server": ("testserver", 80),
    }
    pulled = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled < len(chunks):
            pulled += 1
            return {
                "type": "http.request",
                "body": chunks[pulled - 1],
                "more_body": pulled < len(chunks),
            }
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    hdrs: dict[str, str] = {}
    for name, value in start["headers"]:
        key = name.decode().lower()
        assert key not in hdrs, f"header {key} sent twice"
        hdrs[key] = value.decode()
    return Result(start["status"], hdrs, body, pulled)


SESSION_JSON = {"content-type": "application/json", "sec-fetch-site": "same-origin"}


# Bounded bodies


def test_session_route_refuses_a_large_content_length_before_reading() -> None:
    huge = 512 * 1024 * 1024
    r = call(
        make_app(),
        "/api/session",
        [b"x" * 4096] * 4,
        headers={**SESSION_JSON, "content-length": str(huge)},
    )
    assert r.status == 413
    assert r.pulled == 0


def test_session_route_stops_reading_a_chunked_body_past_the_limit() -> None:
    chunks = [b"x" * 512] * 10_000  # 5 MB, no Content-Length
    r = call(make_app(), "/api/session", chunks, headers=SESSION_JSON)
    assert r.status == 413
    # 1 KiB is crossed by the third chunk; nothing after it is read
    assert r.pulled == 3


def test_session_route_still_answers_a_small_body() -> None:
    body = b'{"code": "not-a-real-code"}'
    r = call(
        make_app(),
        "/api/session",
        [body],
        headers={**SESSION_JSON, "content-length": str(len(body))},
    )
    assert r.status == 403  # the route's own answer: unknown code
    assert r.body == b"unknown or expired code"


def test_other_routes_of_ours_get_the_general_limit() -> None:
    app = make_app()
    ok = call(app, "/echo", [b"y" * 1000] * 60)
    assert ok.status == 200
    assert ok.body == b"60000"
    over = call(app, "/echo", [b"y" * 1000] * 1000)
    assert over.status == 413
    assert over.pulled == DEFAULT_BODY_LIMIT // 1000 + 1


def test_streamlit_endpoints_keep_their_own_limits() -> None:
    r = call(make_app(), "/_stcore/upload_file/s/f", [b"z" * 100_000] * 3, method="PUT")
    assert r.status == 200
    assert r.body == b"300000"


def test_malformed_content_length_is_refused() -> None:
    r = call(make_app(), "/echo", [b"a"], headers={"content-length": "12abc"})
    assert r.status == 400


def test_limits_follow_the_base_url_path() -> None:
    app = make_app(base="/hft")
    r = call(app, "/hft/api/session", [b"x" * 2048], headers=SESSION_JSON)
    assert r.status == 413
    upload = call(app, "/hft/_stcore/upload_file/s/f", [b"z" * 100_000], method="PUT")
    assert upload.status == 200


# Security headers


def _assert_security_headers(headers: dict[str, str]) -> None:
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self' blob: 'unsafe-eval'" in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"


def test_every_response_carries_the_security_headers() -> None:
    app = make_app()
    for r in (
        call(app, "/echo", [b"hi"]),
        call(app, "/nowhere", method="GET"),
        call(app, "/api/session", [b"x" * 5000], headers=SESSION_JSON),
        call(app, "/echo", [b"a"], headers={"content-length": "nope"}),
    ):
        _assert_security_headers(r.headers)
    assert call(app, "/nowhere", method="GET").status == 404


def test_a_routes_own_header_is_kept_not_duplicated() -> None:
    r = call(make_app(), "/framed", method="GET")
    assert r.headers["x-frame-options"] == "SAMEORIGIN"


def test_hsts_only_over_https() -> None:
    app = make_app()
    assert "strict-transport-security" not in call(app, "/echo").headers
    hsts = call(app, "/echo", scheme="https").headers["strict-transport-security"]
    assert hsts.startswith("max-age=")
    assert int(hsts.split("=")[1].split(";")[0]) >= 15_552_000


def test_forwarded_proto_counts_only_from_a_trusted_proxy() -> None:
    https = {"x-forwarded-proto": "https"}
    no_proxies = make_app()
    assert "strict-transport-security" not in call(no_proxies, "/echo", headers=https).headers
    trusted = make_app(trusted="10.0.0.0/8")
    from_proxy = call(trusted, "/echo", headers=https, client="10.1.2.3")
    assert "strict-transport-security" in from_proxy.headers
    from_elsewhere = call(trusted, "/echo", headers=https, client="203.0.113.9")
    assert "strict-transport-security" not in from_elsewhere.headers
    plain = call(trusted, "/echo", headers={"x-forwarded-proto": "http"}, client="10.1.2.3")
    assert "strict-transport-security" not in plain.headers


def test_inline_script_hashes_allow_exactly_the_inline_scripts() -> None:
    html = (
        '<script type="module" src="./static/js/index.js"></script>'
        "<script>\n  window.prerenderReady = false\n</script>"
    )
    digest = hashlib.sha256(b"\n  window.prerenderReady = false\n").digest()
    expected = f"'sha256-{base64.b64encode(digest).decode()}'"
    assert inline_script_hashes(html) == (expected,)
    assert f"script-src 'self' blob: 'unsafe-eval' {expected};" in content_security_policy(
        [expected]
    )


# Error details


def test_shipped_config_shows_no_error_details() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
