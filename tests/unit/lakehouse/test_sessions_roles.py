"""Sessions (ASVS V7) and authorization: revocation paths, index write-through, roles."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import polars as pl
import pytest

from lakehouse import (
    InvalidCredentials,
    InvalidInput,
    LakehouseAuthBackend,
    NotFound,
    PermissionDenied,
    SessionRevoked,
    User,
)
from lakehouse.sessions import TOUCH_PERSIST_S
from tests.lakehouse_support import PASSWORD, FakeClock, make_backend


def test_logout_ends_the_session_and_is_written_through(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    token = backend.login("alice", PASSWORD)
    sid = backend.verify_persistent_token(token).session_id
    backend.logout(token)
    with pytest.raises(SessionRevoked):
        backend.verify_persistent_token(token)
    row = backend.store.sessions.read().filter(pl.col("session_id") == sid).row(0, named=True)
    assert row["revoked_at"] is not None
    assert row["revoke_reason"] == "logout"
    backend.logout(token)  # second logout is a no-op
    backend.logout("garbage")


def test_a_fresh_process_sees_revocations(
    backend: LakehouseAuthBackend, alice: User, root: Path
) -> None:
    token = backend.login("alice", PASSWORD)
    other = make_backend(root)  # another process's view: built from the tables only
    assert other.verify_persistent_token(token).user_id == alice.user_id
    backend.logout(token)
    other._next_probe = 0.0  # its periodic version probe is due
    with pytest.raises(SessionRevoked):
        other.verify_persistent_token(token)


def test_verify_does_not_read_delta_on_the_warm_path(
    backend: LakehouseAuthBackend, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = backend.login("alice", PASSWORD)
    backend.verify_persistent_token(token)

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("read Delta on the warm path")

    monkeypatch.setattr(backend.store.sessions, "read", boom)
    monkeypatch.setattr(backend.store.users, "read", boom)
    backend._next_probe = float("inf")
    for _ in range(100):
        backend.verify_persistent_token(token)


def test_last_seen_is_persisted_in_the_background(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    token = backend.login("alice", PASSWORD)
    clock.advance(TOUCH_PERSIST_S + 1)
    backend.verify_persistent_token(token)
    backend.flush()
    row = backend.store.sessions.read().row(0, named=True)
    assert row["last_seen_at"].timestamp() == pytest.approx(clock.t, abs=1e-3)


def test_list_sessions_and_log_out_everywhere_else(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    here = backend.login("alice", PASSWORD, user_agent="laptop")
    t2 = backend.login("alice", PASSWORD, user_agent="phone")
    t3 = backend.login("alice", PASSWORD, user_agent="tablet")
    assert len(backend.list_sessions(alice.user_id)) == 3
    assert backend.revoke_other_sessions(here) == 2
    for t in (t2, t3):
        with pytest.raises(SessionRevoked):
            backend.verify_persistent_token(t)
    [left] = backend.list_sessions(alice.user_id)
    assert left["session_id"] == backend.verify_persistent_token(here).session_id


def test_change_password_with_token_keeps_only_that_session(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    here = backend.login("alice", PASSWORD)
    there = backend.login("alice", PASSWORD)
    backend.change_password(here, PASSWORD, "another decent phrase")
    backend.verify_persistent_token(here)
    with pytest.raises(SessionRevoked):
        backend.verify_persistent_token(there)
    with pytest.raises(InvalidCredentials):
        backend.login("alice", PASSWORD)
    assert backend.login("alice", "another decent phrase")


def test_change_password_checks_old_and_policy(backend: LakehouseAuthBackend, alice: User) -> None:
    before = backend.store.users.latest_version()
    with pytest.raises(InvalidCredentials):
        backend.change_password(alice.user_id, "not my password", "another decent phrase")
    with pytest.raises(InvalidInput, match="too common"):
        backend.change_password(alice.user_id, PASSWORD, "password123")
    with pytest.raises(InvalidInput, match="differ"):
        backend.change_password(alice.user_id, PASSWORD, PASSWORD)
    with pytest.raises(InvalidInput):
        backend.change_password("nonsense", PASSWORD, "another decent phrase")
    assert backend.store.users.latest_version() == before


def test_user_can_end_own_session_but_not_others(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    bob = backend.register("bob", "bob@example.org", PASSWORD)
    bob_token = backend.login("bob", PASSWORD)
    bob_sid = backend.verify_persistent_token(bob_token).session_id
    assert bob_sid is not None
    with pytest.raises(PermissionDenied):
        backend.revoke_session(alice, bob_sid)
    backend.verify_persistent_token(bob_token)
    backend.revoke_session(bob, bob_sid)
    with pytest.raises(SessionRevoked):
        backend.verify_persistent_token(bob_token)
    with pytest.raises(NotFound):
        backend.revoke_session(bob, "0" * 32)
    with pytest.raises(InvalidInput):
        backend.revoke_session(bob, "../etc")


def test_admin_can_end_any_session(backend: LakehouseAuthBackend, alice: User, admin: User) -> None:
    token = backend.login("alice", PASSWORD)
    sid = backend.verify_persistent_token(token).session_id
    assert sid is not None
    assert any(s["session_id"] == sid for s in backend.list_all_sessions(admin))
    backend.revoke_session(admin, sid)
    with pytest.raises(SessionRevoked):
        backend.verify_persistent_token(token)


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_admin_operations_deny_non_admins(
    backend: LakehouseAuthBackend, alice: User, admin: User, role: str
) -> None:
    if role != "viewer":
        backend.set_role(admin, alice.user_id, role)
    actor = backend.get_user(alice.user_id)
    before = backend.store.users.latest_version()
    with pytest.raises(PermissionDenied):
        backend.list_users(actor)
    with pytest.raises(PermissionDenied):
        backend.set_role(actor, alice.user_id, "admin")
    with pytest.raises(PermissionDenied):
        backend.disable_user(actor, admin.user_id)
    with pytest.raises(PermissionDenied):
        backend.list_all_sessions(actor)
    assert backend.store.users.latest_version() == before
    denied = backend.store.audit_table.read().filter(pl.col("outcome") == "denied")
    assert denied.height >= 4


def test_service_layer_rechecks_the_role_from_the_table(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    forged = dataclasses.replace(alice, role="admin")  # a page cannot promote a user
    with pytest.raises(PermissionDenied):
        backend.list_users(forged)
    with pytest.raises(PermissionDenied):
        backend.list_users("admin")  # type: ignore[arg-type]
    ghost = dataclasses.replace(alice, user_id="f" * 32, role="admin")
    with pytest.raises(PermissionDenied):
        backend.list_users(ghost)


def test_roles_deny_by_default() -> None:
    import datetime as dt

    u = User("a" * 32, "x", "x@example.org", "superuser", False, dt.datetime.now(dt.UTC))
    assert not u.has_role("viewer")
    v = dataclasses.replace(u, role="viewer")
    assert v.has_role("viewer")
    assert not v.has_role("analyst")
    assert not v.has_role("nonsense")


def test_set_role_and_list_users(backend: LakehouseAuthBackend, alice: User, admin: User) -> None:
    assert backend.set_role(admin, alice.user_id, "analyst").role == "analyst"
    names = [u.username for u in backend.list_users(admin)]
    assert names == ["admin1", "alice"]
    with pytest.raises(InvalidInput, match="role must be"):
        backend.set_role(admin, alice.user_id, "root")
    with pytest.raises(NotFound):
        backend.set_role(admin, "0" * 32, "viewer")


def test_demoted_admin_loses_rights_immediately(
    backend: LakehouseAuthBackend, alice: User, admin: User
) -> None:
    backend.set_role(admin, alice.user_id, "admin")
    alice_admin = backend.get_user(alice.user_id)
    backend.set_role(alice_admin, admin.user_id, "viewer")
    with pytest.raises(PermissionDenied):
        backend.list_users(admin)


def test_last_admin_cannot_be_removed(backend: LakehouseAuthBackend, admin: User) -> None:
    with pytest.raises(InvalidInput, match="last admin"):
        backend.set_role(admin, admin.user_id, "viewer")
    with pytest.raises(InvalidInput, match="last admin"):
        backend.disable_user(admin, admin.user_id)


def test_disable_and_enable(backend: LakehouseAuthBackend, alice: User, admin: User) -> None:
    token = backend.login("alice", PASSWORD)
    assert backend.disable_user(admin, alice.user_id).disabled
    assert backend.list_sessions(alice.user_id) == []
    with pytest.raises(SessionRevoked):
        backend.verify_persistent_token(token)
    assert not backend.disable_user(admin, alice.user_id, disabled=False).disabled
    assert backend.login("alice", PASSWORD)
    with pytest.raises(InvalidInput, match="True or False"):
        backend.disable_user(admin, alice.user_id, disabled="yes")  # type: ignore[arg-type]


def test_operator_set_role(backend: LakehouseAuthBackend, alice: User) -> None:
    assert backend.set_role_as_operator("ALICE", "admin").role == "admin"
    with pytest.raises(NotFound):
        backend.set_role_as_operator("nobody", "admin")
    rec = backend.store.audit_table.read().filter(pl.col("action") == "set_role")
    assert rec["actor_id"].to_list() == ["cli"]


def test_session_settings_are_validated(root: Path, clock: FakeClock) -> None:
    with pytest.raises(InvalidInput):
        make_backend(root, session_ttl_hours=0)
    with pytest.raises(InvalidInput):
        make_backend(root, session_idle_minutes="10")
    b = make_backend(root, session_ttl_hours=1, clock=clock)
    b.register("carol", "carol@example.org", PASSWORD)
    t = b.login("carol", PASSWORD)
    clock.advance(1800)
    b.verify_persistent_token(t)
    clock.advance(1801)
    with pytest.raises(Exception, match="expired"):
        b.verify_persistent_token(t)
