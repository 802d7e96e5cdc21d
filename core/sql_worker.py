"""SQL explorer worker processes: every explorer query runs in a child process under OS limits.

DuckDB cannot bound a query in-process: its interrupt is not checked inside long scalar
functions, and list/string vectors bypass its buffer manager. So (docs/security.md):

- a worker is a fresh interpreter (`python -m core.sql_worker`, never a fork: the app has
  threads) with a minimal environment and RLIMIT_DATA = memory limit + `HEADROOM_MB`, so an
  allocation past it fails inside DuckDB ("Out of Memory") instead of growing the app;
- it holds one locked-down DuckDB connection (enable_external_access=false,
  allowed_directories = the warm bars/ and trades/ folders, no extensions,
  lock_configuration=true) whose views it rebuilds from inputs the parent sends: the warm
  file lists, the buffered rows and the daily rollups (Arrow IPC);
- it answers a query with an Arrow IPC stream written straight into the pipe, capped in rows
  and bytes, duplicate column names made unique;
- it exits when its parent dies (the parent pid is polled) or its input pipe closes.

The parent side (`WorkerPool`) keeps `size` workers warm, queues queries when all are busy,
kills a worker at the query deadline or when its RSS (read from /proc) passes the limit, and
starts a replacement in the background. This module imports only the standard library,
DuckDB and pyarrow, so a worker stays small.
"""

from __future__ import annotations

import json
import os
import queue
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.ipc as ipc

HEADROOM_MB = 384
"""RLIMIT_DATA above the DuckDB memory limit: the interpreter, DuckDB's and Arrow's own
allocations and thread arenas (measured: ~350 MB of address space, ~125 MB resident)."""
RSS_SLACK_MB = 224
"""The parent kills a worker whose resident memory passes the memory limit plus this."""
START_TIMEOUT_S = 60.0
_FRAME = struct.Struct("<IIQ")  # header length, payload count, total payload bytes
_LEN = struct.Struct("<Q")
_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")


class WorkerError(Exception):
    """A worker failed (crashed, killed, could not start); `reason` as QueryRejected's."""

    def __init__(self, message: str, reason: str = "error") -> None:
        super().__init__(message)
        self.reason = reason


# --------------------------------------------------------------------- framing


def _write_all(fd: int, data: bytes | memoryview | pa.Buffer) -> None:
    view = memoryview(data).cast("B")
    while view:
        n = os.write(fd, view)
        view = view[n:]


def send(fd: int, header: dict[str, Any], payloads: Sequence[bytes | pa.Buffer] = ()) -> None:
    """One message: a JSON header and length-prefixed binary payloads."""
    head = json.dumps(header).encode()
    total = sum(len(memoryview(p).cast("B")) for p in payloads)
    _write_all(fd, _FRAME.pack(len(head), len(payloads), total) + head)
    for p in payloads:
        _write_all(fd, _LEN.pack(len(memoryview(p).cast("B"))))
        _write_all(fd, p)


def _read_into(fd: int, view: memoryview, wait: Any) -> None:
    """Fill `view` from `fd`; `wait()` is called before each read (deadline, watchdog)."""
    while view:
        wait()
        n = os.readv(fd, [view])
        if n == 0:
            raise EOFError
        view = view[n:]


def recv(fd: int, wait: Any = lambda: None) -> tuple[dict[str, Any], list[bytearray]]:
    head = bytearray(_FRAME.size)
    _read_into(fd, memoryview(head), wait)
    head_len, count, _total = _FRAME.unpack(head)
    raw = bytearray(head_len)
    _read_into(fd, memoryview(raw), wait)
    payloads: list[bytearray] = []
    for _ in range(count):
        size = bytearray(_LEN.size)
        _read_into(fd, memoryview(size), wait)
        body = bytearray(_LEN.unpack(size)[0])
        _read_into(fd, memoryview(body), wait)
        payloads.append(body)
    return json.loads(raw), payloads


def to_ipc(table: pa.Table) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def from_ipc(data: bytearray | bytes) -> pa.Table:
    """Zero-copy: the table's buffers point into `data`."""
    return ipc.open_stream(pa.py_buffer(data)).read_all()


# --------------------------------------------------------------------- sandbox


