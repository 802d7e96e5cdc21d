"""Display helpers for the account and admin pages: tables with word headers, browser
summaries, access tokens, audit user names, maintenance reports, flash messages, escaping."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import polars as pl
import streamlit as st

from lakehouse import PROVIDER_NAMES, SCOPE_MIN_ROLE, AccessToken, User
from lakehouse.quotas import alert_level
from pages._shared.format import MISSING, integer, pct, plural, table
from pages._shared.format import md_escape as md_escape  # re-exported: the one escaping helper

_FLASH_KEY = "_hfthot_flash"

Column = tuple[Any, Callable[[Any], Any]]
"""A table column: its Polars type and how to read its value from one row."""


def frame_of(rows: Sequence[Any], columns: Mapping[str, Column]) -> pl.DataFrame:
    """A frame with one column per entry of `columns`, typed even when `rows` is empty."""
    return pl.DataFrame(
        {name: [read(r) for r in rows] for name, (_, read) in columns.items()},
        schema={name: kind for name, (kind, _) in columns.items()},
    )


UTC_TIME = pl.Datetime("us", "UTC")


def flash(message: str) -> None:
    """Show `message` as a success note after the next rerun."""
    st.session_state[_FLASH_KEY] = message


def show_flash() -> None:
    message = st.session_state.pop(_FLASH_KEY, None)
    if isinstance(message, str):
        st.success(message)


_BROWSERS = (  # checked in this order: Edge and Opera also say "Chrome", Chrome says "Safari"
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"OPR/(\d+)")),
    ("Firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
    ("Headless Chrome", re.compile(r"HeadlessChrome/(\d+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/")),
)
_SYSTEMS = (  # the first match wins: Android and ChromeOS also say "Linux"
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
)
_TOOL = re.compile(r"^([A-Za-z][\w.-]*)/(\d+(?:\.\d+)?)")


def browser_summary(agent: str | None) -> str:
    """A user agent in a few words: "Chrome 156 on Linux", "curl 8.5", "—" when unknown."""
    if not agent:
        return MISSING
    system = next((name for token, name in _SYSTEMS if token in agent), None)
    for name, pattern in _BROWSERS:
        found = pattern.search(agent)
        if found:
            return f"{name} {found.group(1)}" + (f" on {system}" if system else "")
    tool = _TOOL.match(agent)
    if tool and tool.group(1) != "Mozilla":
        return f"{tool.group(1)} {tool.group(2)}"
    return agent[:40] + ("…" if len(agent) > 40 else "")


def session_label(s: Mapping[str, Any]) -> str:
    """One session in a few words, for a picker: "Chrome 156 on Linux · 203.0.113.7 · since …"."""
    parts = [browser_summary(s.get("user_agent"))]
    if s.get("ip"):
        parts.append(str(s["ip"]))
    parts.append(f"signed in {s['created_at']:%Y-%m-%d %H:%M} UTC")
    if s.get("username"):
        parts.insert(0, str(s["username"]))
    return " · ".join(parts)


def sessions_table(
    sessions: Sequence[Mapping[str, Any]],
    current: str | None,
    *,
    owners: bool = False,
    details: bool = False,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Live sessions: (with `owners`, the user name first) signed in, last seen, IP, browser.
    My own list marks this browser and shows when each session expires; the session id and
    the raw user agent are hidden unless `details`."""
    frame = frame_of(
        sessions,
        {
            "user": (pl.String, lambda s: str(s.get("username") or MISSING)),
            "this_browser": (pl.Boolean, lambda s: s["session_id"] == current),
            "signed_in": (UTC_TIME, lambda s: s["created_at"]),
            "last_seen": (UTC_TIME, lambda s: s["last_seen_at"]),
            "expires": (UTC_TIME, lambda s: s["expires_at"]),
            "ip": (pl.String, lambda s: s.get("ip")),
            "browser": (pl.String, lambda s: browser_summary(s.get("user_agent"))),
            "session": (pl.String, lambda s: s["session_id"][:8]),
            "user_agent": (pl.String, lambda s: s.get("user_agent")),
        },
    )
    frame = frame.drop(["this_browser", "expires"] if owners else ["user"])
    return table(
        frame,
        times=[c for c in ("signed_in", "last_seen", "expires") if c in frame.columns],
        labels={"user_agent": "Browser (raw)", "session": "Session ID"},
        help={
            "ip": "The address the server saw; empty when unknown (a local connection).",
            "browser": "Summarised from the browser's user agent.",
        },
        hide=() if details else ("session", "user_agent"),
    )


