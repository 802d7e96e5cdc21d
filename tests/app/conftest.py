"""AppTest fixtures: each test gets a fresh data dir, a fresh engine and real accounts.

`app_as(role, page)` registers a real user with that role in the test's data dir, logs it in
through the backend (a real session row and JWT), and hands the token to the AppTest the way
a signed-in tab holds it: in server-side session state, where the gate verifies it against
the sessions table on every run. Browsers cannot write session state, so this is no backdoor;
AppTest simply cannot carry the HttpOnly cookie a real browser sends on reload.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.testing.v1 import AppTest

from lakehouse import User
from tests.serve_support import fast_auth

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")


@pytest.fixture(autouse=True)
def fresh_engine(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from pages._shared import accounts

    monkeypatch.chdir(ROOT)
    # app.py starts the ingestion service; only the live-data tests turn the demo venue on.
    monkeypatch.setenv("HFT_DEMO_VENUE", "false")
    monkeypatch.setattr(accounts, "build_auth", fast_auth)
    # As app.py does for the server: never Streamlit's automatic pages/ mode. AppTest resets
    # the flag before each run, and the mode would run the last page without the router.
    init = PagesManager.__init__

    def init_without_pages_dir(self: PagesManager, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        PagesManager.uses_pages_directory = False

    monkeypatch.setattr(PagesManager, "__init__", init_without_pages_dir)
    # The shipped config hides error details from users; a failing test wants them.
    from streamlit import config

    previous = config.get_option("client.showErrorDetails")
    config.set_option("client.showErrorDetails", "full")
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()
    config.set_option("client.showErrorDetails", previous)


@dataclass(frozen=True, slots=True)
class Account:
    user: User
    username: str
    email: str
    password: str
    token: str


class AppAs:
    """`app_as(role, page=None)` -> an AppTest of app.py (or of one page script) signed in as
    a fresh user with `role` ("viewer", "analyst", "admin"), or anonymous for `role=None`.
    The last account made is `app_as.last` (its password is needed for re-authentication)."""

    def __init__(self) -> None:
        self.accounts: list[Account] = []

    @property
    def last(self) -> Account:
        return self.accounts[-1]

    def account(self, role: str) -> Account:
        from pages._shared.accounts import get_auth

        auth = get_auth()
        username = f"{role}-{secrets.token_hex(4)}"
        email = f"{username}@example.test"
        password = secrets.token_urlsafe(16)
        auth.register(username, email, password)
        if role != "viewer":
            auth.set_role_as_operator(username, role)
        token = auth.login(username, password, ip="127.0.0.1", user_agent="AppTest")
        acc = Account(auth.verify_persistent_token(token), username, email, password, token)
        self.accounts.append(acc)
        return acc

    def __call__(self, role: str | None, page: str | None = None, timeout: float = 60) -> AppTest:
        from pages._shared.auth import TOKEN_KEY

        at = AppTest.from_file(str(ROOT / (page or "app.py")), default_timeout=timeout)
        if role is not None:
            at.session_state[TOKEN_KEY] = self.account(role).token
        return at


@pytest.fixture
def app_as() -> AppAs:
    return AppAs()
