"""`hfthot admin create|set-role` and `hfthot lakehouse maintain`."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import main
from lakehouse import LakehouseAuthBackend
from tests.lakehouse_support import ADMIN_PASSWORD, make_backend


def test_admin_create_from_stdin_then_login(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(ADMIN_PASSWORD + "\n"))
    code = main(
        ["admin", "create", "--username", "boss", "--email", "boss@example.org", "--password-stdin"]
    )
    assert code == 0, capsys.readouterr().err
    assert "created admin boss" in capsys.readouterr().out
    backend = LakehouseAuthBackend(data_dir / "lakehouse")  # production params, as the app
    token = backend.login("boss", ADMIN_PASSWORD)
    assert backend.verify_persistent_token(token).role == "admin"
    assert (data_dir / "secrets" / "jwt-keys.json").exists()


def test_admin_create_refuses_bad_input(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("password\n"))
    code = main(["admin", "create", "--username", "boss", "--email", "b@x.org", "--password-stdin"])
    assert code == 1
    assert "too common" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO(ADMIN_PASSWORD + "\n"))
    code = main(["admin", "create", "--username", "boss", "--email", "nope", "--password-stdin"])
    assert code == 1
    assert "valid address" in capsys.readouterr().err


def test_admin_create_prompt_must_match(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    answers = iter([ADMIN_PASSWORD, ADMIN_PASSWORD + "x"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    assert main(["admin", "create", "--username", "boss", "--email", "b@example.org"]) == 1
    assert "differ" in capsys.readouterr().err


def test_set_role(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = make_backend(data_dir / "lakehouse")
    b.register("alice", "alice@example.org", "correct horse battery")
    assert main(["admin", "set-role", "--username", "Alice", "--role", "analyst"]) == 0
    assert "alice is now analyst" in capsys.readouterr().out
    assert main(["admin", "set-role", "--username", "ghost", "--role", "analyst"]) == 1
    assert "no account" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["admin", "set-role", "--username", "alice", "--role", "root"])


def test_maintain_prints_progress_in_a_subprocess(data_dir: Path) -> None:
    make_backend(data_dir / "lakehouse").register("alice", "a@example.org", "correct horse b")
    exe = Path(sys.executable).with_name("hfthot")
    res = subprocess.run(
        [str(exe), "lakehouse", "maintain"], capture_output=True, text=True, timeout=300
    )
    assert res.returncode == 0, res.stderr
    assert "[100.0%] done" in res.stdout
    assert "audit_log:" in res.stdout
    assert "files_vacuumed" in res.stdout


def test_rotate_token_key(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = make_backend(data_dir / "lakehouse")
    first = b.store.jwt_ring.current_kid
    assert main(["admin", "rotate-token-key"]) == 0
    assert "new token signing key" in capsys.readouterr().out
    b.store.jwt_ring.reload()
    assert b.store.jwt_ring.current_kid != first
    assert set(b.store.jwt_ring.keys) == {first, b.store.jwt_ring.current_kid}
