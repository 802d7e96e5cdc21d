"""Provider API keys encrypted at rest: AES-256-GCM, user_id|provider as associated data.

The master key ring lives in the secrets folder (mode 0600), never in a table. Each row keeps
the kid of the key that sealed it, so a rotated ring still opens older rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lakehouse.errors import StorageError
from lakehouse.secrets import KeyRing


@dataclass(frozen=True, slots=True)
class Sealed:
    kid: str
    nonce: bytes
    ciphertext: bytes


def _aad(user_id: str, provider: str) -> bytes:
    return f"{user_id}|{provider}".encode()


class KeyVault:
    def __init__(self, ring: KeyRing) -> None:
        self.ring = ring

    def seal(self, user_id: str, provider: str, plaintext: str) -> Sealed:
        nonce = os.urandom(12)
        ct = AESGCM(self.ring.current).encrypt(nonce, plaintext.encode(), _aad(user_id, provider))
        return Sealed(self.ring.current_kid, nonce, ct)

    def open(self, user_id: str, provider: str, sealed: Sealed) -> str:
        key = self.ring.keys.get(sealed.kid)
        if key is None:
            self.ring.reload()
            key = self.ring.keys.get(sealed.kid)
        if key is None:
            raise StorageError(f"the master key {sealed.kid!r} for this API key is gone")
        try:
            data = AESGCM(key).decrypt(sealed.nonce, sealed.ciphertext, _aad(user_id, provider))
        except InvalidTag as exc:
            raise StorageError("stored API key failed its integrity check") from exc
        return data.decode()
