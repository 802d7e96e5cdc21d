"""A real `streamlit run` on a free loopback port, and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Cookie, Page, sync_playwright

from pages._shared.session_cookie import COOKIE_NAME

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = ROOT / "tests" / "e2e" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


ROLES = ("viewer", "analyst", "admin")


def make_accounts(data_dir: Path) -> dict[str, tuple[str, str]]:
    """One real account per role in `data_dir`: {role: (username, password)}."""
    accounts = {role: (f"e2e-{role}", secrets.token_urlsafe(16)) for role in ROLES}
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.accounts_setup", str(data_dir)],
        input=json.dumps(accounts),
        text=True,
        cwd=ROOT,
        check=False,
        timeout=120,
        capture_output=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"creating the e2e accounts failed:\n{done.stdout}\n{done.stderr}")
    return accounts


class Server:
    """`streamlit run app.py` on a free port over `data_dir`, which gets one account per role
    (`accounts[role] == (username, password)`) before the server starts."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.accounts = make_accounts(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"streamlit-{self.port}.log"
        # Flight off unless a test asks for it: servers of one run must not race for 50053.
        full_env = {
            **os.environ,
            "HFT_DATA_DIR": str(data_dir),
            "HFT_FLIGHT_PORT": "0",
            **(env or {}),
        }
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.headless=true",
                "--server.address=127.0.0.1",
                f"--server.port={self.port}",
                "--browser.gatherUsageStats=false",
            ],
            cwd=ROOT,
            env=full_env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self._wait_healthy()

    def _wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"streamlit not healthy after {timeout}s:\n{self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log_file.close()


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("e2e") / "data")
    yield srv
    srv.stop()


# Package scope: Playwright's sync API keeps an event loop running in the main thread while it
# is open, so later suites' asyncio.run() would fail if it lived for the whole session.
@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} missing: run scripts/system-deps.sh (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    yield pg
    ctx.close()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def wait_app_idle(page: Page, timeout_ms: int = 30_000) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=timeout_ms,
    )


def session_cookie(page: Page) -> Cookie | None:
    return next((c for c in page.context.cookies() if c["name"] == COOKIE_NAME), None)


def wait_session_cookie(page: Page, present: bool = True, timeout_s: float = 60.0) -> None:
    """Wait until the browser holds (or no longer holds) the HttpOnly session cookie."""
    deadline = time.monotonic() + timeout_s
    while (session_cookie(page) is not None) != present:
        if time.monotonic() > deadline:
            state = "set" if present else "cleared"
            shot = screenshot(page, f"session-cookie-not-{state}")
            raise AssertionError(f"session cookie not {state} within {timeout_s} s (see {shot})")
        page.wait_for_timeout(100)


def sign_in(page: Page, server: Server, username: str, password: str) -> None:
    """Sign in through the login page, and wait for the session cookie."""
    page.context.clear_cookies()
    page.goto(server.url)  # an anonymous visitor's default page is the login page
    wait_app_idle(page)
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    wait_session_cookie(page)
    wait_app_idle(page)


def register(page: Page, server: Server, username: str, password: str) -> None:
    """Create an account through the Register page (it signs in), and wait for the cookie."""
    page.goto(f"{server.url}/register")
    wait_app_idle(page)
    page.get_by_label("Username", exact=True).fill(username)
    page.get_by_label("Email", exact=True).fill(f"{username}@example.test")
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_label("Repeat password", exact=True).fill(password)
    page.get_by_role("button", name="Create account").click()
    wait_session_cookie(page)


def open_app(page: Page, server: Server, path: str = "", role: str | None = "analyst") -> None:
    """Open `path` (a page's url path, e.g. "regimes") signed in with `role`.

    Signs in for real through the login page as the server's account for `role` (the browser
    then holds the HttpOnly cookie, so the page load below is a signed-in reload);
    `role=None` opens the page as an anonymous visitor.
    """
    if role is not None:
        sign_in(page, server, *server.accounts[role])
    page.goto(f"{server.url}/{path}")
    wait_app_idle(page)
