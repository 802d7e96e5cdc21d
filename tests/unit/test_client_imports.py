"""The client runs where only pyarrow and polars are installed: it never loads the Rust
extension, the engine, Streamlit or the lakehouse."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

FORBIDDEN = ("core._native", "core.engine", "core.native", "streamlit", "lakehouse", "duckdb")


def test_client_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from core.client import Client\n"
        "c = Client('http://127.0.0.1:1', token='hft_pat_x_y', flight=False)\n"
        f"bad = [m for m in {FORBIDDEN!r} if any(k == m or k.startswith(m + '.') "
        "for k in sys.modules)]\n"
        "assert not bad, bad\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_check_can_fail() -> None:
    """The same probe flags a module that does import the engine."""
    code = (
        "import sys\nimport core.engine\nassert not any(k == 'core.engine' for k in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
