"""The lakehouse's shared parts: tables, secrets, audit and clock for one root folder."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

from lakehouse import tables as t
from lakehouse.audit import AuditLog
from lakehouse.errors import InvalidInput
from lakehouse.keys import KeyVault
from lakehouse.secrets import KeyRing
from lakehouse.tokens import TokenCodec

Clock = Callable[[], float]


class Store:
    def __init__(
        self,
        root: Path | str,
        *,
        secrets_dir: Path | str | None = None,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(root, str | Path) or str(root).strip() == "":
            raise InvalidInput("root must be a folder path")
        self.root = Path(root).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.secrets_dir = (
            Path(secrets_dir).expanduser().resolve()
            if secrets_dir is not None
            else self.root.parent / "secrets"
        )
        if self.secrets_dir == self.root or self.root in self.secrets_dir.parents:
            raise InvalidInput("secrets_dir must be outside the lakehouse tables folder")
        self.clock: Clock = clock or time.time
        self.jwt_ring = KeyRing(self.secrets_dir / "jwt-keys.json")
        self.master_ring = KeyRing(self.secrets_dir / "api-key-master.json")
        self.pepper_ring = KeyRing(self.secrets_dir / "audit-pepper.json")
        self.tokens = TokenCodec(self.jwt_ring)
        self.vault = KeyVault(self.master_ring)
        self.users = t.Table(self.root, t.USERS)
        self.sessions = t.Table(self.root, t.SESSIONS)
        self.audit_table = t.Table(self.root, t.AUDIT)
        self.api_keys = t.Table(self.root, t.API_KEYS)
        self.api_usage = t.Table(self.root, t.API_USAGE)
        self.consents = t.Table(self.root, t.CONSENTS)
        self.tombstones = t.Table(self.root, t.TOMBSTONES)
        self.access_tokens = t.Table(self.root, t.ACCESS_TOKENS)
        self.studies = t.Table(self.root, t.STUDIES)
        self.saved_queries = t.Table(self.root, t.SAVED_QUERIES)
        self.alert_rules = t.Table(self.root, t.ALERT_RULES)
        self.alert_events = t.Table(self.root, t.ALERT_EVENTS)
        self.alert_deliveries = t.Table(self.root, t.ALERT_DELIVERIES)
        self.audit = AuditLog(self.audit_table, self.clock, self.pepper_ring.current)
        self.tables: dict[str, t.Table] = {
            tab.name: tab
            for tab in (
                self.users,
                self.sessions,
                self.audit_table,
                self.api_keys,
                self.api_usage,
                self.consents,
                self.tombstones,
                self.access_tokens,
                self.studies,
                self.saved_queries,
                self.alert_rules,
                self.alert_events,
                self.alert_deliveries,
            )
        }

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    def table(self, name: object) -> t.Table:
        if not isinstance(name, str) or name not in self.tables:
            raise InvalidInput(f"unknown table {name!r}; choose from {', '.join(self.tables)}")
        return self.tables[name]
