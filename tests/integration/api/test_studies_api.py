"""The studies routes over a real server: list, one study, artefacts (Arrow, Parquet, JSON),
visibility (404 for others' private studies), the studies:read scope, and core.client."""

from __future__ import annotations

import io
import secrets
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pytest

from core.analytics.runs import SeriesInput
from core.client import BadRequest, Client, Forbidden
from core.data.catalog import SeriesRef, load_series
from core.research.studies import Study
from lakehouse import User
from tests.integration.api.conftest import Api, ApiServer, conforms
from tests.integration.flight.portal import PASSWORD, SYMBOL, VENUE, Portal
from tests.integration.research.sma_kind import KIND, run_sma

REF = SeriesRef(VENUE, SYMBOL, "1m")


@dataclass
class Member:
    user: User
    token: str


def member(portal: Portal, role: str, scopes: list[str]) -> Member:
    auth = portal.services.auth
    name = f"st-{role}-{secrets.token_hex(3)}"
    user = auth.register(name, f"{name}@example.test", PASSWORD)
    if role != "viewer":
        user = auth.set_role_as_operator(name, role)
    token = auth.create_access_token(user.user_id, "studies", scopes, 30, password=PASSWORD)
    return Member(user, token)


def save(portal: Portal, user: User, n: int, title: str) -> Study:
    bars = load_series(REF, portal.services.engine.store, last=500)
    return portal.services.studies.save(user, run_sma(bars, n), [SeriesInput.of(REF, bars)], title)


def arrow(body: bytes) -> pl.DataFrame:
    frame = pl.from_arrow(pa.ipc.open_stream(body).read_all())
    assert isinstance(frame, pl.DataFrame)
    return frame


@pytest.fixture
def pair(portal: Portal) -> tuple[Member, Member]:
    return member(portal, "analyst", ["studies:read"]), member(portal, "analyst", ["studies:read"])


def test_list_and_get_show_mine_and_the_teams_shared(
    api: Api, portal: Portal, pair: tuple[Member, Member]
) -> None:
    alice, bob = pair
    mine = save(portal, alice.user, 10, "alice's")
    hidden = save(portal, bob.user, 20, "bob private")
    shared = save(portal, bob.user, 30, "bob shared")
    portal.services.studies.share(bob.user, shared.study_id, True)

    r = api.as_(alice.token).get("/studies")
    assert r.status_code == 200, r.text
    body = r.json()
    conforms(body, "StudyList")
    ids = [s["study_id"] for s in body["studies"]]
    assert mine.study_id in ids
    assert shared.study_id in ids
    assert hidden.study_id not in ids
    me = api.get("/studies", params={"owner": "me"}).json()["studies"]
    assert [s["study_id"] for s in me] == [mine.study_id]
    assert me[0]["mine"] is True
    team = api.get("/studies", params={"owner": "team", "kind": KIND}).json()["studies"]
    assert shared.study_id in [s["study_id"] for s in team]
    assert hidden.study_id not in [s["study_id"] for s in team]
    assert api.get("/studies", params={"kind": "no_such"}).json() == {"studies": []}

    one = api.get(f"/studies/{mine.study_id}").json()
    conforms(one, "Study")
    assert one["title"] == "alice's"
    assert one["params"] == {"n": 10}
    assert one["metrics"]["first_sma"] is None  # NaN as null
    assert one["metrics"]["last_sma"] == mine.metrics["last_sma"]
    assert one["inputs"][0]["sha256"] == mine.inputs[0].sha256
    assert one["artefacts"] == ["sma", "summary"]

    r = api.get(f"/studies/{hidden.study_id}")
    assert r.status_code == 404
    assert "bob private" not in r.text
    conforms(r.json(), "Problem")
    assert api.get(f"/studies/{hidden.study_id}/frames/sma").status_code == 404


def test_frames_come_as_saved_in_every_format(
    api: Api, portal: Portal, pair: tuple[Member, Member]
) -> None:
    alice, _ = pair
    study = save(portal, alice.user, 12, "frames")
    saved = portal.services.studies.frame(alice.user, study.study_id, "sma")
    r = api.as_(alice.token).get(f"/studies/{study.study_id}/frames/sma")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.apache.arrow.stream")
    assert r.headers["x-hfthot-rows"] == "500"
    assert arrow(r.content).equals(saved, null_equal=True)
    r = api.get(f"/studies/{study.study_id}/frames/sma", params={"format": "parquet"})
    assert "attachment" in r.headers["content-disposition"]
    assert pl.read_parquet(io.BytesIO(r.content)).equals(saved, null_equal=True)
    body = api.get(f"/studies/{study.study_id}/frames/summary", params={"format": "json"}).json()
    conforms(body, "TableJson")
    assert body["rows"] == [{"n": 12, "rows": 500}]
    r = api.get(f"/studies/{study.study_id}/frames/nope")
    assert r.status_code == 404
    assert api.get("/studies", params={"owner": "all"}).status_code == 400
    assert api.get("/studies", params={"color": "red"}).status_code == 400


def test_the_scope_and_the_role_are_required(api: Api, portal: Portal) -> None:
    other = member(portal, "analyst", ["market:read"])
    r = api.as_(other.token).get("/studies")
    assert r.status_code == 403
    viewer = member(portal, "viewer", ["studies:read"])
    assert api.as_(viewer.token).get("/studies").status_code == 403
    assert api.as_(None).get("/studies").status_code == 401


def test_the_python_client_reads_studies(
    server: ApiServer, portal: Portal, pair: tuple[Member, Member]
) -> None:
    alice, bob = pair
    study = save(portal, alice.user, 15, "client")
    with Client(server.root, alice.token, flight=False) as c:
        assert [s["study_id"] for s in c.studies(KIND, owner="me")] == [study.study_id]
        assert c.study(study.study_id)["title"] == "client"
        frame = c.study_frame(study.study_id, "sma")
        assert frame.equals(
            portal.services.studies.frame(alice.user, study.study_id, "sma"), null_equal=True
        )
    with Client(server.root, bob.token, flight=False) as c:
        with pytest.raises(BadRequest) as exc:
            c.study(study.study_id)
        assert exc.value.status == 404
        assert c.studies(owner="me") == []
    viewer = member(portal, "viewer", ["studies:read"])
    with Client(server.root, viewer.token, flight=False) as c, pytest.raises(Forbidden):
        c.studies()
