"""Plain value objects returned by the lakehouse API."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

ROLES = ("viewer", "analyst", "admin")
ROLE_RANK = {name: i for i, name in enumerate(ROLES)}


@dataclass(frozen=True, slots=True)
class User:
    """An account as the app sees it. `session_id` is set when it came from a token."""

    user_id: str
    username: str
    email: str
    role: str
    disabled: bool
    created_at: dt.datetime
    session_id: str | None = None

    def has_role(self, needed: str) -> bool:
        """Deny by default: unknown roles rank below everything."""
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK.get(needed, len(ROLES))

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"
