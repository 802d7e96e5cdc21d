"""DoGet, ListFlights and GetFlightInfo answer exactly what the store and explorer hold."""

from __future__ import annotations

import json
from collections.abc import Callable

import polars as pl
import pyarrow as pa
import pyarrow.flight as fl
import pytest

from core.serve.data import BarsRequest
from core.serve.flight import BARS_SCHEMA, FlightService, parse_ticket, peer_ip, ticket_of
from core.sql_history import QueryHistory, history_folder
from tests.integration.flight.portal import SYMBOL, VENUE, Portal

Call = Callable[[str | None], fl.FlightCallOptions]


def get(flight: fl.FlightClient, opts: fl.FlightCallOptions, **ticket: object) -> pa.Table:
    return flight.do_get(fl.Ticket(json.dumps(ticket).encode()), opts).read_all()


def frame(table: pa.Table) -> pl.DataFrame:
    out = pl.from_arrow(table)
    assert isinstance(out, pl.DataFrame)
    return out


@pytest.mark.parametrize(
    ("params", "store_args"),
    [
        ({}, {}),
        ({"venue": VENUE}, {"venue": VENUE}),
        (
            {"start": "2024-03-01T12:00:00", "end": "2024-03-02T00:00:00"},
            {"start": "2024-03-01T12:00:00", "end": "2024-03-02T00:00:00"},
        ),
        ({"timeframe": "1h"}, {"timeframe": "1h"}),
        ({"timeframe": "5m", "last": 100}, {"timeframe": "5m", "last": 100}),
        ({"last": "7"}, {"last": 7}),
    ],
)
def test_do_get_bars_equals_the_store(
    flight: fl.FlightClient,
    call: Call,
    portal: Portal,
    params: dict[str, object],
    store_args: dict[str, object],
) -> None:
    got = frame(get(flight, call("viewer"), kind="bars", symbol=SYMBOL, **params))
    want = portal.services.engine.store.get_bars(SYMBOL, **store_args)  # type: ignore[arg-type]
    assert want.height > 0
    assert got.equals(want)
    assert got.schema == want.schema


def test_unknown_symbol_gives_an_empty_frame_with_the_bars_schema(
    flight: fl.FlightClient, call: Call
) -> None:
    table = get(flight, call("viewer"), kind="bars", symbol="NOPE/USD")
    assert table.num_rows == 0
    assert table.schema == BARS_SCHEMA


def test_sql_ticket_equals_the_explorer(
    flight: fl.FlightClient, call: Call, portal: Portal
) -> None:
    sql = (
        "SELECT symbol, count(*) AS n, round(avg(close), 6) AS mean_close FROM bars "
        f"WHERE venue = '{VENUE}' GROUP BY symbol ORDER BY symbol"
    )
    table = get(flight, call("analyst"), kind="sql", sql=sql)
    want = portal.services.engine.sql.execute(sql).frame
    assert frame(table.replace_schema_metadata(None)).equals(want)
    assert want["n"].to_list() == [3 * 1440]
    meta = table.schema.metadata
    assert meta[b"hfthot.truncated"] == b"false"
    assert meta[b"hfthot.rows"] == b"1"


def test_sql_ticket_row_cap_is_reported(flight: fl.FlightClient, call: Call) -> None:
    table = get(flight, call("analyst"), kind="sql", sql="SELECT * FROM bars", max_rows=10)
    assert table.num_rows == 10
    assert table.schema.metadata[b"hfthot.truncated"] == b"true"


def test_sql_lands_in_the_callers_history(
    flight: fl.FlightClient, call: Call, portal: Portal
) -> None:
    sql = "SELECT 42 AS answer_for_history"
    get(flight, call("analyst"), kind="sql", sql=sql)
    history = QueryHistory(history_folder(portal.services.settings.market_dir))
    recent = history.recent(portal.user_ids["ana"])
    assert any(entry.get("sql") == sql for entry in recent)


