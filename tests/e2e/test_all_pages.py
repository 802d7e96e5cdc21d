"""Every page in a real Chromium, as every role: each menu entry renders without an exception
or an error alert, and every page above a role's rank is refused when opened by URL.

One server (the session's), one browser. Screenshots of each page land in tests/e2e/screenshots/.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from pages._shared.navigation import PAGES, PageSpec, role_allows
from tests.e2e.conftest import (
    ROLES,
    Server,
    screenshot,
    sign_in,
    wait_app_idle,
    wait_session_cookie,
)

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000
SIGN_IN_HEADING = "Sign in to HFThot"
# A page's st.title, where it differs from its menu title.
HEADINGS = {"pages/home.py": "HFThot", "pages/login.py": SIGN_IN_HEADING}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """This module's own server, with one account per role. Scripts are not reloaded when a
    source file changes during the run: the pages under test stay the ones it started with."""
    srv = Server(
        tmp_path_factory.mktemp("all-pages") / "data",
        env={"STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none", "STREAMLIT_SERVER_RUN_ON_SAVE": "false"},
    )
    yield srv
    srv.stop()


def heading(spec: PageSpec) -> str:
    return HEADINGS.get(spec.path, spec.title)


def url_path(spec: PageSpec) -> str:
    return Path(spec.path).stem  # st.Page's default url_path


def settle(page: Page, timeout_s: float = 60.0) -> None:
    """Wait until the script run is over and stays over for a moment (fragments rerun every
    second on the live pages, so a short quiet spell is enough)."""
    deadline = time.monotonic() + timeout_s
    quiet = 0
    while quiet < 3:
        if time.monotonic() > deadline:
            raise AssertionError(f"{page.url} still running after {timeout_s} s")
        running = page.evaluate(
            """() => {
                const app = document.querySelector('[data-testid="stApp"]');
                const state = app ? app.getAttribute('data-test-script-state') : 'initial';
                return state !== 'notRunning'
                    || !!document.querySelector('[data-testid="stStatusWidget"]');
            }"""
        )
        quiet = 0 if running else quiet + 1
        page.wait_for_timeout(150)


def problems(page: Page) -> list[str]:
    """Exception boxes and error alerts on screen, as text."""
    found = [
        f"exception: {e.inner_text()[:500]}"
        for e in page.locator('[data-testid="stException"]').all()
    ]
    found += [
        f"error: {e.inner_text()[:300]}"
        for e in page.locator('[data-testid="stAlertContentError"]').all()
    ]
    return found


def menu_links(page: Page) -> list[tuple[str, str]]:
    """(title, href) of every entry in the sidebar menu, expanding "View more" first."""
    more = page.get_by_test_id("stSidebarNavViewButton")
    if more.count() and "more" in more.inner_text():
        more.click()
    links = page.get_by_test_id("stSidebarNavLink")
    expect(links.first).to_be_visible(timeout=TIMEOUT)
    # A link's text is its icon's ligature name, then its title.
    return [
        (link.inner_text().split("\n")[-1].strip(), str(link.get_attribute("href")))
        for link in links.all()
    ]


@pytest.mark.parametrize("role", ROLES)
def test_every_menu_page_renders_for_the_role(server: Server, page: Page, role: str) -> None:
    sign_in(page, server, *server.accounts[role])
    settle(page)
    expected = {s.title: s for s in PAGES if s.min_role and role_allows(role, s.min_role)}
    links = menu_links(page)
    assert sorted(title for title, _ in links) == sorted(expected)

    failures: dict[str, list[str]] = {}
    for title, href in links:
        spec = expected[title]
        link = page.locator(f'[data-testid="stSidebarNavLink"][href="{href}"]')
        if not link.is_visible():
            menu_links(page)  # the menu collapsed again
        link.click()
        page.wait_for_url(href, timeout=TIMEOUT)
        try:
            expect(page.get_by_role("heading", name=heading(spec), exact=True)).to_be_visible(
                timeout=TIMEOUT
            )
            settle(page)
        except AssertionError as exc:
            failures[title] = [f"did not render: {exc}"]
        failures[title] = failures.get(title, []) + problems(page)
        screenshot(page, f"all-pages-{role}-{url_path(spec)}")
    failures = {t: p for t, p in failures.items() if p}
    assert not failures, f"pages failing for {role}: {failures}"


@pytest.mark.parametrize("role", [None, "viewer", "analyst"])
def test_pages_above_the_role_are_refused_by_url(
    server: Server, page: Page, role: str | None
) -> None:
    if role is None:
        page.context.clear_cookies()
    else:
        sign_in(page, server, *server.accounts[role])
    forbidden = [s for s in PAGES if s.min_role is not None and not role_allows(role, s.min_role)]
    assert forbidden
    shown: dict[str, str] = {}
    for spec in forbidden:
        page.goto(f"{server.url}/{url_path(spec)}")
        wait_app_idle(page)
        settle(page)
        main = page.get_by_test_id("stMain")
        refused = (
            page.get_by_role("heading", name=SIGN_IN_HEADING, exact=True).count() > 0
            or main.get_by_text("Please sign in to see this page.").count() > 0
            or main.get_by_text(f"This page needs the {spec.min_role} role").count() > 0
            # A signed-in user's menu leaves the page out: Streamlit says so, runs Home.
            or page.get_by_role("dialog", name="Page not found").count() > 0
        )
        leaked = page.get_by_role("heading", name=heading(spec), exact=True).count() > 0
        errors = problems(page)
        refusal = [e for e in errors if e.startswith("error: This page needs the")]
        if not refused or leaked or len(errors) != len(refusal):
            shot = screenshot(page, f"refused-{role}-{url_path(spec)}")
            shown[spec.path] = f"refused={refused} leaked={leaked} {errors} ({shot})"
    assert not shown, f"pages not refused for {role}: {shown}"


def test_my_account_shows_markdown_in_a_username_literally(server: Server, page: Page) -> None:
    name, email = "__md_z__", "[x](http://e.org)@e.org"
    page.context.clear_cookies()
    page.goto(f"{server.url}/register")
    wait_app_idle(page)
    page.get_by_label("Username", exact=True).fill(name)
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill("literal text passphrase 9")
    page.get_by_label("Repeat password", exact=True).fill("literal text passphrase 9")
    page.get_by_role("button", name="Create account").click()
    wait_session_cookie(page)
    expect(page.get_by_text(f"Signed in as {name} (viewer)")).to_be_visible(timeout=TIMEOUT)
    page.goto(f"{server.url}/account")
    wait_app_idle(page)
    expect(page.get_by_role("heading", name="My account")).to_be_visible(timeout=TIMEOUT)
    settle(page)
    values = page.get_by_test_id("stMetricValue")
    assert values.nth(0).inner_text() == name
    assert values.nth(1).inner_text() == email
    main = page.get_by_test_id("stMain")
    assert name in main.inner_text()
    assert f"Ends this session for {name} on the server" in main.inner_text()
    assert main.locator("strong, em").count() == 0  # no markdown emphasis anywhere
    assert values.locator("a").count() == 0  # neither the link nor an email autolink
    sidebar = page.get_by_test_id("stSidebar")
    assert f"Signed in as {name} (viewer)" in sidebar.inner_text()
    assert sidebar.locator("strong, em").count() == 0
    screenshot(page, "all-pages-literal-username")
