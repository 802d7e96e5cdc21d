"""The REST API under `<base>/api/v1/`, served by the app's own process and port.

`api_routes(base_url_path, services)` gives the Starlette routes app.py hands to `st.App`
(next to the login-cookie route). Every call but the index, the OpenAPI document and its
HTML page needs `Authorization: Bearer hft_pat_...` with the route's scope; the token's
account role counts too (`core.serve.access.Gate`). Each call runs its blocking work in one
trip to the thread pool: admission, the store or SQL read, and the encoding.

Errors are `application/problem+json` (RFC 9457) carrying the message the pages show.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Network
from typing import Any

import pyarrow as pa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

import core
from core.errors import InvalidInput
from core.serve import data, encode
from core.serve import studies as study_api
from core.serve.access import Gate, Problem, bearer_token, problem_of
from core.serve.analytics import RegimesRequest, regimes
from core.serve.api_docs import docs_html
from core.serve.client_ip import client_ip
from core.serve.openapi import openapi_spec
from core.services import Services
from lakehouse import InvalidToken, TokenUser

API_PATH = "api/v1"
MAX_BODY = 64 * 1024
"""Largest POST body the API reads (a SQL query, a regimes request)."""
PROBLEM_TYPE = "application/problem+json"

log = logging.getLogger(__name__)
Network = IPv4Network | IPv6Network
Work = Callable[[Services, TokenUser], Response]
Handler = Callable[[Request], Awaitable[Response]]


def api_prefix(base_url_path: str = "") -> str:
    """`/api/v1`, under Streamlit's server.baseUrlPath when one is set."""
    base = base_url_path.strip("/")
    return f"/{base}/{API_PATH}" if base else f"/{API_PATH}"


def problem_response(problem: Problem, headers: Mapping[str, str] | None = None) -> Response:
    out = {"Cache-Control": "no-store", **(headers or {})}
    if problem.status == 401:
        out["WWW-Authenticate"] = 'Bearer realm="hfthot"'
    if problem.retry_after_s is not None:
        out["Retry-After"] = str(max(1, math.ceil(problem.retry_after_s)))
    body = json.dumps(problem.body()).encode()
    return Response(body, status_code=problem.status, media_type=PROBLEM_TYPE, headers=out)


def error_response(exc: BaseException) -> Response:
    problem = problem_of(exc)
    if problem.status >= 500:
        log.error("REST API call failed", exc_info=exc)
    return problem_response(problem)


def json_response(value: object, status: int = 200) -> Response:
    body = json.dumps(value, allow_nan=False).encode()
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def table_response(
    table: pa.Table, fmt: str, name: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response:
    """`table` encoded as `fmt`; Parquet and CSV come as a download named `name`."""
    out = {"Cache-Control": "no-store", "X-HFThot-Rows": str(table.num_rows), **(headers or {})}
    if fmt in ("parquet", "csv"):
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "answer"
        out["Content-Disposition"] = f'attachment; filename="{safe}.{encode.EXTENSIONS[fmt]}"'
    body = encode.encode(table, fmt, extra)
    return Response(body, media_type=encode.MEDIA_TYPES[fmt], headers=out)


def _query(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, each at most once and each one of `allowed`."""
    items = request.query_params.multi_items()
    params = dict(items)
    if len(params) != len(items):
        twice = sorted({k for k, _ in items if sum(1 for j, _ in items if j == k) > 1})
        raise InvalidInput(f"give {', '.join(twice)} only once")
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        use = ", ".join(allowed) if allowed else "no parameters"
        raise InvalidInput(f"unknown parameter {', '.join(unknown)}; use {use}")
    return params


async def _json_body(request: Request) -> object:
    """The request's JSON body, read up to MAX_BODY bytes."""
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if kind != "application/json":
        raise _Refused(Problem(415, "Unsupported Media Type", "send the body as application/json"))
    chunks: list[bytes] = []
    size = 0
    stream = request.stream()
    while True:
        try:
            chunk = await anext(stream)
        except StopAsyncIteration:
            break
        except Exception as exc:  # from the server or a middleware (BodyLimit): theirs to answer
            raise _Receive(exc) from exc
        size += len(chunk)
        if size > MAX_BODY:
            too_large = f"request body too large (limit {MAX_BODY} bytes)"
            raise _Refused(Problem(413, "Content Too Large", too_large))
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks) or b"null")
    except ValueError:
        raise InvalidInput("the body is not valid JSON") from None