def unique_names(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """Duplicate column names made unique (a, a_2, a_3 ...), and a note per rename."""
    taken = {n.lower() for n in names}
    seen: set[str] = set()
    out: list[str] = []
    notes: list[str] = []
    for name in names:
        if name.lower() not in seen:
            seen.add(name.lower())
            out.append(name)
            continue
        k = 2
        while f"{name}_{k}".lower() in taken or f"{name}_{k}".lower() in seen:
            k += 1
        new = f"{name}_{k}"
        seen.add(new.lower())
        out.append(new)
        notes.append(f"duplicate column {name!r} renamed to {new!r}")
    return out, notes


def _refresh(con: duckdb.DuckDBPyConnection, spec: dict[str, Any], tables: dict[str, Any]) -> None:
    """(Re)create the views `bars`, `trades` and `daily` from `spec` and `tables`.

    Every name in the generated SQL is a constant of the spec; paths are quoted.
    """
    for kind, part in spec["kinds"].items():
        cols = ", ".join(part["columns"])
        parts: list[str] = []
        if part["files"]:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in part["files"])
            source = (
                f"read_parquet([{listed}], hive_partitioning = true, "
                f"hive_types = {part['hive_types']})"
            )
            con.execute(f"CREATE OR REPLACE VIEW _{kind}_files AS SELECT * FROM {source}")  # noqa: S608
            parts.append(f"SELECT {cols} FROM _{kind}_files")  # noqa: S608
        buffer = tables[f"{kind}_buffer"]
        con.register(f"_{kind}_buffer", buffer)
        if buffer.num_rows:
            cond = " AND ".join(f"b.{k} = f.{k}" for k in part["keys"])
            if parts:
                parts[0] = (
                    f"SELECT {cols} FROM _{kind}_files f WHERE NOT EXISTS "  # noqa: S608
                    f"(SELECT 1 FROM _{kind}_buffer b WHERE {cond})"
                )
            parts.append(f"SELECT {cols} FROM _{kind}_buffer")  # noqa: S608
        if not parts:
            parts.append(f"SELECT {cols} FROM _{kind}_buffer")  # noqa: S608
        con.execute(f"CREATE OR REPLACE VIEW {kind} AS {' UNION ALL '.join(parts)}")
    con.register("_daily", tables["daily"])
    con.execute("CREATE OR REPLACE VIEW daily AS SELECT * FROM _daily")


def open_sandbox(
    spec: dict[str, Any],
    tables: dict[str, Any],
    *,
    memory_limit: str = "1GB",
    threads: int = 2,
) -> duckdb.DuckDBPyConnection:
    """A locked-down in-memory DuckDB connection with the three views."""
    con = duckdb.connect(
        ":memory:",
        config={
            "autoload_known_extensions": False,
            "autoinstall_known_extensions": False,
            "allow_community_extensions": False,
            "memory_limit": memory_limit,
            "threads": threads,
        },
    )
    try:
        # allowed_directories cannot be set at connect, nor once access is off.
        con.execute("SET allowed_directories = ?", [list(spec["allowed"])])
        con.execute("SET enable_external_access = false")
        con.execute("SET enable_progress_bar = false")
        _refresh(con, spec, tables)
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


# ----------------------------------------------------------------- worker side


