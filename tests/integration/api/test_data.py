"""What the REST API answers: coverage, bars in four formats, SQL, regimes, the account.

Every answer is compared with the engine called directly on the same data dir.
"""

from __future__ import annotations

import io

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from polars.testing import assert_frame_equal

from core.analytics.regime_fit import fit_series
from core.data.schema import BARS
from core.serve.analytics import summary_json
from tests.integration.api.conftest import MINUTES, Api, conforms
from tests.integration.flight.portal import SYMBOL, VENUE, Portal

PARAMS = {"symbol": SYMBOL, "venue": VENUE}


def arrow(r: requests.Response) -> pa.Table:
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/vnd.apache.arrow.stream"
    return pa.ipc.open_stream(r.content).read_all()


def frame(r: requests.Response, fmt: str) -> pl.DataFrame:
    """The answer `r` in format `fmt` as a frame in the BARS schema."""
    assert r.status_code == 200, r.text
    if fmt == "arrow":
        out = pl.from_arrow(arrow(r))
    elif fmt == "parquet":
        assert r.headers["Content-Type"] == "application/vnd.apache.parquet"
        out = pl.from_arrow(pq.read_table(io.BytesIO(r.content)))
    elif fmt == "csv":
        assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
        out = pl.read_csv(io.BytesIO(r.content), schema=BARS)
    else:
        body = r.json()
        assert body["row_count"] == len(body["rows"])
        assert [c["name"] for c in body["schema"]] == list(BARS)
        assert body["schema"][0]["type"] == "timestamp[us, tz=UTC]"
        out = pl.DataFrame(
            body["rows"],
            schema={k: pl.String for k in BARS}
            | {k: pl.Float64 for k in ("open", "high", "low", "close", "volume")},
        ).with_columns(pl.col("ts").str.to_datetime(time_unit="us", time_zone="UTC"))
    assert isinstance(out, pl.DataFrame)
    return out


@pytest.mark.parametrize("fmt", ["arrow", "parquet", "csv", "json"])
def test_bars_in_every_format_equal_the_store(api: Api, portal: Portal, fmt: str) -> None:
    store = portal.services.engine.store
    api.as_(portal.tokens["analyst"])
    start, end = "2024-03-01T12:00:00", "2024-03-02T00:00:00Z"
    want = store.get_bars(SYMBOL, start, end, "1m", VENUE)
    assert want.height == 720
    r = api.get("/bars", params={**PARAMS, "start": start, "end": end, "format": fmt})
    assert_frame_equal(frame(r, fmt), want)
    assert r.headers["X-HFThot-Rows"] == "720"
    if fmt in ("parquet", "csv"):
        assert r.headers["Content-Disposition"] == f'attachment; filename="TEST-USD_1m.{fmt}"'
    else:
        assert "Content-Disposition" not in r.headers


def test_bars_last_resampled_and_defaults(api: Api, portal: Portal) -> None:
    store = portal.services.engine.store
    api.as_(portal.tokens["viewer"])
    r = api.get("/bars", params={**PARAMS, "last": "100"})
    assert_frame_equal(frame(r, "arrow"), store.get_bars(SYMBOL, venue=VENUE, last=100))
    r = api.get("/bars", params={**PARAMS, "timeframe": "1h", "last": 30})
    got = frame(r, "arrow")
    assert_frame_equal(got, store.get_bars(SYMBOL, timeframe="1h", venue=VENUE, last=30))
    assert got["timeframe"].unique().to_list() == ["1h"]
    # no range: every bar; the bundled daily history too
    assert frame(api.get("/bars", params=PARAMS), "arrow").height == MINUTES
    daily = frame(api.get("/bars", params={"symbol": "SP500", "timeframe": "1d"}), "arrow")
    assert_frame_equal(daily, store.get_bars("SP500", timeframe="1d"))
    assert daily.height > 5000


