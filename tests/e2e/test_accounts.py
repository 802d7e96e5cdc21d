"""Accounts in a real Chromium against a real `streamlit run app.py`.

Covers the issue's browser story: register, log in, add a key and see its quota, download
the export, log out, be refused on a protected page; a reload keeps the login (HttpOnly
cookie) and after logout neither a reload nor a replayed cookie signs you back in.
"""

from __future__ import annotations

import io
import json
import secrets
import urllib.error
import urllib.request
import zipfile

import pytest
from playwright.sync_api import Page, expect

from pages._shared.session_cookie import COOKIE_NAME, ROUTE_PATH
from tests.e2e.conftest import (
    Server,
    open_app,
    register,
    screenshot,
    session_cookie,
    sign_in,
    wait_app_idle,
    wait_session_cookie,
)

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000


def expect_signed_in(page: Page, username: str) -> None:
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible(timeout=TIMEOUT)


def expect_signed_out(page: Page) -> None:
    expect(page.get_by_role("heading", name="Sign in to HFThot")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text("Signed in as")).to_have_count(0)


@pytest.mark.slow
def test_register_key_quota_export_logout_in_chromium(server: Server, page: Page) -> None:
    username = f"reg-{secrets.token_hex(3)}"
    password = "chromium test passphrase 7"

    # Register (public page), which signs in and stores the HttpOnly cookie.
    register(page, server, username, password)
    expect_signed_in(page, username)
    cookie = session_cookie(page)
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain http on loopback; Secure is set under https
    assert COOKIE_NAME not in page.evaluate("document.cookie")  # scripts cannot read it
    assert cookie["value"] not in page.url
    storage = page.evaluate(
        "JSON.stringify([Object.entries(localStorage), Object.entries(sessionStorage)])"
    )
    assert cookie["value"] not in storage  # never in web storage
    # Streamlit's own XSRF protection stays on (its cookie guards the WebSocket and uploads).
    assert any(c["name"] == "_streamlit_xsrf" for c in page.context.cookies())

    # Log out, then log in again through the login page.
    page.get_by_role("button", name="Log out").click()
    wait_session_cookie(page, present=False)
    expect_signed_out(page)
    sign_in(page, server, username, password)
    expect_signed_in(page, username)

    # A reload keeps the login (the WebSocket handshake carries the cookie).
    page.reload()
    wait_app_idle(page)
    expect_signed_in(page, username)

    # Add a key: the password is asked again; only the last 4 characters come back.
    page.goto(f"{server.url}/api_keys")
    wait_app_idle(page)
    expect(page.get_by_role("heading", name="API keys & quotas")).to_be_visible(timeout=TIMEOUT)
    secret = "fh-chromium-0123456789-QRST"
    page.get_by_role("combobox", name="Provider").click()
    page.get_by_role("option", name="Finnhub").click()
    page.get_by_label("API key (Alpaca: the key id)", exact=True).fill(secret)
    page.get_by_text("Store this key encrypted in HFThot").click()
    page.get_by_label("Your password (asked again for key changes)").fill(password)
    page.get_by_role("button", name="Save key").click()
    expect(page.get_by_text("Finnhub key saved (ends in …QRST).")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text("Finnhub: 60 of 60 left this minute")).to_be_visible()
    assert secret not in page.content()
    screenshot(page, "api_keys")

    # Download my data: a real zip through the browser's download.
    page.goto(f"{server.url}/privacy")
    wait_app_idle(page)
    page.get_by_role("button", name="Prepare my data export").click()
    with page.expect_download(timeout=TIMEOUT) as download_info:
        page.get_by_role("button", name="Download my data (zip)").click()
    data = download_info.value.path().read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        users = json.loads(zf.read("users.json"))
        keys = json.loads(zf.read("api_keys.json"))
    assert users[0]["username"] == username
    assert [k["provider"] for k in keys] == ["finnhub"]
    assert secret not in data.decode("latin-1")

    # Log out: the session ends on the server and the cookie is cleared.
    stolen = session_cookie(page)
    assert stolen is not None
    page.get_by_role("button", name="Log out").click()
    wait_session_cookie(page, present=False)
    expect_signed_out(page)
    page.reload()
    wait_app_idle(page)
    expect_signed_out(page)

    # A protected page is refused, even with the old cookie replayed.
    page.context.add_cookies([stolen])
    page.goto(f"{server.url}/api_keys")
    wait_app_idle(page)
    expect_signed_out(page)
    expect(page.get_by_role("heading", name="API keys & quotas")).to_have_count(0)
    expect(page.get_by_text("…QRST")).to_have_count(0)


@pytest.mark.slow
def test_navigation_is_built_for_the_role(server: Server, page: Page) -> None:
    open_app(page, server, "login", role=None)  # a visitor's start page, also at its own URL
    expect_signed_out(page)
    expect(page.get_by_text("Page not found")).to_have_count(0)
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_text("Register")).to_be_visible()
    expect(nav.get_by_text("My account")).to_have_count(0)

    open_app(page, server, "", role="viewer")
    expect(nav.get_by_text("My account")).to_be_visible(timeout=TIMEOUT)
    expect(nav.get_by_text("Users")).to_have_count(0)
    page.goto(f"{server.url}/admin_users")  # hidden from a viewer, asked for by URL
    wait_app_idle(page)
    expect(page.get_by_role("heading", name="Users")).to_have_count(0)

    open_app(page, server, "admin_users", role="admin")
    expect(page.get_by_role("heading", name="Users")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()


def post_session_route(server: Server, body: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(
        f"{server.url}/{ROUTE_PATH}", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_cookie_route_refuses_cross_site_and_unknown_codes(server: Server) -> None:
    body = json.dumps({"code": secrets.token_urlsafe(32)}).encode()
    json_type = {"Content-Type": "application/json"}
    assert post_session_route(server, body, {**json_type, "Sec-Fetch-Site": "cross-site"}) == 403
    assert post_session_route(server, body, {**json_type, "Origin": "http://evil.test"}) == 403
    assert post_session_route(server, body, json_type) == 403  # no origin at all
    same = {**json_type, "Origin": server.url, "Sec-Fetch-Site": "same-origin"}
    assert post_session_route(server, body, same) == 403  # a code nobody issued
    form = {"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"}
    assert post_session_route(server, b"code=x", form) == 415
