"""Secret key rings kept as files with mode 0600, outside the Delta tables.

A ring is a JSON file {"current": kid, "keys": {kid: base64}}. It is generated on first
use from `secrets.token_bytes` (never a constant), and `rotate()` adds a new current key
while keeping the previous one valid, so tokens or ciphertexts made with it still verify.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import threading
from pathlib import Path

from lakehouse.errors import StorageError

KEY_BYTES = 32  # 256 bits
DEVICE_KEYS_FILE = "device-cookie-keys.json"  # HMAC keys of the device cookies (devices.py)
ACCESS_TOKEN_KEYS_FILE = "access-token-keys.json"  # noqa: S105 (HMAC keys of access tokens)
_LOCK = threading.Lock()


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class KeyRing:
    """A current key plus, after a rotation, the previous one; addressed by kid."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.current_kid = ""
        self.keys: dict[str, bytes] = {}
        self._mtime_ns = 0
        self._load_or_create()

    def _load_or_create(self) -> None:
        with _LOCK:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                os.chmod(self.path.parent, 0o700)
            lock_path = self.path.with_name(f".{self.path.name}.lock")
            with open(lock_path, "a+b") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not self.path.exists():
                    kid = secrets.token_hex(4)
                    self._store({kid: secrets.token_bytes(KEY_BYTES)}, kid)
                self._read()

    def _store(self, keys: dict[str, bytes], current: str) -> None:
        doc = {
            "current": current,
            "keys": {k: base64.b64encode(v).decode("ascii") for k, v in keys.items()},
        }
        _write_private(self.path, json.dumps(doc).encode())

    def _read(self) -> None:
        if self.path.stat().st_mode & 0o077:
            os.chmod(self.path, 0o600)
        try:
            doc = json.loads(self.path.read_text())
            keys = {str(k): base64.b64decode(v) for k, v in doc["keys"].items()}
            current = str(doc["current"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(
                f"secret file {self.path} is unreadable ({exc}); restore it from backup"
            ) from exc
        if current not in keys or any(len(v) < KEY_BYTES for v in keys.values()):
            raise StorageError(f"secret file {self.path} holds a missing or short key")
        self.keys, self.current_kid = keys, current
        self._mtime_ns = self.path.stat().st_mtime_ns

    @property
    def current(self) -> bytes:
        return self.keys[self.current_kid]

    def reload(self) -> None:
        with _LOCK:
            self._read()

    def reload_if_changed(self) -> bool:
        """Re-read the file if another process rotated it; True if it changed."""
        try:
            changed = self.path.stat().st_mtime_ns != self._mtime_ns
        except OSError:
            return False
        if changed:
            self.reload()
        return changed

    def rotate(self) -> str:
        """Make a fresh current key; keep only the previous one besides it. Returns the kid."""
        with _LOCK:
            lock_path = self.path.with_name(f".{self.path.name}.lock")
            with open(lock_path, "a+b") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self._read()
                kid = secrets.token_hex(4)
                while kid in self.keys:
                    kid = secrets.token_hex(4)
                keys = {self.current_kid: self.current, kid: secrets.token_bytes(KEY_BYTES)}
                self._store(keys, kid)
                self._read()
                return kid
