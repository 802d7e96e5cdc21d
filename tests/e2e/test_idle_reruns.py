"""No idle reruns: after a finished MFG solve (or a Regimes fit) nobody touches the page, and the
browser must not ask the server for a single rerun. Every rerun, of the page or of a fragment,
is a message the browser sends over Streamlit's WebSocket, so the test counts those."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, WebSocket, expect

from tests.e2e.conftest import Server, open_app, screenshot, wait_app_idle

pytestmark = pytest.mark.e2e
QUIET_MS = 5_000


class Frames:
    """Counts the frames the browser sends on every Streamlit WebSocket of a page."""

    def __init__(self, page: Page) -> None:
        self.sent = 0
        page.on("websocket", self._attach)

    def _attach(self, ws: WebSocket) -> None:
        if "_stcore/stream" in ws.url:
            ws.on("framesent", self._count)

    def _count(self, _payload: object) -> None:
        self.sent += 1


def assert_quiet(page: Page, frames: Frames, name: str) -> None:
    wait_app_idle(page, timeout_ms=60_000)
    page.wait_for_timeout(1_000)  # let a last in-flight message settle
    before = frames.sent
    page.wait_for_timeout(QUIET_MS)
    reruns = frames.sent - before
    if reruns:
        shot = screenshot(page, f"idle-reruns-{name}")
        raise AssertionError(
            f"{name}: the browser asked for {reruns} reruns in {QUIET_MS / 1000:g} s "
            f"with nobody touching the page (see {shot})"
        )


def test_no_reruns_after_an_mfg_solve(server: Server, page: Page) -> None:
    frames = Frames(page)
    open_app(page, server, "optimizer_mfg", role="analyst")
    expect(page.get_by_role("heading", name="Optimizer & MFG").first).to_be_visible(timeout=60_000)
    page.get_by_role("tab", name="Mean-field game").click()
    page.get_by_role("button", name="Solve", exact=True).click()
    expect(page.get_by_text("Converged to tol").first).to_be_visible(timeout=120_000)
    assert_quiet(page, frames, "mfg")
    expect(page.get_by_text("Converged to tol")).to_have_count(1)
    assert page.get_by_test_id("stException").count() == 0


def test_no_reruns_after_a_regimes_fit(server: Server, page: Page) -> None:
    frames = Frames(page)
    open_app(page, server, "regimes", role="analyst")
    expect(page.get_by_role("heading", name="Regimes").first).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Fit regimes").click()
    wait_app_idle(page, timeout_ms=180_000)
    expect(page.get_by_text("price coloured by")).to_be_visible(timeout=180_000)
    assert_quiet(page, frames, "regimes")
    assert page.get_by_test_id("stException").count() == 0


def test_no_reruns_on_an_idle_chiarella_lab(server: Server, page: Page) -> None:
    frames = Frames(page)
    open_app(page, server, "chiarella_lab", role="analyst")
    expect(page.get_by_role("heading", name="Chiarella lab").first).to_be_visible(timeout=60_000)
    assert_quiet(page, frames, "chiarella")
    assert page.get_by_test_id("stException").count() == 0


def test_no_reruns_after_a_finished_history_job(server: Server, page: Page) -> None:
    """The Data page polled its job fragment every second forever, job or no job."""
    frames = Frames(page)
    open_app(page, server, "data", role="analyst")
    expect(page.get_by_role("heading", name="Data").first).to_be_visible(timeout=60_000)
    assert_quiet(page, frames, "data-idle")
    page.get_by_role("button", name="Start job").click()
    expect(page.get_by_text("rows written").first).to_be_visible(timeout=120_000)
    assert_quiet(page, frames, "data-after-job")
    assert page.get_by_test_id("stException").count() == 0
