"""Personal data kept outside the Delta tables: the `UserFiles` protocol.

Features that keep per-user files under the data dir (the SQL explorer history today; job
records, saved studies or tokens later) implement it and are registered on the
`LakehouseClient` (constructor `user_data=[...]` or `register_user_data(...)`). The client
then puts their files in the GDPR export and deletes them on erasure, and `maintain()` erases
them again for every pending erasure (a file written after the erasure is caught there).
The lakehouse never imports the engine: the protocol is structural.
"""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

from lakehouse.errors import InvalidInput

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@runtime_checkable
class UserFiles(Protocol):
    """A source of per-user files: export them, erase them."""

    name: str
    """A short id (lowercase letters, digits, `_`), listed in the export manifest."""

    def export_user(self, user_id: str) -> dict[str, bytes]:
        """File name -> content of everything this source holds about the user ({} if none)."""
        ...

    def erase_user(self, user_id: str) -> int:
        """Delete everything this source holds about the user; returns files deleted."""
        ...


def check_source(source: object) -> UserFiles:
    """`source` if it implements UserFiles with a usable name, else InvalidInput."""
    if not isinstance(source, UserFiles):
        raise InvalidInput(
            f"{type(source).__name__} is not a user-data source: it needs a `name`, "
            "`export_user(user_id)` and `erase_user(user_id)`"
        )
    if not isinstance(source.name, str) or not _NAME.match(source.name):
        raise InvalidInput(
            f"user-data source name {source.name!r} must be 1-40 lowercase letters, digits "
            "or '_', starting with a letter"
        )
    return source


def check_file_name(source: str, name: object, taken: set[str]) -> str:
    """A file name a source exports: plain (no folders), not clashing with another file."""
    if not isinstance(name, str) or not _FILE.match(name) or ".." in name:
        raise InvalidInput(f"user-data source {source} exports a bad file name {name!r}")
    if name in taken:
        raise InvalidInput(f"user-data source {source} exports {name}, which is already taken")
    return name
