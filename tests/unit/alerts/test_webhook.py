"""Webhook signing, the backoff schedule, Retry-After and the SSRF checks."""

from __future__ import annotations

import hashlib
import hmac
from email.utils import formatdate

import pytest

from core.alerts import webhook as w


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    body = b'{"event_id":"e1","value":2.5}'
    sig = w.sign("s3cret", "1700000000", body)
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sig == "sha256=" + expected
    assert w.verify("s3cret", "1700000000", body, sig)


@pytest.mark.parametrize(
    ("secret", "stamp", "body"),
    [
        ("other", "1700000000", b'{"event_id":"e1","value":2.5}'),
        ("s3cret", "1700000001", b'{"event_id":"e1","value":2.5}'),
        ("s3cret", "1700000000", b'{"event_id":"e1","value":2.6}'),
    ],
)
def test_any_change_breaks_the_signature(secret: str, stamp: str, body: bytes) -> None:
    good = w.sign("s3cret", "1700000000", b'{"event_id":"e1","value":2.5}')
    assert not w.verify(secret, stamp, body, good)


def test_backoff_doubles_and_is_capped() -> None:
    assert w.backoff_delays(4, 1.0) == [1.0, 2.0, 4.0]
    assert w.backoff_delays(1, 1.0) == []
    assert w.backoff_delays(6, 10.0, cap_s=30.0) == [10.0, 20.0, 30.0, 30.0, 30.0]


def test_retry_after_seconds_and_http_dates() -> None:
    assert w.retry_after("3", now=0.0) == 3.0
    assert w.retry_after("0.5", now=0.0) == 0.5
    assert w.retry_after("99999", now=0.0) == w.MAX_RETRY_AFTER_S
    assert w.retry_after(None, now=0.0) is None
    assert w.retry_after("soon", now=0.0) is None
    date = formatdate(1_700_000_010, usegmt=True)
    assert w.retry_after(date, now=1_700_000_000.0) == pytest.approx(10.0)
    assert w.retry_after(formatdate(1_600_000_000, usegmt=True), now=1_700_000_000.0) == 0.0


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("", "empty"),
        ("ftp://example.com/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("http:///nohost", "no host"),
        ("https://user:pw@example.com/x", "no user name or password"),
        ("http://example.com:99999/", "not a valid URL"),
    ],
)
def test_bad_urls_are_refused(url: str, words: str) -> None:
    with pytest.raises(w.TargetRefused, match=words):
        w.check_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/tok-XYZ",
        "http://localhost/tok-XYZ",
        "http://10.1.2.3/tok-XYZ",
        "http://192.168.0.10/tok-XYZ",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9000/tok-XYZ",
        "http://[::ffff:127.0.0.1]/tok-XYZ",
        "http://0.0.0.0/tok-XYZ",
    ],
)
def test_private_targets_are_refused_unless_allowed(url: str) -> None:
    with pytest.raises(w.TargetRefused, match="HFT_ALERT_WEBHOOK_ALLOW_PRIVATE") as info:
        w.resolve(url, allow_private=False)
    assert "tok-XYZ" not in str(info.value)
    assert "meta-data" not in str(info.value)
    target = w.resolve(url, allow_private=True)
    assert target.ip


def test_public_literal_address_passes_and_keeps_host_port_path() -> None:
    target = w.resolve("https://93.184.215.14:8443/a/b?x=1", allow_private=False)
    assert (target.scheme, target.host, target.port, target.path, target.ip) == (
        "https",
        "93.184.215.14",
        8443,
        "/a/b?x=1",
        "93.184.215.14",
    )


def test_error_text_never_has_the_url() -> None:
    assert w.error_text(ConnectionRefusedError(111, "Connection refused")) == "connection refused"
    assert w.error_text(TimeoutError()) == "timed out after 5 s"
    text = w.error_text(OSError(113, "No route to host"))
    assert text == "No route to host"