class _Receive(Exception):
    """Reading the body failed in the layers below us; re-raised there as it was."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(str(exc))
        self.exc = exc


class _Refused(Exception):
    """A refusal that is already a problem (415, 413)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class _Door:
    """The gate (rate limits) and trusted proxies of one Services object."""

    services: Services
    gate: Gate
    trusted: tuple[Network, ...]


class RestApi:
    """The handlers; `services()` is called per request (the app's cached composition root)."""

    def __init__(self, base_url_path: str, services: Callable[[], Services]) -> None:
        self.prefix = api_prefix(base_url_path)
        self.services = services
        self._door: _Door | None = None
        self._lock = threading.Lock()
        self.operations: dict[tuple[str, str], Handler] = {
            ("GET", "/"): self.index,
            ("GET", "/series"): self.series,
            ("GET", "/bars"): self.bars,
            ("POST", "/sql"): self.sql,
            ("POST", "/analytics/regimes"): self.regimes,
            ("GET", "/me"): self.me,
            ("GET", "/studies"): self.studies,
            ("GET", "/studies/{study_id}"): self.study,
            ("GET", "/studies/{study_id}/frames/{name}"): self.study_frame,
            ("GET", "/openapi.json"): self.openapi,
            ("GET", "/docs"): self.docs,
        }

    def door(self, svc: Services) -> _Door:
        with self._lock:
            if self._door is None or self._door.services is not svc:
                self._door = _Door(svc, svc.gate, svc.settings.trusted_proxy_networks)
            return self._door

    async def admitted(self, request: Request, scope: str, work: Work) -> Response:
        """Run `work` in the thread pool once the bearer token is admitted for `scope`."""
        header = request.headers.get("authorization")
        peer = request.client.host if request.client else None
        forwarded = ", ".join(request.headers.getlist("x-forwarded-for")) or None

        def call() -> Response:
            door = self.door(self.services())
            ip = client_ip(peer, forwarded, door.trusted)
            who = door.gate.admit(bearer_token(header), scope, ip=ip)
            return work(door.services, who)

        return await run_in_threadpool(call)

    # --- no token ----------------------------------------------------------------------------
    async def index(self, request: Request) -> Response:
        _query(request, ())
        settings = (await run_in_threadpool(self.services)).settings
        return json_response(
            {
                "api": "v1",
                "version": core.__version__,
                "flight": flight_uri(
                    settings.flight_host,
                    settings.flight_port,
                    bool(settings.flight_tls_cert),
                    request.url.hostname,
                ),
                "docs": f"{self.prefix}/docs",
                "openapi": f"{self.prefix}/openapi.json",
            }
        )

    async def openapi(self, request: Request) -> Response:
        _query(request, ())
        return json_response(openapi_spec(self.prefix))

    async def docs(self, request: Request) -> Response:
        _query(request, ())
        return HTMLResponse(
            docs_html(openapi_spec(self.prefix)), headers={"Cache-Control": "no-store"}
        )

    # --- market:read -------------------------------------------------------------------------
    async def series(self, request: Request) -> Response:
        def work(svc: Services, _: TokenUser) -> Response:
            fmt = encode.format_of(_query(request, ("format",)))
            return table_response(data.series(svc.engine), fmt, "series")

        return await self.admitted(request, "market:read", work)

    async def bars(self, request: Request) -> Response:
        def work(svc: Services, _: TokenUser) -> Response:
            params = _query(request, (*data.BARS_FIELDS, "format"))
            fmt = encode.format_of(params)
            req = data.BarsRequest.from_params(params)
            name = f"{req.symbol}_{req.timeframe}"
            return table_response(data.bars(svc.engine, req).to_arrow(), fmt, name)

        return await self.admitted(request, "market:read", work)

    # --- sql:run, analytics:run ----------------------------------------------------------------
    async def sql(self, request: Request) -> Response:
        body = await _json_body(request)

        def work(svc: Services, who: TokenUser) -> Response:
            fmt = encode.format_of(_query(request, ("format",)))
            req = data.SqlRequest.from_json(body)
            result = data.sql(svc.engine, req, user_id=who.user.user_id)
            headers = {
                "X-HFThot-Truncated": "true" if result.truncated else "false",
                "X-HFThot-Elapsed-S": f"{result.elapsed_s:.6f}",
            }
            if result.notes:
                headers["X-HFThot-Notes"] = json.dumps(list(result.notes))
            extra = {
                "truncated": result.truncated,
                "elapsed_s": result.elapsed_s,
                "notes": list(result.notes),
            }
            return table_response(result.frame.to_arrow(), fmt, "query", headers, **extra)

        return await self.admitted(request, "sql:run", work)

    async def regimes(self, request: Request) -> Response:
        body = await _json_body(request)

        def work(svc: Services, _: TokenUser) -> Response:
            _query(request, ())
            return json_response(regimes(svc.engine, RegimesRequest.from_json(body)))

        return await self.admitted(request, "analytics:run", work)

    # --- account:read -----------------------------------------------------------------------
    async def me(self, request: Request) -> Response:
        def work(svc: Services, who: TokenUser) -> Response:
            _query(request, ())
            mine = svc.auth.list_access_tokens(who.user.user_id)
            token = next((t for t in mine if t.token_id == who.token_id), None)
            if token is None:  # revoked and removed between the check and now
                raise InvalidToken("this access token is not valid")
            return json_response(
                {
                    "user_id": who.user.user_id,
                    "username": who.user.username,
                    "role": who.user.role,
                    "token": {
                        "id": token.token_id,
                        "name": token.name,
                        "scopes": list(who.scopes),
                        "created_at": iso(token.created_at),
                        "expires_at": iso(token.expires_at),
                    },
                }
            )

        return await self.admitted(request, "account:read", work)

    # --- studies:read (core/serve/studies.py) ---------------------------------------------
    async def studies(self, request: Request) -> Response:
        def work(svc: Services, who: TokenUser) -> Response:
            params = _query(request, study_api.LIST_FIELDS)
            return json_response(study_api.list_studies(svc, who.user, params))

        return await self.admitted(request, "studies:read", work)

    async def study(self, request: Request) -> Response:
        def work(svc: Services, who: TokenUser) -> Response:
            _query(request, ())
            study_id = request.path_params["study_id"]
            return json_response(study_api.get_study(svc, who.user, study_id))

        return await self.admitted(request, "studies:read", work)

    async def study_frame(self, request: Request) -> Response:
        def work(svc: Services, who: TokenUser) -> Response:
            fmt = encode.format_of(_query(request, ("format",)))
            study_id, name = request.path_params["study_id"], request.path_params["name"]
            table = study_api.study_frame(svc, who.user, study_id, name)
            return table_response(table, fmt, f"study-{study_id[:8]}-{name}")

        return await self.admitted(request, "studies:read", work)


def iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def flight_uri(host: str, port: int, tls: bool, request_host: str | None) -> str | None:
    """Where the Flight service listens, as a client URI; None when it is off (port 0).
    A wildcard listen address is replaced by the host the caller reached us at."""
    if port == 0:
        return None
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 (a comparison, not a bind)
        host = request_host or "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{'grpc+tls' if tls else 'grpc'}://{host}:{port}"


class Resource:
    """One API path as an ASGI app: dispatches by method, answers every failure as a problem
    (405 with Allow for a method the path does not answer)."""

    def __init__(self, prefix: str, path: str, methods: dict[str, Handler]) -> None:
        self.path = path
        self.methods = methods
        self.allow = ", ".join(sorted({*methods, *(["HEAD"] if "GET" in methods else [])}))
        self.where = prefix + path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        method = "GET" if request.method == "HEAD" else request.method
        handler = self.methods.get(method)
        response: Response
        if handler is None:
            detail = f"{self.where} answers {self.allow}, not {request.method}"
            problem = Problem(405, "Method Not Allowed", detail)
            response = problem_response(problem, {"Allow": self.allow})
        else:
            try:
                response = await handler(request)
            except _Refused as exc:
                response = problem_response(exc.problem)
            except _Receive as exc:
                raise exc.exc from None
            except Exception as exc:  # every failure is a problem, never a server page
                response = error_response(exc)
        await response(scope, receive, send)


def api_routes(base_url_path: str, services: Callable[[], Services]) -> list[BaseRoute]:
    """The API's routes for `st.App(routes=...)` or any Starlette app."""
    api = RestApi(base_url_path, services)
    by_path: dict[str, dict[str, Handler]] = {}
    for (method, path), handler in api.operations.items():
        by_path.setdefault(path, {})[method] = handler
    resources = [Resource(api.prefix, p, m) for p, m in by_path.items()]

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"no such API route; the routes are listed at {api.prefix}/docs"
        await problem_response(Problem(404, "Not Found", detail))(scope, receive, send)

    router = Router(
        [Route(r.path, r) for r in resources], redirect_slashes=False, default=not_found
    )
    index = next(r for r in resources if r.path == "/")
    return [Route(api.prefix, index), Mount(api.prefix, app=router)]
