"""Saved SQL Explorer queries: the Delta table `saved_queries` (lakehouse/tables.py).

A saved query has a name (unique per owner, ignoring case), a description, the SQL, and
optionally the chart drawn from its result (the JSON spec of pages/_shared/sql_chart.py).
Its owner sees it; when shared, every analyst of the team sees it too. A private query of
someone else is NotFound, never PermissionDenied, so its existence is not revealed. Only
the owner updates or shares a query; the owner or an admin deletes it (an admin deleting
someone else's query is audited as `saved_query_deleted`).

The SQL is checked by the explorer's own parser and sandbox check (`core.sql.check`) when
saved, without running it. The SQL Explorer is an analyst page, so every call needs the
analyst role. Writes hold the table's writer lock across the uniqueness check and the
commit, so two saves of one name cannot both land.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import polars as pl

from core.errors import InvalidInput, QueryRejected
from core.sql import check
from lakehouse.errors import NotFound, PermissionDenied
from lakehouse.models import ROLE_RANK, User
from lakehouse.store import Store
from lakehouse.tables import to_arrow

MAX_NAME = 100
MAX_DESCRIPTION = 2000
MAX_SQL = 100_000
"""The explorer's own limit (core.sql.check refuses longer queries)."""
MAX_CHART_BYTES = 8 * 1024
MAX_PER_USER = 500
ROLE = "analyst"
_ID = re.compile(r"[0-9a-f]{32}\Z")


class Actor(Protocol):
    """Who acts: a signed-in user (lakehouse.User fits)."""

    @property
    def user_id(self) -> str: ...

    @property
    def role(self) -> str: ...


class _Keep:
    """The default of `update` arguments: leave the field as it is."""

    def __repr__(self) -> str:
        return "KEEP"


KEEP: Final = _Keep()


@dataclass(frozen=True, slots=True)
class SavedQuery:
    query_id: str
    user_id: str
    owner: str | None
    """The owner's username (None if the account is gone)."""
    name: str
    description: str
    sql: str
    chart: dict[str, Any] | None
    shared: bool
    created_at: dt.datetime
    updated_at: dt.datetime


