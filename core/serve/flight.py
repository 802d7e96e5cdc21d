"""The Arrow Flight data service: bars and SQL answers as Arrow streams over gRPC.

Tickets are JSON objects::

    {"kind": "bars", "symbol": "BTC/USDT", "venue": null, "timeframe": "1m",
     "start": "2024-01-01", "end": null, "last": null}
    {"kind": "sql", "sql": "SELECT ...", "timeout_s": 5, "max_rows": 1000}

Every call carries the caller's access token in its `authorization` header
(`Bearer hft_pat_...`); bars, ListFlights and GetFlightInfo need `market:read`, SQL needs
`sql:run`. A refusal raises the Flight error class of its HTTP status with the same detail
text as the REST API, and `extra_info` holds the problem as JSON (status, detail,
retry_after_s), so a client can tell a 429 from a server that is down. `ListFlights` gives
one FlightInfo per stored bar series; its ticket reads the whole series. The `health`
action answers without a token, so a client can check that the service is reachable.

Answers are streamed in Polars' own Arrow layout (text columns as `string_view`, readable by
pyarrow >= 16), so a Polars client gets them without a copy.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
from collections.abc import Callable, Iterator
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.flight as fl

from core.config import Settings
from core.data.schema import BARS
from core.errors import HftError, InvalidInput, RetryableError
from core.serve import data
from core.serve.access import Gate, Problem, bearer_token, problem_of
from core.services import Services
from lakehouse import TokenUser

log = logging.getLogger(__name__)

MAX_TICKET_BYTES = 64 * 1024
HEALTH = "health"
BATCH_ROWS = 16_384
"""Rows per streamed record batch: the client reads one while the next is on the wire."""
NEWEST = pl.CompatLevel.newest()
BARS_SCHEMA = pl.DataFrame(schema=BARS).to_arrow(compat_level=NEWEST).schema


def arrow_of(frame: pl.DataFrame) -> pa.Table:
    """`frame` in Polars' own Arrow layout (text as string_view), so neither side copies
    it, in batches of BATCH_ROWS (zero-copy slices)."""
    table = frame.to_arrow(compat_level=NEWEST)
    return pa.Table.from_batches(table.to_batches(max_chunksize=BATCH_ROWS), table.schema)


class PortInUse(RetryableError):
    """Another process already listens on the Flight port."""


# --- tickets -----------------------------------------------------------------------------------
def parse_ticket(raw: bytes) -> data.BarsRequest | data.SqlRequest:
    """The request a JSON ticket names; InvalidInput says what is wrong with it."""
    if len(raw) > MAX_TICKET_BYTES:
        raise InvalidInput(f"the ticket is longer than {MAX_TICKET_BYTES // 1024} KiB")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput(
            'a ticket is a JSON object, e.g. {"kind": "bars", "symbol": "BTC/USDT"}'
        ) from None
    if not isinstance(body, dict):
        raise InvalidInput('a ticket is a JSON object with "kind": "bars" or "sql"')
    params = dict(body)
    kind = params.pop("kind", None)
    if kind == "bars":
        if "format" in params:
            raise InvalidInput("a bars ticket has no format: Flight always answers Arrow")
        return data.BarsRequest.from_params(params)
    if kind == "sql":
        return data.SqlRequest.from_json(params)
    raise InvalidInput('the ticket\'s "kind" must be "bars" or "sql"')


def ticket_of(req: data.BarsRequest | data.SqlRequest) -> bytes:
    """The JSON ticket that reads `req`."""
    if isinstance(req, data.BarsRequest):
        return json.dumps({"kind": "bars", **req.as_params()}).encode()
    body = {"kind": "sql", "sql": req.sql, "timeout_s": req.timeout_s, "max_rows": req.max_rows}
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


# --- errors ------------------------------------------------------------------------------------
def flight_error(problem: Problem) -> fl.FlightError:
    """The Flight error a client receives for `problem`: message = detail, extra_info = JSON."""
    extra = json.dumps(problem.body()).encode()
    detail = problem.detail
    if problem.status == 401:
        return fl.FlightUnauthenticatedError(detail, extra)
    if problem.status == 403:
        return fl.FlightUnauthorizedError(detail, extra)
    if problem.status == 429:
        return fl.FlightUnavailableError(detail, extra)
    if problem.status == 408:
        return fl.FlightTimedOutError(detail, extra)
    if problem.status >= 500:
        return fl.FlightInternalError(detail, extra)
    return fl.FlightServerError(detail, extra)


def _refuse(exc: Exception) -> fl.FlightError:
    problem = problem_of(exc)
    if problem.status >= 500:
        log.exception("Flight call failed", exc_info=exc)
    return flight_error(problem)


def peer_ip(peer: str | bytes) -> str | None:
    """The address of a gRPC peer text ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000")."""
    text = peer.decode() if isinstance(peer, bytes) else peer
    kind, _, rest = text.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return None
    host = rest.rsplit(":", 1)[0].strip("[]")
    try:
        return str(ip_address(host))
    except ValueError:
        return None


