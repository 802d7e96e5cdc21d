"""Access tokens across processes, in the GDPR export and erasure, time travel and
maintenance, on real Delta tables (and a real second Python process)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import polars as pl
import pytest

from lakehouse import (
    TOKEN_PREFIX,
    InvalidInput,
    InvalidToken,
    LakehouseAuthBackend,
    LakehouseClient,
    User,
)
from tests.lakehouse_support import PASSWORD, FakeClock, files_containing, make_backend

ROOT = Path(__file__).resolve().parents[3]
TOKEN_NAME = "Zqxj build runner"


def run_other_process(root: Path, code: str, *args: str) -> str:
    """Run `code` in a fresh Python process with `backend` over `root`; returns its stdout."""
    script = "import sys; from tests.lakehouse_support import make_backend; " + (
        "backend = make_backend(sys.argv[1]); " + code
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(root), *args],
        cwd=ROOT,
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return done.stdout.strip()


def test_a_token_made_here_works_in_another_process_and_its_revocation_comes_back(
    root: Path,
) -> None:
    backend = make_backend(root, refresh_s=0.2)
    alice = backend.register("alice", "alice@example.org", PASSWORD)
    token = backend.create_access_token(
        alice.user_id, "laptop", ["market:read"], 30, password=PASSWORD
    )
    backend.authenticate_access_token(token, "market:read")
    seen = run_other_process(
        root,
        "print(backend.authenticate_access_token(sys.argv[2], 'market:read').user.username)",
        token,
    )
    assert seen == "alice"
    tid = backend.list_access_tokens(alice.user_id)[0].token_id
    run_other_process(
        root, "backend.revoke_access_token(sys.argv[2], sys.argv[3])", alice.user_id, tid
    )
    deadline = time.monotonic() + 5
    refused = False
    while time.monotonic() < deadline and not refused:
        try:
            backend.authenticate_access_token(token, "market:read")
            time.sleep(0.05)
        except InvalidToken:
            refused = True
    assert refused


def test_a_token_made_in_another_process_works_here(root: Path) -> None:
    backend = make_backend(root, refresh_s=0.2)
    bob = backend.register("bob", "bob@example.org", PASSWORD)
    token = run_other_process(
        root,
        "print(backend.create_access_token(sys.argv[2], 'ci', ['market:read'], 5, "
        "password=sys.argv[3]))",
        bob.user_id,
        PASSWORD,
    )
    assert token.startswith(TOKEN_PREFIX)
    time.sleep(0.3)  # past this backend's refresh interval
    assert backend.authenticate_access_token(token, "market:read").user.user_id == bob.user_id


@pytest.fixture
def tokened(backend: LakehouseAuthBackend) -> tuple[User, str]:
    user = backend.register("Erin_Tok", "erin.tok@example.org", PASSWORD)
    token = backend.create_access_token(
        user.user_id, TOKEN_NAME, ["market:read", "account:read"], 90, password=PASSWORD
    )
    backend.authenticate_access_token(token, "account:read", ip="192.0.2.77")
    backend.flush()
    return user, token


def test_export_holds_the_tokens_without_their_hash(
    backend: LakehouseAuthBackend, client: LakehouseClient, tokened: tuple[User, str]
) -> None:
    user, token = tokened
    blob = client.export_user_data(user.user_id)
    zf = zipfile.ZipFile(io.BytesIO(blob))
    [row] = json.loads(zf.read("access_tokens.json"))
    assert row["name"] == TOKEN_NAME
    assert row["scopes"] == "market:read,account:read"
    assert row["last_used_at"] is not None
    assert "token_hash" not in row
    assert "token_hash" not in zf.read("access_tokens.csv").decode()
    assert json.loads(zf.read("manifest.json"))["files"]["access_tokens"] == 1
    secret = token[len(TOKEN_PREFIX) + 13 :]
    for name in zf.namelist():
        assert secret.encode() not in zf.read(name)


def test_erasure_removes_the_token_rows_and_maintenance_their_bytes(
    backend: LakehouseAuthBackend,
    client: LakehouseClient,
    tokened: tuple[User, str],
    admin: User,
) -> None:
    user, token = tokened
    data_dir = backend.root.parent
    assert files_containing(data_dir, TOKEN_NAME)  # the scan finds it before erasure
    client.erase_user(user.user_id, acting_user=admin)
    rows = backend.store.access_tokens.read()
    assert rows.filter(pl.col("user_id") == user.user_id).height == 0
    with pytest.raises(InvalidToken):
        backend.authenticate_access_token(token, "market:read")
    client.maintain()
    assert files_containing(data_dir, TOKEN_NAME) == []
    assert files_containing(data_dir, "192.0.2.77") == []
    audit = backend.store.audit_table.read().filter(pl.col("user_id") == user.user_id)
    assert {"access_token_created", "access_token_revoked"} <= set(audit["action"].to_list())


def test_time_travel_hides_the_hash_and_restore_is_refused(
    backend: LakehouseAuthBackend,
    client: LakehouseClient,
    tokened: tuple[User, str],
    admin: User,
) -> None:
    user, token = tokened
    tid = backend.list_access_tokens(user.user_id)[0].token_id
    backend.revoke_access_token(user.user_id, tid)
    old = client.read_version("access_tokens", 1, acting_user=admin)
    assert old.height == 1
    assert "token_hash" not in old.columns
    with pytest.raises(InvalidInput, match="revive revoked tokens"):
        client.restore("access_tokens", 1, acting_user=admin)
    with pytest.raises(InvalidToken, match="revoked"):
        backend.authenticate_access_token(token, "market:read")


def test_maintenance_prunes_tokens_a_month_after_they_end(
    backend: LakehouseAuthBackend, client: LakehouseClient, alice: User, clock: FakeClock
) -> None:
    for name, days in (("short", 1), ("long", 365)):
        backend.create_access_token(alice.user_id, name, ["market:read"], days, password=PASSWORD)
    revoked = backend.create_access_token(
        alice.user_id, "revoked", ["market:read"], 365, password=PASSWORD
    )
    tid = revoked[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + 12]
    backend.revoke_access_token(alice.user_id, tid)
    clock.advance(29 * 86400)
    assert client.maintain()["access_tokens"]["ended_tokens_pruned"] == 0
    clock.advance(3 * 86400)
    assert client.maintain()["access_tokens"]["ended_tokens_pruned"] == 2
    assert [t.name for t in backend.list_access_tokens(alice.user_id)] == ["long"]
