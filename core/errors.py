"""One exception base for the engine; retryable and rejected errors kept apart."""


class HftError(Exception):
    """Base of every error the engine raises on purpose."""


class InvalidInput(HftError, ValueError):
    """The caller passed something that cannot work; the message says what and how to fix it."""


class RetryableError(HftError):
    """A transient failure (network, rate limit, lock); the same call may succeed later."""


class RejectedError(HftError):
    """A request the engine refuses by policy; retrying will not help."""


class QueryRejected(RejectedError):
    """The SQL explorer refused a query (policy, timeout, memory or a query error)."""

    def __init__(self, message: str, reason: str = "policy") -> None:
        super().__init__(message)
        self.reason = reason


class NativeUnavailable(HftError, ImportError):
    """The Rust extension core._native could not be loaded."""
