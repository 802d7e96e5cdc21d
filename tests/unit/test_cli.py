from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import core
from core.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"hfthot {core.__version__}"


def test_doctor_passes_on_a_good_install(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "[ok  ] native module: core._native" in out
    assert str(data_dir) in out
    assert "all required checks passed" in out


def test_doctor_reports_unwritable_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("HFT_DATA_DIR", str(blocker / "sub"))
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "[FAIL] data directory" in out
    assert "fix: set HFT_DATA_DIR" in out


def test_console_script_installed(data_dir: Path) -> None:
    exe = Path(sys.executable).with_name("hfthot")
    res = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert res.stdout.startswith("hfthot ")


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "doctor" in capsys.readouterr().out