def check_name(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("a query name must be text")
    name = value.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidInput(f"a query name must be 1 to {MAX_NAME} characters, got {len(name)}")
    if any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidInput("a query name must not contain control characters")
    return name


def check_description(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("a query description must be text")
    text = value.strip()
    if len(text) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"a query description must be at most {MAX_DESCRIPTION:,} characters, got {len(text):,}"
        )
    if any(unicodedata.category(c) == "Cc" and c not in "\n\t" for c in text):
        raise InvalidInput("a query description must not contain control characters")
    return text


def check_sql(value: object) -> str:
    """The SQL, if the explorer would accept it (parsed and checked, never run)."""
    if not isinstance(value, str):
        raise InvalidInput("the SQL must be text")
    sql = value.strip()
    if not sql:
        raise InvalidInput("the SQL is empty; write a query first")
    if len(sql) > MAX_SQL:
        raise InvalidInput(f"the SQL is longer than {MAX_SQL:,} characters; shorten it")
    try:
        check(sql)
    except QueryRejected as exc:
        raise InvalidInput(f"the SQL Explorer would refuse this query: {exc}") from None
    return sql


def chart_json(value: object) -> str | None:
    """The chart spec as compact JSON: a JSON-safe dict of at most MAX_CHART_BYTES."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value:
        raise InvalidInput("a chart must be a non-empty spec (a dict from the chart builder)")
    if not isinstance(value.get("kind"), str):
        raise InvalidInput("a chart spec needs its chart kind")
    try:
        text = json.dumps(value, allow_nan=False, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError, RecursionError):
        raise InvalidInput(
            "a chart spec must hold only text, numbers, true/false, lists and dicts"
        ) from None
    size = len(text.encode())
    if size > MAX_CHART_BYTES:
        raise InvalidInput(f"a chart spec must be at most {MAX_CHART_BYTES:,} bytes, got {size:,}")
    return text


def _check_id(value: object) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise NotFound("no such saved query")
    return value


def _flag(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{what} must be true or false")
    return value


class SavedQueries:
    """Save, list, load, share and delete SQL Explorer queries of the team's analysts."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.table = store.saved_queries

    # --- writes --------------------------------------------------------------------------
    def save(
        self,
        user: Actor | str,
        name: str,
        sql: str,
        *,
        description: str = "",
        chart: dict[str, Any] | None = None,
        shared: bool = False,
    ) -> SavedQuery:
        """A new saved query of `user`; InvalidInput (nothing saved) when anything is off."""
        owner, _ = self._actor(user)
        row: dict[str, Any] = {
            "query_id": uuid.uuid4().hex,
            "user_id": owner,
            "name": check_name(name),
            "description": check_description(description),
            "sql": check_sql(sql),
            "chart": chart_json(chart),
            "shared": _flag(shared, "shared"),
        }
        with self.table.writer():
            rows = self._rows()
            mine = rows.filter(pl.col("user_id") == owner)
            if mine.height >= MAX_PER_USER:
                raise InvalidInput(
                    f"you have {MAX_PER_USER} saved queries, the most allowed; delete one first"
                )
            self._unique(mine, row["name"])
            row["created_at"] = row["updated_at"] = self.store.now()
            self.table.append_now(to_arrow(self.table.spec, [row]))
        return self._record(row, self._usernames({owner}))

    def update(
        self,
        user: Actor | str,
        query_id: str,
        *,
        name: str | _Keep = KEEP,
        description: str | _Keep = KEEP,
        sql: str | _Keep = KEEP,
        chart: dict[str, Any] | _Keep | None = KEEP,
        shared: bool | _Keep = KEEP,
    ) -> SavedQuery:
        """Overwrite the given fields of one of the owner's queries (others stay)."""
        changes: dict[str, Any] = {}
        if not isinstance(name, _Keep):
            changes["name"] = check_name(name)
        if not isinstance(description, _Keep):
            changes["description"] = check_description(description)
        if not isinstance(sql, _Keep):
            changes["sql"] = check_sql(sql)
        if not isinstance(chart, _Keep):
            changes["chart"] = chart_json(chart)
        if not isinstance(shared, _Keep):
            changes["shared"] = _flag(shared, "shared")
        return self._change(user, query_id, changes)

    def share(self, user: Actor | str, query_id: str, shared: bool) -> SavedQuery:
        """Share a query with the team (True) or make it private again (False)."""
        return self._change(user, query_id, {"shared": _flag(shared, "shared")})

    def delete(self, user: Actor | str, query_id: str) -> None:
        """Delete a query: its owner, or an admin (any query, shared or not)."""
        actor, role = self._actor(user)
        qid = _check_id(query_id)
        with self.table.writer():
            row = self._row(qid)
            if row is None or (row["user_id"] != actor and not row["shared"] and role != "admin"):
                raise NotFound("no such saved query (or it is not shared with you)")
            if row["user_id"] != actor and role != "admin":
                raise PermissionDenied("only the owner or an admin can delete a saved query")
            if row["user_id"] != actor:  # an admin removing someone's query: on the record
                detail = {"query_id": qid}
                owner = row["user_id"]
                self.store.audit.record(
                    "saved_query_deleted", "success", user_id=owner, actor_id=actor, detail=detail
                )
            self.table.delete_matching([{"query_id": qid}], on=("query_id",))

    # --- reads ---------------------------------------------------------------------------
    def list(self, user: Actor | str) -> list[SavedQuery]:
        """The user's own queries and the team's shared ones, newest first."""
        actor, _ = self._actor(user)
        rows = self._rows().filter((pl.col("user_id") == actor) | pl.col("shared"))
        rows = rows.sort(["updated_at", "name"], descending=[True, False])
        names = self._usernames(set(rows["user_id"].to_list()))
        return [self._record(r, names) for r in rows.iter_rows(named=True)]

    def get(self, user: Actor | str, query_id: str) -> SavedQuery:
        """One query the user can see; NotFound when missing or someone else's private one.

        `user` may be a user id (the alerts evaluator runs a query for its rule's owner): the
        account is looked up, and must still be an enabled analyst or admin."""
        actor, _ = self._actor(user)
        row = self._row(_check_id(query_id))
        if row is None or (row["user_id"] != actor and not row["shared"]):
            raise NotFound("no such saved query (or it is not shared with you)")
        return self._record(row, self._usernames({row["user_id"]}))

    # --- helpers -------------------------------------------------------------------------
    def _actor(self, user: Actor | str) -> tuple[str, str]:
        """(user id, role) of who acts; only analysts and admins use saved queries."""
        if isinstance(user, str):
            found = self.store.users.read().filter(pl.col("user_id") == user)
            if found.height == 0:
                raise NotFound("no such user")
            account = found.row(0, named=True)
            if account["disabled"]:
                raise PermissionDenied("this account is disabled")
            user_id, role = str(account["user_id"]), str(account["role"])
        elif isinstance(getattr(user, "user_id", None), str):
            if isinstance(user, User) and user.disabled:
                raise PermissionDenied("this account is disabled")
            user_id, role = user.user_id, user.role
        else:
            raise InvalidInput("saved queries need a signed-in user")
        if ROLE_RANK.get(role, -1) < ROLE_RANK[ROLE]:
            raise PermissionDenied("saved queries belong to the SQL Explorer: analysts only")
        return user_id, role

    def _change(self, user: Actor | str, query_id: str, changes: dict[str, Any]) -> SavedQuery:
        actor, _ = self._actor(user)
        qid = _check_id(query_id)
        with self.table.writer():
            row = self._row(qid)
            if row is None or (row["user_id"] != actor and not row["shared"]):
                raise NotFound("no such saved query (or it is not shared with you)")
            if row["user_id"] != actor:
                raise PermissionDenied("only the owner can change a saved query")
            if "name" in changes and changes["name"].casefold() != row["name"].casefold():
                self._unique(self._rows().filter(pl.col("user_id") == actor), changes["name"])
            row = {**row, **changes, "updated_at": self.store.now()}
            self.table.upsert([row], on=("query_id",))
        return self._record(row, self._usernames({actor}))

    def _rows(self) -> pl.DataFrame:
        return self.table.read()

    def _row(self, query_id: str) -> dict[str, Any] | None:
        found = self._rows().filter(pl.col("query_id") == query_id)
        return found.row(0, named=True) if found.height else None

    @staticmethod
    def _unique(mine: pl.DataFrame, name: str) -> None:
        key = name.casefold()
        if any(n.casefold() == key for n in mine["name"].to_list()):
            raise InvalidInput(f"you already have a saved query named {name!r}; pick another")

    def _usernames(self, ids: set[str]) -> dict[str, str]:
        if not ids:
            return {}
        users = self.store.users.read().filter(pl.col("user_id").is_in(list(ids)))
        return dict(zip(users["user_id"].to_list(), users["username"].to_list(), strict=True))

    @staticmethod
    def _record(row: Mapping[str, Any], names: Mapping[str, str]) -> SavedQuery:
        chart = json.loads(row["chart"]) if row["chart"] else None
        return SavedQuery(
            query_id=row["query_id"],
            user_id=row["user_id"],
            owner=names.get(row["user_id"]),
            name=row["name"],
            description=row["description"] or "",
            sql=row["sql"],
            chart=chart if isinstance(chart, dict) else None,
            shared=bool(row["shared"]),
            created_at=_utc(row["created_at"]),
            updated_at=_utc(row["updated_at"]),
        )


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
