"""The only importer of the Rust extension `core._native`.

Import `ext` from here. When the extension is missing, `ext` is a stand-in
whose every attribute raises `NativeUnavailable` with the fix, so the app and
`hfthot doctor` can still start and report it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from core.errors import NativeUnavailable

__all__ = ["FIX", "NativeStatus", "ext", "status"]

FIX = "build it with `make run` (or `.venv/bin/maturin develop --release`)"


@dataclass(frozen=True, slots=True)
class NativeStatus:
    loaded: bool
    version: str | None
    build_profile: str | None
    path: str | None
    error: str | None


def _load() -> tuple[ModuleType | None, str | None]:
    try:
        return importlib.import_module("core._native"), None
    except ImportError as exc:
        return None, f"{exc}; {FIX}"


_module, _error = _load()


class _Missing:
    def __init__(self, error: str) -> None:
        self._error = error

    def __getattr__(self, name: str) -> object:
        raise NativeUnavailable(f"the Rust extension core._native is not loaded ({self._error})")


if TYPE_CHECKING:
    from core import _native as ext
else:
    ext = _module if _module is not None else _Missing(_error or "unknown error")


def status() -> NativeStatus:
    """What the Home page and `hfthot doctor` report about the extension."""
    if _module is None:
        return NativeStatus(False, None, None, None, _error)
    file = getattr(_module, "__file__", None)
    return NativeStatus(
        loaded=True,
        version=str(_module.__version__),
        build_profile=str(_module.BUILD_PROFILE),
        path=str(Path(file).name) if file else None,
        error=None,
    )
