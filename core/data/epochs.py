"""Cross-process sync on one store root (the app and `hfthot ingest` side by side).

Writers take an exclusive flock on `<root>/.writer.lock` (plus a thread lock). Every commit
replaces `<root>/.epoch`; a reader stats that file (about a microsecond) and, when another
process committed since it last looked, the store re-lists its partitions.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

Stamp = tuple[tuple[int, int, int] | None, bytes]
"""(inode, mtime ns, size) of the epoch file, or None when there is none; and its content
when it changed in the last 25 ms (b"" otherwise)."""


class Epochs:
    """The writer lock and the epoch file of one root."""

    def __init__(self, root: Path, lock: threading.RLock) -> None:
        self.lock = lock
        self._lockfile = root / ".writer.lock"
        self._path = root / ".epoch"
        self.seen: Stamp = (None, b"")

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """One writer at a time: the thread lock plus an flock for other processes."""
        with self.lock, self._lockfile.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def now(self) -> Stamp:
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return None, b""
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        # A file replaced twice within one clock tick can repeat (inode, mtime):
        # for a recent change, compare the content (a counter) as well.
        recent = time.time_ns() - st.st_mtime_ns < 25_000_000
        return sig, (self._path.read_bytes() if recent else b"")

    def changed(self) -> Stamp | None:
        """The current stamp if another process committed since `seen`, else None.

        On every read's path: one stat, and a read of the file only when it is recent."""
        seen = self.seen
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return None if seen[0] is None else (None, b"")
        sig = (st.st_ino, st.st_mtime_ns, st.st_size)
        if sig == seen[0] and time.time_ns() - st.st_mtime_ns >= 25_000_000:
            return None
        now = self.now()
        if now[0] == seen[0] and (not now[1] or now[1] == seen[1]):
            return None
        return now

    def touch(self, generation: int) -> None:
        """Tell other processes on this root that the data changed (no fsync: a hint)."""
        tmp = self._path.with_name(f".epoch-{os.getpid()}-{threading.get_ident()}")
        tmp.write_text(f"{os.getpid()} {time.time_ns()} {generation}\n")
        os.replace(tmp, self._path)
        self.seen = self.now()
