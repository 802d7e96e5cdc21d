"""The issue's "done when" path for studies, in Chromium: an analyst fits regimes on the
S&P 500, finds the study on the Studies page, reruns it ("Reproduced exactly"), shares it,
and a second analyst sees it."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ROOT, Server, screenshot, sign_in, wait_app_idle

pytestmark = pytest.mark.e2e
TITLE = re.compile(r"^Regimes · SP500")


@pytest.fixture(scope="module")
def team_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str, str]]:
    """A server whose data dir also holds a second analyst (created before it starts)."""
    data = tmp_path_factory.mktemp("e2e-studies") / "data"
    name, password = "e2e-analyst-two", secrets.token_urlsafe(16)
    subprocess.run(
        [sys.executable, "-m", "tests.e2e.accounts_setup", str(data)],
        input=json.dumps({"analyst": [name, password]}),
        text=True,
        cwd=ROOT,
        check=True,
        timeout=120,
        capture_output=True,
    )
    # no file watcher: a source edit during the run must not reload modules under the server
    srv = Server(data, {"STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none"})
    yield srv, name, password
    srv.stop()


def test_fit_find_rerun_share_in_chromium(team_server: tuple[Server, str, str], page: Page) -> None:
    server, second, second_password = team_server
    sign_in(page, server, *server.accounts["analyst"])
    page.goto(f"{server.url}/regimes")
    wait_app_idle(page)
    expect(page.get_by_role("heading", name="Regimes").first).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Fit regimes").click()
    wait_app_idle(page, timeout_ms=180_000)
    expect(page.get_by_text("Saved as study")).to_be_visible(timeout=180_000)

    page.goto(f"{server.url}/studies")
    wait_app_idle(page)
    expect(page.get_by_role("heading", name="Studies").first).to_be_visible(timeout=60_000)
    expect(page.get_by_role("heading", name=TITLE)).to_be_visible(timeout=60_000)
    expect(page.get_by_text("Metrics", exact=True)).to_be_visible()

    page.get_by_role("button", name="Rerun").click()
    wait_app_idle(page, timeout_ms=180_000)
    expect(page.get_by_text(re.compile(r"Reproduced exactly: the \d+ metrics"))).to_be_visible(
        timeout=180_000
    )
    screenshot(page, "studies-rerun")

    page.get_by_role("button", name="Share with the team").click()
    wait_app_idle(page)
    expect(page.get_by_role("button", name="Unshare")).to_be_visible(timeout=60_000)
    assert page.get_by_test_id("stException").count() == 0

    sign_in(page, server, second, second_password)
    page.goto(f"{server.url}/studies")
    wait_app_idle(page)
    expect(page.get_by_role("heading", name=TITLE)).to_be_visible(timeout=60_000)
    expect(page.get_by_text(f"by {server.accounts['analyst'][0]}")).to_be_visible()
    expect(page.get_by_role("button", name="Rerun")).to_be_visible()
    assert page.get_by_role("button", name="Unshare").count() == 0  # not the owner
    assert page.get_by_test_id("stException").count() == 0
    screenshot(page, "studies-shared")
