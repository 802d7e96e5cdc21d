"""Who may call: 401, 403 and 429 with the same detail as the REST API; bad tickets and
server failures answer clearly and say nothing about the server."""

from __future__ import annotations

import json
from collections.abc import Callable

import pyarrow.flight as fl
import pytest

from core.serve.access import Gate
from core.serve.flight import FlightService
from core.services import Services
from tests.integration.flight.portal import SYMBOL, Portal

Call = Callable[[str | None], fl.FlightCallOptions]
BARS = fl.Ticket(json.dumps({"kind": "bars", "symbol": SYMBOL, "last": 5}).encode())
SQL = fl.Ticket(json.dumps({"kind": "sql", "sql": "SELECT 1 AS one"}).encode())


def problem(exc: pytest.ExceptionInfo[fl.FlightError]) -> dict[str, object]:
    body = json.loads(exc.value.extra_info)
    assert isinstance(body, dict)
    assert str(exc.value).startswith(str(body["detail"]))
    assert "Traceback" not in str(exc.value)
    return body


def header(value: str) -> fl.FlightCallOptions:
    return fl.FlightCallOptions(timeout=30, headers=[(b"authorization", value.encode())])


def test_no_token_is_401(flight: fl.FlightClient, call: Call) -> None:
    with pytest.raises(fl.FlightUnauthenticatedError) as exc:
        flight.do_get(BARS, call(None)).read_all()
    body = problem(exc)
    assert body["status"] == 401
    assert "Authorization: Bearer hft_pat_" in str(body["detail"])
    with pytest.raises(fl.FlightUnauthenticatedError):
        list(flight.list_flights(options=call(None)))


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("Basic dXNlcjpwYXNz", "must be: Bearer hft_pat_"),
        ("Bearer hft_pat_nope", "malformed access token"),
        ("Bearer " + "x" * 300, "must be: Bearer hft_pat_"),
    ],
)
def test_bad_tokens_are_401(flight: fl.FlightClient, value: str, says: str) -> None:
    with pytest.raises(fl.FlightUnauthenticatedError) as exc:
        flight.do_get(BARS, header(value)).read_all()
    body = problem(exc)
    assert body["status"] == 401
    assert says in str(body["detail"])


def test_wrong_secret_is_401_and_never_echoed(flight: fl.FlightClient, portal: Portal) -> None:
    token = portal.tokens["analyst"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(fl.FlightUnauthenticatedError) as exc:
        flight.do_get(BARS, header(f"Bearer {forged}")).read_all()
    assert problem(exc)["detail"] == "this access token is not valid"
    assert forged not in str(exc.value)
    assert token not in str(exc.value)


def test_revoked_token_is_401(flight: fl.FlightClient, call: Call) -> None:
    with pytest.raises(fl.FlightUnauthenticatedError) as exc:
        flight.do_get(BARS, call("revoked")).read_all()
    assert "revoked" in str(problem(exc)["detail"])


def test_missing_scope_is_403(flight: fl.FlightClient, call: Call) -> None:
    with pytest.raises(fl.FlightUnauthorizedError) as exc:
        flight.do_get(BARS, call("account")).read_all()
    body = problem(exc)
    assert body["status"] == 403
    assert "market:read" in str(body["detail"])
    with pytest.raises(fl.FlightUnauthorizedError):
        list(flight.list_flights(options=call("account")))


def test_role_below_the_scope_is_403(flight: fl.FlightClient, call: Call) -> None:
    with pytest.raises(fl.FlightUnauthorizedError) as exc:
        flight.do_get(SQL, call("viewer")).read_all()
    assert "analyst role" in str(problem(exc)["detail"])
    # The same token still reads bars: market:read needs only the viewer role.
    assert flight.do_get(BARS, call("viewer")).read_all().num_rows == 5


def test_rate_limit_is_429_with_when_to_retry(portal: Portal, call: Call) -> None:
    with FlightService(lambda: portal.services, gate=Gate(portal.services.auth, 2)) as service:
        client = fl.FlightClient(service.location)
        for _ in range(2):
            client.do_get(BARS, call("viewer")).read_all()
        with pytest.raises(fl.FlightUnavailableError) as exc:
            client.do_get(BARS, call("viewer")).read_all()
        client.close()
    body = problem(exc)
    assert body["status"] == 429
    assert "try again in" in str(body["detail"])
    assert isinstance(body["retry_after_s"], int)
    assert body["retry_after_s"] >= 1


@pytest.mark.parametrize(
    ("ticket", "says"),
    [
        (b"not json", "a ticket is a JSON object"),
        (b"\xff\xfe", "a ticket is a JSON object"),
        (b"[1, 2]", '"kind": "bars" or "sql"'),
        (b'{"symbol": "X"}', 'must be "bars" or "sql"'),
        (b'{"kind": "trades"}', 'must be "bars" or "sql"'),
        (b'{"kind": "bars"}', "symbol is required"),
        (b'{"kind": "bars", "symbol": "X", "colour": "red"}', "unknown parameter colour"),
        (b'{"kind": "bars", "symbol": "X", "format": "csv"}', "Flight always answers Arrow"),
        (b'{"kind": "bars", "symbol": "X", "timeframe": "2m"}', "unknown timeframe"),
        (b'{"kind": "bars", "symbol": "X", "last": 0}', "last must be between"),
        (b'{"kind": "bars", "symbol": "X", "start": "soon"}', "start"),
        (b'{"kind": "sql"}', "sql must be a non-empty string"),
        (b'{"kind": "sql", "sql": "DROP TABLE bars"}', "not allowed"),
        (b'{"kind": "sql", "sql": "SELECT 1", "max_rows": 10000000000}', "max_rows may be"),
        (b'{"kind": "bars", "symbol": "' + b"x" * 70_000 + b'"}', "longer than 64 KiB"),
    ],
)
def test_malformed_tickets_say_what_is_wrong(
    flight: fl.FlightClient, call: Call, ticket: bytes, says: str
) -> None:
    with pytest.raises(fl.FlightServerError) as exc:
        flight.do_get(fl.Ticket(ticket), call("analyst")).read_all()
    body = problem(exc)
    assert body["status"] == 400
    assert says in str(body["detail"])


def test_server_failures_say_nothing_about_the_server(portal: Portal, call: Call) -> None:
    secret_path = "/srv/hfthot/secret-data-dir"

    def broken() -> Services:
        raise RuntimeError(f"cannot open {secret_path}")

    gate = FlightService(lambda: portal.services).gate()  # admits; only the data step fails
    with FlightService(broken, gate=gate) as service:
        client = fl.FlightClient(service.location)
        with pytest.raises(fl.FlightInternalError) as exc:
            client.do_get(BARS, call("viewer")).read_all()
        client.close()
    body = problem(exc)
    assert body["status"] == 500
    assert body["detail"] == "the server failed to answer; try again"
    assert secret_path not in str(exc.value)


def test_unknown_action_is_refused(flight: fl.FlightClient, call: Call) -> None:
    with pytest.raises(fl.FlightServerError, match="unknown action"):
        list(flight.do_action(fl.Action("drop", b""), call("analyst")))
