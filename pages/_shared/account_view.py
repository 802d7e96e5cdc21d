"""Display helpers for the account and admin pages: tables with word headers, browser
summaries, audit user names, maintenance reports, flash messages, escaping."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import polars as pl
import streamlit as st

from lakehouse import PROVIDER_NAMES, User
from lakehouse.quotas import alert_level
from pages._shared.format import MISSING, integer, pct, plural, table
from pages._shared.format import md_escape as md_escape  # re-exported: the one escaping helper

_FLASH_KEY = "_hfthot_flash"


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
    frame = pl.DataFrame(
        {
            "user": [str(s.get("username") or MISSING) for s in sessions],
            "this_browser": [s["session_id"] == current for s in sessions],
            "signed_in": [s["created_at"] for s in sessions],
            "last_seen": [s["last_seen_at"] for s in sessions],
            "expires": [s["expires_at"] for s in sessions],
            "ip": [s.get("ip") for s in sessions],
            "browser": [browser_summary(s.get("user_agent")) for s in sessions],
            "session": [s["session_id"][:8] for s in sessions],
            "user_agent": [s.get("user_agent") for s in sessions],
        },
        schema={
            "user": pl.String,
            "this_browser": pl.Boolean,
            "signed_in": pl.Datetime("us", "UTC"),
            "last_seen": pl.Datetime("us", "UTC"),
            "expires": pl.Datetime("us", "UTC"),
            "ip": pl.String,
            "browser": pl.String,
            "session": pl.String,
            "user_agent": pl.String,
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
    rows = list(keys.items())
    frame = pl.DataFrame(
        {
            "provider": [PROVIDER_NAMES.get(p, p) for p, _ in rows],
            "key": [q["key_hint"] for _, q in rows],
            "queries_done": [int(q["queries_done"]) for _, q in rows],
            "remaining": [int(q["queries_remaining"]) for _, q in rows],
            "limit": [int(q["limit"]) for _, q in rows],
            "per": [q["window"] for _, q in rows],
            "used": [int(q["queries_done"]) / int(q["limit"]) for _, q in rows],
        },
        schema={
            "provider": pl.String,
            "key": pl.String,
            "queries_done": pl.Int64,
            "remaining": pl.Int64,
            "limit": pl.Int64,
            "per": pl.String,
            "used": pl.Float64,
        },
    )
    return table(
        frame,
        ints=["queries_done", "remaining", "limit"],
        pct={"used": 1},
        help={
            "key": "Only the last 4 characters are ever shown.",
            "per": "The provider's quota window; a day is a UTC day.",
            "used": "Share of this window's quota used; alerts at 80% and 95%.",
        },
    )


def users_table(
    users: Sequence[User], *, details: bool = False
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Every account: name, email, role, state and creation time; the id with `details`."""
    frame = pl.DataFrame(
        {
            "username": [u.username for u in users],
            "email": [u.email for u in users],
            "role": [u.role for u in users],
            "state": ["disabled" if u.disabled else "active" for u in users],
            "created": [u.created_at for u in users],
            "id": [u.user_id for u in users],
        },
        schema={
            "username": pl.String,
            "email": pl.String,
            "role": pl.String,
            "state": pl.String,
            "created": pl.Datetime("us", "UTC"),
            "id": pl.String,
        },
    )
    return table(frame, times=["created"], labels={"id": "User ID"}, hide=() if details else ["id"])


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
    rows = records.to_dicts()
    frame = pl.DataFrame(
        {
            "time": [r["ts"] for r in rows],
            "user": [audit_user_label(r["user_id"] or r["actor_id"], names, gone) for r in rows],
            "action": [action_words(str(r["action"])) for r in rows],
            "outcome": [r["outcome"] for r in rows],
            "ip": [r["ip"] for r in rows],
            "by": [audit_user_label(r["actor_id"], names, gone) for r in rows],
            "event_id": [r["event_id"] for r in rows],
            "user_id": [r["user_id"] for r in rows],
            "user_agent": [r["user_agent"] for r in rows],
            "detail": [r["detail"] for r in rows],
        },
        schema={
            "time": pl.Datetime("us", "UTC"),
            "user": pl.String,
            "action": pl.String,
            "outcome": pl.String,
            "ip": pl.String,
            "by": pl.String,
            "event_id": pl.String,
            "user_id": pl.String,
            "user_agent": pl.String,
            "detail": pl.String,
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
    rows = stones.to_dicts()
    frame = pl.DataFrame(
        {
            "account": [f"erased · {short_id(r['user_id'])}" for r in rows],
            "erased_at": [r["erased_at"] for r in rows],
            "by": [
                "the user"
                if r["actor_id"] == r["user_id"]
                else audit_user_label(r["actor_id"], names, ())
                for r in rows
            ],
            "removed_from_disk": [
                f"{r['purged_at']:%Y-%m-%d %H:%M:%S}" if r["purged_at"] else "next maintenance"
                for r in rows
            ],
            "user_id": [r["user_id"] for r in rows],
        },
        schema={
            "account": pl.String,
            "erased_at": pl.Datetime("us", "UTC"),
            "by": pl.String,
            "removed_from_disk": pl.String,
            "user_id": pl.String,
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
    "api_key_change",
    "api_key_delete",
    "api_key_reveal",
    "quota_alert",
    "consent",
    "export",
    "erase",
    "restore",
    "maintain",
]
