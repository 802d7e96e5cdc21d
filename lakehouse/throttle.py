"""Server-side login throttling with growing delays that cannot lock a victim out.

Three counters of recent failures, each giving a delay of base * 2**(n - free) seconds
once n passes its free allowance, capped:
- per (account, ip): free 3, cap 15 min. Guessing from one place gets slow fast.
- per ip (any account): free 20, cap 15 min. Spraying many accounts from one place.
- per account (any ip): free 10, cap 10 s. Distributed guessing is slowed, but an
  attacker failing on purpose can delay the real owner (on another IP) by 10 s at most,
  never lock them out. A success from an (account, ip) pair clears that pair's counter.
Counters live in this process's memory (never in the browser); they reset on restart.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from lakehouse.errors import Throttled

WINDOW_S = 3600.0


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


@dataclass(slots=True)
class _Counter:
    failures: int
    last: float


class LoginThrottle:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, ...], _Counter] = {}

    def _keys(self, account: str, ip: str | None) -> list[tuple[tuple[str, ...], Rule]]:
        src = ip or "-"
        return [(("pair", account, src), PAIR), (("ip", src), IP), (("acct", account), ACCOUNT)]

    def check(self, account: str, ip: str | None, now: float) -> None:
        """Raise Throttled if any counter asks this attempt to wait."""
        wait = 0.0
        with self._lock:
            for key, rule in self._keys(account, ip):
                c = self._counters.get(key)
                if c is None or now - c.last > WINDOW_S:
                    continue
                wait = max(wait, c.last + rule.delay(c.failures) - now)
        if wait > 0:
            raise Throttled(wait)

    def failure(self, account: str, ip: str | None, now: float) -> None:
        with self._lock:
            for key, _ in self._keys(account, ip):
                c = self._counters.get(key)
                if c is None or now - c.last > WINDOW_S:
                    self._counters[key] = _Counter(1, now)
                else:
                    c.failures += 1
                    c.last = now
            if len(self._counters) > 100_000:
                self._counters = {
                    k: v for k, v in self._counters.items() if now - v.last <= WINDOW_S
                }

    def success(self, account: str, ip: str | None) -> None:
        with self._lock:
            self._counters.pop(("pair", account, ip or "-"), None)
