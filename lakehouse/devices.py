"""Device cookies: a signed note that this browser signed in to an account before.

After a successful login the backend issues a device token (OWASP, "Slow Down Online Guessing
Attacks with Device Cookies"); the app keeps it in the browser as the HttpOnly cookie
`hfthot_device`. A later login attempt that carries a valid token for the same account is
judged by that device's own failure counter instead of the account-wide one (throttle.py), so
an attacker failing on purpose from many IPs cannot keep the owner out.

Token: ``v1.<payload>.<kid>.<mac>`` where payload is base64url JSON {"u": username key,
"n": random nonce (the device id), "t": issue time} and mac is HMAC-SHA256 over
``v1.<payload>.<kid>`` with a key from `<secrets>/device-cookie-keys.json` (a KeyRing: 256
random bits, mode 0600, rotatable). It holds no password or session; it only lifts the
account-wide throttle, never signs anyone in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, field

from lakehouse.secrets import KeyRing

VERSION = "v1"
DEVICE_TTL_S = 180 * 86400.0
MAX_TOKEN_CHARS = 512
LEEWAY_S = 5.0


@dataclass(frozen=True, slots=True)
class LoginResult:
    """What a login gives the browser: the session JWT and a fresh device token."""

    token: str = field(repr=False)
    device: str = field(repr=False)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class DeviceCookies:
    def __init__(self, ring: KeyRing, ttl_s: float = DEVICE_TTL_S) -> None:
        self.ring = ring
        self.ttl_s = ttl_s

    def _mac(self, key: bytes, signed: str) -> str:
        return _b64(hmac.new(key, signed.encode("ascii"), hashlib.sha256).digest())

    def issue(self, account_key: str, now: float) -> str:
        """A new token for `account_key` with a fresh 128-bit nonce."""
        doc = {"u": account_key, "n": secrets.token_hex(16), "t": int(now)}
        payload = _b64(json.dumps(doc, separators=(",", ":")).encode())
        signed = f"{VERSION}.{payload}.{self.ring.current_kid}"
        return f"{signed}.{self._mac(self.ring.current, signed)}"

    def verify(self, token: object, account_key: str, now: float) -> str | None:
        """The device id (nonce) if `token` is a valid, unexpired token of `account_key`."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_CHARS:
            return None
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != VERSION:
            return None
        _, payload, kid, mac = parts
        key = self.ring.keys.get(kid)
        if key is None:
            self.ring.reload_if_changed()  # another process may have rotated
            key = self.ring.keys.get(kid)
        if key is None or not hmac.compare_digest(
            self._mac(key, f"{VERSION}.{payload}.{kid}"), mac
        ):
            return None
        try:
            doc = json.loads(_unb64(payload))
        except (ValueError, binascii.Error):
            return None
        if not isinstance(doc, dict):
            return None
        user, nonce, issued = doc.get("u"), doc.get("n"), doc.get("t")
        if not isinstance(user, str) or not isinstance(nonce, str) or not nonce:
            return None
        if isinstance(issued, bool) or not isinstance(issued, int):
            return None
        if not hmac.compare_digest(user.encode(), account_key.encode()):
            return None
        if issued > now + LEEWAY_S or now - issued > self.ttl_s:
            return None
        return nonce
