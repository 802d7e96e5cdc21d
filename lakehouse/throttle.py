"""Server-side login throttling with growing delays that cannot lock a victim out.

Every attempt is judged either as a trusted client or as an untrusted one (OWASP, "Slow Down
Online Guessing Attacks with Device Cookies"):

- Trusted device: the attempt carries a valid device cookie of this account (see devices.py).
  It is judged only by that cookie's own counter: free 5, then growing delays capped at 30 s;
  after DEVICE_LOCK_AFTER failures within the window the cookie is locked and the attempt is
  judged as untrusted. A stolen cookie thus buys a handful of guesses, no more.
- Untrusted client: no (valid, unlocked) cookie. Counters of recent failures, each giving a
  delay of base * 2**(n - free) seconds once n passes its free allowance, capped:
  - per (account, ip): free 3, cap 15 min. Guessing from one place gets slow fast.
  - per ip (any account): free 20, cap 15 min. Spraying many accounts from one place.
  - per account (any ip): free 10, cap 10 s. Distributed guessing is slowed. An IP this
    account signed in from successfully in the last KNOWN_IP_S is exempt from this one, so
    the owner at home is not held up by an attacker elsewhere.
  Without an IP (Streamlit gives none on loopback) the per-ip and per-pair counters are
  skipped: visitors without an address are never merged into one shared counter.
A success clears the pair's (or the device's) counter. Counters live in this process's memory
(never in the browser); they reset on restart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lakehouse.errors import Throttled

WINDOW_S = 3600.0
KNOWN_IP_S = 30 * 86400.0
DEVICE_LOCK_AFTER = 10
MAX_ENTRIES = 100_000


@dataclass(frozen=True, slots=True)
class Rule:
    free: int
    cap_s: float
    base_s: float = 1.0

    def delay(self, failures: int) -> float:
        if failures < self.free:
            return 0.0
        return min(self.cap_s, self.base_s * 2.0 ** (failures - self.free))


PAIR = Rule(free=3, cap_s=900.0)
IP = Rule(free=20, cap_s=900.0)
ACCOUNT = Rule(free=10, cap_s=10.0)
DEVICE = Rule(free=5, cap_s=30.0)


@dataclass(slots=True)
class _Counter:
    failures: int
    last: float


def _of_account(key: tuple[str, ...], account: str) -> bool:
    return key[0] in ("pair", "acct") and key[1] == account


class LoginThrottle:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, ...], _Counter] = {}
        self._known: dict[tuple[str, str], float] = {}  # (account, ip) -> last success

    def _live(self, key: tuple[str, ...], now: float) -> _Counter | None:
        c = self._counters.get(key)
        return None if c is None or now - c.last > WINDOW_S else c

    def _device_ok(self, device: str | None, now: float) -> bool:
        if not device:
            return False
        c = self._live(("device", device), now)
        return c is None or c.failures < DEVICE_LOCK_AFTER

    def _keys(
        self, account: str, ip: str | None, device: str | None, now: float
    ) -> list[tuple[tuple[str, ...], Rule]]:
        if self._device_ok(device, now):
            return [(("device", str(device)), DEVICE)]
        keys: list[tuple[tuple[str, ...], Rule]] = []
        if ip:
            keys += [(("pair", account, ip), PAIR), (("ip", ip), IP)]
        known = ip is not None and now - self._known.get((account, ip), -KNOWN_IP_S) < KNOWN_IP_S
        if not known:
            keys.append((("acct", account), ACCOUNT))
        return keys

    def trust(self, account: str, ip: str | None, now: float, device: str | None = None) -> str:
        """How this attempt is judged: "device", "known ip" or "untrusted" (for the audit)."""
        with self._lock:
            if self._device_ok(device, now):
                return "device"
            keys = self._keys(account, ip, None, now)
        return "untrusted" if (("acct", account), ACCOUNT) in keys else "known ip"

    def check(self, account: str, ip: str | None, now: float, device: str | None = None) -> None:
        """Raise Throttled if any counter that judges this attempt asks it to wait.

        `device` is the id of a device cookie already verified for `account`, or None.
        """
        wait = 0.0
        with self._lock:
            for key, rule in self._keys(account, ip, device, now):
                c = self._live(key, now)
                if c is not None:
                    wait = max(wait, c.last + rule.delay(c.failures) - now)
        if wait > 0:
            raise Throttled(wait)

    def failure(self, account: str, ip: str | None, now: float, device: str | None = None) -> None:
        with self._lock:
            keys = [k for k, _ in self._keys(account, ip, device, now)]
            if device and ("device", device) not in keys:
                keys.append(("device", device))  # a locked cookie stays locked while abused
            for key in keys:
                c = self._live(key, now)
                if c is None:
                    self._counters[key] = _Counter(1, now)
                else:
                    c.failures += 1
                    c.last = now
            if len(self._counters) > MAX_ENTRIES:
                self._counters = {
                    k: v for k, v in self._counters.items() if now - v.last <= WINDOW_S
                }

    def forget(self, account: str) -> None:
        """Drop everything kept about `account` (its counters and known IPs): erasure."""
        with self._lock:
            self._counters = {
                k: v for k, v in self._counters.items() if not _of_account(k, account)
            }
            self._known = {k: v for k, v in self._known.items() if k[0] != account}

    def knows(self, account: str) -> bool:
        """True while anything about `account` is kept (for tests of erasure)."""
        with self._lock:
            return any(_of_account(k, account) for k in self._counters) or any(
                k[0] == account for k in self._known
            )

    def success(
        self, account: str, ip: str | None, now: float | None = None, device: str | None = None
    ) -> None:
        """Clear the pair's and the device's counters; remember `ip` as known for `account`."""
        with self._lock:
            if ip:
                self._counters.pop(("pair", account, ip), None)
            if device:
                self._counters.pop(("device", device), None)
            if ip and now is not None:
                self._known[(account, ip)] = now
                if len(self._known) > MAX_ENTRIES:
                    newest = sorted(self._known.items(), key=lambda kv: kv[1])
                    self._known = dict(newest[len(newest) // 2 :])
