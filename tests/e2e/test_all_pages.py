"""Every page in a real Chromium, as every role, on a desktop and on a phone: the menu lists
every page the role may use (no "View more"), each entry renders without an exception or an
error alert, and every page above a role's rank is refused by URL with a message that says
what happened; a visitor who signs in there lands on the page they asked for.

One server (this module's), one browser. Screenshots of each page at each width land in
tests/e2e/screenshots/ (all-pages-<width>-<role>-<page>.png).
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
WIDTHS = {1400: 1000, 390: 844}  # a desktop, and a phone (the sidebar starts collapsed)
# Error alerts a page shows on purpose (a destructive action's warning), not failures.
INTENDED_ERRORS = {"pages/privacy.py": "This deletes your account for good"}
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


def open_menu(page: Page) -> None:
    """Show the sidebar menu: on a phone it is collapsed until its button is pressed."""
    expand = page.get_by_test_id("stExpandSidebarButton")
    sidebar = page.get_by_test_id("stSidebar")
    if sidebar.get_attribute("data-collapsed") != "false" and expand.count():
        expand.click()
    expect(sidebar).to_have_attribute("data-collapsed", "false", timeout=TIMEOUT)
    expect(page.get_by_test_id("stSidebarNavLink").first).to_be_in_viewport(timeout=TIMEOUT)


def close_menu(page: Page) -> None:
    """Fold the menu away, as a phone user does to read the page."""
    sidebar = page.get_by_test_id("stSidebar")
    if sidebar.get_attribute("data-collapsed") == "false":
        sidebar.hover()
        page.get_by_test_id("stSidebarCollapseButton").get_by_role("button").click()
    expect(sidebar).to_have_attribute("data-collapsed", "true", timeout=TIMEOUT)
    expect(page.get_by_test_id("stSidebarNavLink").first).not_to_be_in_viewport(timeout=TIMEOUT)


def menu_links(page: Page) -> list[tuple[str, str]]:
    """(title, href) of every entry in the sidebar menu, which must show them all."""
    open_menu(page)
    assert page.get_by_test_id("stSidebarNavViewButton").count() == 0, "a View more button"
    # A link's text is its icon's ligature name, then its title.
    return [
        (link.inner_text().split("\n")[-1].strip(), str(link.get_attribute("href")))
        for link in page.get_by_test_id("stSidebarNavLink").all()
    ]


def test_first_visit_of_a_fresh_server_says_starting(server: Server, page: Page) -> None:
    """Runs first in this module: its server has served no one yet, so the engine, the
    bundled import and the ingest service start now, behind a "Starting HFThot…" notice."""
    page.goto(server.url)
    expect(page.get_by_text("Starting HFThot…")).to_be_visible(timeout=TIMEOUT)
    screenshot(page, "all-pages-starting")
    expect(page.get_by_role("heading", name=SIGN_IN_HEADING)).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Starting HFThot…")).to_have_count(0)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("role", ROLES)
def test_every_menu_page_renders_for_the_role(
    server: Server, page: Page, role: str, width: int
) -> None:
    page.set_viewport_size({"width": width, "height": WIDTHS[width]})
    sign_in(page, server, *server.accounts[role])
    settle(page)
    expected = {s.title: s for s in PAGES if s.min_role and role_allows(role, s.min_role)}
    links = menu_links(page)
    assert sorted(title for title, _ in links) == sorted(expected)
    if role == "admin":
        assert {"Privacy", "Users", "Maintenance", "System"} <= {t for t, _ in links}

    failures: dict[str, list[str]] = {}
    for title, href in links:
        spec = expected[title]
        open_menu(page)  # a phone folds the menu away after each click
        page.locator(f'[data-testid="stSidebarNavLink"][href="{href}"]').click()
        page.wait_for_url(href, timeout=TIMEOUT)
        try:
            expect(page.get_by_role("heading", name=heading(spec), exact=True)).to_be_visible(
                timeout=TIMEOUT
            )
            settle(page)
            # The page just opened is the highlighted entry of the menu.
            current = page.locator('[data-testid="stSidebarNavLink"][aria-current="page"]')
            expect(current).to_have_attribute("href", href)
        except AssertionError as exc:
            failures[title] = [f"did not render: {exc}"]
        intended = INTENDED_ERRORS.get(spec.path)
        found = [e for e in problems(page) if not (intended and intended in e)]
        failures[title] = failures.get(title, []) + found
        if width < 600:
            close_menu(page)
        screenshot(page, f"all-pages-{width}-{role}-{url_path(spec)}")
    failures = {t: p for t, p in failures.items() if p}
    assert not failures, f"pages failing for {role} at {width} px: {failures}"


def test_a_deep_link_highlights_its_menu_entry(server: Server, page: Page) -> None:
    sign_in(page, server, *server.accounts["admin"])
    # Privacy and Maintenance sat behind "View more", where no entry could be highlighted.
    deep = {"pages/regimes.py", "pages/privacy.py", "pages/admin_maintenance.py"}
    for spec in (s for s in PAGES if s.path in deep):
        page.goto(f"{server.url}/{url_path(spec)}")
        wait_app_idle(page)
        expect(page.get_by_role("heading", name=heading(spec), exact=True)).to_be_visible(
            timeout=TIMEOUT
        )
        current = page.locator('[data-testid="stSidebarNavLink"][aria-current="page"]')
        expect(current).to_have_count(1)
        assert current.inner_text().split("\n")[-1].strip() == spec.title


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
        if role is None:
            refused = main.get_by_text(f"Sign in to continue: {spec.title} is for").count() > 0
            refused = refused and main.get_by_role("button", name="Sign in").count() > 0
        else:
            refused = (
                main.get_by_text(
                    f"This page needs the {spec.min_role} role; you are signed in "
                    f"as {role}. Ask an administrator"
                ).count()
                > 0
            )
        leaked = page.get_by_role("heading", name=heading(spec), exact=True).count() > 0
        errors = problems(page)
        refusal = [e for e in errors if e.startswith("error: This page needs the")]
        lost = page.get_by_role("dialog", name="Page not found").count() > 0
        if not refused or leaked or lost or len(errors) != len(refusal):
            shot = screenshot(page, f"refused-{role}-{url_path(spec)}")
            shown[spec.path] = f"refused={refused} leaked={leaked} lost={lost} {errors} ({shot})"
    assert not shown, f"pages not refused for {role}: {shown}"


def test_visitor_signs_in_on_a_bookmarked_page_and_lands_on_it(server: Server, page: Page) -> None:
    page.context.clear_cookies()
    page.goto(f"{server.url}/regimes")
    wait_app_idle(page)
    main = page.get_by_test_id("stMain")
    expect(main.get_by_text("Sign in to continue: Regimes is for")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_role("heading", name="Regimes", exact=True)).to_have_count(0)
    screenshot(page, "all-pages-bookmark-refused")
    page.get_by_label("Username", exact=True).fill(server.accounts["analyst"][0])
    page.get_by_label("Password", exact=True).fill(server.accounts["analyst"][1])
    page.get_by_role("button", name="Sign in", exact=True).click()
    wait_session_cookie(page)
    expect(page.get_by_role("heading", name="Regimes", exact=True)).to_be_visible(timeout=TIMEOUT)
    assert page.url == f"{server.url}/regimes"
    settle(page)
    assert not problems(page)
    screenshot(page, "all-pages-bookmark-landed")


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
