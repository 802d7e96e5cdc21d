"""Audit (every action recorded, failures are loud, retention) and secret files."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import polars as pl
import pytest

from lakehouse import (
    AuditWriteError,
    InvalidInput,
    LakehouseAuthBackend,
    LakehouseClient,
    User,
)
from lakehouse.secrets import KEY_BYTES
from tests.lakehouse_support import PASSWORD, FakeClock, make_backend, make_client


def _actions(backend: LakehouseAuthBackend) -> pl.DataFrame:
    return backend.store.audit_table.read()


def test_every_security_action_is_audited(
    backend: LakehouseAuthBackend, client: LakehouseClient, alice: User, admin: User
) -> None:
    token = backend.login("alice", PASSWORD, ip="198.51.100.7", user_agent="pytest-agent")
    with pytest.raises(Exception, match="invalid"):
        backend.login("alice", "wrong password!", ip="198.51.100.7")
    backend.save_api_keys(alice.user_id, {"finnhub": "k" * 20}, True, password=PASSWORD)
    backend.reveal_api_key(alice.user_id, "finnhub", password=PASSWORD)
    backend.set_role(admin, alice.user_id, "analyst")
    client.export_user_data(alice.user_id)
    backend.logout(token)
    client.restore("consents", 0, acting_user=admin)
    client.erase_user(alice.user_id, acting_user=admin)
    df = _actions(backend)
    got = set(zip(df["action"], df["outcome"], strict=True))
    for expected in [
        ("register", "success"),
        ("login", "success"),
        ("login", "failure"),
        ("logout", "success"),
        ("api_key_change", "success"),
        ("api_key_reveal", "success"),
        ("export", "success"),
        ("erase", "success"),
        ("set_role", "success"),
        ("restore", "success"),
    ]:
        assert expected in got, expected
    login = df.filter((pl.col("action") == "login") & (pl.col("outcome") == "success"))
    assert login["ts"].dtype == pl.Datetime("us", "UTC")
    assert login["user_id"].to_list() == [alice.user_id]


def test_record_fields_and_pseudonyms(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    backend.login("alice", PASSWORD, ip="198.51.100.7", user_agent="agent/1")
    clock.advance(1)
    with pytest.raises(Exception, match="invalid"):
        backend.login("Mallory", "wrong password!", ip="198.51.100.8")
    df = _actions(backend).filter(pl.col("action") == "login").sort("ts")
    ok, bad = df.row(0, named=True), df.row(1, named=True)
    assert ok["ip"] == "198.51.100.7"
    assert ok["user_agent"] == "agent/1"
    assert ok["date"] == ok["ts"].date()
    assert bad["user_id"].startswith("anon-")
    for col in ("user_id", "actor_id", "detail"):
        assert "mallory" not in str(bad[col]).lower()
    # No username or email anywhere in the audit table.
    text = _actions(backend).write_csv().lower()
    assert "alice@example.org" not in text
    assert "mallory" not in text


def test_audit_write_failure_makes_the_action_fail(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    audit_dir = backend.store.audit_table.path
    moved = audit_dir.with_name("audit_log.moved")
    shutil.move(audit_dir, moved)
    audit_dir.write_text("not a table")  # a real, unwritable audit table
    try:
        users_before = backend.store.users.latest_version()
        sessions_before = backend.store.sessions.latest_version()
        with pytest.raises(AuditWriteError, match="not carried out"):
            backend.register("bob", "bob@example.org", PASSWORD)
        with pytest.raises(AuditWriteError):
            backend.login("alice", PASSWORD)
        with pytest.raises(AuditWriteError):
            backend.save_api_keys(alice.user_id, {"finnhub": "k" * 20}, True, password=PASSWORD)
        assert backend.store.users.latest_version() == users_before
        assert backend.store.sessions.latest_version() == sessions_before
        assert backend.store.api_keys.read().height == 0
        assert backend.find_user("bob") is None
    finally:
        audit_dir.unlink()
        shutil.move(moved, audit_dir)
    assert backend.login("alice", PASSWORD)


def test_audit_is_partitioned_by_date_and_retention_applies(root: Path, clock: FakeClock) -> None:
    clock.advance(-100 * 86400)
    old = make_backend(root, clock=clock)
    old.register("olduser", "old@example.org", PASSWORD)
    clock.advance(100 * 86400)
    now = make_backend(root, clock=clock)
    now.register("newuser", "new@example.org", PASSWORD)
    dirs = sorted(p.name for p in now.store.audit_table.path.iterdir() if p.is_dir())
    assert [d for d in dirs if d.startswith("date=")] == sorted(
        {f"date={d}" for d in now.store.audit_table.read()["date"].cast(pl.String)}
    )
    assert now.store.audit_table.read().height == 2
    report = make_client(now, audit_retention_days=90).maintain()
    assert report["audit_log"]["expired_rows"] == 1
    left = now.store.audit_table.read()
    assert left.filter(pl.col("action") == "register").height == 1
    assert left["ts"].min() > now.store.now() - __import__("datetime").timedelta(days=90)


def test_secret_files_are_private_random_and_outside_tables(
    backend: LakehouseAuthBackend, tmp_path: Path
) -> None:
    sdir = backend.store.secrets_dir
    assert sdir == backend.root.parent / "secrets"
    assert stat.S_IMODE(sdir.stat().st_mode) == 0o700
    files = sorted(p for p in sdir.glob("*.json"))
    assert {p.name for p in files} == {
        "jwt-keys.json",
        "api-key-master.json",
        "audit-pepper.json",
        "device-cookie-keys.json",
        "access-token-keys.json",
    }
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        doc = json.loads(p.read_text())
        assert len(doc["keys"][doc["current"]]) >= 44  # base64 of 32 bytes
    assert len(backend.store.jwt_ring.current) >= KEY_BYTES
    other = make_backend(tmp_path / "other" / "lakehouse")
    assert other.store.jwt_ring.current != backend.store.jwt_ring.current  # never a constant
    again = make_backend(backend.root)
    assert again.store.jwt_ring.current == backend.store.jwt_ring.current  # persisted


def test_secret_file_permissions_are_repaired(backend: LakehouseAuthBackend) -> None:
    path = backend.store.jwt_ring.path
    os.chmod(path, 0o644)
    make_backend(backend.root)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_explicit_secrets_dir_and_refusal_inside_tables(tmp_path: Path) -> None:
    b = make_backend(tmp_path / "lh", secrets_dir=tmp_path / "keys")
    assert (tmp_path / "keys" / "jwt-keys.json").exists()
    assert b.store.secrets_dir == (tmp_path / "keys").resolve()
    with pytest.raises(InvalidInput, match="outside"):
        make_backend(tmp_path / "lh2", secrets_dir=tmp_path / "lh2" / "secrets")


def test_corrupt_secret_file_is_a_clear_error(backend: LakehouseAuthBackend) -> None:
    backend.store.jwt_ring.path.write_text("{not json")
    with pytest.raises(Exception, match="unreadable"):
        make_backend(backend.root)
