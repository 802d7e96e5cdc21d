"""Small helpers shared by the AppTest suites."""

from __future__ import annotations

import time
from collections.abc import Callable

from streamlit.testing.v1 import AppTest


def texts(at: AppTest) -> str:
    """Every piece of text the run showed, for "is it (not) on screen" checks."""
    parts: list[str] = []
    for kind in ("title", "subheader", "markdown", "caption", "text", "success", "error"):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [str(e.value) for e in at.warning] + [str(e.value) for e in at.info]
    return "\n".join(parts)


def rerun_until(
    at: AppTest, check: Callable[[], object], timeout: float = 120, pause: float = 0.3
) -> None:
    """Rerun (AppTest never fires run_every) until `check()` is truthy, failing on exceptions."""
    deadline = time.monotonic() + timeout
    while True:
        at.run()
        assert not at.exception, at.exception
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(pause)
