"""`hfthot lakehouse maintain`, `hfthot admin create|set-role|rotate-token-key`.

These commands act as the operator (audited with actor `cli`): whoever can run them can
already read the data dir, so they need no login.
"""

from __future__ import annotations

import argparse
import gc
import getpass
import sys
from typing import Any

from core.config import Settings
from core.services import build_accounts, build_auth
from lakehouse import LakehouseError


def _read_password(args: Any) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("password: ")
    again = getpass.getpass("repeat password: ")
    if first != again:
        raise LakehouseError("the two passwords differ")
    return first


def _finish(code: int) -> int:
    gc.collect()  # drop Delta handles before interpreter exit (delta-rs #2184)
    return code


def run_maintain(args: Any) -> int:
    settings = Settings.from_env()
    try:
        client = build_accounts(settings, build_auth(settings))

        def show(fraction: float, message: str) -> None:
            print(f"[{fraction * 100:5.1f}%] {message}", flush=True)

        report = client.maintain(progress=show)
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _finish(1)
    for table, info in report.items():
        parts = ", ".join(f"{k}={v}" for k, v in info.items())
        print(f"{table}: {parts}")
    del client
    return _finish(0)


def run_create(args: Any) -> int:
    settings = Settings.from_env()
    try:
        backend = build_auth(settings)
        user = backend.bootstrap_admin(args.username, args.email, _read_password(args))
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _finish(1)
    print(f"created admin {user.username} ({user.user_id})")
    del backend
    return _finish(0)


def run_set_role(args: Any) -> int:
    settings = Settings.from_env()
    try:
        backend = build_auth(settings)
        user = backend.set_role_as_operator(args.username, args.role)
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _finish(1)
    print(f"{user.username} is now {user.role}")
    del backend
    return _finish(0)


def run_rotate(args: Any) -> int:
    settings = Settings.from_env()
    try:
        backend = build_auth(settings)
        kid = backend.rotate_token_key()
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return _finish(1)
    print(f"new token signing key {kid}; tokens signed with the previous key stay valid")
    del backend
    return _finish(0)


def register(sub: argparse._SubParsersAction[Any]) -> None:
    lake = sub.add_parser("lakehouse", help="accounts lakehouse maintenance")
    lsub = lake.add_subparsers(dest="lakehouse_command", metavar="ACTION", required=True)
    m = lsub.add_parser(
        "maintain", help="compact, apply audit retention, vacuum and checkpoint every table"
    )
    m.set_defaults(run=run_maintain)

    admin = sub.add_parser("admin", help="create the first admin, change roles")
    asub = admin.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    c = asub.add_parser("create", help="create an admin account")
    c.add_argument("--username", required=True)
    c.add_argument("--email", required=True)
    c.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    c.set_defaults(run=run_create)
    r = asub.add_parser("set-role", help="set the role of an account")
    r.add_argument("--username", required=True)
    r.add_argument("--role", required=True, choices=["viewer", "analyst", "admin"])
    r.set_defaults(run=run_set_role)
    k = asub.add_parser(
        "rotate-token-key",
        help="new JWT signing key; the previous one stays valid, older ones are retired",
    )
    k.set_defaults(run=run_rotate)


__all__ = ["register"]
