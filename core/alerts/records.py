"""The records the alerts façade hands out: rules, a created rule with its one-time secret,
and the evaluator's status of a rule."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.alerts import rules as r
from core.data.catalog import SeriesRef


@dataclass(frozen=True, slots=True)
class AlertRule:
    rule_id: str
    user_id: str
    name: str
    kind: str
    params: r.Params
    venue: str | None
    symbol: str | None
    timeframe: str | None
    query_id: str | None
    cooldown_s: int
    webhook_url: str | None
    enabled: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    last_fired_at: dt.datetime | None

    @property
    def target(self) -> str:
        """What the rule watches, in words: 'BTC/USDT · demo (SIMULATED) · 1m' or
        'saved query <id>'."""
        if self.kind == "query_rows":
            return f"saved query {self.query_id}"
        return SeriesRef(self.venue or "", self.symbol or "", self.timeframe or "").label


@dataclass(frozen=True, slots=True)
class CreatedRule:
    rule: AlertRule
    secret: str | None
    """The webhook signing secret: returned once, stored only sealed."""


@dataclass(slots=True)
class RuleStatus:
    """What the evaluator last did with a rule (kept in memory; shown on the page)."""

    checked_at: dt.datetime | None = None
    state: int | None = None
    error: str | None = None
    error_at: dt.datetime | None = None


def rule_of(row: Mapping[str, Any]) -> AlertRule:
    return AlertRule(
        rule_id=row["rule_id"],
        user_id=row["user_id"],
        name=row["name"],
        kind=row["kind"],
        params=r.parse_params(row["kind"], json.loads(row["params"] or "{}")),
        venue=row["venue"],
        symbol=row["symbol"],
        timeframe=row["timeframe"],
        query_id=row["query_id"],
        cooldown_s=int(row["cooldown_s"] or 0),
        webhook_url=row["webhook_url"],
        enabled=bool(row["enabled"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        last_fired_at=row["last_fired_at"],
    )
