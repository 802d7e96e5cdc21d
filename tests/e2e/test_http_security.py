"""HTTP hardening against a real `streamlit run app.py` on loopback, and in Chromium.

Bounded request bodies (a huge Content-Length is refused unread, a slow chunked body is cut
off early without the server's memory growing), the security headers on every kind of
response, a CSP the whole app works under, and no error details shown to users.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from pages._shared.session_cookie import ROUTE_PATH
from tests.e2e.conftest import ROOT, Server, free_port, open_app, screenshot, wait_app_idle

pytestmark = pytest.mark.e2e
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The app behind a (pretend) reverse proxy on loopback, which it trusts."""
    srv = Server(
        tmp_path_factory.mktemp("http-security") / "data",
        env={"HFT_TRUSTED_PROXIES": "127.0.0.1/32"},
    )
    yield srv
    srv.stop()


def request(
    server: Server,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def assert_security_headers(headers: dict[str, str], what: str) -> None:
    csp = headers.get("content-security-policy", "")
    assert "frame-ancestors 'none'" in csp, f"{what}: CSP missing or incomplete: {csp!r}"
    assert "default-src 'self'" in csp, what
    assert headers.get("x-frame-options") == "DENY", what
    assert headers.get("x-content-type-options") == "nosniff", what
    assert headers.get("referrer-policy") == "strict-origin-when-cross-origin", what
    assert "strict-transport-security" not in headers, f"{what}: HSTS over plain HTTP"


def test_security_headers_on_every_kind_of_response(guarded: Server) -> None:
    status, headers, page = request(guarded, "GET", "/")
    assert status == 200
    assert_security_headers(headers, "GET /")
    asset = re.search(rb'src="\./(static/js/index\.[^"]+\.js)"', page)
    assert asset is not None, "no script bundle in index.html"
    status, headers, _ = request(guarded, "GET", "/" + asset.group(1).decode())
    assert status == 200
    assert_security_headers(headers, "static asset")
    status, headers, _ = request(guarded, "GET", "/_stcore/health")
    assert status == 200
    assert_security_headers(headers, "health")
    status, headers, body = request(
        guarded,
        "POST",
        f"/{ROUTE_PATH}",
        b'{"code": "made-up"}',
        {"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"},
    )
    assert (status, body) == (403, b"unknown or expired code")
    assert_security_headers(headers, "POST /api/session")
    status, headers, _ = request(guarded, "GET", "/media/no-such-file.png")
    assert status == 404
    assert_security_headers(headers, "404")


def test_hsts_only_when_a_trusted_proxy_says_https(guarded: Server) -> None:
    _, headers, _ = request(
        guarded, "GET", "/_stcore/health", headers={"X-Forwarded-Proto": "https"}
    )
    hsts = headers.get("strict-transport-security", "")
    assert hsts.startswith("max-age=31536000"), headers
    _, headers, _ = request(
        guarded, "GET", "/_stcore/health", headers={"X-Forwarded-Proto": "http"}
    )
    assert "strict-transport-security" not in headers


def test_streamlit_upload_endpoint_keeps_its_own_limit(guarded: Server) -> None:
    """200 KiB to the file-upload endpoint is Streamlit's to judge (server.maxUploadSize), not
    refused by our 64 KiB cap; the same body to a path of ours is."""
    body = b"u" * (200 * 1024)
    status, headers, _ = request(guarded, "PUT", "/_stcore/upload_file/no-session/no-file", body)
    assert status != 413
    assert_security_headers(headers, "upload")
    status, _, _ = request(guarded, "POST", "/api/other", body)
    assert status == 413


def _rss(server: Server) -> int:
    return int(psutil.Process(server.proc.pid).memory_info().rss)


def _read_status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else -1


def _session_request_head(server: Server, extra: str) -> bytes:
    return (
        f"POST /{ROUTE_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        "Content-Type: application/json\r\nSec-Fetch-Site: same-origin\r\n"
        f"{extra}\r\n"
    ).encode()


def test_huge_content_length_is_refused_before_reading(guarded: Server) -> None:
    with socket.create_connection(("127.0.0.1", guarded.port), timeout=10) as sock:
        sock.sendall(_session_request_head(guarded, f"Content-Length: {512 * MIB}\r\n"))
        # not one byte of the body is sent: the answer must come anyway
        assert _read_status(sock) == 413


def test_slow_chunked_body_is_cut_off_early_without_buffering(guarded: Server) -> None:
    total = 64 * MIB
    piece = 64 * 1024
    chunk = f"{piece:x}\r\n".encode() + b"x" * piece + b"\r\n"
    rss_before = _rss(guarded)
    peak = rss_before
    sent = 0
    stop = threading.Event()

    def stream(sock: socket.socket) -> None:
        nonlocal sent
        try:
            while sent < total and not stop.is_set():
                sock.sendall(chunk)
                sent += piece
                time.sleep(0.002)
            sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass  # the server closed the connection: what we want

    with socket.create_connection(("127.0.0.1", guarded.port), timeout=120) as sock:
        sock.sendall(_session_request_head(guarded, "Transfer-Encoding: chunked\r\n"))
        sender = threading.Thread(target=stream, args=(sock,), daemon=True)
        sender.start()
        status: list[int] = []
        reader = threading.Thread(target=lambda: status.append(_read_status(sock)), daemon=True)
        reader.start()
        while reader.is_alive():
            peak = max(peak, _rss(guarded))
            reader.join(0.05)
        sent_at_answer = sent
        stop.set()
        sender.join(30)
    assert status == [413]
    assert sent_at_answer < 16 * MIB, f"answered only after {sent_at_answer / MIB:.1f} MiB"
    assert peak - rss_before < 32 * MIB, f"server RSS grew by {(peak - rss_before) / MIB:.0f} MiB"
    assert guarded.proc.poll() is None


def test_app_loads_signs_in_and_draws_charts_under_the_csp(guarded: Server, page: Page) -> None:
    violations: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text:
            violations.append(msg.text)

    def on_violation(text: str) -> None:
        violations.append(text)

    page.on("console", on_console)
    page.expose_function("hfthotCspViolation", on_violation)
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', (e) => window.hfthotCspViolation("
        "`${e.violatedDirective} blocked ${e.blockedURI} at ${e.sourceFile}:${e.lineNumber}`));"
    )
    response = page.goto(guarded.url)
    assert response is not None
    assert "frame-ancestors 'none'" in response.headers.get("content-security-policy", "")
    open_app(page, guarded, "regimes", role="analyst")
    expect(page.get_by_role("heading", name="Regimes").first).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Fit regimes").click()
    wait_app_idle(page, timeout_ms=180_000)
    charts = page.get_by_test_id("stPlotlyChart")
    expect(charts.first).to_be_visible(timeout=180_000)
    expect(charts.first.locator(".legendtext").first).to_be_visible()
    expect(charts.first.locator("canvas.gl-canvas-context")).to_have_count(1)  # WebGL trace
    screenshot(page, "csp-regimes")
    page.reload()  # the signed-in reload goes through the cookie set by the component
    wait_app_idle(page)
    expect(page.get_by_role("heading", name="Regimes").first).to_be_visible(timeout=60_000)
    assert violations == [], violations


