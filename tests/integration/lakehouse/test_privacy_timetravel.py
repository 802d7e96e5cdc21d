"""GDPR export/erasure with a raw byte scan, time travel, restore, billing, audit queries."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile

import polars as pl
import pytest

from lakehouse import (
    AuthError,
    InvalidCredentials,
    InvalidInput,
    LakehouseAuthBackend,
    LakehouseClient,
    NotFound,
    PermissionDenied,
    User,
)
from tests.lakehouse_support import PASSWORD, FakeClock, files_containing

NAME = "Erin_Zyxwv"
EMAIL = "erin.qwzx@example.org"
KEY = "erin_api_key_0123456789"


@pytest.fixture
def erin(backend: LakehouseAuthBackend) -> User:
    u = backend.register(NAME, EMAIL, PASSWORD)
    backend.login(NAME, PASSWORD, ip="192.0.2.55", user_agent="ErinBrowser/1.0")
    backend.save_api_keys(u.user_id, {"finnhub": KEY}, True, password=PASSWORD)
    backend.update_query_count(u.user_id, "finnhub", 3)
    backend.set_consent(u.user_id, "data_sharing", True)
    return u


def test_export_holds_everything_as_json_and_csv(
    backend: LakehouseAuthBackend, client: LakehouseClient, erin: User
) -> None:
    blob = client.export_user_data(erin.user_id)
    zf = zipfile.ZipFile(io.BytesIO(blob))
    names = set(zf.namelist())
    for table in ("users", "sessions", "api_keys", "api_usage", "consents", "audit_log"):
        assert f"{table}.json" in names
        assert f"{table}.csv" in names
    profile = json.loads(zf.read("users.json"))
    assert profile[0]["username"] == NAME
    assert profile[0]["email"] == EMAIL
    assert "password_hash" not in profile[0]
    keys = json.loads(zf.read("api_keys.json"))
    assert keys[0]["provider"] == "finnhub"
    assert "ciphertext" not in keys[0]
    assert KEY.encode() not in blob
    for name in names:
        assert KEY.encode() not in zf.read(name)
    usage = list(csv.DictReader(io.StringIO(zf.read("api_usage.csv").decode())))
    assert sum(int(r["count"]) for r in usage) == 3
    sessions = json.loads(zf.read("sessions.json"))
    assert sessions[0]["ip"] == "192.0.2.55"
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["user_id"] == erin.user_id
    assert manifest["files"]["audit_log"] >= 4
    exports = backend.store.audit_table.read().filter(pl.col("action") == "export")
    assert exports.height == 1


def test_export_of_someone_else_needs_admin(
    backend: LakehouseAuthBackend, client: LakehouseClient, erin: User, alice: User
) -> None:
    with pytest.raises(PermissionDenied):
        client.export_user_data(erin.user_id, acting_user=alice)


def test_erasure_leaves_no_byte_of_email_or_username(
    backend: LakehouseAuthBackend, client: LakehouseClient, erin: User, admin: User
) -> None:
    token = backend.login(NAME, PASSWORD)
    backend.logout(token)
    client.maintain()  # checkpoints and compactions while erin still exists
    backend.login(NAME, PASSWORD)
    data_dir = backend.root.parent
    assert files_containing(data_dir, NAME)  # the scan can find it before erasure
    assert files_containing(data_dir, EMAIL)
    stone = client.erase_user(erin.user_id, acting_user=erin)
    assert stone["user_id"] == erin.user_id
    assert stone["actor_id"] == erin.user_id
    client.maintain()
    assert files_containing(data_dir, NAME) == []
    assert files_containing(data_dir, EMAIL) == []
    assert files_containing(data_dir, "192.0.2.55") == []
    assert files_containing(data_dir, "ErinBrowser") == []
    # Tombstone proves it, audit keeps only the pseudonymous id.
    stones = client.tombstones(acting_user=admin)
    row = stones.row(0, named=True)
    assert row["user_id"] == erin.user_id
    assert row["purged_at"] is not None
    audit = backend.store.audit_table.read().filter(pl.col("user_id") == erin.user_id)
    assert audit.height >= 5
    assert audit["ip"].null_count() == audit.height
    assert audit["user_agent"].null_count() == audit.height
    assert "erase" in audit["action"].to_list()
    # The account is gone everywhere.
    with pytest.raises(InvalidCredentials):
        backend.login(NAME, PASSWORD)
    with pytest.raises(NotFound):
        backend.get_user(erin.user_id)
    for name in ("users", "sessions", "api_keys", "api_usage", "consents"):
        assert (
            backend.store.table(name).read().filter(pl.col("user_id") == erin.user_id).height == 0
        )


def test_erasure_revokes_sessions_and_checks_actor(
    backend: LakehouseAuthBackend, client: LakehouseClient, erin: User, alice: User, admin: User
) -> None:
    token = backend.login(NAME, PASSWORD)
    with pytest.raises(PermissionDenied):
        client.erase_user(erin.user_id, acting_user=alice)
    backend.verify_persistent_token(token)
    client.erase_user(erin.user_id, acting_user=admin)
    with pytest.raises(AuthError):
        backend.verify_persistent_token(token)
    with pytest.raises(InvalidInput, match="last admin"):
        client.erase_user(admin.user_id, acting_user=admin)


def test_time_travel_hides_erased_users_and_restore_refuses_to_resurrect(
    backend: LakehouseAuthBackend, client: LakehouseClient, erin: User, admin: User
) -> None:
    v_before = backend.store.users.latest_version()
    client.erase_user(erin.user_id, acting_user=admin)
    old = client.read_version("users", v_before, acting_user=admin)
    assert erin.user_id not in old["user_id"].to_list()
    assert "password_hash" not in old.columns
    with pytest.raises(InvalidInput, match="erasure"):
        client.restore("users", v_before, acting_user=admin)


def test_history_read_version_and_restore(
    backend: LakehouseAuthBackend, client: LakehouseClient, alice: User, admin: User
) -> None:
    v1 = backend.store.users.latest_version()
    backend.set_role(admin, alice.user_id, "analyst")
    hist = client.history("users", acting_user=admin)
    assert hist[0]["version"] == v1 + 1
    assert hist[0]["operation"] == "MERGE"
    assert hist[-1]["version"] == 0
    assert isinstance(hist[0]["timestamp"], dt.datetime)
    assert hist[0]["timestamp"].tzinfo
    then = client.read_version("users", v1, acting_user=admin)
    assert then.filter(pl.col("user_id") == alice.user_id)["role"].to_list() == ["viewer"]
    client.restore("users", v1, acting_user=admin)
    assert backend.get_user(alice.user_id).role == "viewer"
    restores = backend.store.audit_table.read().filter(pl.col("action") == "restore")
    assert json.loads(restores["detail"][0]) == {"table": "users", "version": v1}


def test_time_travel_is_admin_only_and_validates(
    backend: LakehouseAuthBackend, client: LakehouseClient, alice: User, admin: User
) -> None:
    for call in (
        lambda: client.history("users", acting_user=alice),
        lambda: client.read_version("users", 0, acting_user=alice),
        lambda: client.restore("users", 0, acting_user=alice),
        lambda: client.query_audit(acting_user=alice),
        lambda: client.maintain(acting_user=alice),
    ):
        with pytest.raises(PermissionDenied):
            call()
    with pytest.raises(InvalidInput, match="unknown table"):
        client.history("users; DROP", acting_user=admin)
    with pytest.raises(InvalidInput):
        client.read_version("users", -1, acting_user=admin)
    with pytest.raises(NotFound):
        client.read_version("users", 999, acting_user=admin)
    with pytest.raises(NotFound):
        client.restore("users", 999, acting_user=admin)
    with pytest.raises(InvalidInput, match="append-only"):
        client.restore("audit_log", 0, acting_user=admin)
    with pytest.raises(InvalidInput, match="revive revoked logins"):
        client.restore("sessions", 0, acting_user=admin)
    with pytest.raises(InvalidInput, match="current"):
        client.restore("users", backend.store.users.latest_version(), acting_user=admin)


def test_billing_summary_per_provider_per_day(
    backend: LakehouseAuthBackend, client: LakehouseClient, alice: User, clock: FakeClock
) -> None:
    clock.t = clock.t - (clock.t % 86400) + 3600
    day1 = dt.datetime.fromtimestamp(clock.t, dt.UTC).date()
    backend.update_query_count(alice.user_id, "finnhub", 5)
    backend.update_query_count(alice.user_id, "kraken", 1)
    clock.advance(86400)
    backend.update_query_count(alice.user_id, "finnhub", 7)
    day2 = day1 + dt.timedelta(days=1)
    summary = client.billing_summary(alice.user_id, day1, day2)
    assert summary["daily"] == [
        {"date": day1, "provider": "finnhub", "queries": 5},
        {"date": day1, "provider": "kraken", "queries": 1},
        {"date": day2, "provider": "finnhub", "queries": 7},
    ]
    assert summary["totals"] == {"finnhub": 12, "kraken": 1}
    assert summary["total"] == 13
    only1 = client.billing_summary(alice.user_id, day1, day1)
    assert only1["total"] == 6
    with pytest.raises(InvalidInput, match="before start"):
        client.billing_summary(alice.user_id, day2, day1)
    with pytest.raises(InvalidInput):
        client.billing_summary(alice.user_id, "yesterday", day1)
    hist = client.usage_history(alice.user_id, days=7)
    assert hist["queries"].sum() == 13


def test_query_audit_filters(
    backend: LakehouseAuthBackend, client: LakehouseClient, alice: User, admin: User
) -> None:
    backend.login("alice", PASSWORD)
    with pytest.raises(InvalidCredentials):
        backend.login("alice", "wrong password!")
    all_rows = client.query_audit(acting_user=admin)
    assert all_rows["ts"].is_sorted(descending=True)
    fails = client.query_audit(acting_user=admin, action="login", outcome="failure")
    assert fails.height == 1
    assert fails["user_id"][0] == alice.user_id
    mine = client.query_audit(acting_user=admin, user_id=alice.user_id)
    assert set(mine["user_id"].to_list()) == {alice.user_id}
    today = backend.store.now().date()
    assert client.query_audit(acting_user=admin, start=today, end=today).height == all_rows.height
    assert client.query_audit(acting_user=admin, end=today - dt.timedelta(days=1)).height == 0
    assert client.query_audit(acting_user=admin, limit=2).height == 2
    with pytest.raises(InvalidInput):
        client.query_audit(acting_user=admin, limit=0)


def test_maintain_prunes_sessions_a_day_after_they_end(
    backend: LakehouseAuthBackend, client: LakehouseClient, alice: User, clock: FakeClock
) -> None:
    ended = backend.login("alice", PASSWORD, ip="192.0.2.77")
    backend.login("alice", PASSWORD)  # stays within its 7-day lifetime
    backend.logout(ended)
    assert client.maintain()["sessions"]["ended_sessions_pruned"] == 0
    clock.advance(86400 + 60)
    report = client.maintain()
    assert report["sessions"]["ended_sessions_pruned"] == 1
    rows = backend.store.sessions.read()
    assert rows.height == 1
    assert "192.0.2.77" not in rows.write_csv()


def test_erasure_forgets_the_login_memory(
    backend: LakehouseAuthBackend, client: LakehouseClient, erin: User, admin: User
) -> None:
    """Known IPs and failure counters are per-user records too, even if only in memory."""
    key = NAME.casefold()
    backend.login(NAME, PASSWORD, ip="203.0.113.7")
    with pytest.raises(AuthError):
        backend.login(NAME, "wrong password 123", ip="203.0.113.8")
    assert backend.throttle.knows(key)
    client.erase_user(erin.user_id, acting_user=admin)
    assert not backend.throttle.knows(key)
