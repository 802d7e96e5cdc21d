"""Input checks: each returns the cleaned value or raises InvalidInput saying what to fix."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from typing import Any

from lakehouse.errors import InvalidInput
from lakehouse.models import ROLES

USERNAME_MIN, USERNAME_MAX = 3, 32
EMAIL_MAX = 254
API_KEY_MIN, API_KEY_MAX = 8, 512
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s.]{2,}$")
_USER_ID = re.compile(r"^[0-9a-f]{32}$")
_USERNAME_EXTRA = set("._-")


def text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__}")
    return value


def username(value: object) -> tuple[str, str]:
    """Return (display name, comparison key). Unicode letters and digits plus . _ -."""
    name = unicodedata.normalize("NFKC", text(value, "username")).strip()
    if not USERNAME_MIN <= len(name) <= USERNAME_MAX:
        raise InvalidInput(
            f"username must have {USERNAME_MIN} to {USERNAME_MAX} characters, got {len(name)}"
        )
    for ch in name:
        if not (ch.isalnum() or ch in _USERNAME_EXTRA):
            raise InvalidInput(
                f"username may hold letters, digits and . _ - only; {ch!r} is not allowed"
            )
    return name, name.casefold()


@cache
def _prototypes() -> dict[str, str]:
    """Unicode's confusables.txt as {source character: prototype string} (TR39 section 4).

    The tables come from the `confusable-homoglyphs` package, which keeps each line of
    confusables.txt in both directions (source -> prototype and prototype -> source). Sources
    are single code points and never prototypes themselves, so a character with several
    look-alikes, or whose one look-alike is a longer string, is a prototype; a character
    listing one prototype is a source. The rare pair that lists only each other maps both
    to the smaller code point: skeletons still compare equal, which is all we use.
    """
    from confusable_homoglyphs.confusables import (  # type: ignore[import-untyped]
        confusables_data,
    )

    def clean(text: str) -> str:
        return text.replace("\u200e", "")  # direction marks around right-to-left glyphs

    pairs = {clean(k): [clean(e["c"]) for e in v] for k, v in confusables_data.items()}
    out: dict[str, str] = {}
    for char, others in pairs.items():
        if len(char) != 1 or len(others) != 1:
            continue
        other = others[0]
        back = pairs.get(other, [])
        if len(other) > 1 or len(back) > 1:
            out[char] = other  # char is a source of the prototype `other`
        elif back == [char] and char > other:
            out[char] = other  # a mutual pair: the larger code point maps to the smaller
    return out


def username_skeleton(key: str) -> str:
    """The TR39 confusable skeleton of a username key, casefolded like the keys.

    NFD, each character mapped to its confusables prototype, NFD again. Two names with the
    same skeleton look alike ('alice', Cyrillic 'аlice', 'alıce', 'a1ice'), so registration
    refuses a name whose skeleton another account already has.
    """
    table = _prototypes()
    mapped = "".join(table.get(c, c) for c in unicodedata.normalize("NFD", key))
    return unicodedata.normalize("NFD", mapped).casefold()


def email(value: object) -> str:
    addr = unicodedata.normalize("NFKC", text(value, "email")).strip()
    if len(addr) > EMAIL_MAX or not _EMAIL.match(addr):
        raise InvalidInput(f"email {addr[:80]!r} is not a valid address (like name@example.org)")
    if any(unicodedata.category(c).startswith("C") for c in addr):
        raise InvalidInput("email must not contain control characters")
    local, _, domain = addr.rpartition("@")
    return f"{local}@{domain.lower()}"


def user_id(value: object) -> str:
    uid = text(value, "user_id")
    if not _USER_ID.match(uid):
        raise InvalidInput(f"user_id {uid[:40]!r} is not a valid account id")
    return uid


def session_id(value: object) -> str:
    sid = text(value, "session_id")
    if not _USER_ID.match(sid):
        raise InvalidInput(f"session_id {sid[:40]!r} is not a valid session id")
    return sid


def role(value: object) -> str:
    r = text(value, "role")
    if r not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {r[:20]!r}")
    return r


def flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be True or False, got {type(value).__name__}")
    return value


def optional_text(value: object, what: str, max_len: int = 512) -> str | None:
    if value is None:
        return None
    s = text(value, what)
    return s[:max_len]


def api_key(value: object, provider: str) -> str:
    key = text(value, f"API key for {provider}")
    if not API_KEY_MIN <= len(key) <= API_KEY_MAX:
        raise InvalidInput(
            f"API key for {provider} must have {API_KEY_MIN} to {API_KEY_MAX} characters"
        )
    if any(c.isspace() or not c.isprintable() for c in key):
        raise InvalidInput(f"API key for {provider} must not contain spaces or control characters")
    return key


def positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInput(f"{what} must be a positive integer, got {value!r}")
    return value