BOOM = """
import streamlit as st
st.title("boom page")
raise RuntimeError("leaky detail: the database password is hunter2")
"""


@pytest.fixture(scope="module")
def boom_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """`streamlit run` of a page that raises, with the project's shipped config."""
    script = tmp_path_factory.mktemp("boom") / "boom_page.py"
    script.write_text(BOOM)
    port = free_port()
    log = script.with_suffix(".log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(script),
            "--server.headless=true",
            "--server.address=127.0.0.1",
            f"--server.port={port}",
        ],
        cwd=ROOT,  # the project's .streamlit/config.toml applies
        env=dict(os.environ),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(script.with_suffix(".log").read_text()) from None
            time.sleep(0.2)
    yield url, script
    proc.terminate()
    proc.wait(timeout=15)
    log.close()


def test_a_failing_page_shows_no_traceback_or_path(
    boom_server: tuple[str, Path], browser: Browser
) -> None:
    url, script = boom_server
    ctx = browser.new_context()
    page = ctx.new_page()
    try:
        page.goto(url)
        wait_app_idle(page)
        error = page.get_by_test_id("stException")
        expect(error).to_be_visible(timeout=30_000)
        shown = page.locator("body").inner_text()
        for leak in (
            str(script),
            script.name,
            "Traceback",
            "hunter2",
            "RuntimeError",
            "site-packages",
        ):
            assert leak not in shown, f"the page shows {leak!r}"
    finally:
        ctx.close()
