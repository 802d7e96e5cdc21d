"""A Python client for a running HFThot portal: bars, SQL and regimes as Polars frames.

    from core.client import Client
    c = Client("http://127.0.0.1:8501", token="hft_pat_...")
    c.series()                                   # what the portal stores
    c.bars("SP500", timeframe="1d", start="2010-01-01")
    c.sql("SELECT symbol, count(*) AS n FROM bars GROUP BY symbol")

Bars and SQL answers come over Arrow Flight when the portal offers it and it answers, else
over the REST API as Arrow IPC; the frames are the same either way. Needs only the standard
library, pyarrow and polars: no Rust extension, no engine, no Streamlit. Every failure is a
`ClientError` subclass carrying the server's own message (`detail`).
"""

from __future__ import annotations

import datetime as dt
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.flight as fl
import pyarrow.ipc as ipc

API = "/api/v1"
ARROW = "application/vnd.apache.arrow.stream"
PROBE_TIMEOUT_S = 3.0
TimeLike = dt.datetime | dt.date | str | None


class ClientError(Exception):
    """Base of every client error; `detail` is the server's message, `status` its HTTP code."""

    def __init__(self, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class Unauthorized(ClientError):
    """401: the token is missing, malformed, unknown, revoked or expired."""


class Forbidden(ClientError):
    """403: the token lacks the scope, or the account's role does not allow the call."""


class RateLimited(ClientError):
    """429: too many calls with this token; try again after `retry_after_s` seconds."""

    def __init__(self, detail: str, retry_after_s: float, status: int | None = 429) -> None:
        super().__init__(detail, status)
        self.retry_after_s = retry_after_s


class BadRequest(ClientError):
    """4xx: the request cannot work as sent (bad parameter, unknown route, query refused)."""


class ServerError(ClientError):
    """5xx: the server failed to answer."""


class Unreachable(ClientError):
    """No answer: the portal is down, the address is wrong, or it took longer than timeout."""


def error_of(status: int, body: dict[str, Any], fallback: str) -> ClientError:
    """The typed error for an HTTP status and its problem body."""
    detail = str(body.get("detail") or fallback)
    if status == 401:
        return Unauthorized(detail, status)
    if status == 403:
        return Forbidden(detail, status)
    if status == 429:
        retry = body.get("retry_after_s")
        return RateLimited(detail, float(retry) if isinstance(retry, int | float) else 1.0)
    if status >= 500:
        return ServerError(detail, status)
    return BadRequest(detail, status)


@dataclass(frozen=True, slots=True)
class QueryInfo:
    """What the server said about the last SQL answer."""

    rows: int
    truncated: bool
    elapsed_s: float
    notes: tuple[str, ...] = ()


def time_text(value: TimeLike, name: str) -> str | None:
    """ISO text for a datetime, date or text bound (naive times are UTC on the server)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise BadRequest(f"{name} must be a datetime, a date or ISO text")


class Client:
    """A portal at `url` (its address in the browser) called with an access token.

    `flight`: None asks the portal where its Flight service is and uses it when it answers;
    False uses REST only; True requires Flight; a text like "grpc://host:50053" names it.
    `ca_cert`: a PEM file to trust for HTTPS and Flight over TLS (self-signed servers).
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        flight: str | bool | None = None,
        timeout: float = 30,
        ca_cert: str | Path | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadRequest(f"url must look like http://host:8501, got {url[:100]!r}")
        if not isinstance(token, str) or not token.strip():
            raise BadRequest(
                "token must be an access token, hft_pat_... (create one on My account)"
            )
        if not timeout > 0:
            raise BadRequest("timeout must be a positive number of seconds")
        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self.last_query: QueryInfo | None = None
        self.flight_note = ""
        """Why the client uses REST, when Flight was asked for or offered but not used."""
        self._token = token.strip()
        self._want = flight
        try:
            self._ca = Path(ca_cert).expanduser().read_bytes() if ca_cert else None
            ca_text = self._ca.decode("ascii") if self._ca else None
            self._ssl = ssl.create_default_context(cadata=ca_text) if ca_text else None
        except (ssl.SSLError, ValueError):  # SSLError first: it is an OSError too
            raise BadRequest("ca_cert must be a PEM certificate file") from None
        except OSError as exc:
            raise BadRequest(f"cannot read ca_cert: {exc.strerror}") from None
        self._flight: fl.FlightClient | None = None
        self._flight_location: str | None = None
        self._resolved = flight is False

    def __repr__(self) -> str:
        return f"Client({self.url!r}, transport={self.transport!r})"

    # --- public calls ----------------------------------------------------------------------
    @property
    def transport(self) -> str:
        """How bars and SQL answers travel: flight, rest, or undecided before first use."""
        if not self._resolved:
            return "undecided"
        return "flight" if self._flight is not None else "rest"

    @property
    def flight_location(self) -> str | None:
        self._resolve()
        return self._flight_location if self._flight is not None else None

    def index(self) -> dict[str, Any]:
        """The API's index: its version and where the Flight service listens."""
        return self._json("GET", f"{API}/")

    def me(self) -> dict[str, Any]:
        """The account and token this client speaks for."""
        return self._json("GET", f"{API}/me")

    def series(self) -> pl.DataFrame:
        """The coverage: one row per stored series (kind, venue, symbol, timeframe, first,
        last, rows, ..., source). Always over REST: it is small, and REST has every column."""
        return self._arrow("GET", f"{API}/series")

    def bars(
        self,
        symbol: str,
        *,
        venue: str | None = None,
        timeframe: str = "1m",
        start: TimeLike = None,
        end: TimeLike = None,
        last: int | None = None,
    ) -> pl.DataFrame:
        """Bars with start <= ts < end (or the newest `last`), oldest first, in the store's
        schema: ts, venue, symbol, timeframe, open, high, low, close, volume."""
        params: dict[str, Any] = {
            "symbol": symbol,
            "venue": venue,
            "timeframe": timeframe,
            "start": time_text(start, "start"),
            "end": time_text(end, "end"),
            "last": last,
        }
        params = {k: v for k, v in params.items() if v is not None}
        if self._use_flight():
            table = self._do_get({"kind": "bars", **params})
            if table is not None:
                return _to_frame(table)
        query = urllib.parse.urlencode({**params, "format": "arrow"})
        return self._arrow("GET", f"{API}/bars?{query}")

    def sql(
        self, sql: str, *, timeout_s: float | None = None, max_rows: int | None = None
    ) -> pl.DataFrame:
        """A read-only query over bars, trades and daily, with the portal's limits (you may
        ask for less). `last_query` then says whether the answer was cut at the row cap."""
        body: dict[str, Any] = {"sql": sql}
        if timeout_s is not None:
            body["timeout_s"] = timeout_s
        if max_rows is not None:
            body["max_rows"] = max_rows
        if self._use_flight():
            table = self._do_get({"kind": "sql", **body})
            if table is not None:
                meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
                self.last_query = QueryInfo(
                    int(meta.get("hfthot.rows", table.num_rows)),
                    meta.get("hfthot.truncated") == "true",
                    float(meta.get("hfthot.elapsed_s", 0.0)),
                    tuple(json.loads(meta.get("hfthot.notes", "[]"))),
                )
                return _to_frame(table.replace_schema_metadata(None))
        headers, raw = self._call("POST", f"{API}/sql", body, accept=ARROW)
        frame = _frame(headers, raw)
        self.last_query = QueryInfo(
            int(headers.get("X-HFThot-Rows") or frame.height),
            (headers.get("X-HFThot-Truncated") or "").lower() == "true",
            float(headers.get("X-HFThot-Elapsed-S") or 0.0),
            tuple(json.loads(headers.get("X-HFThot-Notes") or "[]")),
        )
        return frame

    def regimes(self, symbol: str, **params: Any) -> dict[str, Any]:
        """Fit a Gaussian HMM regime model to a series; the portal's JSON summary."""
        body = {"symbol": symbol, **{k: _jsonable(v) for k, v in params.items()}}
        return self._json("POST", f"{API}/analytics/regimes", body)

    def studies(self, kind: str | None = None, *, owner: str | None = None) -> list[dict[str, Any]]:
        """My saved studies and the team's shared ones, newest first (scope studies:read);
        `owner` "me" or "team" narrows the list."""
        params = {k: v for k, v in {"kind": kind, "owner": owner}.items() if v is not None}
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        found = self._json("GET", f"{API}/studies{query}").get("studies")
        if not isinstance(found, list):
            raise ServerError("/studies answered without a list of studies")
        return found

    def study(self, study_id: str) -> dict[str, Any]:
        """One study: params, inputs (with SHA-256), code version, metrics, artefact names."""
        return self._json("GET", f"{API}/studies/{urllib.parse.quote(study_id, safe='')}")

    def study_frame(self, study_id: str, name: str) -> pl.DataFrame:
        """One artefact of a study, as it was saved."""
        sid, fname = (urllib.parse.quote(v, safe="") for v in (study_id, name))
        return self._arrow("GET", f"{API}/studies/{sid}/frames/{fname}?format=arrow")

    def close(self) -> None:
        if self._flight is not None:
            self._flight.close()
            self._flight = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- Flight ----------------------------------------------------------------------------
    def _options(self, timeout: float) -> fl.FlightCallOptions:
        auth = (b"authorization", f"Bearer {self._token}".encode())
        return fl.FlightCallOptions(timeout=timeout, headers=[auth])

    def _use_flight(self) -> bool:
        self._resolve()
        return self._flight is not None

    def _resolve(self) -> None:
        if self._resolved:
            return
        want = self._want
        if isinstance(want, str):
            location: str | None = want
        else:
            offered = self.index().get("flight")
            location = offered if isinstance(offered, str) else None
            if location is None:
                self.flight_note = "the portal does not offer Flight"
                if want is True:
                    raise Unreachable("this portal does not offer Arrow Flight (HFT_FLIGHT_PORT=0)")
        if location is not None:
            self._connect(location, required=want is not None)
        self._resolved = True

    def _connect(self, location: str, *, required: bool) -> None:
        client: fl.FlightClient | None = None
        try:
            client = fl.FlightClient(location, tls_root_certs=self._ca)
            list(client.list_actions(options=self._options(min(self.timeout, PROBE_TIMEOUT_S))))
        except (pa.ArrowException, OSError) as exc:
            if client is not None:
                client.close()
            self.flight_note = f"Flight at {location} did not answer ({type(exc).__name__})"
            if required:
                raise Unreachable(f"cannot reach Arrow Flight at {location}") from None
            return
        self._flight, self._flight_location = client, location

    def _do_get(self, ticket: dict[str, Any]) -> pa.Table | None:
        """The ticket's answer; None when Flight went away and REST should answer instead."""
        assert self._flight is not None
        raw = json.dumps(ticket).encode()
        try:
            return self._flight.do_get(fl.Ticket(raw), self._options(self.timeout)).read_all()
        except pa.ArrowException as exc:
            extra = getattr(exc, "extra_info", None) or b""
            try:
                body = json.loads(extra.decode()) if extra else None
            except (UnicodeDecodeError, json.JSONDecodeError):
                body = None
            if isinstance(body, dict) and isinstance(body.get("status"), int):
                raise error_of(body["status"], body, "the server refused the call") from None
            if isinstance(exc, fl.FlightTimedOutError):
                raise Unreachable(f"no answer within the {self.timeout:g} s timeout") from None
            if self._want not in (None, False):
                raise Unreachable(f"Arrow Flight at {self._flight_location} failed") from None
            self.flight_note = f"Flight at {self._flight_location} stopped answering"
            self.close()  # auto-discovered Flight went away: REST from now on
            return None

    # --- REST ------------------------------------------------------------------------------
    def _call(
        self, method: str, path: str, body: dict[str, Any] | None = None, *, accept: str
    ) -> tuple[Message, bytes]:
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Accept": f"{accept}, application/problem+json",
            "User-Agent": "hfthot-client",
        }
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data, headers, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._ssl) as r:  # noqa: S310
                return r.headers, r.read()
        except urllib.error.HTTPError as exc:
            raise _http_error(exc, path) from None
        except (urllib.error.URLError, OSError) as exc:
            why = getattr(exc, "reason", exc)
            raise Unreachable(f"cannot reach {self.url}: {why}") from None

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        _, raw = self._call(method, path, body, accept="application/json")
        try:
            out = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ServerError(
                f"{path} did not answer JSON; is {self.url} an HFThot portal?"
            ) from None
        if not isinstance(out, dict):
            raise ServerError(f"{path} answered JSON that is not an object")
        return out

    def _arrow(self, method: str, path: str) -> pl.DataFrame:
        headers, raw = self._call(method, path, accept=ARROW)
        return _frame(headers, raw)


def _frame(headers: Message, raw: bytes) -> pl.DataFrame:
    kind = (headers.get("Content-Type") or "").split(";")[0].strip()
    if kind != ARROW:
        raise ServerError(f"expected an Arrow stream, the server sent {kind or 'no type'}")
    try:
        table = ipc.open_stream(pa.py_buffer(raw)).read_all()
    except pa.ArrowInvalid:
        raise ServerError("the server sent a broken Arrow stream") from None
    return _to_frame(table)


def _to_frame(table: pa.Table) -> pl.DataFrame:
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _http_error(exc: urllib.error.HTTPError, path: str) -> ClientError:
    raw = exc.read()[:65536]
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        body = {}
    if exc.code == 429 and "retry_after_s" not in body:
        retry = exc.headers.get("Retry-After")
        if retry and retry.isdigit():
            body["retry_after_s"] = int(retry)
    fallback = f"the server answered {exc.code} {exc.reason} for {path.split('?')[0]}"
    return error_of(exc.code, body, fallback)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime | dt.date) else value
