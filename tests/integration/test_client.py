"""core.client.Client against a live portal: the REST API under uvicorn and the Flight
service, both on loopback over one test portal. Flight and REST answers equal each other and
the store; REST takes over when Flight is off, unreachable or goes away; every error class."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from core.client import (
    BadRequest,
    Client,
    ClientError,
    Forbidden,
    RateLimited,
    ServerError,
    Unauthorized,
    Unreachable,
)
from core.serve.access import Gate
from core.serve.flight import FlightService, start_flight
from core.services import Services
from tests.integration.flight.portal import (
    SYMBOL,
    VENUE,
    Portal,
    RestServer,
    free_port,
    make_portal,
)
from tests.integration.ingest.tls_loopback import make_cert

TRANSPORTS = [None, False]  # auto (Flight here) and REST only


@dataclass
class Live:
    portal: Portal
    rest: RestServer
    flight: FlightService

    def client(self, name: str = "analyst", **kw: Any) -> Client:
        return Client(self.rest.url, self.portal.tokens[name], **kw)

    @property
    def services(self) -> Services:
        return self.portal.services


def variant(services: Services, **settings: Any) -> Services:
    """The same accounts and engine under other settings (a second door to one portal); a
    new rate gets its own gate."""
    changed = dataclasses.replace(services.settings, **settings)
    gate = services.gate
    if "api_rate_per_minute" in settings:
        gate = Gate(services.auth, changed.api_rate_per_minute)
    return dataclasses.replace(services, settings=changed, gate=gate)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    portal = make_portal(
        tmp_path_factory.mktemp("client") / "data",
        flight_port=free_port(),
        api_rate_per_minute=100_000,
    )
    flight = start_flight(lambda: portal.services, portal.services.settings)
    assert flight is not None
    rest = RestServer(lambda: portal.services)
    yield Live(portal, rest, flight)
    rest.stop()
    flight.stop()
    portal.services.close()


# --- the same answers through every door ---------------------------------------------------
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"venue": VENUE, "timeframe": "1h"},
        {"start": "2024-03-01T06:00:00Z", "end": "2024-03-01T09:30:00Z"},
        {"timeframe": "15m", "last": 50},
    ],
)
def test_bars_over_flight_and_rest_equal_the_store(live: Live, params: dict[str, Any]) -> None:
    with live.client() as flight, live.client(flight=False) as rest:
        over_flight = flight.bars(SYMBOL, **params)
        over_rest = rest.bars(SYMBOL, **params)
        assert flight.transport == "flight"
        assert flight.flight_location == live.flight.location
        assert rest.transport == "rest"
    store = live.services.engine.store.get_bars(SYMBOL, **params)
    assert store.height > 0
    assert over_flight.equals(store)
    assert over_rest.equals(store)
    assert over_flight.schema == over_rest.schema == store.schema


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_datetimes_and_dates_are_accepted(live: Live, transport: bool | None) -> None:
    start = dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)
    end = dt.date(2024, 3, 2)
    with live.client(flight=transport) as c:
        got = c.bars(SYMBOL, start=start, end=end)
    want = live.services.engine.store.get_bars(SYMBOL, start, end)
    assert got.height == 12 * 60
    assert got.equals(want)


def test_sql_over_flight_and_rest_equal_the_explorer(live: Live) -> None:
    sql = (
        "SELECT date_trunc('hour', ts) AS hour, count(*) AS n, round(sum(volume), 6) AS vol "
        f"FROM bars WHERE symbol = '{SYMBOL}' GROUP BY 1 ORDER BY 1"
    )
    want = live.services.engine.sql.execute(sql).frame
    with live.client() as flight, live.client(flight=False) as rest:
        a, b = flight.sql(sql), rest.sql(sql)
        assert flight.transport == "flight"
        for c in (flight, rest):
            assert c.last_query is not None
            assert c.last_query.rows == 72
            assert not c.last_query.truncated
    assert a.equals(want)
    assert b.equals(want)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_sql_row_cap_is_reported(live: Live, transport: bool | None) -> None:
    with live.client(flight=transport) as c:
        frame = c.sql("SELECT * FROM bars", max_rows=25, timeout_s=5)
        assert frame.height == 25
        assert c.last_query is not None
        assert c.last_query.truncated


def test_series_is_the_coverage(live: Live) -> None:
    with live.client() as c:
        got = c.series()
    want = live.services.engine.coverage()
    assert got.equals(want)
    assert (VENUE, SYMBOL) in set(zip(got["venue"], got["symbol"], strict=True))


def test_me_and_regimes(live: Live) -> None:
    with live.client() as c:
        me = c.me()
        fit = c.regimes(SYMBOL, timeframe="1h", k=2, n_init=1, seed=3)
    assert me["username"] == "ana"
    assert me["token"]["name"] == "all"
    assert fit["symbol"] == SYMBOL
    assert fit["n_states"] == 2
    assert fit["n_bars"] == 72
    assert len(fit["states"]) == 2


# --- REST takes over ---------------------------------------------------------------------------
def test_rest_when_the_portal_offers_no_flight(live: Live) -> None:
    rest = RestServer(lambda: variant(live.services, flight_port=0))
    try:
        with Client(rest.url, live.portal.tokens["analyst"]) as c:
            got = c.bars(SYMBOL, last=10)
            assert c.transport == "rest"
            assert "does not offer Flight" in c.flight_note
        with pytest.raises(Unreachable, match="does not offer Arrow Flight"):
            Client(rest.url, live.portal.tokens["analyst"], flight=True).bars(SYMBOL)
    finally:
        rest.stop()
    assert got.equals(live.services.engine.store.get_bars(SYMBOL, last=10))


def test_rest_when_flight_is_unreachable(live: Live) -> None:
    dead = free_port()
    rest = RestServer(lambda: variant(live.services, flight_port=dead))
    try:
        with Client(rest.url, live.portal.tokens["analyst"]) as c:
            got = c.bars(SYMBOL, last=10)
            assert c.transport == "rest"
            assert f"grpc://127.0.0.1:{dead} did not answer" in c.flight_note
        with pytest.raises(Unreachable, match="cannot reach Arrow Flight"):
            Client(rest.url, live.portal.tokens["analyst"], flight=True).bars(SYMBOL)
    finally:
        rest.stop()
    assert got.equals(live.services.engine.store.get_bars(SYMBOL, last=10))


def test_rest_takes_over_when_flight_goes_away(live: Live) -> None:
    service = FlightService(lambda: live.services).start()
    rest = RestServer(lambda: variant(live.services, flight_port=service.port))
    try:
        with Client(rest.url, live.portal.tokens["analyst"]) as c:
            first = c.bars(SYMBOL, last=30)
            assert c.transport == "flight"
            service.stop()
            second = c.bars(SYMBOL, last=30)
            assert c.transport == "rest"
            assert "stopped answering" in c.flight_note
    finally:
        service.stop()
        rest.stop()
    assert first.equals(second)


# --- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bad_or_revoked_tokens_are_unauthorized(live: Live, transport: bool | None) -> None:
    with live.client("revoked", flight=transport) as c, pytest.raises(Unauthorized) as exc:
        c.bars(SYMBOL)
    assert exc.value.status == 401
    assert "revoked" in exc.value.detail
    bad = Client(live.rest.url, "hft_pat_nope", flight=transport)
    with pytest.raises(Unauthorized, match="malformed access token"):
        bad.sql("SELECT 1")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_missing_scope_or_role_is_forbidden(live: Live, transport: bool | None) -> None:
    with live.client("account", flight=transport) as c, pytest.raises(Forbidden) as exc:
        c.bars(SYMBOL)
    assert exc.value.status == 403
    assert "market:read" in exc.value.detail
    with live.client("viewer", flight=transport) as c, pytest.raises(Forbidden, match="analyst"):
        c.sql("SELECT 1")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bad_requests_carry_the_servers_detail(live: Live, transport: bool | None) -> None:
    with live.client(flight=transport) as c:
        with pytest.raises(BadRequest, match="unknown timeframe '2m'") as exc:
            c.bars(SYMBOL, timeframe="2m")
        assert exc.value.status == 400
        with pytest.raises(BadRequest, match="not allowed"):
            c.sql("DROP TABLE bars")
        with pytest.raises(BadRequest, match="end must be after start"):
            c.bars(SYMBOL, start="2024-03-02", end="2024-03-01")
    with pytest.raises(BadRequest, match="start must be a datetime"):
        live.client().bars(SYMBOL, start=12)  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_rate_limit_says_when_to_retry(live: Live, transport: bool | None) -> None:
    slow = variant(live.services, api_rate_per_minute=2)
    service = FlightService(lambda: slow)
    slow = variant(slow, flight_port=service.port)
    service.start()
    rest = RestServer(lambda: slow)
    try:
        with Client(rest.url, live.portal.tokens["viewer"], flight=transport) as c:
            c.bars(SYMBOL, last=1)
            c.bars(SYMBOL, last=1)
            with pytest.raises(RateLimited) as exc:
                c.bars(SYMBOL, last=1)
            assert c.transport == ("flight" if transport is None else "rest")
    finally:
        rest.stop()
        service.stop()
    assert exc.value.status == 429
    assert exc.value.retry_after_s >= 1
    assert "try again in" in exc.value.detail


def test_server_errors_are_server_error(live: Live) -> None:
    def broken() -> Services:
        raise RuntimeError("disk on fire at /srv/secret")

    rest = RestServer(broken)
    service = FlightService(broken, gate=live.flight.gate())
    token = live.portal.tokens["analyst"]
    try:
        with pytest.raises(ServerError) as exc:
            Client(rest.url, token, flight=False).bars(SYMBOL)
        with pytest.raises(ServerError) as exc2:
            Client(rest.url, token, flight=service.location).bars(SYMBOL)
    finally:
        rest.stop()
        service.stop()
    for e in (exc.value, exc2.value):
        assert e.status == 500
        assert e.detail == "the server failed to answer; try again"


def test_unreachable_portal(live: Live) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Unreachable, match=f"cannot reach {dead}"):
        Client(dead, live.portal.tokens["analyst"], timeout=5).bars(SYMBOL)
    with pytest.raises(Unreachable):
        Client(dead, live.portal.tokens["analyst"], flight=False).series()


def test_unknown_route_is_a_clear_bad_request(live: Live) -> None:
    c = live.client(flight=False)
    with pytest.raises(BadRequest, match="no such API route") as exc:
        c._json("GET", "/api/v1/nothing-here")
    assert exc.value.status == 404


def test_token_never_shows(live: Live) -> None:
    token = live.portal.tokens["analyst"]
    c = live.client()
    c.bars(SYMBOL, last=1)
    assert token not in repr(c)
    assert token not in str(vars(c).get("flight_note"))
    errors: list[ClientError] = []
    for fn in (lambda: c.bars(SYMBOL, timeframe="9m"), lambda: c.sql("DELETE FROM bars")):
        try:
            fn()
        except ClientError as exc:
            errors.append(exc)
    assert len(errors) == 2
    assert all(token not in str(e) and token not in repr(e) for e in errors)


def test_bars_frame_is_polars(live: Live) -> None:
    frame = live.client().bars(SYMBOL, last=3)
    assert isinstance(frame, pl.DataFrame)
    assert frame.columns == list(live.services.engine.store.get_bars(SYMBOL, last=3).columns)


def test_flight_over_tls_with_a_ca_cert(live: Live, tmp_path: Path) -> None:
    cert, key = make_cert(["localhost"], tmp_path)
    tls = [(cert.read_bytes(), key.read_bytes())]
    service = FlightService(lambda: live.services, tls=tls).start()
    rest = RestServer(lambda: variant(live.services, flight_port=0))
    token = live.portal.tokens["analyst"]
    try:
        assert service.location.startswith("grpc+tls://")
        with Client(rest.url, token, flight=service.location, ca_cert=cert) as c:
            got = c.bars(SYMBOL, last=40)
            assert c.transport == "flight"
        with pytest.raises(Unreachable, match="cannot reach Arrow Flight"):
            Client(rest.url, token, flight=service.location).bars(SYMBOL)  # cert not trusted
    finally:
        rest.stop()
        service.stop()
    assert got.equals(live.services.engine.store.get_bars(SYMBOL, last=40))
