"""The client's typed errors, argument checks and repr (no server needed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from core.client import (
    BadRequest,
    Client,
    ClientError,
    Forbidden,
    RateLimited,
    ServerError,
    Unauthorized,
    Unreachable,
    error_of,
    time_text,
)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, BadRequest),
        (404, BadRequest),
        (408, BadRequest),
        (413, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (429, RateLimited),
        (500, ServerError),
        (503, ServerError),
    ],
)
def test_status_maps_to_its_error(status: int, kind: type[ClientError]) -> None:
    err = error_of(status, {"detail": "the server's words"}, "fallback")
    assert type(err) is kind
    assert err.detail == "the server's words"
    assert str(err) == "the server's words"
    assert err.status == status


def test_rate_limited_carries_retry_after() -> None:
    err = error_of(429, {"detail": "slow down", "retry_after_s": 7}, "x")
    assert isinstance(err, RateLimited)
    assert err.retry_after_s == 7.0
    assert error_of(429, {}, "x").retry_after_s == 1.0  # type: ignore[attr-defined]


def test_missing_detail_uses_the_fallback() -> None:
    assert error_of(502, {}, "the server answered 502").detail == "the server answered 502"


def test_every_error_is_a_client_error() -> None:
    for kind in (Unauthorized, Forbidden, BadRequest, ServerError, Unreachable):
        assert issubclass(kind, ClientError)
    assert issubclass(RateLimited, ClientError)


def test_time_text() -> None:
    assert time_text(None, "start") is None
    assert time_text("2024-01-01", "start") == "2024-01-01"
    assert time_text(dt.date(2024, 1, 2), "start") == "2024-01-02"
    when = dt.datetime(2024, 1, 2, 3, 4, tzinfo=dt.UTC)
    assert time_text(when, "end") == "2024-01-02T03:04:00+00:00"
    with pytest.raises(BadRequest, match="end must be a datetime"):
        time_text(3.5, "end")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "token", "timeout", "says"),
    [
        ("127.0.0.1:8501", "hft_pat_a_b", 30, "url must look like"),
        ("ftp://host", "hft_pat_a_b", 30, "url must look like"),
        ("http://", "hft_pat_a_b", 30, "url must look like"),
        ("http://h:1", "", 30, "token must be an access token"),
        ("http://h:1", "   ", 30, "token must be an access token"),
        ("http://h:1", "hft_pat_a_b", 0, "timeout must be a positive"),
    ],
)
def test_bad_arguments_are_bad_requests(url: str, token: str, timeout: float, says: str) -> None:
    with pytest.raises(BadRequest, match=says):
        Client(url, token, timeout=timeout)


def test_unreadable_ca_cert(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="cannot read ca_cert"):
        Client("https://h:1", "hft_pat_a_b", ca_cert=tmp_path / "missing.pem")


def test_repr_never_shows_the_token() -> None:
    token = "hft_pat_abcdef_" + "s3cr3t" * 5
    c = Client("http://127.0.0.1:8501/", token, flight=False)
    assert token not in repr(c)
    assert "s3cr3t" not in repr(c)
    assert repr(c) == "Client('http://127.0.0.1:8501', transport='rest')"
    assert "undecided" in repr(Client("http://127.0.0.1:8501", token))


def test_ca_cert_that_is_not_pem(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(BadRequest, match="ca_cert must be a PEM certificate"):
        Client("https://h:1", "hft_pat_a_b", ca_cert=bad)
