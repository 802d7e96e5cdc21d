"""JWT session tokens (RFC 8725): HS256 only, kid-based key rotation, strict headers.

Claims: sub (user id), jti (session id), iat, nbf, exp, iss, aud. Header: alg=HS256,
typ=JWT, kid. Time claims are checked here with the backend's clock (so tests can move
time); the signature, iss and aud are checked by PyJWT with an algorithm allowlist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import jwt

from lakehouse.errors import InvalidToken, TokenExpired
from lakehouse.secrets import KeyRing

ALGORITHM = "HS256"
ISSUER = "hfthot"
AUDIENCE = "hfthot-portal"
REQUIRED = ["exp", "iat", "nbf", "iss", "aud", "jti", "sub"]
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})
MAX_TOKEN_CHARS = 4096
LEEWAY_S = 5


def _is_time(value: object) -> bool:
    """A finite int or float (bool is an int subclass in Python, so it is refused apart)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: str
    session_id: str
    issued_at: float
    expires_at: float


class TokenCodec:
    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def issue(self, user_id: str, session_id: str, now: float, ttl_s: float) -> str:
        iat = int(now)
        payload = {
            "sub": user_id,
            "jti": session_id,
            "iat": iat,
            "nbf": iat,
            "exp": int(now + ttl_s),
            "iss": ISSUER,
            "aud": AUDIENCE,
        }
        headers = {"kid": self.ring.current_kid, "typ": "JWT"}
        return jwt.encode(payload, self.ring.current, algorithm=ALGORITHM, headers=headers)

    def decode(self, token: object, now: float) -> Claims:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise InvalidToken("token must be a non-empty string")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from exc
        if header.get("alg") != ALGORITHM:
            raise InvalidToken(f"token algorithm {header.get('alg')!r} is not allowed")
        if header.get("typ") != "JWT":
            raise InvalidToken("token header must have typ JWT")
        bad = FORBIDDEN_HEADERS.intersection(header)
        if bad:
            raise InvalidToken(f"token header {sorted(bad)} is not allowed")
        kid = header.get("kid")
        key = self.ring.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            self.ring.reload()  # another process may have rotated
            key = self.ring.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken("token signed with an unknown or retired key")
        try:
            payload: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={
                    "require": REQUIRED,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"token rejected: {exc}") from exc
        times: list[Any] = [payload.get(k) for k in ("iat", "nbf", "exp")]
        # Numbers only: a string such as "99999999999" or a bool must not pass as a time.
        if not all(_is_time(v) for v in times):
            raise InvalidToken("token time claims iat, nbf and exp must be numbers")
        iat, nbf, exp = (float(v) for v in times)
        sub, jti = payload["sub"], payload["jti"]
        if not isinstance(sub, str) or not isinstance(jti, str):
            raise InvalidToken("token sub and jti must be strings")
        if nbf > now + LEEWAY_S or iat > now + LEEWAY_S:
            raise InvalidToken("token is not valid yet")
        if exp <= now:
            raise TokenExpired("session expired; log in again")
        return Claims(user_id=sub, session_id=jti, issued_at=iat, expires_at=exp)
