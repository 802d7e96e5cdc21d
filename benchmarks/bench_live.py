"""Live Market end to end: from a trade leaving the demo venue to its price on screen in
Chromium.

A real `streamlit run app.py` (demo venue on) and Debian's Chromium through Playwright, as in
the browser tests. Live Market shows the last trade with its venue time ("Last trade at
HH:MM:SS.mmm UTC"); the browser polls the page every 20 ms, and each time a new trade appears
the latency is the wall clock minus that venue time (same machine, same clock). The path:
venue -> WebSocket -> ccxt.pro -> stream loop -> page fragment (refreshed every second) ->
Streamlit's WebSocket -> the browser's DOM. No peer: the target is absolute (median under 1 s).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from benchmarks.common import fmt_s
from tests.e2e.conftest import CHROMIUM, Server, sign_in, wait_app_idle

SECTION = "## Live Market latency (Chromium)"
SAMPLE_S = 45.0
SHOWN = re.compile(r"Last trade at (\d\d):(\d\d):(\d\d)\.(\d{3}) UTC")


def latencies(seconds: float = SAMPLE_S) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", {"HFT_DEMO_VENUE": "true"})
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
                page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                sign_in(page, server, *server.accounts["viewer"])
                page.goto(f"{server.url}/live_market")
                wait_app_idle(page)
                page.get_by_text("Last trade at").first.wait_for(timeout=90_000)
                seen: set[str] = set()
                out: list[float] = []
                end = time.monotonic() + seconds
                while time.monotonic() < end:
                    text = page.get_by_text("Last trade at").first.inner_text()
                    now = dt.datetime.now(dt.UTC)
                    m = SHOWN.search(text)
                    if m and m.group(0) not in seen:
                        seen.add(m.group(0))
                        h, mi, s, ms = (int(g) for g in m.groups())
                        shown = now.replace(hour=h, minute=mi, second=s, microsecond=ms * 1000)
                        if shown > now:  # just past midnight
                            shown -= dt.timedelta(days=1)
                        out.append((now - shown).total_seconds())
                    page.wait_for_timeout(20)
                browser.close()
        finally:
            server.stop()
    return out[1:]  # the first one was on screen before sampling began


def run() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        return f"{SECTION}\n\nNot measured: {CHROMIUM} is missing (scripts/system-deps.sh).\n"
    lat = sorted(latencies())
    if not lat:
        return f"{SECTION}\n\nNot measured: no trade reached the screen.\n"
    p95 = lat[max(0, int(0.95 * len(lat)) - 1)]
    return "\n".join(
        [
            SECTION,
            "",
            f"{len(lat)} trades seen on screen over {SAMPLE_S:.0f} s (the page refreshes "
            "every second, so a trade waits half a second on average for the next refresh).",
            "",
            f"- median **{fmt_s(statistics.median(lat))}** (target under 1 s), "
            f"p95 {fmt_s(p95)}, max {fmt_s(lat[-1])}",
            "",
        ]
    )