def quota_level(q: Mapping[str, Any]) -> float | None:
    """The alert level a provider's quota has reached in its window: 0.95, 0.80 or None."""
    return alert_level(int(q["queries_done"]), int(q["limit"]))


def quota_text(q: Mapping[str, Any]) -> str:
    """ "1,248 of 1,300 queries per day used (96.0%), 52 left" """
    done, limit = int(q["queries_done"]), int(q["limit"])
    return (
        f"{integer(done)} of {plural(limit, 'query', 'queries')} per {q['window']} used "
        f"({pct(done / limit, 1)}), {integer(q['queries_remaining'])} left"
    )


def quota_table(keys: Mapping[str, Mapping[str, Any]]) -> tuple[pl.DataFrame, dict[str, Any]]:
    """One row per stored key: the hint (last 4 characters) and the quota state."""
    frame = frame_of(
        list(keys.items()),
        {
            "provider": (pl.String, lambda r: PROVIDER_NAMES.get(r[0], r[0])),
            "key": (pl.String, lambda r: r[1]["key_hint"]),
            "queries_done": (pl.Int64, lambda r: int(r[1]["queries_done"])),
            "remaining": (pl.Int64, lambda r: int(r[1]["queries_remaining"])),
            "limit": (pl.Int64, lambda r: int(r[1]["limit"])),
            "per": (pl.String, lambda r: r[1]["window"]),
            "used": (pl.Float64, lambda r: int(r[1]["queries_done"]) / int(r[1]["limit"])),
            "resets": (UTC_TIME, lambda r: r[1]["resets_at"]),
        },
    )
    return table(
        frame,
        ints=["queries_done", "remaining", "limit"],
        pct={"used": 1},
        times=["resets"],
        help={
            "resets": "When this window ends and the count starts again.",
            "key": "Only the last 4 characters are ever shown.",
            "per": "The provider's quota window; a day is a UTC day.",
            "used": "Share of this window's quota used; alerts at 80% and 95%.",
        },
    )


