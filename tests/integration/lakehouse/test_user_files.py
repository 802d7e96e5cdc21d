"""User-data sources registered on the client: checked names, export files, erasure."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from lakehouse import InvalidInput, LakehouseAuthBackend, LakehouseClient, StorageError, User
from lakehouse.userdata import UserFiles
from tests.lakehouse_support import make_admin


class FolderFiles:
    """A real per-user file source: `<folder>/<user_id>/<name>`."""

    def __init__(self, folder: Path, name: str = "notes") -> None:
        self.folder = folder
        self.name = name

    def export_user(self, user_id: str) -> dict[str, bytes]:
        d = self.folder / user_id
        return {p.name: p.read_bytes() for p in sorted(d.glob("*"))} if d.is_dir() else {}

    def erase_user(self, user_id: str) -> int:
        d = self.folder / user_id
        files = sorted(d.glob("*")) if d.is_dir() else []
        for p in files:
            p.unlink()
        return len(files)


def test_sources_are_checked(client: LakehouseClient, tmp_path: Path) -> None:
    assert isinstance(FolderFiles(tmp_path), UserFiles)
    with pytest.raises(InvalidInput, match="not a user-data source"):
        client.register_user_data(object())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="lowercase"):
        client.register_user_data(FolderFiles(tmp_path, "Bad Name"))
    client.register_user_data(FolderFiles(tmp_path))
    with pytest.raises(InvalidInput, match="already registered"):
        client.register_user_data(FolderFiles(tmp_path / "x"))


@pytest.mark.parametrize("fname", ["users.json", "manifest.json", "../x", "a/b", ""])
def test_a_source_cannot_overwrite_other_export_files(
    backend: LakehouseAuthBackend, alice: User, tmp_path: Path, fname: str
) -> None:
    src = FolderFiles(tmp_path)
    (tmp_path / alice.user_id).mkdir()
    client = LakehouseClient(backend.root, backend=backend, user_data=[src])
    src.export_user = lambda uid: {fname: b"x"}  # type: ignore[method-assign]
    with pytest.raises(InvalidInput, match=r"bad file name|already taken"):
        client.export_user_data(alice.user_id)


def test_export_and_erase_go_through_every_source(
    backend: LakehouseAuthBackend, alice: User, tmp_path: Path
) -> None:
    admin = make_admin(backend)
    notes = FolderFiles(tmp_path / "n")
    studies = FolderFiles(tmp_path / "s", "studies")
    for src, fname in ((notes, "notes.txt"), (studies, "study.json")):
        for uid in (alice.user_id, admin.user_id):
            (src.folder / uid).mkdir(parents=True)
            (src.folder / uid / fname).write_text(f"{fname} of {uid}")
    client = LakehouseClient(backend.root, backend=backend, user_data=[notes])
    client.register_user_data(studies)
    zf = zipfile.ZipFile(io.BytesIO(client.export_user_data(alice.user_id)))
    assert zf.read("notes.txt") == f"notes.txt of {alice.user_id}".encode()
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["user_files"] == {
        "notes.txt": {"source": "notes", "bytes": len(f"notes.txt of {alice.user_id}")},
        "study.json": {"source": "studies", "bytes": len(f"study.json of {alice.user_id}")},
    }
    client.erase_user(alice.user_id, acting_user=admin)
    assert not list((tmp_path / "n" / alice.user_id).iterdir())
    assert not list((tmp_path / "s" / alice.user_id).iterdir())
    assert (tmp_path / "n" / admin.user_id / "notes.txt").exists()
    (tmp_path / "n" / alice.user_id / "late.txt").write_text("written after the erasure")
    report = client.maintain()
    assert report["user_files"] == {"notes_files_erased": 1, "studies_files_erased": 0}
    assert not list((tmp_path / "n" / alice.user_id).iterdir())


def test_a_file_that_cannot_be_erased_keeps_the_account(
    backend: LakehouseAuthBackend, alice: User, tmp_path: Path
) -> None:
    """The erasure stops before the account rows go, so it can be run again."""
    admin = make_admin(backend)
    src = FolderFiles(tmp_path / "n")
    (src.folder / alice.user_id / "stuck").mkdir(parents=True)  # a folder: unlink fails
    client = LakehouseClient(backend.root, backend=backend, user_data=[src])
    with pytest.raises(StorageError, match="cannot erase the notes files"):
        client.erase_user(alice.user_id, acting_user=admin)
    assert backend.get_user(alice.user_id).username == "alice"
    (src.folder / alice.user_id / "stuck").rmdir()
    client.erase_user(alice.user_id, acting_user=admin)
