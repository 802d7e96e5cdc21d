"""Webhook delivery against a real loopback receiver that verifies the HMAC signature."""

from __future__ import annotations

import dataclasses
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.alerts import Alerts, CreatedRule
from core.alerts import rules as r
from core.alerts.webhook import TargetRefused
from tests.integration.alerts.conftest import SYMBOL, VENUE, Receiver, Team
from tests.integration.ingest.tls_loopback import make_cert


def make_rule(team: Team, url: str) -> CreatedRule:
    return team.services.alerts.create_rule(
        team.alice,
        "spike",
        "zscore",
        {"window": 5, "bound": 2},
        venue=VENUE,
        symbol=SYMBOL,
        timeframe="1m",
        cooldown_s=0,
        webhook_url=url,
    )


def fire(team: Team, created: CreatedRule, value: float = 2.5) -> str:
    alerts = team.services.alerts
    alerts.deliverer.start()
    reading = r.Reading(1, value, f"z-score is {value}", team.services.auth.store.now())
    event = alerts.fire(created.rule, reading)
    assert alerts.deliverer.wait_idle(30)
    return event.event_id


def test_retries_5xx_then_delivers_a_signed_post(team: Team, receiver: Receiver) -> None:
    created = make_rule(team, receiver.url)
    assert created.secret
    assert len(created.secret) >= 40
    receiver.secret = created.secret
    receiver.plan = [503, 502, 200]
    event_id = fire(team, created)
    hits = receiver.wait_for(3)
    assert len(hits) == 3
    assert all(h.valid for h in hits)
    body = hits[-1].json
    assert body["event_id"] == event_id
    assert body["rule_id"] == created.rule.rule_id
    assert body["rule_name"] == "spike"
    assert body["kind"] == "zscore"
    assert body["series"] == {"venue": VENUE, "symbol": SYMBOL, "timeframe": "1m"}
    assert body["value"] == 2.5
    assert "z-score is 2.5" in body["message"]
    assert hits[-1].headers["X-HFThot-Signature"].startswith("sha256=")
    rows = team.services.alerts.deliveries(team.alice, created.rule.rule_id)
    attempts = sorted((d.attempt, d.status, d.http_status) for d in rows)
    assert attempts == [(1, "failed", 503), (2, "failed", 502), (3, "delivered", 200)]
    assert {d.event_id for d in rows} == {event_id}


def test_always_failing_receiver_ends_in_a_dead_letter(team: Team, receiver: Receiver) -> None:
    created = make_rule(team, receiver.url)
    receiver.secret = created.secret or ""
    receiver.plan = [500]
    fire(team, created)
    assert len(receiver.wait_for(4)) == 4
    rows = team.services.alerts.deliveries(team.alice)
    statuses = sorted((d.attempt, d.status) for d in rows)
    assert statuses == [
        (1, "failed"),
        (2, "failed"),
        (3, "failed"),
        (4, "dead_letter"),
        (4, "failed"),
    ]
    dead = next(d for d in rows if d.status == "dead_letter")
    assert dead.http_status == 500
    assert "gave up after 4 attempts" in (dead.error or "")
    for d in rows:  # no URL path, query or secret in what the page shows
        assert "tok-SECRETPATH" not in (d.error or "")
        assert (created.secret or "") not in (d.error or "")


def test_a_4xx_answer_is_not_retried(team: Team, receiver: Receiver) -> None:
    created = make_rule(team, receiver.url)
    receiver.secret = created.secret or ""
    receiver.plan = [404]
    fire(team, created)
    assert len(receiver.wait_for(1)) == 1
    time.sleep(0.3)
    assert len(receiver.hits) == 1
    statuses = sorted((d.attempt, d.status) for d in team.services.alerts.deliveries(team.alice))
    assert statuses == [(1, "dead_letter"), (1, "failed")]


def test_retry_after_is_honoured(team: Team, receiver: Receiver) -> None:
    created = make_rule(team, receiver.url)
    receiver.secret = created.secret or ""
    receiver.plan = [429, 200]
    receiver.retry_after = "1"
    sent = time.monotonic()
    fire(team, created)
    assert len(receiver.wait_for(2)) == 2
    assert time.monotonic() - sent >= 0.9  # the 50 ms backoff was stretched to Retry-After


def test_network_errors_are_retried_then_dead_lettered(team: Team) -> None:
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    created = make_rule(team, f"http://127.0.0.1:{port}/hooks/tok-SECRETPATH")
    fire(team, created)
    rows = team.services.alerts.deliveries(team.alice)
    assert [d.status for d in sorted(rows, key=lambda d: (d.attempt, d.status))] == [
        "failed",
        "failed",
        "failed",
        "dead_letter",
        "failed",
    ]
    assert all(d.http_status is None for d in rows)
    assert {d.error for d in rows if d.status == "failed"} == {"connection refused"}


def test_private_targets_are_refused_by_default(team: Team, receiver: Receiver) -> None:
    settings = dataclasses.replace(team.services.settings, alert_webhook_allow_private=False)
    strict = Alerts(team.services.auth.store, settings, team.services.engine)
    with pytest.raises(TargetRefused, match="HFT_ALERT_WEBHOOK_ALLOW_PRIVATE"):
        strict.create_rule(
            team.alice, "x", "price_cross", {"level": 1}, venue=VENUE, symbol=SYMBOL,
            webhook_url=receiver.url,
        )  # fmt: skip
    assert strict.rules(team.alice) == []
    # a rule made while private targets were allowed is still refused at delivery time
    created = make_rule(team, receiver.url)
    strict.deliverer.start()
    try:
        reading = r.Reading(1, 1.0, "m", None)
        strict.fire(created.rule, reading)
        assert strict.deliverer.wait_idle(10)
    finally:
        strict.close()
    assert receiver.hits == []
    rows = strict.deliveries(team.alice)
    assert [(d.status, d.attempt) for d in rows] == [("dead_letter", 1)]
    assert "private" in (rows[0].error or "")


def test_the_secret_is_stored_sealed(team: Team, receiver: Receiver) -> None:
    created = make_rule(team, receiver.url)
    secret = created.secret or ""
    table = team.services.auth.store.alert_rules
    root = table.path
    assert not any(secret.encode() in p.read_bytes() for p in root.rglob("*") if p.is_file())
    assert team.services.alerts.webhook_secret(created.rule) == secret
    row = table.read().row(0, named=True)
    assert row["webhook_kid"]
    assert row["webhook_secret"]
    assert secret not in json.dumps({k: v for k, v in row.items() if isinstance(v, str)})


def test_https_targets_must_present_a_trusted_certificate(team: Team, tmp_path: Path) -> None:
    """A self-signed receiver is refused by the certificate check (nothing is posted)."""
    cert, key = make_cert(["localhost"], tmp_path)  # self-signed, trusted by nobody
    posted: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            posted.append(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        created = make_rule(team, f"https://127.0.0.1:{server.server_address[1]}/x")
        fire(team, created)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    assert posted == []
    rows = team.services.alerts.deliveries(team.alice)
    failed = [d for d in rows if d.status == "failed"]
    assert failed
    assert all((d.error or "").startswith("TLS error") for d in failed)
    assert any(d.status == "dead_letter" for d in rows)
