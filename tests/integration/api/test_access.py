"""Who may call the REST API, and how refusals read: 401, 403, 404, 405, 413, 415, 429.

Every refusal is application/problem+json (RFC 9457) with the message the pages show, and
every answer carries the security headers of app.py's middleware.
"""

from __future__ import annotations

import dataclasses
import json

import requests

import core
from tests.integration.api.conftest import Api, ApiServer, Strict, conforms
from tests.integration.flight.portal import Portal, RestServer

PROBLEM = "application/problem+json"


def problem(r: requests.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["Content-Type"] == PROBLEM
    body = r.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    conforms(body, "Problem")
    return body


def test_index_needs_no_token_and_names_the_parts(api: Api) -> None:
    r = api.as_(None).get("/")
    assert r.status_code == 200
    conforms(r.json(), "Index")
    assert r.json() == {
        "api": "v1",
        "version": core.__version__,
        "flight": None,  # the test portal runs without Flight (port 0)
        "docs": "/api/v1/docs",
        "openapi": "/api/v1/openapi.json",
    }
    assert api.get("").json()["api"] == "v1"  # /api/v1 without the slash too


def test_index_under_a_base_url_path_and_with_flight(portal: Portal) -> None:
    settings = dataclasses.replace(
        portal.services.settings,
        flight_port=50999,
        flight_host="0.0.0.0",  # noqa: S104
    )
    services = dataclasses.replace(portal.services, settings=settings)
    srv = ApiServer(lambda: services, base_url_path="/hft/")
    try:
        with Api(srv.url) as api:
            assert srv.url.endswith("/hft/api/v1")
            body = api.get("/").json()
            # a wildcard listen address becomes the host the caller used
            assert body["flight"] == "grpc://127.0.0.1:50999"
            assert body["docs"] == "/hft/api/v1/docs"
            assert api.get(srv.root + "/api/v1/").status_code == 404
    finally:
        srv.stop()


def test_missing_malformed_wrong_and_revoked_tokens_are_401(api: Api, portal: Portal) -> None:
    body = problem(api.as_(None).get("/series"), 401)
    assert "Authorization: Bearer" in str(body["detail"])
    r = api.get("/series", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert problem(r, 401)["detail"] == "the Authorization header must be: Bearer hft_pat_..."
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    body = problem(api.as_("not-a-token").get("/series"), 401)
    assert "malformed access token" in str(body["detail"])
    good = portal.tokens["analyst"]
    wrong = good[:-4] + ("aaaa" if not good.endswith("aaaa") else "bbbb")
    assert problem(api.as_(wrong).get("/series"), 401)["detail"] == "this access token is not valid"
    body = problem(api.as_(portal.tokens["revoked"]).get("/bars?symbol=SP500"), 401)
    assert body["detail"] == "this access token was revoked; create a new one"
    # a token never appears in an answer
    assert good not in api.as_(wrong).get("/me").text


def test_expired_and_disabled_are_401(strict: Strict) -> None:
    with Api(strict.server.url) as api:
        user, token = strict.token("viewer", ["market:read"], days=1)
        assert api.as_(token).get("/series?format=json").status_code == 200
        strict.now[0] += 2 * 86400
        try:
            body = problem(api.get("/series"), 401)
            assert body["detail"] == "this access token has expired; create a new one"
        finally:
            strict.now[0] -= 2 * 86400
        admin, _ = strict.token("admin", ["account:read"])
        strict.services.auth.disable_user(admin, user.user_id)
        body = problem(api.get("/series"), 401)
        assert "disabled" in str(body["detail"]) or "revoked" in str(body["detail"])


def test_missing_scope_and_low_role_are_403(api: Api, portal: Portal) -> None:
    body = problem(api.as_(portal.tokens["account"]).get("/bars?symbol=SP500"), 403)
    assert body["detail"] == (
        "this access token lacks the market:read scope; create one with it on My account"
    )
    # a viewer's token with sql:run: the scope is granted, the role is too low
    body = problem(api.as_(portal.tokens["viewer"]).post("/sql", json={"sql": "SELECT 1"}), 403)
    assert (
        body["detail"]
        == "the sql:run scope needs the analyst role; this account has the viewer role"
    )
    assert (
        api.as_(portal.tokens["viewer"]).get("/bars?symbol=SP500&timeframe=1d&last=1").status_code
        == 200
    )


def test_rate_limit_is_429_with_retry_after(strict: Strict) -> None:
    _, token = strict.token("viewer", ["market:read", "account:read"])
    _, other = strict.token("viewer", ["market:read"])
    with Api(strict.server.url) as api:
        for _ in range(3):
            assert api.as_(token).get("/me").status_code == 200
        r = api.get("/series")
        body = problem(r, 429)
        assert body["detail"].startswith("too many requests with this token; try again in")
        wait = int(r.headers["Retry-After"])
        assert 1 <= wait <= 20  # 3 a minute: one call comes back every 20 s
        assert body["retry_after_s"] == wait
        # the limit is per token
        assert api.as_(other).get("/series").status_code == 200


def test_unknown_route_and_wrong_method(api: Api, portal: Portal) -> None:
    api.as_(portal.tokens["analyst"])
    body = problem(api.get("/nope"), 404)
    assert body["detail"] == "no such API route; the routes are listed at /api/v1/docs"
    problem(api.get("/bars/"), 404)
    r = api.delete("/bars")
    assert problem(r, 405)["detail"] == "/api/v1/bars answers GET, HEAD, not DELETE"
    assert r.headers["Allow"] == "GET, HEAD"
    r = api.get("/sql")
    problem(r, 405)
    assert r.headers["Allow"] == "POST"


def test_bodies_too_large_or_not_json(api: Api, portal: Portal) -> None:
    api.as_(portal.tokens["analyst"])
    big = json.dumps({"sql": "SELECT 1 -- " + "x" * 70_000})
    r = api.post("/sql", data=big, headers={"Content-Type": "application/json"})
    body = problem(r, 413)
    assert body["detail"] == "request body too large (limit 65536 bytes)"
    assert body["title"] == "Content Too Large"

    def chunks() -> object:  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b"x" * 8192

    r = api.post("/sql", data=chunks(), headers={"Content-Type": "application/json"})
    problem(r, 413)
    r = api.post("/sql", data="sql=SELECT 1", headers={"Content-Type": "text/plain"})
    assert problem(r, 415)["detail"] == "send the body as application/json"
    r = api.post("/sql", data="{not json", headers={"Content-Type": "application/json"})
    assert problem(r, 400)["detail"] == "the body is not valid JSON"


def test_every_answer_carries_the_security_headers(api: Api, portal: Portal) -> None:
    answers = [
        api.as_(None).get("/"),
        api.get("/docs"),
        api.get("/series"),  # 401
        api.as_(portal.tokens["analyst"]).get("/bars?symbol=SP500&timeframe=1d&last=3"),
        api.get("/nope"),
        api.post("/sql", data="x" * 70_000, headers={"Content-Type": "application/json"}),
    ]
    for r in answers:
        assert "default-src 'self'" in r.headers["Content-Security-Policy"], r.url
        assert "script-src" in r.headers["Content-Security-Policy"]
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["X-Frame-Options"] == "DENY"
        assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert r.headers["Cache-Control"] == "no-store"
        assert "Strict-Transport-Security" not in r.headers  # plain HTTP from loopback


def test_openapi_and_docs_need_no_token(api: Api) -> None:
    spec = api.as_(None).get("/openapi.json").json()
    assert spec["openapi"] == "3.1.0"
    assert spec["servers"] == [{"url": "/api/v1"}]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    r = api.get("/docs")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/html")
    page = r.text
    assert "<script" not in page.lower()
    assert "http://" not in page
    assert "https://" not in page
    for path in ("/api/v1/bars", "/api/v1/sql", "/api/v1/analytics/regimes", "/api/v1/me"):
        assert path in page
    assert "market:read" in page
    assert "sql:run" in page
    assert "analytics:run" in page


def test_the_api_bounds_bodies_itself_without_the_middleware(portal: Portal) -> None:
    srv = RestServer(lambda: portal.services)  # api_routes alone: no BodyLimit in front
    try:
        with Api(srv.url + "/api/v1") as api:
            api.as_(portal.tokens["analyst"])
            r = api.post("/sql", data=b"x" * 70_000, headers={"Content-Type": "application/json"})
            assert problem(r, 413)["detail"] == "request body too large (limit 65536 bytes)"
            assert "Content-Security-Policy" not in r.headers  # no middleware indeed
            r = api.post("/sql", json={"sql": "SELECT 42 AS x"})
            assert r.status_code == 200
    finally:
        srv.stop()
