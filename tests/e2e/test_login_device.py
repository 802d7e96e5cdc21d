"""The device cookie in a real Chromium against a real `streamlit run app.py`.

A sign-up leaves a long-lived HttpOnly device cookie beside the session cookie; it survives a
log-out, and while another browser (no cookie, same loopback address) has paused the account
with failed guesses, the browser holding the cookie still signs in. Behind a trusted proxy
(HFT_TRUSTED_PROXIES) the client address comes from X-Forwarded-For.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator

import polars as pl
import pytest
from playwright.sync_api import Browser, Cookie, Page, expect

from lakehouse.tables import AUDIT, Table
from pages._shared.session_cookie import DEVICE_COOKIE_NAME, DEVICE_MAX_AGE_S
from tests.e2e.conftest import (
    Server,
    register,
    session_cookie,
    wait_app_idle,
    wait_session_cookie,
)

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000
PAUSED = re.compile(r"Sign-in paused: too many failed attempts; try again in (\d+) s")


def device_cookie(page: Page) -> Cookie | None:
    return next((c for c in page.context.cookies() if c["name"] == DEVICE_COOKIE_NAME), None)


# Counts the script runs that finish (the app root's script state turning back to
# "notRunning"), so a check after a click reads that click's result, not the previous one.
_COUNT_RUNS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  window.__hfthotRuns = 0;
  new MutationObserver(() => {
    if (app.getAttribute('data-test-script-state') === 'notRunning') window.__hfthotRuns++;
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""


def submit_sign_in(page: Page, username: str, password: str) -> None:
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.evaluate(_COUNT_RUNS)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_function("() => window.__hfthotRuns > 0", timeout=TIMEOUT)
    wait_app_idle(page)


def error_text(page: Page) -> str:
    alert = page.get_by_role("alert")
    expect(alert.first).to_be_visible(timeout=TIMEOUT)
    return " ".join(alert.all_inner_texts())


@pytest.mark.slow
def test_device_cookie_is_issued_and_keeps_its_browser_in(
    server: Server, page: Page, browser: Browser
) -> None:
    username = f"dev-{secrets.token_hex(3)}"
    password = "device cookie passphrase 9"

    # Sign up: the session cookie and the device cookie arrive together.
    register(page, server, username, password)
    device = device_cookie(page)
    assert device is not None
    assert device["httpOnly"] is True
    assert device["sameSite"] == "Strict"
    assert device["secure"] is False  # plain http on loopback; Secure under https
    assert device["expires"] > time.time() + DEVICE_MAX_AGE_S - 3600  # ~180 days
    assert DEVICE_COOKIE_NAME not in page.evaluate("document.cookie")

    # Log out: the session cookie goes, the device cookie stays. A reload opens a new
    # WebSocket, whose handshake carries the device cookie to the server.
    page.get_by_role("button", name="Log out").click()
    wait_session_cookie(page, present=False)
    assert device_cookie(page) is not None
    page.reload()
    wait_app_idle(page)

    # Another browser without the cookie (same loopback address, so no IP either) guesses
    # until the account-wide delay holds it off for most of its 10 s cap.
    other = browser.new_context()
    try:
        attacker = other.new_page()
        attacker.goto(server.url)
        wait_app_idle(attacker)
        for _ in range(40):
            submit_sign_in(attacker, username, "not the password 1")
            paused = PAUSED.search(error_text(attacker))
            if paused and int(paused.group(1)) >= 8:
                break
            if paused:
                attacker.wait_for_timeout(int(paused.group(1)) * 1000 + 200)
        else:
            pytest.fail("the guessing browser was never paused")
    finally:
        other.close()

    # The browser with the device cookie signs in at once, while the pause still holds.
    submit_sign_in(page, username, password)
    wait_session_cookie(page)
    expect(page.get_by_text(f"Signed in as {username}")).to_be_visible(timeout=TIMEOUT)
    assert session_cookie(page) is not None
    renewed = device_cookie(page)
    assert renewed is not None
    assert renewed["value"] != device["value"]  # a fresh device token on every sign-in


@pytest.fixture(scope="module")
def proxied_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that sees the browser as a reverse proxy on loopback: uvicorn's own
    X-Forwarded-For handling is off (FORWARDED_ALLOW_IPS empty), so only ours applies."""
    env = {"FORWARDED_ALLOW_IPS": "", "HFT_TRUSTED_PROXIES": "127.0.0.1/32, ::1/128"}
    srv = Server(tmp_path_factory.mktemp("e2e-proxy") / "data", env=env)
    yield srv
    srv.stop()


@pytest.mark.slow
def test_client_ip_comes_from_x_forwarded_for_behind_a_trusted_proxy(
    proxied_server: Server, browser: Browser
) -> None:
    # The "proxy" (this browser, on loopback) appends the peer it saw to a header the client
    # sent: the rightmost untrusted entry is the client, the left one is the client's own claim.
    ctx = browser.new_context(extra_http_headers={"X-Forwarded-For": "203.0.113.66, 198.51.100.23"})
    try:
        page = ctx.new_page()
        page.goto(proxied_server.url)
        wait_app_idle(page)
        submit_sign_in(page, "e2e-viewer", "not the password 1")
        assert "Invalid username or password." in error_text(page)
    finally:
        ctx.close()
    audit = Table(proxied_server.data_dir / "lakehouse", AUDIT).read()
    logins = audit.filter(pl.col("action") == "login")
    assert logins["ip"].to_list() == ["198.51.100.23"]