def users_table(
    users: Sequence[User], *, details: bool = False
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Every account: name, email, role, state and creation time; the id with `details`."""
    frame = frame_of(
        users,
        {
            "username": (pl.String, lambda u: u.username),
            "email": (pl.String, lambda u: u.email),
            "role": (pl.String, lambda u: u.role),
            "state": (pl.String, lambda u: "disabled" if u.disabled else "active"),
            "created": (UTC_TIME, lambda u: u.created_at),
            "id": (pl.String, lambda u: u.user_id),
        },
    )
    return table(frame, times=["created"], labels={"id": "User ID"}, hide=() if details else ["id"])


# --- access tokens -------------------------------------------------------------------------

SCOPE_HELP = {
    "market:read": "read market data: symbols and bars",
    "sql:run": "run read-only SQL on the market store",
    "analytics:run": "run the analytics (regimes, mean reversion, optimizers)",
    "account:read": "read your own account: profile, quotas and usage",
    "studies:read": "read your saved studies and the team's shared ones",
}


def scope_label(scope: str) -> str:
    """A scope in one line for the picker: "sql:run: run read-only SQL … (analyst role)"."""
    role = SCOPE_MIN_ROLE.get(scope, "admin")
    needs = "" if role == "viewer" else f" (needs the {role} role)"
    return f"{scope}: {SCOPE_HELP.get(scope, scope)}{needs}"


def scopes_beyond_role(user: User, scopes: Iterable[str]) -> list[str]:
    """The scopes the user's current role does not allow (a token is refused for them)."""
    return [s for s in scopes if not user.has_role(SCOPE_MIN_ROLE.get(s, "admin"))]


def token_label(t: AccessToken) -> str:
    """One token in a few words, for a picker: "laptop · market:read · expires 2025-01-31"."""
    return f"{t.name} · {', '.join(t.scopes)} · expires {t.expires_at:%Y-%m-%d}"


def tokens_table(
    tokens: Sequence[AccessToken], now: dt.datetime
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """My access tokens: name, scopes, created, last used, expires and status (the id folded
    away)."""
    frame = frame_of(
        tokens,
        {
            "name": (pl.String, lambda t: t.name),
            "scopes": (pl.String, lambda t: ", ".join(t.scopes)),
            "created": (UTC_TIME, lambda t: t.created_at),
            "last_used": (UTC_TIME, lambda t: t.last_used_at),
            "expires": (UTC_TIME, lambda t: t.expires_at),
            "status": (pl.String, lambda t: t.status(now)),
            "token_id": (pl.String, lambda t: t.token_id),
        },
    )
    return table(
        frame,
        times=["created", "last_used", "expires"],
        labels={"token_id": "Token ID"},
        help={
            "last_used": "Updated at most once a minute; empty until the token is first used.",
            "status": "Revoked and expired tokens no longer work; they are listed for a month.",
        },
        hide=["token_id"],
    )


# --- audit ---------------------------------------------------------------------------------


def short_id(uid: str) -> str:
    """The start of a pseudonymous id: "3f2a…"."""
    return uid.removeprefix("anon-")[:4] + "…"


def audit_user_label(uid: str | None, names: Mapping[str, str], erased: Iterable[str]) -> str:
    """Who an audit record is about: the user name while the account exists, else what the
    id is ("erased · 3f2a…", "unknown name · 9c1e…"), "server shell" for the CLI."""
    if uid is None:
        return MISSING
    if uid in names:
        return names[uid]
    if uid == "cli":
        return "server shell"
    if uid in set(erased):
        return f"erased · {short_id(uid)}"
    if uid.startswith("anon-"):
        return f"unknown name · {short_id(uid)}"
    return f"unknown · {short_id(uid)}"


def action_words(action: str) -> str:
    """An audit action in words: "change_password" -> "change password"."""
    return action.replace("_", " ")


def audit_table(
    records: pl.DataFrame,
    names: Mapping[str, str],
    erased: Iterable[str],
    *,
    details: bool = False,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Audit records as time (UTC), user, action, outcome and IP; ids, the actor, the raw user
    agent and the JSON detail are hidden unless `details`."""
    gone = set(erased)
    frame = frame_of(
        records.to_dicts(),
        {
            "time": (UTC_TIME, lambda r: r["ts"]),
            "user": (
                pl.String,
                lambda r: audit_user_label(r["user_id"] or r["actor_id"], names, gone),
            ),
            "action": (pl.String, lambda r: action_words(str(r["action"]))),
            "outcome": (pl.String, lambda r: r["outcome"]),
            "ip": (pl.String, lambda r: r["ip"]),
            "by": (pl.String, lambda r: audit_user_label(r["actor_id"], names, gone)),
            "event_id": (pl.String, lambda r: r["event_id"]),
            "user_id": (pl.String, lambda r: r["user_id"]),
            "user_agent": (pl.String, lambda r: r["user_agent"]),
            "detail": (pl.String, lambda r: r["detail"]),
        },
    )
    return table(
        frame,
        times=["time"],
        labels={"by": "By", "user_agent": "Browser (raw)", "detail": "Details"},
        help={
            "user": "The account's name while it exists; erased accounts and names without "
            "an account show the start of their pseudonymous id.",
            "ip": "Empty when unknown (a local connection).",
            "by": "Who carried the action out (an admin, the user, or the server shell).",
        },
        hide=() if details else ("by", "event_id", "user_id", "user_agent", "detail"),
    )


def erasures_table(
    stones: pl.DataFrame, names: Mapping[str, str]
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Erasure tombstones: the account's short pseudonym, when, by whom, and whether the old
    files were removed from disk yet."""

    def by(r: Mapping[str, Any]) -> str:
        if r["actor_id"] == r["user_id"]:
            return "the user"
        return audit_user_label(r["actor_id"], names, ())

    def removed(r: Mapping[str, Any]) -> str:
        return f"{r['purged_at']:%Y-%m-%d %H:%M:%S}" if r["purged_at"] else "next maintenance"

    frame = frame_of(
        stones.to_dicts(),
        {
            "account": (pl.String, lambda r: f"erased · {short_id(r['user_id'])}"),
            "erased_at": (UTC_TIME, lambda r: r["erased_at"]),
            "by": (pl.String, by),
            "removed_from_disk": (pl.String, removed),
            "user_id": (pl.String, lambda r: r["user_id"]),
        },
    )
    return table(
        frame,
        times=["erased_at"],
        labels={"erased_at": "Erased (UTC)", "removed_from_disk": "Removed from disk (UTC)"},
        help={"removed_from_disk": "Maintenance deletes the old data files that still held it."},
        hide=["user_id"],
    )


# --- maintenance ---------------------------------------------------------------------------


def maintenance_summary(report: Mapping[str, Any]) -> str:
    """The outcome of a maintenance run in one sentence, with counts."""
    tables = {k: v for k, v in report.items() if k != "user_files"}

    def total(field: str) -> int:
        return sum(int(info.get(field, 0)) for info in tables.values())

    text = (
        f"compacted {plural(total('files_compacted'), 'file')}, "
        f"removed {plural(total('expired_rows'), 'expired audit record')}, "
        f"pruned {plural(total('ended_sessions_pruned'), 'ended session')}, "
        f"vacuumed {plural(total('files_vacuumed'), 'file')} across "
        f"{plural(len(tables), 'table')}."
    )
    leftovers = sum(int(n) for n in (report.get("user_files") or {}).values())
    if leftovers:
        text += f" Deleted {plural(leftovers, 'leftover file')} of erased accounts."
    return text[:1].upper() + text[1:]


def maintenance_table(report: Mapping[str, Any]) -> tuple[pl.DataFrame, dict[str, Any]]:
    """One row per table: files compacted, expired audit records, ended sessions, vacuumed."""
    fields = ("files_compacted", "expired_rows", "ended_sessions_pruned", "files_vacuumed")
    rows = [
        {"table": name, **{f: info.get(f) for f in fields}}
        for name, info in report.items()
        if name != "user_files"
    ]
    schema = {"table": pl.String, **dict.fromkeys(fields, pl.Int64)}
    return table(
        pl.DataFrame(rows, schema=schema),
        ints=fields,
        labels={
            "expired_rows": "Expired audit records removed",
            "ended_sessions_pruned": "Ended sessions pruned",
        },
        help={
            "files_compacted": "Small data files merged into larger ones.",
            "files_vacuumed": "Files no longer referenced by the table, deleted from disk.",
        },
    )


AUDIT_ACTIONS = [
    "login",
    "logout",
    "register",
    "change_password",
    "revoke_session",
    "revoke_other_sessions",
    "set_role",
    "disable_user",
    "enable_user",
    "access_token_created",
    "access_token_create",
    "access_token_revoked",
    "token_use_failed",
    "api_key_change",
    "api_key_delete",
    "api_key_reveal",
    "quota_alert",
    "quota_spent_by_provider",
    "consent",
    "export",
    "erase",
    "restore",
    "maintain",
]
