"""One exception base for the accounts lakehouse. Messages say what was wrong and what to do."""

from __future__ import annotations

import math


def wait_text(seconds: float) -> str:
    """A wait to show a user, rounded up so it never says "0 s": "1 s", "2 min 5 s", "2 h".

    The pages show waits through it too (pages/_shared/format.wait).
    """
    s = max(1, math.ceil(seconds)) if math.isfinite(seconds) else 1
    if s < 60:
        return f"{s} s"
    m, s = divmod(s, 60)
    if m < 60:
        return f"{m} min {s} s" if s else f"{m} min"
    h, m = divmod(m, 60)
    return f"{h} h {m} min" if m else f"{h} h"


class LakehouseError(Exception):
    """Base of every error the lakehouse raises on purpose."""


class InvalidInput(LakehouseError, ValueError):
    """The caller passed something unusable; nothing was changed."""


class UsernameTaken(InvalidInput):
    """The username (compared case-insensitively) already belongs to an account."""


class NotFound(LakehouseError, LookupError):
    """The user, session, key or table version does not exist."""


class PermissionDenied(LakehouseError):
    """The acting user's role does not allow this operation."""


class AuditWriteError(LakehouseError):
    """The audit record could not be written, so the action was not carried out."""


class StorageError(LakehouseError):
    """A Delta table could not be read or written."""


class QuotaExceeded(LakehouseError):
    """The provider quota for the current window is used up."""

    def __init__(self, provider: str, limit: int, window: str, retry_after_s: float) -> None:
        super().__init__(
            f"{provider} quota of {limit} per {window} is used up; "
            f"try again in {wait_text(retry_after_s)}"
        )
        self.provider = provider
        self.limit = limit
        self.window = window
        self.retry_after_s = retry_after_s


class AuthError(LakehouseError):
    """Authentication failed: bad credentials, or a token that is invalid, expired or revoked."""


class InvalidCredentials(AuthError):
    """Wrong username or password (one message for both)."""

    def __init__(self, message: str = "invalid username or password") -> None:
        super().__init__(message)


class Throttled(AuthError):
    """Too many failed attempts recently; the caller must wait before trying again."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"too many failed attempts; try again in {wait_text(retry_after_s)}")
        self.retry_after_s = retry_after_s


class AccountDisabled(AuthError):
    """The account was disabled by an administrator."""


class InvalidToken(AuthError):
    """The token is malformed, forged, uses a refused header, or has wrong claims."""


class TokenExpired(InvalidToken):
    """The token or its session passed its absolute lifetime or idle timeout."""


class SessionRevoked(InvalidToken):
    """The session behind the token was ended (logout, password change, disable, admin)."""
