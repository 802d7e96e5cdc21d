"""The issue's path in Chromium: a z-score alert on the demo stream fires into the inbox (badge
and toast) and a loopback webhook receiver gets the signed POST."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import polars as pl
import polars.selectors as cs
import pytest
from playwright.sync_api import Page, expect

from core.alerts import webhook
from tests.e2e.conftest import Server, open_app, screenshot, wait_app_idle

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT = 60_000
SERIES = "BTC/USDT · demo (SIMULATED) · 1m"


class Receiver:
    def __init__(self) -> None:
        self.hits: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    def wait_for(self, n: int, timeout: float) -> list[tuple[dict[str, str], bytes]]:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if len(self.hits) >= n:
                    return list(self.hits)
            time.sleep(0.2)
        return list(self.hits)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with rec.lock:
                rec.hits.append((dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def alert_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Its own app with the demo venue streaming and loopback webhooks allowed."""
    srv = Server(
        tmp_path_factory.mktemp("e2e-alerts") / "data",
        {"HFT_DEMO_VENUE": "true", "HFT_ALERT_WEBHOOK_ALLOW_PRIVATE": "true"},
    )
    yield srv
    srv.stop()


def pick(page: Page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option).click()


def open_form_with_demo_series(page: Page, server: Server) -> None:
    """The New rule tab once the demo stream's bars are in the store (the series picker
    lists stored series)."""
    deadline = time.monotonic() + 60
    while True:
        page.get_by_role("tab", name="New rule").click()
        pick(page, "Kind", "Z-score beyond a bound")
        wait_app_idle(page)
        page.get_by_role("tab", name="New rule").click()
        page.get_by_role("combobox", name="Series").click()
        page.keyboard.type("BTC/USDT · demo")  # the list is long and virtualised: filter it
        if page.get_by_role("option", name=SERIES).count():
            page.get_by_role("option", name=SERIES).click()
            return
        page.keyboard.press("Escape")
        if time.monotonic() > deadline:
            raise AssertionError(f"{SERIES} never appeared in the series picker")
        page.wait_for_timeout(2000)
        page.reload()
        wait_app_idle(page)


def what_happened(server: Server) -> str:
    """The alert tables and the server log's tail, for a failure message."""
    parts = []
    for name in ("alert_rules", "alert_events", "alert_deliveries"):
        try:
            frame = pl.read_delta(str(server.data_dir / "lakehouse" / name))
            parts.append(f"{name}: {frame.drop(cs.binary()).to_dicts()}")
        except Exception as exc:
            parts.append(f"{name}: unreadable ({exc})")
    log = server.log.read_text(errors="replace")[-3000:]
    return "\n".join([*parts, "log tail:", log])


def test_zscore_alert_on_the_demo_stream(
    alert_server: Server, page: Page, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    open_app(page, alert_server, "alerts", role="analyst")
    expect(page.get_by_role("heading", name="Alerts")).to_be_visible(timeout=TIMEOUT)
    open_form_with_demo_series(page, alert_server)
    page.get_by_label("Name", exact=True).fill("BTC stretch")
    page.get_by_label("Window (bars)").fill("5")
    page.get_by_label("Bound (±z)").fill("0.8")
    page.get_by_label("Webhook URL (optional)").fill(url)
    page.get_by_role("button", name="Create rule").click()
    wait_app_idle(page)
    expect(page.get_by_text("Created BTC stretch.")).to_be_visible(timeout=TIMEOUT)
    secret = page.get_by_test_id("stCode").first.inner_text().strip()
    assert len(secret) >= 40

    hits = rec.wait_for(1, timeout=90)
    if not hits:
        page.get_by_role("tab", name="Rules").click()
        shown = page.get_by_test_id("stMain").inner_text()
        raise AssertionError(
            f"the webhook was not called within 90 s; {what_happened(alert_server)}\n{shown}"
        )
    headers, body = hits[0]
    stamp = headers[webhook.TIMESTAMP_HEADER]
    assert webhook.verify(secret, stamp, body, headers[webhook.SIGNATURE_HEADER])
    sent = json.loads(body)
    assert sent["rule_name"] == "BTC stretch"
    assert sent["kind"] == "zscore"
    assert sent["series"] == {"venue": "demo", "symbol": "BTC/USDT", "timeframe": "1m"}
    assert "z-score of close over 5 bars" in sent["message"]

    # The next rerun of any page shows the toast and the badge.
    page.get_by_role("link", name="Home").first.click()
    wait_app_idle(page)
    expect(page.get_by_test_id("stToast").filter(has_text="BTC stretch")).to_be_visible(
        timeout=TIMEOUT
    )
    badge = page.get_by_role("link", name=re.compile(r"Alerts: \d+ unread"))
    expect(badge).to_be_visible(timeout=TIMEOUT)
    screenshot(page, "alerts_toast")
    badge.click()
    wait_app_idle(page)
    expect(page.get_by_role("tab", name=re.compile(r"Inbox \(\d+\)"))).to_be_visible()
    expect(page.get_by_text(re.compile(r"\d+ unread alerts?"))).to_be_visible()
    page.get_by_role("button", name="Mark all read").click()
    wait_app_idle(page)
    expect(page.get_by_text("0 unread alerts")).to_be_visible(timeout=TIMEOUT)
    expect(badge).to_have_count(0, timeout=TIMEOUT)  # the rerun after marking drops the badge
    assert page.get_by_test_id("stException").count() == 0
    screenshot(page, "alerts_inbox")