def _iso(value: object) -> str | None:
    return value.isoformat() if isinstance(value, dt.datetime) else None


# --- auth middleware ---------------------------------------------------------------------------
class CallAuth(fl.ServerMiddleware):  # type: ignore[misc]
    """One call's bearer header; `admit(scope)` checks it once the scope is known."""

    def __init__(self, header: str | None, gate: Callable[[], Gate]) -> None:
        self.header = header
        self._gate = gate

    def admit(self, scope: str, ip: str | None) -> TokenUser:
        return self._gate().admit(bearer_token(self.header), scope, ip=ip)


class AuthFactory(fl.ServerMiddlewareFactory):  # type: ignore[misc]
    def __init__(self, gate: Callable[[], Gate]) -> None:
        self._gate = gate

    def start_call(self, info: fl.CallInfo, headers: dict[str, list[Any]]) -> CallAuth:
        values = headers.get("authorization") or []
        first = values[0] if values else None
        if isinstance(first, bytes):
            first = first.decode("latin-1")
        return CallAuth(first, self._gate)


# --- the server --------------------------------------------------------------------------------
class DataServer(fl.FlightServerBase):  # type: ignore[misc]
    def __init__(
        self,
        location: str,
        services: Callable[[], Services],
        gate: Callable[[], Gate],
        tls: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(
            location,
            tls_certificates=tls or None,
            middleware={"auth": AuthFactory(gate)},
        )
        self._services = services

    def _admit(self, context: fl.ServerCallContext, scope: str) -> TokenUser:
        auth: CallAuth = context.get_middleware("auth")
        return auth.admit(scope, peer_ip(context.peer()))

    def do_get(self, context: fl.ServerCallContext, ticket: fl.Ticket) -> fl.RecordBatchStream:
        try:
            req = parse_ticket(ticket.ticket)
            return fl.RecordBatchStream(self._answer(context, req))
        except Exception as exc:
            raise _refuse(exc) from None

    def _answer(
        self, context: fl.ServerCallContext, req: data.BarsRequest | data.SqlRequest
    ) -> pa.Table:
        if isinstance(req, data.BarsRequest):
            self._admit(context, "market:read")
            return arrow_of(self._bars(req))
        who = self._admit(context, "sql:run")
        result = data.sql(self._services().engine, req, user_id=who.user.user_id)
        table = arrow_of(result.frame)
        meta = {
            "hfthot.rows": str(result.frame.height),
            "hfthot.truncated": "true" if result.truncated else "false",
            "hfthot.elapsed_s": f"{result.elapsed_s:.6f}",
            "hfthot.notes": json.dumps(list(result.notes)),
        }
        return table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})

    def list_flights(
        self, context: fl.ServerCallContext, criteria: bytes
    ) -> Iterator[fl.FlightInfo]:
        try:
            self._admit(context, "market:read")
            infos = [self._series_info(row) for row in self._coverage().iter_rows(named=True)]
        except Exception as exc:
            raise _refuse(exc) from None
        return iter(infos)

    def get_flight_info(
        self, context: fl.ServerCallContext, descriptor: fl.FlightDescriptor
    ) -> fl.FlightInfo:
        try:
            return self._info(context, descriptor)
        except Exception as exc:
            raise _refuse(exc) from None

    def _info(
        self, context: fl.ServerCallContext, descriptor: fl.FlightDescriptor
    ) -> fl.FlightInfo:
        if descriptor.descriptor_type == fl.DescriptorType.PATH:
            self._admit(context, "market:read")
            path = [p.decode() if isinstance(p, bytes) else str(p) for p in descriptor.path]
            if len(path) != 3:
                raise InvalidInput("a path descriptor names one series: [venue, symbol, timeframe]")
            cov = self._coverage().filter(
                (pl.col("venue") == path[0])
                & (pl.col("symbol") == path[1])
                & (pl.col("timeframe") == path[2])
            )
            if cov.is_empty():
                raise InvalidInput(f"no stored series {'/'.join(path)[:200]}; see ListFlights")
            return self._series_info(cov.row(0, named=True))
        req = parse_ticket(descriptor.command)
        if isinstance(req, data.SqlRequest):
            # Planning would run the query twice; the ticket runs it once, in DoGet.
            self._admit(context, "sql:run")
            return fl.FlightInfo(
                pa.schema([]), descriptor, [fl.FlightEndpoint(ticket_of(req), [])], -1, -1
            )
        self._admit(context, "market:read")
        table = arrow_of(self._bars(req))
        endpoint = fl.FlightEndpoint(ticket_of(req), [])
        return fl.FlightInfo(table.schema, descriptor, [endpoint], table.num_rows, table.nbytes)

    def _bars(self, req: data.BarsRequest) -> pl.DataFrame:
        return data.bars(self._services().engine, req)

    def _coverage(self) -> pl.DataFrame:
        cov = self._services().engine.coverage()
        return cov.filter(pl.col("kind") == "bars")

    def _series_info(self, row: dict[str, Any]) -> fl.FlightInfo:
        req = data.BarsRequest(row["symbol"], row["venue"], row["timeframe"])
        descriptor = fl.FlightDescriptor.for_path(row["venue"], row["symbol"], row["timeframe"])
        endpoint = fl.FlightEndpoint(ticket_of(req), [])
        about = {
            "first": _iso(row.get("first")),
            "last": _iso(row.get("last")),
            "source": row.get("source"),
            "stored_bytes": row.get("bytes"),
        }
        return fl.FlightInfo(
            BARS_SCHEMA,
            descriptor,
            [endpoint],
            int(row["rows"]),
            -1,
            app_metadata=json.dumps(about).encode(),
        )

    def list_actions(self, context: fl.ServerCallContext) -> list[tuple[str, str]]:
        return [(HEALTH, "answers ok; needs no token (a reachability check)")]

    def do_action(self, context: fl.ServerCallContext, action: fl.Action) -> Iterator[bytes]:
        if action.type != HEALTH:
            raise flight_error(Problem(400, "Bad Request", f"unknown action; use {HEALTH}"))
        return iter([b"ok"])


