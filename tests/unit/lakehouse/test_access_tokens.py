"""Personal access tokens: create once, stored as a keyed hash, list, revoke, and the checks
`authenticate_access_token` makes on every API call (secret, revocation, expiry, account,
scope and the account's current role), with bounded audit and last-used writes."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from lakehouse import (
    SCOPE_MIN_ROLE,
    SCOPES,
    TOKEN_PREFIX,
    AccessToken,
    AccountDisabled,
    InvalidCredentials,
    InvalidInput,
    InvalidToken,
    LakehouseAuthBackend,
    NotFound,
    PermissionDenied,
    TokenExpired,
    TokenUser,
    User,
)
from lakehouse.access_tokens import FAILURE_AUDITS_PER_MINUTE, MAX_LIVE_TOKENS
from tests.lakehouse_support import PASSWORD, FakeClock, files_containing, make_backend

SHAPE = re.compile(r"^hft_pat_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$")


def make(backend: LakehouseAuthBackend, user: User, name: str = "laptop", **kw: Any) -> str:
    return backend.create_access_token(
        user.user_id,
        name,
        kw.pop("scopes", ["market:read"]),
        kw.pop("days", 30),
        password=kw.pop("password", PASSWORD),
    )


def token_rows(backend: LakehouseAuthBackend) -> pl.DataFrame:
    return backend.store.access_tokens.read()


def audit(backend: LakehouseAuthBackend, action: str) -> list[dict[str, Any]]:
    df = backend.store.audit_table.read().filter(pl.col("action") == action).sort("ts")
    return df.to_dicts()


def secret_of(token: str) -> str:
    return token[len(TOKEN_PREFIX) + 13 :]


def test_constants_are_the_issue_names() -> None:
    assert SCOPES == (
        "market:read",
        "sql:run",
        "analytics:run",
        "account:read",
        "studies:read",
    )
    assert SCOPE_MIN_ROLE == {
        "market:read": "viewer",
        "sql:run": "analyst",
        "analytics:run": "analyst",
        "account:read": "viewer",
        "studies:read": "analyst",
    }
    assert TOKEN_PREFIX == "hft_pat_"


def test_create_returns_the_token_once_and_lists_it_without_the_secret(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    token = make(backend, alice, scopes=["account:read", "market:read"], days=7)
    assert SHAPE.match(token)
    [listed] = backend.list_access_tokens(alice.user_id)
    assert isinstance(listed, AccessToken)
    assert token.startswith(f"{TOKEN_PREFIX}{listed.token_id}_")
    assert listed.name == "laptop"
    assert listed.scopes == ("market:read", "account:read")  # the order of SCOPES
    assert listed.created_at.timestamp() == pytest.approx(clock.t, abs=1e-3)
    assert listed.expires_at - listed.created_at == dt.timedelta(days=7)
    assert (listed.last_used_at, listed.revoked_at) == (None, None)
    assert listed.status(dt.datetime.now(dt.UTC)) == "active"
    assert secret_of(token) not in repr(listed)


def test_the_table_keeps_only_a_keyed_hash(backend: LakehouseAuthBackend, alice: User) -> None:
    token = make(backend, alice)
    row = token_rows(backend).row(0, named=True)
    assert re.fullmatch(r"[0-9a-f]{64}", row["token_hash"])
    assert secret_of(token) not in json.dumps(row, default=str)
    assert row["key_id"] == backend.access_tokens.ring.current_kid
    assert "token_hash" in backend.store.access_tokens.spec.secret_columns


def test_no_file_under_the_data_dir_holds_the_token(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    token = make(backend, alice)
    backend.authenticate_access_token(token, "market:read", ip="203.0.113.9")
    wrong = token[:-1] + ("B" if token.endswith("A") else "A")  # never the token itself
    with pytest.raises(InvalidToken):
        backend.authenticate_access_token(wrong, "market:read")  # audited
    backend.flush()
    data_dir = backend.root.parent  # the tables and the secrets folder
    assert files_containing(data_dir, secret_of(token)) == []
    assert files_containing(data_dir, token) == []


def test_a_valid_token_speaks_for_its_account(backend: LakehouseAuthBackend, alice: User) -> None:
    token = make(backend, alice, scopes=["market:read", "account:read"])
    who = backend.authenticate_access_token(token, "account:read")
    assert isinstance(who, TokenUser)
    assert who.user.user_id == alice.user_id
    assert who.user.session_id is None
    assert who.scopes == ("market:read", "account:read")
    assert token.startswith(TOKEN_PREFIX + who.token_id)


def bad_tokens(token: str) -> list[Any]:
    tid = token[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + 12]
    return [
        "",
        None,
        42,
        b"hft_pat_",
        "hft_pat_",
        token + "x",
        token[:-1],
        " " + token,
        token.upper(),
        "Bearer " + token,
        f"hft_pat_{tid}.{secret_of(token)}",
        "x" * 10_000,
    ]


def test_malformed_tokens_are_refused_without_echoing_them(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    token = make(backend, alice)
    for bad in bad_tokens(token):
        with pytest.raises(InvalidToken, match="malformed") as exc:
            backend.authenticate_access_token(bad, "market:read")
        assert secret_of(token) not in str(exc.value)


def test_wrong_secret_and_unknown_id_read_the_same(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    token = make(backend, alice)
    last = "A" if token[-1] != "A" else "B"
    wrong = token[:-1] + last
    unknown = TOKEN_PREFIX + "0" * 12 + token[len(TOKEN_PREFIX) + 12 :]
    messages = set()
    for bad in (wrong, unknown):
        with pytest.raises(InvalidToken) as exc:
            backend.authenticate_access_token(bad, "market:read")
        assert type(exc.value) is InvalidToken
        messages.add(str(exc.value))
    assert messages == {"this access token is not valid"}
    backend.authenticate_access_token(token, "market:read")  # the real one still works


def test_an_expired_token_is_refused(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    token = make(backend, alice, days=1)
    clock.advance(86400 - 5)
    backend.authenticate_access_token(token, "market:read")
    clock.advance(10)
    with pytest.raises(TokenExpired, match="expired"):
        backend.authenticate_access_token(token, "market:read")
    [listed] = backend.list_access_tokens(alice.user_id)
    assert listed.status(dt.datetime.fromtimestamp(clock.t, dt.UTC)) == "expired"


def test_revoke_is_immediate_one_way_and_only_the_owners(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    bob = backend.register("bob", "bob@example.org", PASSWORD)
    token = make(backend, alice)
    tid = backend.list_access_tokens(alice.user_id)[0].token_id
    with pytest.raises(NotFound):
        backend.revoke_access_token(bob.user_id, tid)
    backend.authenticate_access_token(token, "market:read")
    backend.revoke_access_token(alice.user_id, tid)
    with pytest.raises(InvalidToken, match="revoked"):
        backend.authenticate_access_token(token, "market:read")
    backend.revoke_access_token(alice.user_id, tid)  # again: a no-op
    [listed] = backend.list_access_tokens(alice.user_id)
    assert listed.revoked_at is not None
    assert listed.status(dt.datetime.fromtimestamp(clock.t, dt.UTC)) == "revoked"
    row = token_rows(backend).row(0, named=True)
    assert row["revoked_reason"] == "revoked by user"
    assert len(audit(backend, "access_token_revoked")) == 1
    for bad in ("nope", "0" * 12, None, 12):
        with pytest.raises((NotFound, InvalidInput)):
            backend.revoke_access_token(alice.user_id, bad)  # type: ignore[arg-type]


def test_disabling_revokes_tokens_and_a_disabled_account_is_refused(
    backend: LakehouseAuthBackend, alice: User, admin: User
) -> None:
    first, second = make(backend, alice, "one"), make(backend, alice, "two")
    # A disable whose token revocation did not happen (a crash between the two commits):
    acc = backend.accounts.get(alice.user_id)
    backend.accounts.update(acc, disabled=True)
    with pytest.raises(AccountDisabled):
        backend.authenticate_access_token(first, "market:read")
    backend.accounts.update(acc, disabled=False)
    backend.disable_user(admin, alice.user_id)
    assert token_rows(backend)["revoked_reason"].to_list() == ["account disabled"] * 2
    backend.disable_user(admin, alice.user_id, False)
    for token in (first, second):  # re-enabling does not bring tokens back
        with pytest.raises(InvalidToken, match="revoked"):
            backend.authenticate_access_token(token, "market:read")


def test_a_disabled_account_cannot_create_tokens(
    backend: LakehouseAuthBackend, alice: User, admin: User
) -> None:
    backend.disable_user(admin, alice.user_id)
    with pytest.raises(AccountDisabled):
        make(backend, alice)
    assert token_rows(backend).height == 0


def test_the_current_role_limits_every_scope(
    backend: LakehouseAuthBackend, alice: User, admin: User
) -> None:
    token = make(backend, alice, scopes=["sql:run", "market:read"])
    with pytest.raises(PermissionDenied, match="analyst role") as exc:
        backend.authenticate_access_token(token, "sql:run")
    assert "viewer" in str(exc.value)
    backend.authenticate_access_token(token, "market:read")
    backend.set_role(admin, alice.user_id, "analyst")
    assert backend.authenticate_access_token(token, "sql:run").user.role == "analyst"
    backend.set_role(admin, alice.user_id, "viewer")
    with pytest.raises(PermissionDenied, match="analyst role"):
        backend.authenticate_access_token(token, "sql:run")


def test_a_scope_the_token_lacks_is_named(backend: LakehouseAuthBackend, admin: User) -> None:
    token = backend.create_access_token(
        admin.user_id, "ci", ["market:read"], 30, password="admin staple pony 42"
    )
    with pytest.raises(PermissionDenied, match="lacks the analytics:run scope"):
        backend.authenticate_access_token(token, "analytics:run")
    with pytest.raises(InvalidInput, match="unknown scope"):
        backend.authenticate_access_token(token, "admin:all")


BAD_CREATE = [
    ("name", "", "1 to 60"),
    ("name", "   ", "1 to 60"),
    ("name", "x" * 61, "1 to 60"),
    ("name", "a\nb", "control"),
    ("name", 42, "must be a string"),
    ("scopes", [], "at least one"),
    ("scopes", "market:read", "list of scope"),
    ("scopes", ["market:read", "root"], "unknown scope"),
    ("scopes", None, "list of scope"),
    ("days", 0, "1 to 365"),
    ("days", 366, "1 to 365"),
    ("days", True, "1 to 365"),
    ("days", 1.5, "1 to 365"),
    ("days", "30", "1 to 365"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_CREATE)
def test_bad_input_is_refused_before_the_password_and_changes_nothing(
    backend: LakehouseAuthBackend, alice: User, field: str, value: Any, message: str
) -> None:
    args: dict[str, Any] = {"name": "laptop", "scopes": ["market:read"], "days": 30}
    args[field] = value
    with pytest.raises(InvalidInput, match=message):
        make(backend, alice, args.pop("name"), **args)
    assert token_rows(backend).height == 0
    assert audit(backend, "access_token_created") == []


def test_the_password_is_asked_again(backend: LakehouseAuthBackend, alice: User) -> None:
    with pytest.raises(InvalidCredentials, match="not correct"):
        make(backend, alice, password="wrong password 1")
    assert token_rows(backend).height == 0
    [failure] = audit(backend, "access_token_create")
    assert failure["outcome"] == "failure"


def test_live_names_are_unique_and_live_tokens_are_capped(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    make(backend, alice, "CI")
    with pytest.raises(InvalidInput, match="already have a live token named"):
        make(backend, alice, "ci")
    tid = backend.list_access_tokens(alice.user_id)[0].token_id
    backend.revoke_access_token(alice.user_id, tid)
    make(backend, alice, "ci")  # a revoked token's name is free again
    for i in range(MAX_LIVE_TOKENS - 1):
        make(backend, alice, f"t{i}")
    with pytest.raises(InvalidInput, match=f"{MAX_LIVE_TOKENS} live access tokens"):
        make(backend, alice, "one too many")
    listed = backend.list_access_tokens(alice.user_id)
    assert len(listed) == MAX_LIVE_TOKENS + 1  # the revoked one is listed too
    created = [t.created_at for t in listed]
    assert created == sorted(created, reverse=True)  # newest first


def test_a_password_change_keeps_tokens(backend: LakehouseAuthBackend, alice: User) -> None:
    token = make(backend, alice)
    backend.change_password(alice.user_id, PASSWORD, "a brand new passphrase")
    backend.authenticate_access_token(token, "market:read")


def test_audit_records_creation_revocation_and_failures_without_the_token(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    token = make(backend, alice, scopes=["market:read", "sql:run"], days=10)
    tid = backend.list_access_tokens(alice.user_id)[0].token_id
    with pytest.raises(PermissionDenied):
        backend.authenticate_access_token(token, "sql:run", ip="198.51.100.2")
    backend.revoke_access_token(alice.user_id, tid)
    with pytest.raises(InvalidToken):
        backend.authenticate_access_token(token, "market:read")
    [created] = audit(backend, "access_token_created")
    detail = json.loads(created["detail"])
    assert detail["token_id"] == tid
    assert detail["scopes"] == ["market:read", "sql:run"]
    assert "expires_at" in detail
    assert created["user_id"] == alice.user_id
    [revoked] = audit(backend, "access_token_revoked")
    assert json.loads(revoked["detail"])["token_id"] == tid
    failed = {json.loads(r["detail"])["reason"]: r for r in audit(backend, "token_use_failed")}
    assert set(failed) == {"role too low", "revoked"}
    assert failed["role too low"]["outcome"] == "denied"
    assert failed["role too low"]["ip"] == "198.51.100.2"
    assert failed["revoked"]["outcome"] == "failure"
    assert all(r["user_id"] == alice.user_id for r in failed.values())
    everything = json.dumps(backend.store.audit_table.read().to_dicts(), default=str)
    assert secret_of(token) not in everything


def test_failure_audits_are_bounded_per_token_and_in_all(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    token = make(backend, alice)
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    for _ in range(50):
        with pytest.raises(InvalidToken):
            backend.authenticate_access_token(wrong, "market:read")
    assert len(audit(backend, "token_use_failed")) == 1
    clock.advance(61)
    with pytest.raises(InvalidToken):
        backend.authenticate_access_token(wrong, "market:read")
    second = audit(backend, "token_use_failed")[-1]
    assert json.loads(second["detail"])["similar_not_recorded"] == 49
    clock.advance(61)
    for i in range(FAILURE_AUDITS_PER_MINUTE + 20):  # a flood of different ids
        with pytest.raises(InvalidToken):
            backend.authenticate_access_token(f"{TOKEN_PREFIX}{i:012x}_{'a' * 43}", "sql:run")
    assert len(audit(backend, "token_use_failed")) == 2 + FAILURE_AUDITS_PER_MINUTE


def test_last_used_is_written_behind_not_per_call(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    token = make(backend, alice)
    before = backend.store.access_tokens.latest_version()
    for _ in range(200):
        backend.authenticate_access_token(token, "market:read")
        clock.advance(0.1)
    assert backend.list_access_tokens(alice.user_id)[0].last_used_at is not None
    backend.flush()
    assert backend.store.access_tokens.latest_version() - before <= 2
    row = token_rows(backend).row(0, named=True)
    assert row["last_used_at"].timestamp() == pytest.approx(clock.t - 0.1, abs=1e-3)


def test_checking_a_token_reads_no_delta_on_the_warm_path(
    backend: LakehouseAuthBackend, alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = make(backend, alice)
    backend.authenticate_access_token(token, "market:read")
    backend.flush()

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("read Delta on the warm path")

    for table in backend.store.tables.values():
        monkeypatch.setattr(table, "read", boom)
    backend._next_probe = float("inf")
    for _ in range(100):
        backend.authenticate_access_token(token, "market:read")


def test_a_second_backend_sees_new_and_revoked_tokens(
    backend: LakehouseAuthBackend, alice: User, root: Path
) -> None:
    other = make_backend(root)  # another process's view: built from the tables only
    token = make(backend, alice)
    other._next_probe = 0.0  # its periodic version probe is due
    assert other.authenticate_access_token(token, "market:read").user.user_id == alice.user_id
    tid = other.list_access_tokens(alice.user_id)[0].token_id
    other.revoke_access_token(alice.user_id, tid)
    backend._next_probe = 0.0
    with pytest.raises(InvalidToken, match="revoked"):
        backend.authenticate_access_token(token, "market:read")
