"""The in-app inbox and the deliveries log: typed records over `alert_events` and
`alert_deliveries`, with a read cache keyed on the table version (a page's badge costs one
directory listing when nothing new arrived)."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl

from lakehouse.tables import Table


@dataclass(frozen=True, slots=True)
class AlertEvent:
    event_id: str
    rule_id: str
    user_id: str
    ts: dt.datetime
    message: str
    value: float | None
    data_ts: dt.datetime | None
    read_at: dt.datetime | None

    @property
    def unread(self) -> bool:
        return self.read_at is None


@dataclass(frozen=True, slots=True)
class Delivery:
    delivery_id: str
    event_id: str
    rule_id: str
    ts: dt.datetime
    attempt: int
    status: str
    http_status: int | None
    error: str | None


class CachedTable:
    """`frame()` re-reads the Delta table only when its latest version changed."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._lock = threading.Lock()
        self._cached: tuple[int, pl.DataFrame] | None = None

    def frame(self) -> pl.DataFrame:
        version = self.table.latest_version()
        with self._lock:
            if self._cached is not None and self._cached[0] == version:
                return self._cached[1]
        frame = self.table.read()
        with self._lock:
            self._cached = (version, frame)
        return frame


class Inbox:
    def __init__(self, events: Table, deliveries: Table) -> None:
        self.events_table = events
        self.deliveries_table = deliveries
        self._events = CachedTable(events)
        self._deliveries = CachedTable(deliveries)

    # --- events --------------------------------------------------------------------------
    def add(
        self,
        *,
        rule_id: str,
        user_id: str,
        now: dt.datetime,
        message: str,
        value: float | None,
        data_ts: dt.datetime | None,
    ) -> AlertEvent:
        event = AlertEvent(uuid.uuid4().hex, rule_id, user_id, now, message, value, data_ts, None)
        self.events_table.append(
            [
                {
                    "event_id": event.event_id,
                    "rule_id": rule_id,
                    "user_id": user_id,
                    "ts": now,
                    "date": now.date(),
                    "message": message,
                    "value": value,
                    "data_ts": data_ts,
                    "read_at": None,
                }
            ]
        )
        return event

    def _mine(self, user_id: str) -> pl.DataFrame:
        return self._events.frame().filter(pl.col("user_id") == user_id)

    def events(
        self, user_id: str, *, limit: int = 200, since: dt.datetime | None = None
    ) -> list[AlertEvent]:
        """The user's events, newest first (only those after `since` when given)."""
        frame = self._mine(user_id)
        if since is not None:
            frame = frame.filter(pl.col("ts") > since)
        frame = frame.sort("ts", descending=True).head(limit)
        return [
            AlertEvent(
                r["event_id"],
                r["rule_id"],
                r["user_id"],
                r["ts"],
                r["message"],
                r["value"],
                r["data_ts"],
                r["read_at"],
            )
            for r in frame.iter_rows(named=True)
        ]

    def unread_count(self, user_id: str) -> int:
        return self._mine(user_id).filter(pl.col("read_at").is_null()).height

    def mark_read(
        self, user_id: str, event_ids: Sequence[str] | Literal["all"], now: dt.datetime
    ) -> int:
        """Mark the user's unread events (those listed, or all) read; returns how many.
        Ids of other users' events are ignored."""
        unread = self._mine(user_id).filter(pl.col("read_at").is_null())
        if event_ids != "all":
            unread = unread.filter(pl.col("event_id").is_in(list(event_ids)))
        rows: list[dict[str, Any]] = [
            {"event_id": e, "read_at": now} for e in unread["event_id"].to_list()
        ]
        self.events_table.update_rows(rows, on=("event_id",))
        return len(rows)

    # --- deliveries ----------------------------------------------------------------------
    def record_delivery(self, row: dict[str, Any], now: dt.datetime) -> None:
        self.deliveries_table.append([{"delivery_id": uuid.uuid4().hex, "ts": now, **row}])

    def deliveries(
        self, user_id: str, *, rule_id: str | None = None, limit: int = 500
    ) -> list[Delivery]:
        """The user's delivery attempts (of one rule when given), newest first."""
        frame = self._deliveries.frame().filter(pl.col("user_id") == user_id)
        if rule_id is not None:
            frame = frame.filter(pl.col("rule_id") == rule_id)
        frame = frame.sort(["ts", "attempt"], descending=True).head(limit)
        return [
            Delivery(
                r["delivery_id"],
                r["event_id"],
                r["rule_id"],
                r["ts"],
                r["attempt"],
                r["status"],
                r["http_status"],
                r["error"],
            )
            for r in frame.iter_rows(named=True)
        ]
