"""Composition root: `build_engine(settings)` wires the engine's parts together."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import core
from core import native
from core.config import Settings


@dataclass(frozen=True, slots=True)
class DiskFacts:
    path: Path
    free_bytes: int
    total_bytes: int


def disk_facts(path: Path) -> DiskFacts:
    """Free and total bytes of the file system holding `path` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    return DiskFacts(path=path, free_bytes=usage.free, total_bytes=usage.total)


@dataclass(frozen=True, slots=True)
class EngineFacts:
    version: str
    native: native.NativeStatus
    data_dir: Path
    disk: DiskFacts


class Engine:
    """Everything a page, a notebook or the CLI needs, built once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)

    def facts(self) -> EngineFacts:
        return EngineFacts(
            version=core.__version__,
            native=native.status(),
            data_dir=self.settings.data_dir,
            disk=disk_facts(self.settings.data_dir),
        )

    def close(self) -> None:
        """Stop background work; safe to call twice."""


def build_engine(settings: Settings | None = None) -> Engine:
    return Engine(settings or Settings.from_env())
