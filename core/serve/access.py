"""Who may call the API: bearer tokens, per-token rate limits, and errors as problems.

The REST API and the Flight service both admit a call with `Gate.admit(token, scope)` and
turn any failure into a `Problem` (RFC 9457 fields) with `problem_of`, so a refusal reads the
same through either door and the same as on the pages.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.errors import InvalidInput, QueryRejected
from lakehouse import (
    AccountDisabled,
    InvalidToken,
    LakehouseAuthBackend,
    NotFound,
    PermissionDenied,
    TokenExpired,
    TokenUser,
)
from lakehouse import InvalidInput as AccountInputError
from lakehouse.errors import wait_text

BEARER = "bearer "
MAX_TOKEN_CHARS = 200


class RateLimited(Exception):
    """This token made more calls than the API allows per minute."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(
            f"too many requests with this token; try again in {wait_text(retry_after_s)}"
        )
        self.retry_after_s = retry_after_s


def bearer_token(header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; InvalidToken otherwise."""
    if not header:
        raise InvalidToken(
            "send an access token: Authorization: Bearer hft_pat_... (create one on My account)"
        )
    if len(header) > MAX_TOKEN_CHARS or not header[: len(BEARER)].lower() == BEARER:
        raise InvalidToken("the Authorization header must be: Bearer hft_pat_...")
    return header[len(BEARER) :].strip()


class RateLimiter:
    """A token bucket per key: `per_minute` calls a minute, bursts up to `per_minute`."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise InvalidInput("the API rate must be at least 1 request a minute")
        self.rate = per_minute / 60.0
        self.burst = float(per_minute)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 when the call may go ahead (and is counted), else the seconds until it may."""
        now = self._clock()
        with self._lock:
            level, seen = self._buckets.get(key, (self.burst, now))
            level = min(self.burst, level + (now - seen) * self.rate)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, now)
                return 0.0
            self._buckets[key] = (level, now)
            if len(self._buckets) > 100_000:  # forget idle keys, refilled anyway
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 60}
            return (1.0 - level) / self.rate


class Gate:
    """Admits a call: the token is valid for `scope` (role included), within its rate."""

    def __init__(self, auth: LakehouseAuthBackend, per_minute: int) -> None:
        self.auth = auth
        self.limiter = RateLimiter(per_minute)

    def admit(self, token: str, scope: str, *, ip: str | None = None) -> TokenUser:
        who = self.auth.authenticate_access_token(token, scope, ip=ip)
        wait = self.limiter.take(who.token_id)
        if wait > 0:
            raise RateLimited(wait)
        return who


@dataclass(frozen=True, slots=True)
class Problem:
    """An RFC 9457 problem: HTTP status, short title, the message a page would show."""

    status: int
    title: str
    detail: str
    retry_after_s: float | None = None
    reason: str | None = None

    def body(self) -> dict[str, object]:
        out: dict[str, object] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.reason is not None:
            out["reason"] = self.reason
        if self.retry_after_s is not None:
            out["retry_after_s"] = math.ceil(self.retry_after_s)
        return out


def problem_of(exc: BaseException) -> Problem:
    """The problem a caller sees for `exc`; unexpected errors say nothing about the server."""
    if isinstance(exc, RateLimited):
        return Problem(429, "Too Many Requests", str(exc), retry_after_s=exc.retry_after_s)
    if isinstance(exc, TokenExpired):
        return Problem(401, "Unauthorized", "this access token has expired; create a new one")
    if isinstance(exc, (InvalidToken, AccountDisabled)):
        return Problem(401, "Unauthorized", str(exc))
    if isinstance(exc, PermissionDenied):
        return Problem(403, "Forbidden", str(exc))
    if isinstance(exc, NotFound):
        return Problem(404, "Not Found", str(exc))
    if isinstance(exc, QueryRejected):
        status = {"timeout": 408, "memory": 413}.get(exc.reason, 400)
        return Problem(status, "Query refused", str(exc), reason=exc.reason)
    if isinstance(exc, (InvalidInput, AccountInputError)):
        return Problem(400, "Bad Request", str(exc))
    return Problem(500, "Internal Server Error", "the server failed to answer; try again")
