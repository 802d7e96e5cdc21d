"""Alerts: rules on a series or a saved query, an in-app inbox, and signed webhooks.

`Alerts` (on `Services.alerts`) is the one entry point: rules are created, changed and
deleted by their owner (analysts and admins), firings land in `alert_events` (the inbox)
and webhook attempts in `alert_deliveries`. `start()` runs the evaluator (one daemon thread
per process, core.alerts.evaluator) and the webhook worker; `close()` stops both.

    created = services.alerts.create_rule(user, "BTC stretch", "zscore",
                                          {"window": 20, "bound": 2.5},
                                          venue="demo", symbol="BTC/USDT", timeframe="1m",
                                          webhook_url="https://hooks.example.com/x")
    created.secret      # the signing secret, shown once
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

import polars as pl

from core.alerts import rules as r
from core.alerts.inbox import AlertEvent, CachedTable, Delivery, Inbox
from core.alerts.records import AlertRule, CreatedRule, RuleStatus, rule_of
from core.alerts.webhook import Deliverer, TargetRefused, check_url, resolve
from core.config import Settings
from core.data.schema import TIMEFRAMES
from core.errors import InvalidInput
from lakehouse.errors import NotFound, PermissionDenied
from lakehouse.keys import Sealed
from lakehouse.models import User
from lakehouse.store import Store

if TYPE_CHECKING:
    from core.alerts.evaluator import Evaluator
    from core.engine import Engine

__all__ = ["AlertEvent", "AlertRule", "Alerts", "CreatedRule", "Delivery", "RuleStatus"]

MAX_COOLDOWN_S = 7 * 86400
DEFAULT_COOLDOWN_S = 300


def saved_query_sql(store: Store, user_id: str, query_id: str) -> tuple[str, str]:
    """(name, sql) of a saved query the user may still run: their own or a shared one, and
    only while their account is an enabled analyst or admin."""
    from core.research.queries import SavedQueries

    query = SavedQueries(store).get(user_id, query_id)
    return query.name, query.sql


class Alerts:
    def __init__(self, store: Store, settings: Settings, engine: Engine | None = None) -> None:
        self.store = store
        self.settings = settings
        self.engine = engine
        self.inbox = Inbox(store.alert_events, store.alert_deliveries)
        self._rules = CachedTable(store.alert_rules)
        self.status: dict[str, RuleStatus] = {}
        self.deliverer = Deliverer(
            lambda row: self.inbox.record_delivery(row, self.store.now()),
            attempts=settings.alert_webhook_attempts,
            backoff_s=settings.alert_webhook_backoff_s,
            allow_private=settings.alert_webhook_allow_private,
        )
        self._evaluator: Evaluator | None = None
        self._lock = threading.Lock()

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> Alerts:
        """Start the evaluator thread and the webhook worker (once; later calls do nothing)."""
        from core.alerts.evaluator import Evaluator

        if self.engine is None:
            raise InvalidInput("the evaluator needs the engine (market store and SQL explorer)")
        with self._lock:
            self.deliverer.start()
            if self._evaluator is None:
                self._evaluator = Evaluator(self, self.engine)
            self._evaluator.start()
        return self

    @property
    def evaluator(self) -> Evaluator:
        """The evaluator (built on first use; `start()` runs it on its thread)."""
        from core.alerts.evaluator import Evaluator

        if self.engine is None:
            raise InvalidInput("the evaluator needs the engine (market store and SQL explorer)")
        with self._lock:
            if self._evaluator is None:
                self._evaluator = Evaluator(self, self.engine)
            return self._evaluator

    @property
    def running(self) -> bool:
        return self._evaluator is not None and self._evaluator.running

    def close(self) -> None:
        """Stop the evaluator and the webhook worker; safe to call twice."""
        if self._evaluator is not None:
            self._evaluator.stop()
        self.deliverer.stop()

    # --- rules ---------------------------------------------------------------------------
    @staticmethod
    def _check_role(user: User) -> None:
        if not user.has_role("analyst"):
            raise PermissionDenied("alerts are for analysts and admins")

    def _check_webhook(self, url: str) -> str:
        check_url(url)
        try:
            resolve(url, allow_private=self.settings.alert_webhook_allow_private)
        except TargetRefused as exc:
            if "does not resolve" not in str(exc):  # DNS may be down now; checked again later
                raise
        return url.strip()

    def create_rule(
        self,
        user: User,
        name: str,
        kind: str,
        params: Mapping[str, Any],
        *,
        venue: str | None = None,
        symbol: str | None = None,
        timeframe: str | None = "1m",
        query_id: str | None = None,
        cooldown_s: int = DEFAULT_COOLDOWN_S,
        webhook_url: str | None = None,
        enabled: bool = True,
    ) -> CreatedRule:
        """A new rule owned by `user`; raises InvalidInput naming any bad field."""
        self._check_role(user)
        name = (name or "").strip()
        if not name or len(name) > 100:
            raise InvalidInput("name must be 1 to 100 characters")
        parsed = r.parse_params(kind, params)
        if kind == "query_rows":
            if not query_id:
                raise InvalidInput("a query_rows rule needs a saved query (query_id)")
            saved_query_sql(self.store, user.user_id, query_id)
            venue = symbol = timeframe = None
        else:
            if not (venue or "").strip() or not (symbol or "").strip():
                raise InvalidInput("a series rule needs a venue and a symbol")
            if len(venue or "") > 64 or len(symbol or "") > 64:
                raise InvalidInput("venue and symbol are at most 64 characters")
            if timeframe not in TIMEFRAMES:
                raise InvalidInput(f"timeframe must be one of {', '.join(TIMEFRAMES)}")
            query_id = None
        if isinstance(cooldown_s, bool) or not isinstance(cooldown_s, int):
            raise InvalidInput("cooldown_s must be a whole number of seconds")
        if not 0 <= cooldown_s <= MAX_COOLDOWN_S:
            raise InvalidInput(f"cooldown_s must be between 0 and {MAX_COOLDOWN_S}")
        url = self._check_webhook(webhook_url) if webhook_url and webhook_url.strip() else None
        now = self.store.now()
        rule = AlertRule(
            uuid.uuid4().hex, user.user_id, name, kind, parsed,
            (venue or "").strip() or None, (symbol or "").strip() or None, timeframe, query_id,
            cooldown_s, url, enabled, now, now, None,
        )  # fmt: skip
        secret = secrets.token_urlsafe(32) if url else None
        self.store.alert_rules.append([self._row(rule, secret)])
        return CreatedRule(rule, secret)

    def _row(self, rule: AlertRule, secret: str | None) -> dict[str, Any]:
        row: dict[str, Any] = {
            "rule_id": rule.rule_id,
            "user_id": rule.user_id,
            "name": rule.name,
            "kind": rule.kind,
            "params": json.dumps(r.params_dict(rule.params)),
            "venue": rule.venue,
            "symbol": rule.symbol,
            "timeframe": rule.timeframe,
            "query_id": rule.query_id,
            "cooldown_s": rule.cooldown_s,
            "webhook_url": rule.webhook_url,
            "enabled": rule.enabled,
            "created_at": rule.created_at,
            "updated_at": rule.updated_at,
            "last_fired_at": rule.last_fired_at,
        }
        if secret is not None:
            sealed = self.store.vault.seal(rule.user_id, "alert:" + rule.rule_id, secret)
            row |= {
                "webhook_kid": sealed.kid,
                "webhook_nonce": sealed.nonce,
                "webhook_secret": sealed.ciphertext,
            }
        return row

    def all_rules(self) -> list[AlertRule]:
        """Every rule of every user (the evaluator's view)."""
        return [rule_of(row) for row in self._rules.frame().iter_rows(named=True)]

    def rules(self, user: User) -> list[AlertRule]:
        """The user's rules, newest first."""
        frame = self._rules.frame().filter(pl.col("user_id") == user.user_id)
        return [
            rule_of(row) for row in frame.sort("created_at", descending=True).iter_rows(named=True)
        ]

    def rule(self, user: User, rule_id: str) -> AlertRule:
        """One of the user's rules; NotFound for a missing rule or another user's."""
        for rule in self.rules(user):
            if rule.rule_id == rule_id:
                return rule
        raise NotFound("no such alert rule")

    def update_rule(
        self,
        user: User,
        rule_id: str,
        *,
        name: str | None = None,
        params: Mapping[str, Any] | None = None,
        cooldown_s: int | None = None,
        webhook_url: str | None = None,
    ) -> CreatedRule:
        """Change a rule's name, parameters, cool-down or webhook URL ("" removes it). A
        newly added webhook gets a new secret, returned once in `secret`."""
        self._check_role(user)
        old = self.rule(user, rule_id)
        new = old
        if name is not None:
            if not name.strip() or len(name.strip()) > 100:
                raise InvalidInput("name must be 1 to 100 characters")
            new = replace(new, name=name.strip())
        if params is not None:
            new = replace(new, params=r.parse_params(old.kind, params))
        if cooldown_s is not None:
            if isinstance(cooldown_s, bool) or not 0 <= int(cooldown_s) <= MAX_COOLDOWN_S:
                raise InvalidInput(f"cooldown_s must be between 0 and {MAX_COOLDOWN_S}")
            new = replace(new, cooldown_s=int(cooldown_s))
        secret: str | None = None
        if webhook_url is not None:
            url = self._check_webhook(webhook_url) if webhook_url.strip() else None
            if url and not old.webhook_url:
                secret = secrets.token_urlsafe(32)
            new = replace(new, webhook_url=url)
        new = replace(new, updated_at=self.store.now())
        row = self._row(new, secret)
        if webhook_url is not None and new.webhook_url is None:  # removed: forget its secret
            row |= {"webhook_kid": None, "webhook_nonce": None, "webhook_secret": None}
        if secret is None:  # keep the sealed secret columns and the evaluator's last firing
            row.pop("last_fired_at")
            self.store.alert_rules.update_rows([row], on=("rule_id",))
        else:
            self.store.alert_rules.upsert([row], on=("rule_id",))
        return CreatedRule(new, secret)

    def _set_enabled(self, user: User, rule_id: str, enabled: bool) -> None:
        self._check_role(user)
        self.rule(user, rule_id)
        row = {"rule_id": rule_id, "enabled": enabled, "updated_at": self.store.now()}
        self.store.alert_rules.update_rows([row], on=("rule_id",))

    def enable(self, user: User, rule_id: str) -> None:
        self._set_enabled(user, rule_id, True)

    def disable(self, user: User, rule_id: str) -> None:
        self._set_enabled(user, rule_id, False)

    def delete_rule(self, user: User, rule_id: str) -> None:
        """Delete the rule (its past events and deliveries stay in the inbox and log)."""
        self._check_role(user)
        self.rule(user, rule_id)
        self.store.alert_rules.delete_matching([{"rule_id": rule_id}], on=("rule_id",))
        self.status.pop(rule_id, None)

    def webhook_secret(self, rule: AlertRule) -> str | None:
        """The rule's signing secret, unsealed (for delivery; never shown again)."""
        frame = self._rules.frame().filter(pl.col("rule_id") == rule.rule_id)
        if frame.height == 0 or frame["webhook_secret"][0] is None:
            return None
        row = frame.row(0, named=True)
        sealed = Sealed(row["webhook_kid"], row["webhook_nonce"], row["webhook_secret"])
        return self.store.vault.open(rule.user_id, "alert:" + rule.rule_id, sealed)

    # --- firing (the evaluator calls these) -----------------------------------------------
    def fire(self, rule: AlertRule, reading: r.Reading) -> AlertEvent:
        """Record a firing in the owner's inbox and queue its webhook."""
        now = self.store.now()
        where = rule.target if rule.kind != "query_rows" else "saved query"
        message = f"{rule.name} ({where}): {reading.message}"
        event = self.inbox.add(
            rule_id=rule.rule_id,
            user_id=rule.user_id,
            now=now,
            message=message,
            value=reading.value,
            data_ts=reading.data_ts,
        )
        row = {"rule_id": rule.rule_id, "last_fired_at": now}
        self.store.alert_rules.update_rows([row], on=("rule_id",))
        secret = self.webhook_secret(rule) if rule.webhook_url else None
        if rule.webhook_url and secret:
            self.deliverer.submit(
                event.event_id, rule.rule_id, rule.user_id, rule.webhook_url, secret,
                self.payload(rule, event),
            )  # fmt: skip
        return event

    @staticmethod
    def payload(rule: AlertRule, event: AlertEvent) -> bytes:
        body = {
            "event_id": event.event_id,
            "rule_id": rule.rule_id,
            "rule_name": rule.name,
            "kind": rule.kind,
            "series": None
            if rule.kind == "query_rows"
            else {"venue": rule.venue, "symbol": rule.symbol, "timeframe": rule.timeframe},
            "query_id": rule.query_id,
            "message": event.message,
            "value": event.value
            if event.value is not None and math.isfinite(event.value)
            else None,
            "ts": event.data_ts.isoformat() if event.data_ts else None,
            "fired_at": event.ts.isoformat(),
        }
        return json.dumps(body, separators=(",", ":"), allow_nan=False, default=str).encode()

    # --- inbox ---------------------------------------------------------------------------
    def unread_count(self, user: User) -> int:
        return self.inbox.unread_count(user.user_id)

    def events(
        self, user: User, *, limit: int = 200, since: dt.datetime | None = None
    ) -> list[AlertEvent]:
        return self.inbox.events(user.user_id, limit=limit, since=since)

    def mark_read(self, user: User, event_ids: Sequence[str] | Literal["all"]) -> int:
        return self.inbox.mark_read(user.user_id, event_ids, self.store.now())

    def deliveries(self, user: User, rule_id: str | None = None) -> list[Delivery]:
        return self.inbox.deliveries(user.user_id, rule_id=rule_id)
