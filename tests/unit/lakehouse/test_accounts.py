"""register / login: bad input changes nothing, one message for every failed login."""

from __future__ import annotations

import contextlib
from typing import Any

import polars as pl
import pytest

from lakehouse import (
    InvalidCredentials,
    InvalidInput,
    LakehouseAuthBackend,
    LakehouseClient,
    Throttled,
    User,
    UsernameTaken,
)
from lakehouse.throttle import ACCOUNT
from tests.lakehouse_support import ADMIN_PASSWORD, PASSWORD, FakeClock


def _versions(backend: LakehouseAuthBackend) -> dict[str, int]:
    return {n: t.latest_version() for n, t in backend.store.tables.items() if n != "audit_log"}


def test_register_returns_a_viewer(backend: LakehouseAuthBackend) -> None:
    u = backend.register("Bob_1", "Bob@Example.ORG", PASSWORD)
    assert u.role == "viewer"
    assert not u.disabled
    assert u.username == "Bob_1"
    assert u.email == "Bob@example.org"  # domain lower-cased
    assert len(u.user_id) == 32
    assert u.created_at.tzinfo is not None
    df = backend.store.users.read()
    assert df.height == 1
    assert str(df.schema["created_at"]) == "Datetime(time_unit='us', time_zone='UTC')"


@pytest.mark.parametrize(
    ("username", "email", "password", "match"),
    [
        ("", "a@example.org", PASSWORD, "username must have"),
        ("ab", "a@example.org", PASSWORD, "username must have"),
        ("x" * 33, "a@example.org", PASSWORD, "username must have"),
        ("x" * 100_000, "a@example.org", PASSWORD, "username must have"),
        ("bad name", "a@example.org", PASSWORD, "not allowed"),
        ("bob'; DROP", "a@example.org", PASSWORD, "not allowed"),
        ("bob\x00", "a@example.org", PASSWORD, "not allowed"),
        ("bob", "", PASSWORD, "not a valid address"),
        ("bob", "not-an-email", PASSWORD, "not a valid address"),
        ("bob", "a@b", PASSWORD, "not a valid address"),
        ("bob", "a b@example.org", PASSWORD, "not a valid address"),
        ("bob", "x" * 300 + "@example.org", PASSWORD, "not a valid address"),
        ("bob", "a@example.org", "", "at least 8"),
        ("bob", "a@example.org", "p" * 100_000, "at most"),
        ("bob", "a@example.org", "password1", "too common"),
        ("bobbobbob", "a@example.org", "BobBobBob", "equal the username"),
        (None, "a@example.org", PASSWORD, "must be a string"),
        ("bob", 42, PASSWORD, "must be a string"),
        ("bob", "a@example.org", 12345678, "must be a string"),
        (["bob"], "a@example.org", PASSWORD, "must be a string"),
    ],
)
def test_bad_registration_is_refused_and_changes_nothing(
    backend: LakehouseAuthBackend, username: Any, email: Any, password: Any, match: str
) -> None:
    before = _versions(backend)
    with pytest.raises(InvalidInput, match=match):
        backend.register(username, email, password)
    assert _versions(backend) == before
    assert backend.store.users.read().height == 0


def test_unicode_usernames_are_accepted(backend: LakehouseAuthBackend) -> None:
    u = backend.register("Zoë_Ñandú", "zoe@example.org", PASSWORD)
    assert u.username == "Zoë_Ñandú"
    assert backend.login("zoë_ñandú", PASSWORD)
    # NFKC: the full-width form of a name is the same account
    with pytest.raises(UsernameTaken):
        backend.register("Ｚｏë_Ñandú", "zoe2@example.org", PASSWORD)


@pytest.mark.parametrize("dupe", ["alice", "ALICE", "Alice", "aLiCe"])
def test_duplicate_usernames_differing_in_case_are_refused(
    backend: LakehouseAuthBackend, alice: User, dupe: str
) -> None:
    before = _versions(backend)
    with pytest.raises(UsernameTaken, match="taken"):
        backend.register(dupe, "other@example.org", PASSWORD)
    assert _versions(backend) == before
    assert backend.store.users.read().height == 1


def test_login_and_username_is_case_insensitive(backend: LakehouseAuthBackend, alice: User) -> None:
    token = backend.login("ALICE", PASSWORD, ip="10.0.0.1", user_agent="pytest")
    assert backend.verify_persistent_token(token).user_id == alice.user_id
    [s] = backend.list_sessions(alice.user_id)
    assert s["ip"] == "10.0.0.1"
    assert s["user_agent"] == "pytest"


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong password!"), ("nobody", PASSWORD), ("", ""), ("x" * 5000, "y")],
)
def test_failed_login_has_one_message(
    backend: LakehouseAuthBackend, alice: User, username: str, password: str
) -> None:
    with pytest.raises(InvalidCredentials) as exc:
        backend.login(username, password)
    assert str(exc.value) == "invalid username or password"


