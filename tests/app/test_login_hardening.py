"""AppTests of login hardening: the device cookie hand-off, look-alike usernames, and sign-in
for visitors Streamlit gives no IP address (loopback, local reverse proxy)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from pages._shared import session_cookie
from pages._shared.accounts import get_auth
from pages._shared.auth import TOKEN_KEY
from tests.app.conftest import AppAs
from tests.unit.test_session_cookie import call

pytestmark = pytest.mark.app

PASSWORD = "a long passphrase 1"
COOKIE_CODE_KEY = "_hfthot_cookie_code"


def sign_in_form(at: AppTest, username: str, password: str) -> AppTest:
    inputs = {t.label: t for t in at.text_input}
    inputs["Username"].input(username)
    inputs["Password"].input(password)
    next(b for b in at.button if b.label == "Sign in").click()
    return at.run()


def register_form(at: AppTest, username: str, email: str, pw: str) -> AppTest:
    inputs = {t.label: t for t in at.text_input}
    inputs["Username"].input(username)
    inputs["Email"].input(email)
    inputs["Password"].input(pw)
    inputs["Repeat password"].input(pw)
    next(b for b in at.button if b.label == "Create account").click()
    return at.run()


def redeem(at: AppTest) -> dict[str, str]:
    """Post the page's one-time code to the real cookie route; the Set-Cookie headers by name."""
    resp = call({"code": at.session_state[COOKIE_CODE_KEY]})
    assert resp.status_code == 204
    values = [v.decode() for k, v in resp.raw_headers if k == b"set-cookie"]
    return {v.split("=", 1)[0]: v for v in values}


def device_value(cookie: str) -> str:
    return cookie.split(";", 1)[0].split("=", 1)[1]


def test_sign_in_hands_the_browser_a_device_cookie(app_as: AppAs) -> None:
    get_auth().register("carol", "carol@example.test", PASSWORD)
    at = sign_in_form(app_as(None).run(), "carol", PASSWORD)
    assert not at.exception
    assert get_auth().verify_persistent_token(at.session_state[TOKEN_KEY]).username == "carol"
    cookies = redeem(at)
    device = cookies[session_cookie.DEVICE_COOKIE_NAME]
    attrs = [a.strip().lower() for a in device.split(";")[1:]]
    assert "httponly" in attrs
    assert "samesite=strict" in attrs
    assert f"max-age={session_cookie.DEVICE_MAX_AGE_S}" in attrs
    # The value is a device token the backend accepts for carol, and only for carol.
    auth = get_auth()
    now = auth.store.clock()
    assert auth.devices.verify(device_value(device), "carol", now)
    assert auth.devices.verify(device_value(device), "dave", now) is None


def test_register_hands_the_browser_a_device_cookie(app_as: AppAs) -> None:
    at = app_as(None).run()
    at.switch_page("pages/register.py").run()
    at = register_form(at, "erin", "erin@example.test", PASSWORD)
    assert not at.exception
    assert not at.error
    assert session_cookie.DEVICE_COOKIE_NAME in redeem(at)


def test_register_refuses_a_lookalike_username(app_as: AppAs) -> None:
    get_auth().register("alice", "alice@example.test", PASSWORD)
    at = app_as(None).run()
    at.switch_page("pages/register.py").run()
    at = register_form(at, "\u0430lice", "spoof@example.test", PASSWORD)  # Cyrillic a
    assert not at.exception
    assert any("too similar to an existing username" in e.value for e in at.error)
    assert TOKEN_KEY not in at.session_state
    assert get_auth().store.users.read().height == 1


def test_failures_of_visitors_without_an_ip_do_not_pause_the_admin(app_as: AppAs) -> None:
    get_auth().bootstrap_admin("boss", "boss@example.test", PASSWORD)
    at = app_as(None).run()  # AppTest, like a loopback browser, has no client IP
    for i in range(48):
        at = sign_in_form(at, f"made-up-{i:02d}", "whatever 12345")
        assert [e.value for e in at.error] == ["Invalid username or password."]
    at = sign_in_form(at, "boss", PASSWORD)
    assert not at.exception
    assert not at.error
    assert get_auth().verify_persistent_token(at.session_state[TOKEN_KEY]).username == "boss"