def _peak_mb(pid: int | str = "self") -> float:
    """The process's own resident high-water mark (VmHWM). Not ru_maxrss: Linux carries the
    parent's high-water mark across fork and exec into it, so a worker spawned by a 1 GB app
    would report 1 GB."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0.0


def _rss_mb(pid: int | str = "self") -> float:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def _watch_parent(parent: int) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(3)
        time.sleep(0.2)


class _Worker:
    def __init__(self, memory_mb: int, threads: int) -> None:
        self.memory_mb = memory_mb
        self.threads = threads
        self.con: duckdb.DuckDBPyConnection | None = None

    def handle(
        self, header: dict[str, Any], payloads: list[bytearray]
    ) -> tuple[dict[str, Any], Any]:
        op = header.get("op")
        if op == "views":
            tables = {name: from_ipc(p) for name, p in zip(header["tables"], payloads, strict=True)}
            if self.con is None:
                self.con = open_sandbox(
                    header["spec"],
                    tables,
                    memory_limit=f"{self.memory_mb}MB",
                    threads=self.threads,
                )
            else:
                _refresh(self.con, header["spec"], tables)
            return {"ok": True}, None
        if self.con is None:
            raise WorkerError("the views were not set up")
        if op == "schema":
            rows = []
            for view in header["views"]:
                for r in self.con.execute(f"DESCRIBE {view}").fetchall():
                    rows.append({"view": view, "column": str(r[0]), "type": str(r[1])})
            return {"ok": True, "schema": rows}, None
        if op == "query":
            table = self.con.sql(header["sql"]).to_arrow_table()
            cap = int(header["max_rows"])
            truncated = table.num_rows > cap
            if truncated:
                table = table.slice(0, cap)
            names, notes = unique_names(table.column_names)
            if notes:
                table = table.rename_columns(names)
            size = table.get_total_buffer_size()
            if size > int(header["max_bytes"]):
                return {
                    "ok": False,
                    "reason": "memory",
                    "kind": "too_large",
                    "message": f"{size / 2**20:.0f} MB",
                }, None
            return {"ok": True, "truncated": truncated, "notes": notes}, to_ipc(table)
        raise WorkerError(f"unknown request {op!r}")


def _reply(fd: int, header: dict[str, Any], body: pa.Buffer | None) -> None:
    header["peak_mb"] = _peak_mb()
    header["rss_mb"] = _rss_mb()
    send(fd, header, [] if body is None else [body])


def main(argv: Sequence[str]) -> int:
    parent, memory_mb, threads = int(argv[0]), int(argv[1]), int(argv[2])
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a worker stops
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    # The protocol owns the original stdin/stdout; stray prints go to stderr.
    rfd, wfd = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)
    limit = (memory_mb + HEADROOM_MB) * 2**20
    resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    worker = _Worker(memory_mb, threads)
    send(wfd, {"ready": True, "pid": os.getpid()})
    while True:
        try:
            header, payloads = recv(rfd)
        except EOFError:
            return 0
        body: pa.Buffer | None = None
        try:
            reply, body = worker.handle(header, payloads)
        except (duckdb.OutOfMemoryException, MemoryError):
            reply = {"ok": False, "reason": "memory", "kind": "memory", "message": ""}
        except duckdb.PermissionException as exc:
            reply = {"ok": False, "reason": "policy", "kind": "sandbox", "message": str(exc)}
        except duckdb.Error as exc:
            reply = {"ok": False, "reason": "error", "kind": "duckdb", "message": str(exc)}
        except Exception as exc:  # every failure becomes a typed reply
            reply = {"ok": False, "reason": "error", "kind": type(exc).__name__, "message": ""}
        del payloads
        try:
            _reply(wfd, reply, body)
        except (duckdb.OutOfMemoryException, MemoryError, pa.ArrowMemoryError):
            return 4  # the parent sees the pipe close mid-answer and reports memory
        except BrokenPipeError:
            return 0


# ----------------------------------------------------------------- parent side


@dataclass
class Worker:
    """The parent's handle on one worker process."""

    proc: subprocess.Popen[bytes]
    wfd: int
    rfd: int
    memory_mb: int
    generation: int = -1
    alive: bool = True
    ready: bool = False
    peak_mb: float = 0.0
    pool: weakref.ref[WorkerPool] | None = field(default=None, repr=False)

    @classmethod
    def start(cls, memory_mb: int, threads: int) -> Worker:
        env = {k: v for k, v in os.environ.items() if k in _ENV_KEEP}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        root = Path(__file__).resolve().parent.parent
        proc = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [
                sys.executable,
                "-s",
                "-m",
                "core.sql_worker",
                str(os.getpid()),
                str(memory_mb),
                str(threads),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=root,
            env=env,
            close_fds=True,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        return cls(proc, proc.stdin.fileno(), proc.stdout.fileno(), memory_mb)

    def wait_ready(self) -> None:
        try:
            header, _ = self.receive(time.monotonic() + START_TIMEOUT_S)
        except WorkerError:
            header = {}
        if not header.get("ready"):
            self.kill()
            raise WorkerError("the SQL worker process did not start")
        self.ready = True

    def request(
        self, header: dict[str, Any], payloads: Sequence[bytes | pa.Buffer], deadline: float
    ) -> tuple[dict[str, Any], list[bytearray]]:
        try:
            send(self.wfd, header, payloads)
        except OSError:
            self.kill()
            raise WorkerError("the SQL worker stopped unexpectedly; run the query again") from None
        return self.receive(deadline)

    def receive(self, deadline: float) -> tuple[dict[str, Any], list[bytearray]]:
        rss_cap = self.memory_mb + RSS_SLACK_MB

        poller = select.poll()  # not select(): the app may hold more than 1024 fds
        poller.register(self.rfd, select.POLLIN | select.POLLHUP | select.POLLERR)

        def wait() -> None:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self.kill()
                    raise WorkerError("timeout", reason="timeout")
                ready = poller.poll(min(left, 0.02) * 1000)
                if _rss_mb(self.proc.pid) > rss_cap:
                    self.kill()
                    raise WorkerError("memory", reason="memory")
                if ready:
                    return

        try:
            header, payloads = recv(self.rfd, wait)
        except (EOFError, OSError):
            self.kill()
            # Exit 4: out of memory while answering; SIGABRT/SIGKILL: the allocator or the
            # kernel gave up on memory. Anything else is a crash.
            code = self.proc.returncode
            reason = "memory" if code in (4, -signal.SIGABRT, -signal.SIGKILL) else "crashed"
            raise WorkerError("crashed", reason=reason) from None
        self.peak_mb = max(self.peak_mb, float(header.get("peak_mb", 0.0)))
        return header, payloads

    def kill(self) -> None:
        """SIGKILL, then reap (recording the peak resident memory); idempotent."""
        if not self.alive:
            return
        self.alive = False
        self.peak_mb = max(self.peak_mb, _peak_mb(self.proc.pid))
        with suppress(OSError):
            self.proc.kill()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            if self._reap(os.WNOHANG):
                return
            time.sleep(0.005)
        threading.Thread(target=self._reap, args=(0,), daemon=True).start()

    def _reap(self, flags: int) -> bool:
        try:
            pid, status, _ = os.wait4(self.proc.pid, flags)
        except ChildProcessError:
            self.proc.returncode = -9
            return True
        if pid == 0:
            return False
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        pool = self.pool() if self.pool is not None else None
        if pool is not None:
            pool.note_peak(self.peak_mb)
        return True


class WorkerPool:
    """`size` warm workers shared by every query; a killed one is replaced in the background."""

    def __init__(self, *, size: int = 2, memory_mb: int = 1024, threads: int = 2) -> None:
        self.size = size
        self.memory_mb = memory_mb
        self.threads = threads
        self.restarts = 0
        self.peak_mb = 0.0
        self.start_error: str | None = None
        self.warmed = False
        self._idle: queue.LifoQueue[Worker] = queue.LifoQueue()
        self._all: set[int] = set()
        self._workers: list[Worker] = []
        self._starting = 0
        self._closed = False
        self._lock = threading.Lock()
        # No orphans: every worker is killed when the pool is collected or at exit.
        self._finalizer = weakref.finalize(self, _kill_all, self._workers)

    def note_peak(self, mb: float) -> None:
        self.peak_mb = max(self.peak_mb, mb)

    def pids(self) -> list[int]:
        """Process ids of this pool's live workers (ready or starting)."""
        with self._lock:
            return [w.proc.pid for w in self._workers if w.alive]

    def ensure(self) -> None:
        """Start workers until `size` are alive or starting."""
        with self._lock:
            if self._closed:
                return
            alive = sum(1 for w in self._workers if w.alive and w.ready)
            need = self.size - alive - self._starting
            self._starting += max(need, 0)
        for _ in range(max(need, 0)):
            threading.Thread(target=self._start_one, daemon=True).start()

    def _start_one(self) -> None:
        try:
            w = Worker.start(self.memory_mb, self.threads)
        except OSError as exc:
            with self._lock:
                self._starting -= 1
                self.start_error = f"the SQL worker process did not start: {exc.strerror}"
            return
        w.pool = weakref.ref(self)
        with self._lock:
            # Listed before it is ready, so close() kills a worker still starting.
            self._workers[:] = [x for x in self._workers if x.alive] + [w]
            closed = self._closed
        try:
            if closed:
                raise WorkerError("closed")
            w.wait_ready()
        except WorkerError as exc:
            w.kill()
            with self._lock:
                self._starting -= 1
                if not closed:
                    self.start_error = str(exc)
            return
        with self._lock:
            self._starting -= 1
            self.start_error = None
            self.warmed = True
        self._idle.put(w)

    @contextmanager
    def worker(self, deadline: float) -> Iterator[Worker]:
        """An idle worker (waiting, at most until `deadline`, for one to free up)."""
        self.ensure()
        # Before any worker was ever ready (a cold start), waiting for one to start does
        # not count against the query's timeout.
        cold_until = time.monotonic() + START_TIMEOUT_S if not self.warmed else 0.0
        w: Worker | None = None
        while w is None:
            left = max(deadline, cold_until if not self.warmed else 0.0) - time.monotonic()
            if left <= 0:
                raise WorkerError("busy", reason="timeout")
            try:
                w = self._idle.get(timeout=min(left, 0.25))
            except queue.Empty:
                if self.start_error is not None and not any(x.alive for x in self._workers):
                    raise WorkerError(self.start_error) from None
                self.ensure()
                continue
            if not w.alive:
                w = None
        try:
            yield w
        finally:
            if w.alive:
                self._idle.put(w)
            else:
                self.restarts += 1
                self.note_peak(w.peak_mb)
                self.ensure()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._finalizer()


def _kill_all(workers: list[Worker]) -> None:
    for w in list(workers):
        w.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
