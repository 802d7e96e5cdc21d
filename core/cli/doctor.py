"""`hfthot doctor`: check the installation and say what to fix."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any

from core import native
from core.config import Settings
from core.engine import disk_facts

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def find_chromium() -> str | None:
    for path in CHROMIUM_PATHS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


def run_checks(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    st = native.status()
    checks.append(
        Check(
            "native module",
            st.loaded,
            f"core._native {st.version} ({st.build_profile})" if st.loaded else str(st.error),
            "" if st.loaded else native.FIX,
        )
    )
    data = settings.data_dir
    try:
        data.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data, prefix=".doctor-"):
            pass
        free = disk_facts(data).free_bytes
        checks.append(
            Check("data directory", True, f"{data} (writable, {free / 2**30:.1f} GiB free)")
        )
    except OSError as exc:
        checks.append(
            Check(
                "data directory",
                False,
                f"{data}: {exc}",
                "set HFT_DATA_DIR to a writable folder",
            )
        )
    chromium = find_chromium()
    checks.append(
        Check(
            "chromium (browser tests)",
            chromium is not None,
            chromium or "not found",
            "" if chromium else "apt-get install -y chromium (needed only for the e2e tests)",
            required=False,
        )
    )
    return checks


def run(args: Any) -> int:
    settings = Settings.from_env()
    checks = run_checks(settings)
    for c in checks:
        mark = "ok  " if c.ok else ("FAIL" if c.required else "warn")
        print(f"[{mark}] {c.name}: {c.detail}")
        if not c.ok and c.fix:
            print(f"       fix: {c.fix}")
    failed = [c for c in checks if c.required and not c.ok]
    print("all required checks passed" if not failed else f"{len(failed)} required check(s) failed")
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("doctor", help="check the native module, data directory and browser")
    p.set_defaults(run=run)


__all__ = ["Check", "find_chromium", "register", "run_checks"]
