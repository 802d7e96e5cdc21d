"""The REST API described as an OpenAPI 3.1 document (core/serve/api_docs.py renders it
as the HTML page at /api/v1/docs).

`OPERATIONS` is written by hand, one entry per route; a test checks it against the router.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import core
from core.serve.encode import FORMATS, JSON_MAX_ROWS, MEDIA_TYPES

Spec = dict[str, Any]

_FORMAT = {
    "name": "format",
    "in": "query",
    "schema": {"type": "string", "enum": list(FORMATS), "default": "arrow"},
    "description": f"Arrow IPC stream (default), Parquet, CSV or JSON (JSON up to "
    f"{JSON_MAX_ROWS:,} rows).",
}


def _q(name: str, kind: str, text: str, required: bool = False, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": {"type": kind, **extra},
        "description": text,
    }


_BARS_PARAMS = [
    _q("symbol", "string", "The series, e.g. BTC/USDT or SP500.", required=True),
    _q("venue", "string", "The venue (e.g. binance, demo, bundled); any venue when absent."),
    _q(
        "timeframe",
        "string",
        "Bar length; coarser ones are resampled.",
        default="1m",
        enum=["1m", "5m", "15m", "1h", "4h", "1d"],
    ),
    _q("start", "string", "First bar time, ISO 8601 (UTC when no zone): start <= ts."),
    _q("end", "string", "End time, ISO 8601: ts < end."),
    _q("last", "integer", "Only the newest N bars of that range.", minimum=1),
    _FORMAT,
]


def _table(text: str) -> dict[str, Any]:
    content: dict[str, Any] = {
        MEDIA_TYPES[f].split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
        for f in ("arrow", "parquet", "csv")
    }
    content["application/json"] = {"schema": {"$ref": "#/components/schemas/TableJson"}}
    return {"description": text, "content": content}


def _json(ref: str, text: str) -> dict[str, Any]:
    return {
        "description": text,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _body(ref: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _errors(*statuses: str) -> dict[str, Any]:
    return {s: {"$ref": f"#/components/responses/{_ERROR_NAMES[s]}"} for s in statuses}


_ERROR_NAMES = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "403": "Forbidden",
    "408": "Timeout",
    "413": "ContentTooLarge",
    "415": "UnsupportedMediaType",
    "429": "TooManyRequests",
}
_AUTHED = ("400", "401", "403", "429")
_STUDY_ID = {
    "name": "study_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The study's id.",
}
_NOT_FOUND = {
    "description": "No such study (or artefact), or it is not shared with you",
    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
_POSTED = (*_AUTHED, "413", "415")

# (method, path) -> operation, paths relative to the server URL (<base>/api/v1).
OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/"): {
        "operationId": "index",
        "summary": "What this API is and where its parts are",
        "description": "No token needed. The Flight URI is null when the Arrow Flight "
        "service is off.",
        "responses": {"200": _json("Index", "API version, Flight URI, documentation links")},
    },
    ("GET", "/series"): {
        "operationId": "series",
        "summary": "Coverage: every stored series",
        "x-scope": "market:read",
        "description": "One row per stored series: kind, venue, symbol, timeframe, first and "
        "last time, rows, files, bytes, and where the data comes from.",
        "parameters": [_FORMAT],
        "responses": {"200": _table("The coverage table"), **_errors(*_AUTHED)},
    },
    ("GET", "/bars"): {
        "operationId": "bars",
        "summary": "Bars of one series",
        "x-scope": "market:read",
        "description": "Bars with start <= ts < end, oldest first, or the newest `last`. An "
        "unknown symbol gives an empty table (zero rows), as the store does. Parquet and CSV "
        "come as downloads (Content-Disposition). The header X-HFThot-Rows gives the count.",
        "parameters": _BARS_PARAMS,
        "responses": {
            "200": _table("ts, venue, symbol, timeframe, OHLC, volume"),
            **_errors(*_AUTHED),
        },
    },
    ("POST", "/sql"): {
        "operationId": "sql",
        "summary": "Run a read-only SQL query (the SQL Explorer's sandbox)",
        "x-scope": "sql:run",
        "description": "The SQL Explorer's sandbox, limits and messages; the query is kept in "
        "your SQL history. Headers X-HFThot-Rows, X-HFThot-Truncated (true when cut at "
        "max_rows) and X-HFThot-Elapsed-S; X-HFThot-Notes lists changes to the answer. A "
        "refused query is a problem with `reason`: policy or error (400), timeout (408), memory "
        "(413).",
        "parameters": [_FORMAT],
        "requestBody": _body("SqlRequest"),
        "responses": {"200": _table("The answer"), **_errors(*_POSTED, "408")},
    },
    ("POST", "/analytics/regimes"): {
        "operationId": "regimes",
        "summary": "Fit the regime model (Gaussian HMM) on a stored series",
        "x-scope": "analytics:run",
        "description": "The Regimes page's computation on percent log-returns of the closes: "
        "K = 1..k_max fitted by EM with restarts and the K of the lowest BIC kept, or a "
        "fixed k. Without start, end or last the newest 15,000 bars are used.",
        "requestBody": _body("RegimesRequest"),
        "responses": {"200": _json("Regimes", "The model summary"), **_errors(*_POSTED)},
    },
    ("GET", "/me"): {
        "operationId": "me",
        "summary": "The account and token of this call",
        "x-scope": "account:read",
        "responses": {
            "200": _json("Me", "Username, role, token scopes and expiry"),
            **_errors(*_AUTHED),
        },
    },
    ("GET", "/studies"): {
        "operationId": "studies",
        "summary": "My studies and the team's shared ones",
        "x-scope": "studies:read",
        "description": "Saved runs of the analysis pages, newest first: parameters, inputs "
        "(series, range, rows, SHA-256), code version, metrics (NaN as null, infinities as "
        '"inf"/"-inf") and artefact names.',
        "parameters": [
            _q("kind", "string", "Only this kind (regimes, chiarella, meanrev, ...)."),
            _q("owner", "string", "me: mine only; team: others' shared ones.", enum=["me", "team"]),
            _q("series", "string", "A symbol or series label, e.g. SP500."),
        ],
        "responses": {"200": _json("StudyList", "The studies"), **_errors(*_AUTHED)},
    },
    ("GET", "/studies/{study_id}"): {
        "operationId": "study",
        "summary": "One study",
        "x-scope": "studies:read",
        "description": "404 when it does not exist or is someone else's private study.",
        "parameters": [_STUDY_ID],
        "responses": {"200": _json("Study", "The study"), "404": _NOT_FOUND, **_errors(*_AUTHED)},
    },
    ("GET", "/studies/{study_id}/frames/{name}"): {
        "operationId": "study_frame",
        "summary": "One artefact of a study, as saved",
        "x-scope": "studies:read",
        "description": "An artefact named in the study's `artefacts`, read back as saved (no "
        "recompute). Parquet and CSV come as downloads.",
        "parameters": [
            _STUDY_ID,
            {
                "name": "name",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": "The artefact's name.",
            },
            _FORMAT,
        ],
        "responses": {"200": _table("The artefact"), "404": _NOT_FOUND, **_errors(*_AUTHED)},
    },
    ("GET", "/openapi.json"): {
        "operationId": "openapi",
        "summary": "This document (OpenAPI 3.1)",
        "responses": {
            "200": {
                "description": "The OpenAPI document",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    },
    ("GET", "/docs"): {
        "operationId": "docs",
        "summary": "This document as a readable page",
        "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
    },
}

_NUM = {"type": ["number", "null"]}
_SCHEMAS: dict[str, Any] = {
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string", "description": "The message the pages show."},
            "reason": {"type": "string", "description": "Why a SQL query was refused."},
            "retry_after_s": {"type": "integer"},
        },
        "required": ["type", "title", "status", "detail"],
    },
    "Index": {
        "type": "object",
        "properties": {
            "api": {"const": "v1"},
            "version": {"type": "string"},
            "flight": {"type": ["string", "null"], "description": "grpc:// or grpc+tls:// URI"},
            "docs": {"type": "string"},
            "openapi": {"type": "string"},
        },
    },
    "TableJson": {
        "type": "object",
        "properties": {
            "schema": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "type": {"type": "string"}},
                },
            },
            "row_count": {"type": "integer"},
            "rows": {"type": "array", "items": {"type": "object"}},
            "truncated": {"type": "boolean", "description": "SQL only: cut at max_rows."},
            "elapsed_s": {"type": "number", "description": "SQL only: run time."},
            "notes": {"type": "array", "items": {"type": "string"}, "description": "SQL only."},
        },
        "required": ["schema", "row_count", "rows"],
    },
    "SqlRequest": {
        "type": "object",
        "properties": {
            "sql": {"type": "string", "description": "One SELECT (or WITH) statement."},
            "timeout_s": {"type": "number", "description": "At most the server's limit."},
            "max_rows": {"type": "integer", "description": "At most the server's limit."},
        },
        "required": ["sql"],
        "additionalProperties": False,
    },
    "RegimesRequest": {
        "type": "object",
        "properties": {
            **{
                p["name"]: {"type": p["schema"]["type"], "description": p["description"]}
                for p in _BARS_PARAMS[:-1]
            },
            "k": {
                "type": "integer",
                "minimum": 1,
                "maximum": 6,
                "description": "A fixed number of states (not with k_max).",
            },
            "k_max": {
                "type": "integer",
                "minimum": 1,
                "maximum": 6,
                "default": 4,
                "description": "Largest K tried; the lowest BIC wins.",
            },
            "n_init": {
                "type": "integer",
                "minimum": 1,
                "maximum": 20,
                "default": 10,
                "description": "EM restarts per K.",
            },
            "seed": {"type": "integer", "minimum": 0, "default": 0},
            "path": {
                "type": "boolean",
                "default": False,
                "description": "Also return the most likely state of every return (Viterbi).",
            },
        },
        "required": ["symbol"],
        "additionalProperties": False,
    },
    "Regimes": {
        "type": "object",
        "properties": {
            "symbol": {"type": "string"},
            "venue": {"type": "string"},
            "timeframe": {"type": "string"},
            "n_bars": {"type": "integer"},
            "units": {"type": "string"},
            "n_states": {"type": "integer"},
            "selected_by": {"enum": ["bic", "fixed"]},
            "start": {"type": "string", "format": "date-time"},
            "end": {"type": "string", "format": "date-time"},
            "n_returns": {"type": "integer"},
            "states": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "state": {"type": "integer"},
                        "mean": _NUM,
                        "volatility": _NUM,
                        "expected_duration": _NUM,
                        "stationary_share": _NUM,
                    },
                },
            },
            "transition_matrix": {"type": "array", "items": {"type": "array", "items": _NUM}},
            "stationary_distribution": {"type": "array", "items": _NUM},
            "log_likelihood": _NUM,
            "bic": _NUM,
            "converged": {"type": "boolean"},
            "n_iter": {"type": "integer"},
            "current_state": {"type": "integer"},
            "current_probability": _NUM,
            "bic_table": {"type": "array", "items": {"type": "object"}},
            "path": {
                "type": "object",
                "description": "With path=true: each return's bar time and its state.",
                "properties": {
                    "ts": {"type": "array", "items": {"type": "string", "format": "date-time"}},
                    "state": {"type": "array", "items": {"type": "integer"}},
                },
                "required": ["ts", "state"],
            },
        },
    },
    "Study": {
        "type": "object",
        "properties": {
            "study_id": {"type": "string"},
            "owner": {"type": ["string", "null"], "description": "The owner's username."},
            "mine": {"type": "boolean"},
            "kind": {"type": "string"},
            "title": {"type": "string"},
            "params": {"type": "object"},
            "inputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "venue": {"type": "string"},
                        "symbol": {"type": "string"},
                        "timeframe": {"type": "string"},
                        "start": {"type": "string", "format": "date-time"},
                        "end": {"type": "string", "format": "date-time"},
                        "rows": {"type": "integer"},
                        "sha256": {"type": "string"},
                    },
                },
            },
            "code_version": {"type": "string"},
            "metrics": {
                "type": "object",
                "additionalProperties": {"type": ["number", "string", "null"]},
            },
            "artefacts": {"type": "array", "items": {"type": "string"}},
            "shared": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"},
        },
    },
    "StudyList": {
        "type": "object",
        "properties": {
            "studies": {"type": "array", "items": {"type": "object"}}  # items: Study, below
        },
        "required": ["studies"],
    },
    "Me": {
        "type": "object",
        "properties": {
            "user_id": {"type": "string"},
            "username": {"type": "string"},
            "role": {"enum": ["viewer", "analyst", "admin"]},
            "token": {
                "type": "object",
                "properties": {
                    "id": {"type": "string"},
                    "name": {"type": "string"},
                    "scopes": {"type": "array", "items": {"type": "string"}},
                    "created_at": {"type": "string", "format": "date-time"},
                    "expires_at": {"type": "string", "format": "date-time"},
                },
            },
        },
    },
}

# Every field of these answers is always there.
for _name in ("Index", "Regimes", "Me", "Study"):
    _SCHEMAS[_name]["required"] = [p for p in _SCHEMAS[_name]["properties"] if p != "path"]
_SCHEMAS["StudyList"]["properties"]["studies"]["items"] = _SCHEMAS["Study"]
_SCHEMAS["Me"]["properties"]["token"]["required"] = ["id", "name", "scopes", "expires_at"]


def _problem(text: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": text,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        },
    }
    if headers:
        out["headers"] = headers
    return out


_RESPONSES = {
    "BadRequest": _problem("Bad input: a missing or malformed parameter, a refused query"),
    "Unauthorized": _problem(
        "No token, or a malformed, unknown, revoked or expired one",
        {"WWW-Authenticate": {"schema": {"type": "string"}}},
    ),
    "Forbidden": _problem("The token lacks the scope, or the account's role is too low"),
    "Timeout": _problem("The query ran past its timeout"),
    "ContentTooLarge": _problem(
        "The body is larger than 64 KB (or a SQL query needed too much memory)"
    ),
    "UnsupportedMediaType": _problem("The body is not application/json"),
    "TooManyRequests": _problem(
        "This token made too many calls this minute",
        {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait"}},
    ),
}


@lru_cache(maxsize=8)
def openapi_spec(prefix: str) -> Spec:
    """The OpenAPI 3.1 document of the API served under `prefix` (do not modify it)."""
    paths: dict[str, dict[str, Any]] = {}
    for (method, path), op in OPERATIONS.items():
        entry = dict(op)
        if "x-scope" in op:
            entry["security"] = [{"bearer": [op["x-scope"]]}]
        else:
            entry["security"] = []
        paths.setdefault(path, {})[method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "HFThot REST API",
            "version": core.__version__,
            "description": "Market data, SQL and analytics of this HFThot portal. Send "
            "`Authorization: Bearer hft_pat_...` (a personal access token made on My account) "
            "with the scope each route names; the account's role counts too. Each token may "
            "make a limited number of calls a minute (429 with Retry-After beyond). Errors are "
            "application/problem+json (RFC 9457).",
        },
        "servers": [{"url": prefix}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A personal access token (hft_pat_...).",
                }
            },
            "schemas": _SCHEMAS,
            "responses": _RESPONSES,
        },
    }
