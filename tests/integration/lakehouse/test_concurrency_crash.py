"""Concurrency (threads and processes) and crash safety on real Delta tables."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import polars as pl
from deltalake import DeltaTable

from lakehouse import (
    InvalidCredentials,
    LakehouseAuthBackend,
    SessionRevoked,
    User,
    UsernameTaken,
)
from tests.lakehouse_support import PASSWORD, make_backend, make_client

ROOT = Path(__file__).resolve().parents[3]


def test_16_threads_register_and_login_with_colliding_names(
    backend: LakehouseAuthBackend,
) -> None:
    names = ["trader", "Trader", "TRADER", "quant", "Quant", "QUANT", "risk", "RISK"] * 2
    results: list[object] = [None] * 16
    tokens: list[str | None] = [None] * 16
    barrier = threading.Barrier(16)

    def work(i: int) -> None:
        barrier.wait()
        try:
            results[i] = backend.register(names[i], f"u{i}@example.org", PASSWORD)
        except UsernameTaken as exc:
            results[i] = exc
        tokens[i] = backend.login(names[i], PASSWORD, ip=f"10.1.0.{i}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    users = backend.store.users.read()
    assert sorted(users["username_key"].to_list()) == ["quant", "risk", "trader"]
    assert users["user_id"].n_unique() == 3
    created = [r for r in results if isinstance(r, User)]
    assert len(created) == 3
    assert all(isinstance(r, UsernameTaken) for r in results if not isinstance(r, User))
    sessions = backend.store.sessions.read()
    assert sessions.height == 16
    assert sessions["session_id"].n_unique() == 16
    for tok in tokens:
        assert tok is not None
        assert backend.verify_persistent_token(tok).username.casefold() in {
            "trader",
            "quant",
            "risk",
        }
    audit = backend.store.audit_table.read()
    assert audit["event_id"].n_unique() == audit.height
    assert audit.filter(pl.col("action") == "register").height == 16
    assert audit.filter(pl.col("action") == "login").height == 16


def test_16_threads_of_usage_and_audit_lose_nothing(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    def work(i: int) -> None:
        for _ in range(10):
            backend.update_query_count(alice.user_id, "binance", 1)
            backend.store.audit.record("probe", "success", user_id=alice.user_id)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert backend.store.api_usage.read()["count"].sum() == 160
    probes = backend.store.audit_table.read().filter(pl.col("action") == "probe")
    assert probes.height == 160
    assert probes["event_id"].n_unique() == 160
    assert backend.get_api_keys(alice.user_id)["provider_keys"] == {}
    assert backend.update_query_count(alice.user_id, "binance") == 6000 - 161


CHILD = textwrap.dedent(
    """
    import sys, time
    from tests.lakehouse_support import make_backend, PASSWORD
    from lakehouse import UsernameTaken
    root, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    b = make_backend(root)
    for i in range(n):
        name = "shared" if i == 0 else f"{tag}_{i}"
        try:
            u = b.register(name, f"{tag}{i}@example.org", PASSWORD)
            print("ack", u.user_id, name, flush=True)
        except UsernameTaken:
            print("taken", name, flush=True)
        b.update_query_count(u.user_id if i else b.find_user("shared").user_id, "binance")
        print("usage", flush=True)
    """
)


def _child(root: Path, tag: str, n: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), tag, str(n)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_processes_share_one_writer_per_table(root: Path) -> None:
    make_backend(root)  # create tables and secrets first
    procs = [_child(root, f"p{k}", 4) for k in range(3)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    acks = [line for out, _ in outs for line in out.splitlines() if line.startswith("ack")]
    users = make_backend(root).store.users.read()
    assert users.filter(pl.col("username_key") == "shared").height == 1
    assert sorted(users["user_id"].to_list()) == sorted(line.split()[1] for line in acks)
    assert make_backend(root).store.api_usage.read()["count"].sum() == 12


def test_sigkill_mid_write_keeps_tables_open_and_acks_durable(root: Path) -> None:
    make_backend(root)
    proc = _child(root, "crash", 10_000)
    acked: list[str] = []
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    while len(acked) < 8 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("ack"):
            acked.append(line.split()[1])
        elif not line:
            break
    time.sleep(0.05)  # land inside the next write
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)  # drains and closes the pipes
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 8
    for name in ("users", "sessions", "audit_log", "api_usage"):
        assert DeltaTable(str(root / name)).version() >= 0  # opens cleanly
        pl.read_delta(str(root / name))
    fresh = make_backend(root)
    ids = set(fresh.store.users.read()["user_id"].to_list())
    assert set(acked) <= ids
    audit_ids = set(fresh.store.audit_table.read()["user_id"].to_list())
    assert set(acked) <= audit_ids  # audit precedes every acknowledged registration
    # and the lakehouse keeps working after the crash
    fresh.register("after_crash", "after@example.org", PASSWORD)
    assert fresh.login("after_crash", PASSWORD)
    with contextlib.suppress(InvalidCredentials):
        fresh.login("after_crash", "wrong password!")


def test_logout_in_another_process_is_seen_within_refresh_interval(root: Path) -> None:
    backend = make_backend(root, refresh_s=0.2)
    backend.register("dave", "dave@example.org", PASSWORD)
    token = backend.login("dave", PASSWORD)
    backend.verify_persistent_token(token)
    code = "import sys; from tests.lakehouse_support import make_backend; " + (
        "make_backend(sys.argv[1]).logout(sys.argv[2])"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(root), token],
        cwd=ROOT,
        check=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 5
    revoked = False
    while time.monotonic() < deadline and not revoked:
        try:
            backend.verify_persistent_token(token)
            time.sleep(0.05)
        except SessionRevoked:
            revoked = True
    assert revoked


def test_maintenance_while_the_app_writes(root: Path) -> None:
    backend = make_backend(root)
    client = make_client(backend)
    users = [backend.register(f"user{i}", f"u{i}@example.org", PASSWORD) for i in range(4)]
    client.erase_user(users[0].user_id, acting_user=users[0])  # forces a zero-retention vacuum
    stop = threading.Event()
    errors: list[BaseException] = []
    done = [0]

    def app_traffic() -> None:
        try:
            while not stop.is_set():
                tok = backend.login("user1", PASSWORD)
                backend.verify_persistent_token(tok)
                backend.update_query_count(users[1].user_id, "binance")
                backend.logout(tok)
                done[0] += 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    worker = threading.Thread(target=app_traffic)
    worker.start()
    try:
        client.maintain()
        client.maintain()
    finally:
        stop.set()
        worker.join(timeout=120)
    assert errors == []
    assert done[0] >= 1
    assert backend.store.api_usage.read()["count"].sum() == done[0]
    logins = backend.store.audit_table.read().filter(
        (pl.col("action") == "login") & (pl.col("outcome") == "success")
    )
    assert logins.height == done[0]
