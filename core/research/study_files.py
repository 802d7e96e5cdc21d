"""Study artefacts on disk: `<data_dir>/studies/<user_id>/<study_id>/<frame>.parquet`.

Files are written to a temp name, fsync'd and renamed (then the folder is fsync'd), so a
frame is either whole or absent. `StudyFiles` is also the "studies" user-data source of the
accounts lakehouse (lakehouse.userdata): the GDPR export holds every artefact of the user as
`studies-<study_id>-<frame>.parquet`, and the erasure deletes the user's folder.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from core.errors import InvalidInput

FOLDER = "studies"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
FRAME_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def studies_folder(data_dir: Path) -> Path:
    """Where the studies of the portal over `data_dir` keep their artefacts."""
    return data_dir / FOLDER


def check_id(value: object, what: str) -> str:
    """A user or study id safe to use as a folder name."""
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidInput(f"{what} must be 1-64 letters, digits, '-' or '_'")
    return value


def check_frame_name(value: object) -> str:
    if not isinstance(value, str) or not FRAME_NAME.match(value):
        raise InvalidInput(
            f"artefact name {value!r} must be 1-40 lowercase letters, digits or '_', "
            "starting with a letter"
        )
    return value


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class StudyFiles:
    name = "studies"
    """Its name as a user-data source (export manifest, maintenance report)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()

    def user_dir(self, user_id: str) -> Path:
        return self.folder / check_id(user_id, "user id")

    def study_dir(self, user_id: str, study_id: str) -> Path:
        return self.user_dir(user_id) / check_id(study_id, "study id")

    def write(self, user_id: str, study_id: str, frames: Mapping[str, pl.DataFrame]) -> None:
        """Write every frame durably (temp file, fsync, rename, fsync of the folder)."""
        folder = self.study_dir(user_id, study_id)
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in frames.items():
            target = folder / f"{check_frame_name(name)}.parquet"
            tmp = folder / f".{name}.{uuid.uuid4().hex}.tmp"
            try:
                with tmp.open("wb") as fh:
                    frame.write_parquet(fh)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        _fsync_dir(folder)
        _fsync_dir(folder.parent)

    def read(self, user_id: str, study_id: str, name: str) -> pl.DataFrame | None:
        path = self.study_dir(user_id, study_id) / f"{check_frame_name(name)}.parquet"
        try:
            return pl.read_parquet(path)
        except FileNotFoundError:
            return None

    def raw(self, user_id: str, study_id: str, name: str) -> bytes | None:
        """The stored Parquet bytes of one artefact, or None when it is missing."""
        path = self.study_dir(user_id, study_id) / f"{check_frame_name(name)}.parquet"
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def remove(self, user_id: str, study_id: str) -> None:
        folder = self.study_dir(user_id, study_id)
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # the user's folder, once empty
            folder.parent.rmdir()

    def export_user(self, user_id: str) -> dict[str, bytes]:
        """`studies-<study_id>-<frame>.parquet` -> bytes for every artefact of the user."""
        out: dict[str, bytes] = {}
        try:
            base = self.user_dir(user_id)
        except InvalidInput:
            return out
        with self._lock:
            if not base.is_dir():
                return out
            for study in sorted(p for p in base.iterdir() if p.is_dir()):
                for path in sorted(study.glob("*.parquet")):
                    out[f"studies-{study.name}-{path.stem}.parquet"] = path.read_bytes()
        return out

    def erase_user(self, user_id: str) -> int:
        """Delete the user's artefact folder; returns how many files it held."""
        try:
            base = self.user_dir(user_id)
        except InvalidInput:
            return 0
        with self._lock:
            if not base.is_dir():
                return 0
            count = sum(1 for p in base.rglob("*") if p.is_file())
            shutil.rmtree(base, ignore_errors=True)
            return count
