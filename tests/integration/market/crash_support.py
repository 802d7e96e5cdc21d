"""Crash-test children: start one (`spawn`), kill it, read what it acknowledged (`acks`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
CHILD = "tests.integration.market.crash_child"


def spawn(
    root: Path,
    first: int,
    count: int,
    point: str = "",
    after: int = 0,
    child: str = CHILD,
) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("HFT_STORE_CRASH_AT", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            child,
            str(root),
            str(first),
            str(count),
            point,
            str(after),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def killed_after(
    root: Path, first: int, count: int, wait_s: float, child: str = CHILD
) -> list[int]:
    """Start a child, SIGKILL it after `wait_s`; returns the batches it acknowledged."""
    proc = spawn(root, first, count, child=child)
    time.sleep(wait_s)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    return acks(out)


def acks(output: str) -> list[int]:
    return [int(line.split()[1]) for line in output.splitlines() if line.startswith("ack ")]
