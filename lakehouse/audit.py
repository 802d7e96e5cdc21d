"""The audit log: every security-relevant action, written before the action commits.

Records hold UTC time, a pseudonymous user id (the random account id, or for an unknown
username an HMAC of it), action, outcome, IP and user agent where known, and a small JSON
detail that never holds personal data. A record that cannot be written raises
AuditWriteError, and the caller does not carry out the action.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from lakehouse.errors import AuditWriteError, LakehouseError
from lakehouse.tables import Table

OUTCOMES = ("success", "failure", "denied", "error")
MAX_TEXT = 512


def _clip(value: str | None) -> str | None:
    if value is None:
        return None
    return value[:MAX_TEXT]


class AuditLog:
    def __init__(self, table: Table, clock: Callable[[], float], pepper: bytes) -> None:
        self.table = table
        self._clock = clock
        self._pepper = pepper

    def pseudonym(self, username_key: str) -> str:
        """Stable pseudonymous id for a username that has no account."""
        digest = hmac.new(self._pepper, username_key.encode(), hashlib.sha256).hexdigest()
        return "anon-" + digest[:24]

    def record(
        self,
        action: str,
        outcome: str,
        *,
        user_id: str | None = None,
        actor_id: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> str:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {outcome!r}")
        ts = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
        event_id = uuid.uuid4().hex
        row = {
            "event_id": event_id,
            "ts": ts,
            "date": ts.date(),
            "user_id": user_id,
            "actor_id": actor_id if actor_id is not None else user_id,
            "action": action,
            "outcome": outcome,
            "ip": _clip(ip),
            "user_agent": _clip(user_agent),
            "detail": json.dumps(dict(detail), sort_keys=True, default=str) if detail else None,
        }
        try:
            self.table.append([row])
        except (LakehouseError, OSError, TimeoutError) as exc:
            raise AuditWriteError(
                f"audit record for {action!r} could not be written ({exc}); "
                "the action was not carried out"
            ) from exc
        return event_id