def test_unknown_username_costs_a_real_argon2_check(
    backend: LakehouseAuthBackend, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str | None] = []
    real = backend.hasher._ph

    class Spy:
        def verify(self, h: str, p: str) -> bool:
            calls.append(h)
            return bool(real.verify(h, p))

    monkeypatch.setattr(backend.hasher, "_ph", Spy())
    for name in ("alice", "nobody"):
        with pytest.raises(InvalidCredentials):
            backend.login(name, "wrong password!", ip=f"10.0.0.{len(calls)}")
    assert len(calls) == 2
    assert all(h is not None and h.startswith("$argon2id$") for h in calls)


@pytest.mark.parametrize("bad", [None, 1, b"alice"])
def test_login_wrong_types(backend: LakehouseAuthBackend, alice: User, bad: Any) -> None:
    with pytest.raises(InvalidCredentials):
        backend.login(bad, PASSWORD)
    with pytest.raises(InvalidCredentials):
        backend.login("alice", bad)


def test_throttle_grows_per_account_and_ip(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            backend.login("alice", "wrong password!", ip="6.6.6.6")
    with pytest.raises(Throttled) as first:
        backend.login("alice", PASSWORD, ip="6.6.6.6")
    clock.advance(first.value.retry_after_s + 0.01)
    with pytest.raises(InvalidCredentials):
        backend.login("alice", "wrong password!", ip="6.6.6.6")
    with pytest.raises(Throttled) as second:
        backend.login("alice", PASSWORD, ip="6.6.6.6")
    assert second.value.retry_after_s > first.value.retry_after_s  # growing delay
    clock.advance(second.value.retry_after_s + 0.01)
    assert backend.login("alice", PASSWORD, ip="6.6.6.6")
    logins = backend.store.audit_table.read().filter(pl.col("action") == "login")
    outcomes = logins["outcome"].value_counts().sort("outcome").rows()
    assert outcomes == [("denied", 2), ("failure", 4), ("success", 1)]


def test_attacker_cannot_lock_the_owner_out(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    for i in range(200):  # distributed attack: many IPs, many failures
        with contextlib.suppress(InvalidCredentials, Throttled):
            backend.login("alice", "wrong password!", ip=f"203.0.113.{i % 250}")
        clock.advance(0.5)
    # The owner, from their own IP, waits at most the capped account-wide delay.
    waited = 0.0
    token = ""
    for _ in range(2):
        try:
            token = backend.login("alice", PASSWORD, ip="192.0.2.10")
            break
        except Throttled as exc:
            waited = exc.retry_after_s
            clock.advance(waited + 0.01)
    assert waited <= ACCOUNT.cap_s
    assert backend.verify_persistent_token(token).user_id == alice.user_id


def test_throttle_counts_unknown_usernames_too(backend: LakehouseAuthBackend) -> None:
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            backend.login("ghost", "whatever123", ip="6.6.6.7")
    with pytest.raises(Throttled):
        backend.login("ghost", "whatever123", ip="6.6.6.7")


def test_throttle_state_is_server_side_across_callers(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    # Two independent "browser sessions" (no shared client state) hit one counter.
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            backend.login("alice", "wrong password!", ip="6.6.6.8")
    with pytest.raises(Throttled):
        backend.login("alice", "wrong password!", ip="6.6.6.8")


def test_first_admin_via_bootstrap(backend: LakehouseAuthBackend) -> None:
    admin = backend.bootstrap_admin("root", "root@example.org", ADMIN_PASSWORD)
    assert admin.role == "admin"
    assert backend.login("root", ADMIN_PASSWORD)


def test_client_needs_a_matching_backend(backend: LakehouseAuthBackend, tmp_path: Any) -> None:
    with pytest.raises(InvalidInput, match="another root"):
        LakehouseClient(tmp_path / "elsewhere", backend=backend)


BAD_IDS = [None, 123, "", "x", "../../etc/passwd", "A" * 32, "0" * 31, "' OR 1=1 --"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_every_user_id_method_rejects_bad_ids_and_changes_nothing(
    backend: LakehouseAuthBackend, client: LakehouseClient, alice: User, admin: User, bad: Any
) -> None:
    versions = {n: t.latest_version() for n, t in backend.store.tables.items()}
    calls = [
        lambda: backend.get_user(bad),
        lambda: backend.list_sessions(bad),
        lambda: backend.get_api_keys(bad),
        lambda: backend.save_api_keys(bad, {"finnhub": "k" * 20}, True, password=PASSWORD),
        lambda: backend.delete_api_key(bad, "finnhub"),
        lambda: backend.reveal_api_key(bad, "finnhub", password=PASSWORD),
        lambda: backend.update_query_count(bad, "finnhub"),
        lambda: backend.quota_alerts(bad),
        lambda: backend.set_consent(bad, "data_sharing", True),
        lambda: backend.get_consents(bad),
        lambda: backend.set_role(admin, bad, "viewer"),
        lambda: backend.disable_user(admin, bad),
        lambda: backend.change_password(bad, PASSWORD, "new phrase here"),
        lambda: client.billing_summary(bad, "2026-01-01", "2026-01-02"),
        lambda: client.export_user_data(bad),
        lambda: client.erase_user(bad, acting_user=admin),
    ]
    for call in calls:
        with pytest.raises(InvalidInput):
            call()
    assert {n: t.latest_version() for n, t in backend.store.tables.items()} == versions
