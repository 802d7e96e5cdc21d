"""Request meters: every request to a provider with a quota is counted before it is sent.

A source calls `meter.take()` right before each HTTP request. At the limit nothing is sent:
`take` raises `QuotaPause` with the seconds until the window resets, and the job waits that
long. When the provider itself says stop (HTTP 429, Alpha Vantage's `Note`), the source calls
`meter.exhausted(retry_after_s)`, which marks the window as spent and returns the pause.

- `KeyMeter` counts a user's own key through the accounts ledger (`update_query_count`).
- `WindowMeter` counts a public venue per process against its published per-IP limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from core.errors import RetryableError
from core.ingest.venues import Quota, Venue
from lakehouse.errors import QuotaExceeded, wait_text


class QuotaPause(RetryableError):
    """The provider's request budget is spent until its window resets."""

    def __init__(self, provider: str, retry_after_s: float, why: str) -> None:
        self.provider = provider
        self.retry_after_s = max(0.0, retry_after_s)
        super().__init__(f"{why}; resumes in {wait_text(self.retry_after_s)}")


class Meter(Protocol):
    requests: int
    """Requests counted (and so sent) through this meter."""

    def take(self) -> None:
        """Count one request before it is sent; QuotaPause when the budget is spent."""
        ...

    def exhausted(self, retry_after_s: float | None = None) -> QuotaPause:
        """The provider refused for its limit: spend the window, return the pause to raise."""
        ...


class KeyLedger(Protocol):
    """Where users' provider keys and their quota counters live (the accounts backend)."""

    def provider_key(self, user_id: str, provider: str) -> str:
        """The user's key for `provider`, decrypted for one request; NotFound when none."""
        ...

    def update_query_count(self, user_id: str, provider: str, increment: int = 1) -> int:
        """Count requests in the current window; QuotaExceeded (nothing counted) at the limit."""
        ...

    def spend_quota(self, user_id: str, provider: str) -> None:
        """Mark the current window as used up (the provider said its limit is reached)."""
        ...


def key_meter(ledger: KeyLedger, user_id: str, venue: Venue) -> KeyMeter:
    """The meter of one user's key for `venue`, counting in `ledger`."""

    def count(n: int) -> int:
        return ledger.update_query_count(user_id, venue.name, n)

    return KeyMeter(venue, count, lambda: ledger.spend_quota(user_id, venue.name))


def _window_left(quota: Quota, now: float) -> float:
    return quota.window_s - now % quota.window_s


class KeyMeter:
    """A user's key: counted in the accounts ledger, where quotas live per user and window."""

    def __init__(
        self,
        venue: Venue,
        count: Callable[[int], int],
        spend: Callable[[], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        if venue.quota is None:
            raise ValueError(f"{venue.title} has no quota to meter")
        self.venue, self.quota = venue, venue.quota
        self._count, self._spend, self._clock = count, spend, clock
        self.requests = 0

    def take(self) -> None:
        try:
            self._count(1)
        except QuotaExceeded as exc:
            raise QuotaPause(self.venue.title, exc.retry_after_s, str(exc).split(";")[0]) from None
        self.requests += 1

    def exhausted(self, retry_after_s: float | None = None) -> QuotaPause:
        self._spend()
        wait = _window_left(self.quota, self._clock())
        if retry_after_s is not None:
            wait = max(retry_after_s, 0.0)
        return QuotaPause(self.venue.title, wait, f"{self.venue.title} refused: limit reached")


class WindowMeter:
    """A public venue's published per-IP limit, counted for the whole process."""

    def __init__(self, venue: Venue, clock: Callable[[], float] = time.time) -> None:
        if venue.quota is None:
            raise ValueError(f"{venue.title} has no quota to meter")
        self.venue, self.quota = venue, venue.quota
        self._clock = clock
        self._lock = threading.Lock()
        self._window = -1.0
        self._used = 0
        self._blocked_until = 0.0
        self.requests = 0

    def used(self) -> tuple[int, float]:
        """Requests in the current window and the seconds until it resets."""
        now = self._clock()
        with self._lock:
            start = now - now % self.quota.window_s
            return (self._used if start == self._window else 0), _window_left(self.quota, now)

    def take(self) -> None:
        now = self._clock()
        with self._lock:
            if now < self._blocked_until:
                raise QuotaPause(
                    self.venue.title, self._blocked_until - now, f"{self.venue.title} asked to wait"
                )
            start = now - now % self.quota.window_s
            if start != self._window:
                self._window, self._used = start, 0
            if self._used >= self.quota.limit:
                raise QuotaPause(
                    self.venue.title,
                    _window_left(self.quota, now),
                    f"{self.venue.title}: {self.quota.describe()} used",
                )
            self._used += 1
            self.requests += 1

    def exhausted(self, retry_after_s: float | None = None) -> QuotaPause:
        now = self._clock()
        wait = _window_left(self.quota, now) if retry_after_s is None else max(retry_after_s, 0)
        with self._lock:
            self._blocked_until = max(self._blocked_until, now + wait)
        return QuotaPause(self.venue.title, wait, f"{self.venue.title} refused: limit reached")


_PUBLIC: dict[str, WindowMeter] = {}
_PUBLIC_LOCK = threading.Lock()


def public_meter(venue: Venue) -> WindowMeter:
    """The process-wide meter of a public venue (one per venue)."""
    with _PUBLIC_LOCK:
        meter = _PUBLIC.get(venue.name)
        if meter is None:
            meter = _PUBLIC[venue.name] = WindowMeter(venue)
        return meter