def test_list_flights_lists_the_coverage(
    flight: fl.FlightClient, call: Call, portal: Portal
) -> None:
    infos = list(flight.list_flights(options=call("viewer")))
    cov = portal.services.engine.coverage().filter(pl.col("kind") == "bars")
    listed = {tuple(p.decode() for p in i.descriptor.path): i for i in infos}
    want = {(r["venue"], r["symbol"], r["timeframe"]): r for r in cov.iter_rows(named=True)}
    assert set(listed) == set(want)
    ours = listed[(VENUE, SYMBOL, "1m")]
    assert ours.total_records == 3 * 1440
    assert ours.schema == BARS_SCHEMA
    about = json.loads(ours.app_metadata)
    assert about["first"].startswith("2024-03-01T00:00")
    # The endpoint's ticket reads the whole series.
    table = flight.do_get(ours.endpoints[0].ticket, call("viewer")).read_all()
    assert frame(table).equals(portal.services.engine.store.get_bars(SYMBOL, venue=VENUE))


def test_get_flight_info_for_a_path_and_a_command(
    flight: fl.FlightClient, call: Call, portal: Portal
) -> None:
    info = flight.get_flight_info(fl.FlightDescriptor.for_path(VENUE, SYMBOL, "1m"), call("viewer"))
    assert info.total_records == 3 * 1440
    command = json.dumps({"kind": "bars", "symbol": SYMBOL, "timeframe": "1h"})
    info = flight.get_flight_info(fl.FlightDescriptor.for_command(command), call("viewer"))
    assert info.total_records == 72
    table = flight.do_get(info.endpoints[0].ticket, call("viewer")).read_all()
    assert frame(table).equals(portal.services.engine.store.get_bars(SYMBOL, timeframe="1h"))
    sql = fl.FlightDescriptor.for_command(json.dumps({"kind": "sql", "sql": "SELECT 7 AS x"}))
    info = flight.get_flight_info(sql, call("analyst"))
    assert info.total_records == -1  # not run twice: DoGet runs it
    table = flight.do_get(info.endpoints[0].ticket, call("analyst")).read_all()
    assert table.column("x").to_pylist() == [7]
    with pytest.raises(fl.FlightUnauthorizedError):
        flight.get_flight_info(sql, call("viewer"))
    with pytest.raises(fl.FlightServerError, match="no stored series"):
        flight.get_flight_info(fl.FlightDescriptor.for_path(VENUE, "NOPE", "1m"), call("viewer"))
    with pytest.raises(fl.FlightServerError, match=r"\[venue, symbol, timeframe\]"):
        flight.get_flight_info(fl.FlightDescriptor.for_path(VENUE), call("viewer"))


def test_health_action_needs_no_token(flight: fl.FlightClient, call: Call) -> None:
    assert [a.type for a in flight.list_actions(call(None))] == ["health"]
    (answer,) = list(flight.do_action(fl.Action("health", b""), call(None)))
    assert answer.body.to_pybytes() == b"ok"


def test_tickets_round_trip() -> None:
    req = BarsRequest(SYMBOL, VENUE, "1h", "2024-03-01", None, 5)
    assert parse_ticket(ticket_of(req)) == req


def test_location_and_stop_are_safe_twice(portal: Portal) -> None:
    service = FlightService(lambda: portal.services).start()
    assert service.location == f"grpc://127.0.0.1:{service.port}"
    service.stop()
    service.stop()
    client = fl.FlightClient(service.location)
    with pytest.raises(fl.FlightUnavailableError):
        list(client.list_actions(fl.FlightCallOptions(timeout=2)))
    client.close()


@pytest.mark.parametrize(
    ("peer", "ip"),
    [
        ("ipv4:127.0.0.1:50512", "127.0.0.1"),
        (b"ipv6:[::1]:50512", "::1"),
        ("ipv6:[2001:db8::7]:1", "2001:db8::7"),
        ("unix:/tmp/socket", None),
        ("ipv4:not-an-ip:1", None),
    ],
)
def test_peer_ip(peer: str | bytes, ip: str | None) -> None:
    assert peer_ip(peer) == ip
