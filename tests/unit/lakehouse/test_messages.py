"""Lakehouse messages a user reads never mislead: a wait is never "0 s"."""

from __future__ import annotations

import pytest

from lakehouse import InvalidCredentials, LakehouseAuthBackend, User
from lakehouse.errors import QuotaExceeded, Throttled
from tests.lakehouse_support import PASSWORD, FakeClock


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "1 s"),
        (0.2, "1 s"),  # used to read "try again in 0 s"
        (0.6, "1 s"),
        (1.0, "1 s"),
        (1.01, "2 s"),  # rounded up: the caller really must wait 2 s
        (59.5, "1 min"),
        (61, "1 min 1 s"),
        (600, "10 min"),
        (7260, "2 h 1 min"),
    ],
)
def test_throttled_says_how_long_to_wait(seconds: float, text: str) -> None:
    exc = Throttled(seconds)
    assert str(exc) == f"too many failed attempts; try again in {text}"
    assert exc.retry_after_s == seconds


def test_quota_exceeded_never_says_zero_seconds() -> None:
    exc = QuotaExceeded("Finnhub", 60, "minute", 0.3)
    assert str(exc) == "Finnhub quota of 60 per minute is used up; try again in 1 s"


def test_a_real_login_pause_never_reads_zero_seconds(
    backend: LakehouseAuthBackend, clock: FakeClock, alice: User
) -> None:
    paused = None
    for _ in range(40):
        try:
            backend.login("alice", "wrong password 123")
        except Throttled as exc:
            paused = exc
            break
        except InvalidCredentials:
            continue
    assert paused is not None, "the throttle never paused sign-in"
    clock.advance(paused.retry_after_s - 0.2)  # a fifth of a second left to wait
    with pytest.raises(Throttled) as again:
        backend.login("alice", PASSWORD)
    assert 0 < again.value.retry_after_s < 1
    assert str(again.value).endswith("try again in 1 s")
