"""LakehouseClient: time travel, restore, billing, audit queries, GDPR export and erasure,
and maintenance.

Build it from the app's backend so both share one session index::

    client = backend.client()     # or LakehouseClient(root, backend=backend) in a script

Erasure (GDPR Art. 17): `erase_user` deletes the account row, sessions, access tokens,
keys, usage and consents, clears IP and user agent from the user's audit records (which keep
only the random account id), revokes every session and access token and writes a tombstone
(user id, time, actor).
Personal columns never enter `_delta_log` statistics (see lakehouse.tables), so once
`maintain()` has vacuumed the old data files, which it does with zero retention while an
erasure is pending, no file under the root holds the email or username. Until then, time
travel hides erased users' rows, and `restore` refuses versions from before an erasure.

Personal data kept in files outside the tables (the SQL explorer history, ...) comes from
the `UserFiles` sources registered on the client (lakehouse.userdata): the export holds their
files, the erasure deletes them, and `maintain()` deletes them again for pending erasures.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import polars as pl
from deltalake.exceptions import DeltaError

from lakehouse import validate
from lakehouse.access_tokens import AccessTokens
from lakehouse.accounts import Accounts
from lakehouse.apikeys import KeyService
from lakehouse.authn import Authentication
from lakehouse.errors import InvalidInput, NotFound, PermissionDenied, StorageError
from lakehouse.maintenance import Progress, maintain_tables
from lakehouse.models import User
from lakehouse.store import Store
from lakehouse.userdata import UserFiles, check_file_name, check_source

DEFAULT_VACUUM_RETENTION_HOURS = 168
DEFAULT_AUDIT_RETENTION_DAYS = 90
USER_TABLES = (
    "users",
    "sessions",
    "access_tokens",
    "api_keys",
    "api_usage",
    "consents",
    "audit_log",
    "studies",
    "saved_queries",
    "alert_rules",
    "alert_events",
    "alert_deliveries",
)

# deleted by user_id on erasure (audit_log keeps its rows, pseudonymous; users goes last)
ERASED_TABLES = (
    "api_keys",
    "api_usage",
    "consents",
    "sessions",
    "access_tokens",
    "studies",
    "saved_queries",
    "alert_rules",
    "alert_events",
    "alert_deliveries",
    "users",
)


class Backend(Protocol):
    """The parts of the accounts backend the client works with (a LakehouseAuthBackend)."""

    root: Path
    store: Store
    accounts: Accounts
    authn: Authentication
    access_tokens: AccessTokens
    keys: KeyService


def _utc(value: object, what: str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    raise InvalidInput(f"{what} must be a date or datetime, got {type(value).__name__}")


class LakehouseClient:
    def __init__(
        self,
        root: Path | str,
        *,
        backend: Backend,
        audit_retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS,
        vacuum_retention_hours: int = DEFAULT_VACUUM_RETENTION_HOURS,
        user_data: Iterable[UserFiles] = (),
    ) -> None:
        self.backend = backend
        if Path(root).expanduser().resolve() != self.backend.root:
            raise InvalidInput("backend belongs to another root folder")
        self.store = self.backend.store
        self.accounts = self.backend.accounts
        self.audit_retention_days = validate.positive_int(
            audit_retention_days, "audit_retention_days"
        )
        self.vacuum_retention_hours = validate.positive_int(
            vacuum_retention_hours, "vacuum_retention_hours"
        )
        self.user_data: list[UserFiles] = []
        for source in user_data:
            self.register_user_data(source)

    def register_user_data(self, source: UserFiles) -> None:
        """Add a source of per-user files to the export, the erasure and maintenance."""
        checked = check_source(source)
        if any(s.name == checked.name for s in self.user_data):
            raise InvalidInput(f"a user-data source named {checked.name} is already registered")
        self.user_data.append(checked)

    def _erase_files(self, uid: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for source in self.user_data:
            try:
                out[source.name] = int(source.erase_user(uid))
            except OSError as exc:
                raise StorageError(f"cannot erase the {source.name} files: {exc}") from exc
        return out

    # --- keys ------------------------------------------------------------------------------
    def get_api_keys(self, user_id: str) -> dict[str, Any]:
        return self.backend.keys.get(user_id)

    # --- time travel -----------------------------------------------------------------------
    def _erased_ids(self) -> list[str]:
        return self.store.tombstones.read()["user_id"].to_list()

    def history(self, table: str, *, acting_user: User) -> list[dict[str, Any]]:
        """Commits of a table, newest first: version, timestamp (UTC), operation, metrics."""
        self.accounts.require_role(acting_user, "admin", "history")
        tab = self.store.table(table)
        out = []
        for h in tab.delta().history():
            out.append(
                {
                    "version": h.get("version"),
                    "timestamp": dt.datetime.fromtimestamp(h["timestamp"] / 1000, dt.UTC),
                    "operation": h.get("operation"),
                    "parameters": {
                        k: v
                        for k, v in (h.get("operationParameters") or {}).items()
                        if k in ("mode", "mergePredicate", "predicate", "version")
                    },
                    "metrics": h.get("operationMetrics") or {},
                }
            )
        return out

    def read_version(self, table: str, version: int, *, acting_user: User) -> pl.DataFrame:
        """The table as of `version`; secret columns and erased users' rows are left out."""
        self.accounts.require_role(acting_user, "admin", "read_version")
        tab = self.store.table(table)
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise InvalidInput("version must be a non-negative integer")
        try:
            df = tab.read(version=version)
        except StorageError as exc:
            raise NotFound(f"version {version} of {table} is not available ({exc})") from exc
        erased = self._erased_ids()
        if erased and "user_id" in df.columns and tab.name != "tombstones":
            df = df.filter(~pl.col("user_id").is_in(erased))
        return df.drop([c for c in tab.spec.secret_columns if c in df.columns])

    def restore(self, table: str, version: int, *, acting_user: User) -> dict[str, Any]:
        """Restore a table to an earlier version (admin, audited)."""
        actor = self.accounts.require_role(acting_user, "admin", "restore")
        tab = self.store.table(table)
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise InvalidInput("version must be a non-negative integer")
        if tab.name in ("audit_log", "tombstones"):
            raise InvalidInput(f"{tab.name} is append-only evidence and cannot be restored")
        if tab.name == "sessions":
            # Revocation must be one-way: an older version would bring ended logins back.
            raise InvalidInput(
                "sessions cannot be restored: it would revive revoked logins; "
                "end or keep sessions from the Users page instead"
            )
        if tab.name == "access_tokens":
            raise InvalidInput(
                "access_tokens cannot be restored: it would revive revoked tokens; "
                "owners create new tokens on My account instead"
            )
        hist = {h["version"]: h for h in tab.delta().history()}
        if version not in hist:
            raise NotFound(f"version {version} of {table} does not exist")
        if version >= tab.latest_version():
            raise InvalidInput(f"version {version} is the current version")
        erased = self._erased_ids()
        if erased and "user_id" in tab.spec.schema.names:
            then = tab.read(version=version)
            if then.filter(pl.col("user_id").is_in(erased)).height:
                raise InvalidInput(
                    f"version {version} predates an account erasure; restoring it would bring "
                    "erased personal data back"
                )
        self.store.audit.record(
            "restore",
            "success",
            user_id=actor.user_id,
            detail={"table": tab.name, "version": version},
        )
        with tab.writer():
            try:
                result = tab.delta().restore(version, commit_properties=tab.commit_properties())
            except (DeltaError, OSError) as exc:
                raise StorageError(f"cannot restore {table}: {exc}") from exc
        self.accounts.refresh(force=True)
        return dict(result)

    # --- billing ---------------------------------------------------------------------------
    def billing_summary(self, user_id: str, start: object, end: object) -> dict[str, Any]:
        """Queries per provider per UTC day in [start, end], plus totals per provider."""
        uid = validate.user_id(user_id)
        lo, hi = _utc(start, "start"), _utc(end, "end")
        if isinstance(end, dt.date) and not isinstance(end, dt.datetime):
            hi = hi + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
        if hi < lo:
            raise InvalidInput("end must not be before start")
        df = self.store.api_usage.read().filter(
            (pl.col("user_id") == uid) & pl.col("ts").is_between(lo, hi)
        )
        daily = (
            df.group_by("date", "provider")
            .agg(pl.col("count").sum().alias("queries"))
            .sort("date", "provider")
        )
        totals = df.group_by("provider").agg(pl.col("count").sum().alias("queries"))
        per_provider = {r["provider"]: int(r["queries"]) for r in totals.iter_rows(named=True)}
        return {
            "daily": [
                {"date": r["date"], "provider": r["provider"], "queries": int(r["queries"])}
                for r in daily.iter_rows(named=True)
            ],
            "totals": dict(sorted(per_provider.items())),
            "total": sum(per_provider.values()),
            "start": lo,
            "end": hi,
        }

    def usage_history(self, user_id: str, days: int = 30) -> pl.DataFrame:
        """Queries per provider per day over the last `days` days (for a chart)."""
        uid = validate.user_id(user_id)
        n = validate.positive_int(days, "days")
        since = self.store.now() - dt.timedelta(days=n)
        return (
            self.store.api_usage.read()
            .filter((pl.col("user_id") == uid) & (pl.col("ts") >= since))
            .group_by("date", "provider")
            .agg(pl.col("count").sum().alias("queries"))
            .sort("date", "provider")
        )

    # --- audit -----------------------------------------------------------------------------
    def query_audit(
        self,
        *,
        acting_user: User,
        user_id: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        start: object = None,
        end: object = None,
        limit: int = 1000,
    ) -> pl.DataFrame:
        """Audit records, newest first, filtered (admin)."""
        self.accounts.require_role(acting_user, "admin", "query_audit")
        n = validate.positive_int(limit, "limit")
        df = self.store.audit_table.read()
        if user_id is not None:
            df = df.filter(pl.col("user_id") == validate.text(user_id, "user_id"))
        if action is not None:
            df = df.filter(pl.col("action") == validate.text(action, "action"))
        if outcome is not None:
            df = df.filter(pl.col("outcome") == validate.text(outcome, "outcome"))
        if start is not None:
            df = df.filter(pl.col("ts") >= _utc(start, "start"))
        if end is not None:
            hi = _utc(end, "end")
            if isinstance(end, dt.date) and not isinstance(end, dt.datetime):
                hi += dt.timedelta(days=1)
                df = df.filter(pl.col("ts") < hi)
            else:
                df = df.filter(pl.col("ts") <= hi)
        return df.sort("ts", descending=True).head(n).drop("date")

    def audit_user(self, name_or_id: str, *, acting_user: User) -> tuple[str, str]:
        """The audit log's user id for a username or an id typed by an admin, and what it is:
        "account" (a username or id of an account), "erased" (an erased account's id),
        "id" (another id as stored in the log) or "no account" (a name without an account:
        its pseudonymous id, under which sign-in attempts with that name are recorded)."""
        self.accounts.require_role(acting_user, "admin", "query_audit")
        typed = validate.text(name_or_id, "user").strip()
        if not typed:
            raise InvalidInput("type a username or a user id")
        try:
            found = self.accounts.find(typed)
        except InvalidInput:
            found = None
        if found is not None:
            return found.user_id, "account"
        if typed in self._erased_ids():
            return typed, "erased"
        if typed.startswith("anon-") or _is_user_id(typed):
            return typed, "account" if typed in self.accounts.by_id else "id"
        try:
            _, key = validate.username(typed)
        except InvalidInput:
            key = typed.casefold()[:64]  # as login() keys a name it cannot accept
        return self.store.audit.pseudonym(key), "no account"

    # --- GDPR ------------------------------------------------------------------------------
    def _user_tables(self, uid: str) -> dict[str, pl.DataFrame]:
        s = self.store
        out: dict[str, pl.DataFrame] = {}
        for name in USER_TABLES:
            tab = s.table(name)
            df = tab.read().filter(pl.col("user_id") == uid)
            out[name] = df.drop([c for c in tab.spec.secret_columns if c in df.columns])
        return out

    def export_user_data(self, user_id: str, *, acting_user: User | None = None) -> bytes:
        """A zip with JSON and CSV of everything stored about the user (GDPR Art. 15/20).

        The user may export their own data; an admin may export anyone's.
        """
        uid = validate.user_id(user_id)
        acc = self.accounts.get(uid)
        if acting_user is not None and acting_user.user_id != uid:
            self.accounts.require_role(acting_user, "admin", "export_user_data")
        self.store.audit.record(
            "export",
            "success",
            user_id=uid,
            actor_id=acting_user.user_id if acting_user else uid,
        )
        frames = self._user_tables(uid)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            manifest = {
                "user_id": uid,
                "username": acc.username,
                "exported_at": self.store.now().isoformat(),
                "files": {},
            }
            taken = {"manifest.json"}
            for name, df in frames.items():
                rows = df.to_dicts()
                zf.writestr(f"{name}.json", json.dumps(rows, default=_json_default, indent=2))
                zf.writestr(f"{name}.csv", _csv(df))
                taken |= {f"{name}.json", f"{name}.csv"}
                manifest["files"][name] = len(rows)  # type: ignore[index]
            listed: dict[str, dict[str, Any]] = {}
            for source in self.user_data:
                try:
                    files = source.export_user(uid)
                except OSError as exc:
                    raise StorageError(f"cannot read the {source.name} files: {exc}") from exc
                for fname, data in sorted(files.items()):
                    check_file_name(source.name, fname, taken)
                    if not isinstance(data, bytes):
                        raise InvalidInput(f"user-data source {source.name} gave {fname} as text")
                    taken.add(fname)
                    zf.writestr(fname, data)
                    listed[fname] = {"source": source.name, "bytes": len(data)}
            manifest["user_files"] = listed
            zf.writestr("manifest.json", json.dumps(manifest, indent=2))
        return buf.getvalue()

    def erase_user(self, user_id: str, *, acting_user: User) -> dict[str, Any]:
        """Erase an account's personal data (GDPR Art. 17): the user themself or an admin."""
        uid = validate.user_id(user_id)
        if not isinstance(acting_user, User):
            raise PermissionDenied("erase_user needs a logged-in user")
        if acting_user.user_id != uid:
            self.accounts.require_role(acting_user, "admin", "erase_user")
        else:
            self.accounts.require_role(acting_user, "viewer", "erase_user")
        acc = self.accounts.get(uid)
        admins = self.accounts.active_admins()
        if acc.role == "admin" and admins == {uid}:
            raise InvalidInput("this is the last admin; make another admin first")
        s = self.store
        now = s.now()
        s.audit.record("erase", "success", user_id=uid, actor_id=acting_user.user_id)
        authn = self.backend.authn
        authn.revoke(authn.session_ids_of(uid), "account erased")
        self.backend.access_tokens.revoke_all(uid, "account erased", actor_id=acting_user.user_id)
        self.accounts.throttle.forget(acc.username_key)  # known IPs and counters, in memory
        # Files first: if one cannot be deleted the account still exists, so the erasure
        # can simply be run again.
        self._erase_files(uid)
        key = [{"user_id": uid}]
        for name in ERASED_TABLES:
            s.table(name).delete_matching(key, ["user_id"])
        s.audit_table.update_rows([{"user_id": uid, "ip": None, "user_agent": None}], ["user_id"])
        stone = {"user_id": uid, "erased_at": now, "actor_id": acting_user.user_id}
        s.tombstones.append([stone])
        self.accounts.refresh(force=True)
        return stone

    def tombstones(self, *, acting_user: User) -> pl.DataFrame:
        self.accounts.require_role(acting_user, "admin", "tombstones")
        return self.store.tombstones.read().sort("erased_at", descending=True)

    # --- maintenance -----------------------------------------------------------------------
    def maintain(
        self, progress: Progress | None = None, *, acting_user: User | None = None
    ) -> dict[str, Any]:
        """Compact, apply audit retention, prune ended sessions and access tokens, vacuum,
        checkpoint and clean the log of each table (lakehouse.maintenance).

        `acting_user=None` means the operator's shell (CLI); from the app pass the admin.
        """
        if acting_user is not None:
            self.accounts.require_role(acting_user, "admin", "maintain")
        report = maintain_tables(
            self.store,
            actor=acting_user.user_id if acting_user else "cli",
            audit_retention_days=self.audit_retention_days,
            vacuum_retention_hours=self.vacuum_retention_hours,
            erase_files=self._erase_files if self.user_data else None,
            progress=progress,
        )
        self.accounts.refresh(force=True)
        return report


def _is_user_id(text: str) -> bool:
    try:
        validate.user_id(text)
    except InvalidInput:
        return False
    return True


def _json_default(value: object) -> str:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def _csv(df: pl.DataFrame) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(df.columns)
    for row in df.iter_rows():
        w.writerow([_json_default(v) if v is not None else "" for v in row])
    return out.getvalue()
