"""The login-cookie route and its one-time codes (pages/_shared/session_cookie.py)."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.requests import Request
from starlette.responses import Response

from pages._shared import session_cookie as sc


def call(
    body: object,
    *,
    scheme: str = "http",
    headers: dict[str, str | None] | None = None,
    content_type: str = "application/json",
) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs: dict[str, str | None] = {
        "host": "portal.test",
        "content-type": content_type,
        "sec-fetch-site": "same-origin",
    }
    hdrs.update(headers or {})
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": scheme,
        "path": "/api/session",
        "query_string": b"",
        "server": ("portal.test", 443 if scheme == "https" else 80),
        "headers": [(k.encode(), v.encode()) for k, v in hdrs.items() if v is not None],
    }
    sent = False

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    # A worker thread gets its own event loop: the session-scoped Playwright browser keeps one
    # running in the main thread once the e2e tests have started it.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, sc.session_endpoint(Request(scope, receive))).result()


def set_cookie(resp: Response) -> str:
    values = [v.decode() for k, v in resp.raw_headers if k == b"set-cookie"]
    assert len(values) == 1
    return values[0]


def test_a_code_sets_an_httponly_strict_cookie_once() -> None:
    code = sc.HANDOFFS.issue("tok.en.value", max_age_s=3600)
    resp = call({"code": code})
    assert resp.status_code == 204
    cookie = set_cookie(resp)
    assert cookie.startswith(f"{sc.COOKIE_NAME}=tok.en.value;")
    attrs = {a.strip().split("=")[0].lower(): a for a in cookie.split(";")[1:]}
    assert "httponly" in attrs
    assert attrs["samesite"].strip().lower() == "samesite=strict"
    assert attrs["max-age"].strip() == "Max-Age=3600"
    assert attrs["path"].strip() == "Path=/"
    assert "secure" not in attrs  # plain http
    assert resp.headers["cache-control"] == "no-store"
    assert call({"code": code}).status_code == 403  # single use


def test_secure_flag_under_https() -> None:
    cookie = set_cookie(call({"code": sc.HANDOFFS.issue("t", 60)}, scheme="https"))
    assert "secure" in cookie.lower().split("; ")


def test_a_clear_code_expires_the_cookie() -> None:
    cookie = set_cookie(call({"code": sc.HANDOFFS.issue(None)}))
    assert cookie.startswith(f'{sc.COOKIE_NAME}="";') or cookie.startswith(f"{sc.COOKIE_NAME}=;")
    assert "max-age=0" in cookie.lower()
    assert "httponly" in cookie.lower()


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"sec-fetch-site": "none"},
    ],
)
def test_cross_site_requests_are_refused_and_keep_the_code(
    headers: dict[str, str | None],
) -> None:
    code = sc.HANDOFFS.issue("t", 60)
    resp = call({"code": code}, headers=headers)
    assert resp.status_code == 403
    assert not [k for k, _ in resp.raw_headers if k == b"set-cookie"]
    assert sc.HANDOFFS.pending(code)


def test_origin_is_checked_when_fetch_metadata_is_missing() -> None:
    code = sc.HANDOFFS.issue("t", 60)
    no_meta: dict[str, str | None] = {"sec-fetch-site": None}
    assert call({"code": code}, headers=no_meta).status_code == 403  # no origin either
    evil = call({"code": code}, headers={**no_meta, "origin": "http://evil.test"})
    assert evil.status_code == 403
    same = call({"code": code}, headers={**no_meta, "origin": "http://portal.test"})
    assert same.status_code == 204


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"code=abc", "application/x-www-form-urlencoded", 415),
        (b"{not json", "application/json", 400),
        ([1, 2], "application/json", 400),
        ({"code": 5}, "application/json", 400),
        ({"code": "x" * 2000}, "application/json", 413),
        ({"code": "never-issued"}, "application/json", 403),
    ],
)
def test_bad_bodies_get_clear_refusals(body: object, content_type: str, status: int) -> None:
    assert call(body, content_type=content_type).status_code == status


def test_codes_expire() -> None:
    now = [1000.0]
    store = sc.HandoffStore(ttl_s=120, clock=lambda: now[0])
    code = store.issue("t", 60)
    now[0] += 119
    assert store.pending(code)
    now[0] += 2
    assert not store.pending(code)
    assert store.redeem(code) is None


def test_codes_are_long_and_unique() -> None:
    codes = {sc.HANDOFFS.issue("t", 1) for _ in range(1000)}
    assert len(codes) == 1000
    assert min(len(c) for c in codes) >= 43  # 32 random bytes, base64url


def test_the_store_survives_streamlits_module_reload() -> None:
    """Streamlit evicts app modules from sys.modules after a source change; the route keeps
    the first import's functions, so both imports must share one store."""
    import importlib
    import sys

    first = sys.modules["pages._shared.session_cookie"]
    code = first.HANDOFFS.issue("t", 60)
    del sys.modules["pages._shared.session_cookie"]
    try:
        second = importlib.import_module("pages._shared.session_cookie")
        assert second is not first
        assert second.HANDOFFS is first.HANDOFFS
        assert second.HANDOFFS.pending(code)
    finally:
        sys.modules["pages._shared.session_cookie"] = first
        sys.modules["pages._shared"].session_cookie = first  # type: ignore[attr-defined]


def _cookies(resp: Response) -> dict[str, str]:
    values = [v.decode() for k, v in resp.raw_headers if k == b"set-cookie"]
    return {v.split("=", 1)[0]: v for v in values}


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_login_code_also_sets_the_long_lived_device_cookie(scheme: str) -> None:
    code = sc.HANDOFFS.issue("tok.en.value", max_age_s=3600, device="v1.dev.kid.mac")
    cookies = _cookies(call({"code": code}, scheme=scheme))
    assert set(cookies) == {sc.COOKIE_NAME, sc.DEVICE_COOKIE_NAME}
    device = cookies[sc.DEVICE_COOKIE_NAME]
    assert device.startswith(f"{sc.DEVICE_COOKIE_NAME}=v1.dev.kid.mac;")
    attrs = [a.strip().lower() for a in device.split(";")[1:]]
    assert "httponly" in attrs
    assert "samesite=strict" in attrs
    assert "path=/" in attrs
    assert f"max-age={180 * 86400}" in attrs
    assert ("secure" in attrs) == (scheme == "https")


def test_logging_out_keeps_the_device_cookie() -> None:
    cookies = _cookies(call({"code": sc.HANDOFFS.issue(None)}))
    assert set(cookies) == {sc.COOKIE_NAME}  # the device stays known after a log-out
