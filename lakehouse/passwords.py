"""Password policy and Argon2id hashing (OWASP ASVS V6, RFC 9106).

Production parameters are RFC 9106's low-memory profile: 64 MiB, t=3, p=4. Tests may pass
`Argon2Params.fast_for_tests()` together with `allow_weak_hashing_for_tests=True` to the
backend; the backend refuses weaker parameters without that second explicit flag, and no
production path (CLI, app) passes either.
"""

from __future__ import annotations

import gzip
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from lakehouse.errors import InvalidInput

MIN_LENGTH = 8
MAX_LENGTH = 128
COMMON_PASSWORDS_FILE = Path(__file__).with_name("data") / "common-passwords.txt.gz"


@dataclass(frozen=True, slots=True)
class Argon2Params:
    memory_kib: int = 64 * 1024
    time_cost: int = 3
    parallelism: int = 4

    @property
    def meets_rfc9106(self) -> bool:
        return self.memory_kib >= 64 * 1024 and self.time_cost >= 3 and self.parallelism >= 4

    @classmethod
    def fast_for_tests(cls) -> Argon2Params:
        """Weak parameters that keep test suites fast. NEVER for real accounts."""
        return cls(memory_kib=1024, time_cost=1, parallelism=1)


PRODUCTION = Argon2Params()


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip())


def check_policy(password: object, *, username: str | None = None) -> str:
    """Return the password if acceptable, else raise InvalidInput saying why."""
    if not isinstance(password, str):
        raise InvalidInput(f"password must be a string, got {type(password).__name__}")
    n = len(password)
    if n < MIN_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_LENGTH} characters")
    if n > MAX_LENGTH:
        raise InvalidInput(f"password must have at most {MAX_LENGTH} characters")
    if any(unicodedata.category(c) == "Cc" for c in password):
        raise InvalidInput("password must not contain control characters")
    lowered = password.lower()
    if lowered in common_passwords():
        raise InvalidInput("this password is too common; choose a less guessable one")
    if username is not None and lowered == username.lower():
        raise InvalidInput("password must not equal the username")
    return password


class Hasher:
    """Argon2id through argon2-cffi; rehash detection follows the configured params."""

    def __init__(self, params: Argon2Params) -> None:
        self.params = params
        self._ph = PasswordHasher(
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
        )
        # Verified against when the username is unknown, so timing matches a real check.
        self._dummy = self._ph.hash("dummy password for unknown users")

    def hash(self, password: str) -> str:
        return self._ph.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        try:
            ok = bool(self._ph.verify(stored if stored is not None else self._dummy, password))
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return ok and stored is not None

    def needs_rehash(self, stored: str) -> bool:
        return bool(self._ph.check_needs_rehash(stored))