def test_unknown_symbol_is_an_empty_table(api: Api, portal: Portal) -> None:
    r = api.as_(portal.tokens["analyst"]).get("/bars", params={"symbol": "NOPE/USD"})
    got = frame(r, "arrow")
    assert got.height == 0
    assert got.schema == BARS
    assert r.headers["X-HFThot-Rows"] == "0"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "symbol is required, e.g. symbol=BTC/USDT"),
        ({"symbol": "X", "timeframe": "2m"}, "unknown timeframe '2m'; use one of 1m, 5m, 15m"),
        ({"symbol": "X", "last": "ten"}, "last must be a whole number of bars, got 'ten'"),
        ({"symbol": "X", "last": "0"}, "last must be between 1 and 10,000,000"),
        ({"symbol": "X", "start": "yesterday"}, "start"),
        (
            {"symbol": "X", "start": "2024-03-02", "end": "2024-03-01"},
            "end must be after start",
        ),
        ({"symbol": "X", "format": "xml"}, "unknown format 'xml'; use one of arrow, parquet"),
        ({"symbol": "X", "limit": "5"}, "unknown parameter limit; use symbol, venue"),
        ({"symbol": ["X", "Y"]}, "give symbol only once"),
    ],
)
def test_bad_bars_parameters_are_400_with_clear_text(
    api: Api, portal: Portal, query: dict[str, object], message: str
) -> None:
    r = api.as_(portal.tokens["analyst"]).get("/bars", params=query)
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"] == "application/problem+json"
    assert message in r.json()["detail"]


def test_json_is_refused_above_ten_thousand_rows(api: Api, portal: Portal) -> None:
    api.as_(portal.tokens["analyst"])
    r = api.get("/bars", params={**PARAMS, "format": "json", "last": 10_001})
    assert r.status_code == 400
    assert r.json()["detail"] == (
        "the answer has 10,001 rows; format=json is for up to 10,000 rows: use format=arrow, "
        "parquet or csv, or ask for fewer rows"
    )
    r = api.get("/bars", params={**PARAMS, "format": "json", "last": 10_000})
    assert r.json()["row_count"] == 10_000


def test_series_is_the_coverage(api: Api, portal: Portal) -> None:
    api.as_(portal.tokens["viewer"])
    want = portal.services.engine.coverage()
    assert_frame_equal(frame(api.get("/series"), "arrow").sort(pl.all()), want.sort(pl.all()))
    got = pl.read_parquet(io.BytesIO(api.get("/series?format=parquet").content))
    assert_frame_equal(got.sort(pl.all()), want.sort(pl.all()))
    assert {"TEST/USD", "SP500"} <= set(got["symbol"])


def test_sql_equals_the_explorer_and_lands_in_the_history(api: Api, portal: Portal) -> None:
    engine = portal.services.engine
    user = portal.user_ids["ana"]
    query = (
        "SELECT symbol, count(*) AS n, max(close) AS top FROM bars "
        f"WHERE venue = '{VENUE}' GROUP BY symbol ORDER BY symbol"
    )
    want = engine.sql.execute(query, user=None).frame
    api.as_(portal.tokens["analyst"])
    r = api.post("/sql", json={"sql": query})
    assert_frame_equal(frame(r, "arrow"), want)
    assert r.headers["X-HFThot-Rows"] == "1"
    assert r.headers["X-HFThot-Truncated"] == "false"
    assert float(r.headers["X-HFThot-Elapsed-S"]) > 0
    assert engine.sql.history(user, limit=1)[0]["sql"] == query

    r = api.post("/sql?format=json", json={"sql": query, "max_rows": 10, "timeout_s": 5})
    body = r.json()
    conforms(body, "TableJson")
    assert body["rows"] == want.to_dicts()
    assert body["truncated"] is False
    r = api.post("/sql?format=csv", json={"sql": "SELECT * FROM bars LIMIT 50", "max_rows": 20})
    assert r.headers["X-HFThot-Truncated"] == "true"
    assert pl.read_csv(io.BytesIO(r.content)).height == 20
    assert r.headers["Content-Disposition"] == 'attachment; filename="query.csv"'


def test_sql_refusals_read_as_on_the_explorer(api: Api, portal: Portal) -> None:
    engine = portal.services.engine
    api.as_(portal.tokens["analyst"])
    r = api.post("/sql", json={"sql": "DROP TABLE bars"})
    with pytest.raises(Exception) as direct:  # noqa: PT011 (the explorer's own error)
        engine.sql.execute("DROP TABLE bars")
    assert r.status_code == 400
    assert r.json()["detail"] == str(direct.value)
    assert r.json()["reason"] == getattr(direct.value, "reason", None)
    history = engine.sql.history(portal.user_ids["ana"], limit=1)[0]
    assert history["sql"] == "DROP TABLE bars"
    assert not history["ok"]
    limit = portal.services.settings.sql_max_rows
    r = api.post("/sql", json={"sql": "SELECT 1", "max_rows": limit + 1})
    assert r.json()["detail"] == f"max_rows may be at most {limit:,} here"
    r = api.post("/sql", json={"sql": "SELECT 1", "database": "x"})
    assert r.json()["detail"] == "unknown field database; use sql, timeout_s, max_rows"