# --- running it --------------------------------------------------------------------------------
def read_tls(settings: Settings) -> list[tuple[bytes, bytes]] | None:
    """The PEM certificate chain and key named by the settings, or None for plain gRPC."""
    if not settings.flight_tls_cert:
        return None
    pems: list[bytes] = []
    for name, path in (
        ("HFT_FLIGHT_TLS_CERT", settings.flight_tls_cert),
        ("HFT_FLIGHT_TLS_KEY", settings.flight_tls_key),
    ):
        try:
            pems.append(Path(path).expanduser().read_bytes())
        except OSError as exc:
            raise InvalidInput(f"{name}: cannot read the PEM file ({exc.strerror})") from None
        if b"-----BEGIN" not in pems[-1]:
            raise InvalidInput(f"{name} is not a PEM file")
    return [(pems[0], pems[1])]


def _port_taken(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


class FlightService:
    """The Flight server over `services`, serving in a daemon thread once started.

    `port=0` picks a free port (tests); `start_flight` is the way the app and CLI build it.
    """

    def __init__(
        self,
        services: Callable[[], Services],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: list[tuple[bytes, bytes]] | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.host = host
        self.scheme = "grpc+tls" if tls else "grpc"
        self._gate = gate
        self._services = services
        self._lock = threading.Lock()
        bind = f"[{host}]" if ":" in host else host
        try:
            self.server = DataServer(f"{self.scheme}://{bind}:{port}", services, self.gate, tls)
        except (pa.ArrowException, OSError) as exc:
            if port and _port_taken(host, port):
                raise PortInUse(
                    f"the Flight port {port} on {host} is in use by another process; set "
                    "HFT_FLIGHT_PORT to a free port, or 0 to turn the Flight service off"
                ) from None
            raise InvalidInput(
                f"the Flight service could not start on {host}:{port}: {exc}"
            ) from None
        self.port: int = self.server.port
        self._thread: threading.Thread | None = None

    def gate(self) -> Gate:
        """The gate every call goes through; built on first use from the services' backend."""
        with self._lock:
            if self._gate is None:
                self._gate = self._services().gate
            return self._gate

    @property
    def location(self) -> str:
        """Where clients connect, e.g. grpc://127.0.0.1:50053."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def start(self) -> FlightService:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self.server.serve, name="hfthot-flight", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting calls, finish the running ones; safe to call twice."""
        self.server.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FlightService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def open_flight(
    services: Callable[[], Services], settings: Settings, *, gate: Gate | None = None
) -> FlightService:
    """The Flight service on the settings' host and port (not started); PortInUse or
    InvalidInput when it cannot listen there."""
    if settings.flight_port == 0:
        raise InvalidInput("HFT_FLIGHT_PORT is 0, which turns the Flight service off")
    return FlightService(
        services,
        host=settings.flight_host,
        port=settings.flight_port,
        tls=read_tls(settings),
        gate=gate,
    )


def start_flight(
    services: Callable[[], Services], settings: Settings, *, gate: Gate | None = None
) -> FlightService | None:
    """The Flight service serving in a daemon thread, or None when HFT_FLIGHT_PORT is 0 or it
    cannot start (a logged warning says why; the app keeps running without it)."""
    if settings.flight_port == 0:
        return None
    try:
        service = open_flight(services, settings, gate=gate)
    except HftError as exc:
        log.warning("Arrow Flight service not started: %s", exc)
        return None
    log.info("Arrow Flight service on %s", service.location)
    return service.start()