def test_regimes_equal_the_core_function(api: Api, portal: Portal) -> None:
    store = portal.services.engine.store
    api.as_(portal.tokens["analyst"])
    body = {"symbol": "SP500", "timeframe": "1d", "last": 1500, "k_max": 3, "n_init": 2}
    r = api.post("/analytics/regimes", json=body)
    assert r.status_code == 200, r.text
    got = r.json()
    conforms(got, "Regimes")
    bars = store.get_bars("SP500", timeframe="1d", last=1500)
    fit = fit_series(bars["ts"].to_numpy(), bars["close"].to_numpy(), k_max=3, n_init=2, seed=0)
    assert {k: got[k] for k in summary_json(fit.summary())} == summary_json(fit.summary())
    assert got["n_bars"] == 1500
    assert got["n_returns"] == 1499
    assert got["venue"] == "bundled"
    assert got["symbol"] == "SP500"
    assert got["start"] == bars["ts"][0].isoformat().replace("+00:00", "Z")
    assert got["selected_by"] == "bic"
    assert len(got["states"]) == got["n_states"] == len(got["transition_matrix"])
    assert 0 <= got["current_state"] < got["n_states"]
    assert 0 < got["current_probability"] <= 1

    fixed = api.post("/analytics/regimes", json={**body, "k": 2, "k_max": None}).json()
    assert fixed["n_states"] == 2
    assert fixed["selected_by"] == "fixed"
    assert "path" not in got

    # path=true adds the Viterbi state of every return, the engine's own decode
    walked = api.post("/analytics/regimes", json={**body, "path": True}).json()
    conforms(walked, "Regimes")
    expected = fit.model.viterbi(fit.returns)
    assert walked["path"]["state"] == expected.tolist()
    assert walked["path"]["ts"][0] == bars["ts"][1].isoformat().replace("+00:00", "Z")
    assert len(walked["path"]["ts"]) == 1499


def test_regimes_bad_input(api: Api, portal: Portal) -> None:
    api.as_(portal.tokens["analyst"])
    cases = [
        ({"symbol": "SP500", "k": 2, "k_max": 3}, "send k (a fixed number of states) or k_max"),
        ({"symbol": "SP500", "k": 9}, "k must be from 1 to 6, got 9"),
        ({"symbol": "SP500", "path": "yes"}, "path must be true or false"),
        ({"symbol": "SP500", "n_init": "5"}, "n_init must be a whole number from 1 to 20"),
        ({"symbol": "NOPE"}, "no 1m bars stored for NOPE in that range"),
        ({"symbol": "SP500", "timeframe": "1d", "last": 10, "k_max": 3}, "too few"),
        ({"symbol": "SP500", "colour": "red"}, "unknown field colour"),
        ([1, 2], "send a JSON object"),
    ]
    for body, message in cases:
        r = api.post("/analytics/regimes", json=body)
        assert r.status_code == 400, (body, r.text)
        assert message in r.json()["detail"], (body, r.json())
        conforms(r.json(), "Problem")
    # a viewer may read bars, not run analytics
    r = api.as_(portal.tokens["viewer"]).post("/analytics/regimes", json={"symbol": "SP500"})
    assert r.status_code == 403


def test_me_names_the_account_and_the_token(api: Api, portal: Portal) -> None:
    r = api.as_(portal.tokens["account"]).get("/me")
    assert r.status_code == 200, r.text
    me = r.json()
    conforms(me, "Me")
    assert me["username"] == "ana"
    assert me["role"] == "analyst"
    assert me["user_id"] == portal.user_ids["ana"]
    assert me["token"]["scopes"] == ["account:read"]
    assert me["token"]["name"] == "account"
    listed = portal.services.auth.list_access_tokens(portal.user_ids["ana"])
    token = next(t for t in listed if t.token_id == me["token"]["id"])
    assert me["token"]["expires_at"] == token.expires_at.isoformat().replace("+00:00", "Z")
    assert portal.tokens["account"] not in r.text
