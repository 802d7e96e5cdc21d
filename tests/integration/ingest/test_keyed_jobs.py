"""History jobs with a user's own key: owner, request counts, quota pauses and cancel.

The provider is Alpha Vantage on a loopback server replaying its wire format; the ledger is
a real accounts backend whose plan for the test is a few requests per short window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.config import Settings
from core.data.store import MarketStore
from core.ingest.service import IngestService, wait_for
from lakehouse import LakehouseAuthBackend, Plan, User
from tests.integration.ingest.keyed import used
from tests.integration.ingest.recorded import DATA, RecordedServer, recorded, serving
from tests.lakehouse_support import PASSWORD, make_backend

KEY = "AVKEY0123456789XYZ"
JUNE, JULY = datetime(2026, 6, 29, tzinfo=UTC), datetime(2026, 7, 3, tzinfo=UTC)


def months() -> list:
    return [
        recorded("alpha_vantage/intraday_IBM_5min_2026-06.json"),
        recorded("alpha_vantage/intraday_IBM_5min_2026-07.json"),
    ]


def service_for(
    tmp_path: Path, srv: RecordedServer, plan: Plan
) -> tuple[IngestService, LakehouseAuthBackend, User]:
    backend = make_backend(tmp_path / "lakehouse", plans={"alpha_vantage": plan})
    user = backend.register("quant", "quant@example.org", PASSWORD)
    backend.save_api_keys(user.user_id, {"alpha_vantage": KEY}, True, password=PASSWORD)
    settings = Settings(data_dir=tmp_path, alpha_vantage_url=srv.base)
    store = MarketStore(tmp_path / "market")
    return IngestService(store, keys=backend, settings=settings), backend, user


@pytest.fixture
def server() -> Iterator[RecordedServer]:
    with serving({"/query": months()}) as srv:
        yield srv


def test_a_keyed_job_uses_the_owners_key_and_counts_its_requests(
    tmp_path: Path, server: RecordedServer
) -> None:
    service, backend, user = service_for(tmp_path, server, Plan(25, 86400))
    job = service.start_job("alpha_vantage", ["IBM"], "5m", JUNE, JULY, user_id=user.user_id)
    assert wait_for(lambda: job.state in ("done", "failed"), 20), job
    assert job.state == "done", job.error
    assert job.owner == user.user_id
    assert {r.query["apikey"] for r in server.requests} == {KEY}
    assert job.requests == len(server.requests) == used(backend, user, "alpha_vantage") == 2
    assert job.rows == 16
    stored = service.store.get_bars("IBM", JUNE, JULY, "5m", "alpha_vantage")  # type: ignore[union-attr]
    assert stored.height == 16
    assert KEY not in repr(job)


def test_at_the_limit_the_job_pauses_then_resumes_by_itself(
    tmp_path: Path, server: RecordedServer
) -> None:
    # one request per 3-second window: the second month waits for the next window
    service, _, user = service_for(tmp_path, server, Plan(1, 3))
    job = service.start_job("alpha_vantage", ["IBM"], "5m", JUNE, JULY, user_id=user.user_id)
    assert wait_for(lambda: job.state == "paused", 10), job
    assert job.resumes_at is not None
    assert "quota of 1 per 3 s is used up; resumes in" in job.message
    assert len(server.requests) == 1  # the second request was never sent
    assert wait_for(lambda: job.state in ("done", "failed"), 20), job
    assert job.state == "done", job.error
    assert job.requests == len(server.requests) == 2
    assert job.rows == 16


def test_a_paused_job_can_be_cancelled(tmp_path: Path, server: RecordedServer) -> None:
    service, backend, user = service_for(tmp_path, server, Plan(1, 3600))
    job = service.start_job("alpha_vantage", ["IBM"], "5m", JUNE, JULY, user_id=user.user_id)
    assert wait_for(lambda: job.state == "paused", 10), job
    other = backend.register("other", "other@example.org", PASSWORD)
    with pytest.raises(ValueError, match="only the user who started"):
        service.cancel_job(job.id, other.user_id)
    assert service.cancel_job(job.id, user.user_id)
    assert wait_for(lambda: job.state == "failed", 5), job
    assert job.error == "cancelled by the user while paused"
    assert job.requests == used(backend, user, "alpha_vantage") == 1


def test_a_keyed_provider_without_a_key_says_where_to_add_one(
    tmp_path: Path, server: RecordedServer
) -> None:
    service, backend, _ = service_for(tmp_path, server, Plan(25, 86400))
    stranger = backend.register("nokey", "nokey@example.org", PASSWORD)
    with pytest.raises(ValueError, match=r"Alpha Vantage needs your API key.*API keys page"):
        service.start_job("alpha_vantage", ["IBM"], "1d", JUNE, user_id=stranger.user_id)
    with pytest.raises(ValueError, match="Alpha Vantage needs your API key"):
        service.start_job("alpha_vantage", ["IBM"], "1d", JUNE)
    with pytest.raises(ValueError, match="Finnhub needs your API key"):
        service.start_job("finnhub", ["AAPL"], "1d", JUNE, user_id=stranger.user_id)
    assert server.requests == []


def test_the_cli_ingests_with_a_users_key(
    tmp_path: Path,
    server: RecordedServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from core.cli import main
    from core.services import build_auth

    monkeypatch.setenv("HFT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("HFT_ALPHA_VANTAGE_URL", server.base)
    settings = Settings.from_env()
    backend = make_backend(settings.lakehouse_dir, secrets_dir=settings.secrets_dir)
    user = backend.register("quant", "quant@example.org", PASSWORD)
    backend.save_api_keys(user.user_id, {"alpha_vantage": KEY}, True, password=PASSWORD)
    backend.flush()
    argv = ["ingest", "--venue", "alpha_vantage", "--symbols", "IBM", "--timeframe", "5m"]
    argv += ["--since", "2026-06-29", "--until", "2026-07-03"]
    assert main(argv) == 1  # a keyed provider needs --user
    assert "add --user NAME" in capsys.readouterr().err
    assert main([*argv, "--user", "nobody"]) == 1
    assert "no user named 'nobody'" in capsys.readouterr().err
    assert main([*argv, "--user", "quant"]) == 0
    out = capsys.readouterr().out
    assert "16 rows written for IBM (alpha_vantage, 5m); 2 requests sent" in out
    assert {r.query["apikey"] for r in server.requests} == {KEY}
    keys = build_auth(settings).get_api_keys(user.user_id)["provider_keys"]
    assert keys["alpha_vantage"]["queries_done"] == 2


def test_an_alpaca_job_sends_the_owners_key_pair(tmp_path: Path) -> None:
    """Alpaca's key is stored as KEY_ID:SECRET (the API keys page saves both fields so)."""
    pages = [recorded(f"alpaca/stock_bars_AAPL_1Day_page{i}.json") for i in (1, 2, 3)]
    with serving({"/v2/stocks/bars": pages}) as srv:
        backend = make_backend(tmp_path / "lakehouse")
        user = backend.register("quant", "quant@example.org", PASSWORD)
        pair = "PKTESTKEYID0001:s3cretS3cretS3cret"
        backend.save_api_keys(user.user_id, {"alpaca": pair}, True, password=PASSWORD)
        settings = Settings(data_dir=tmp_path, alpaca_data_url=srv.base)
        service = IngestService(MarketStore(tmp_path / "market"), keys=backend, settings=settings)
        since, until = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 14, tzinfo=UTC)
        job = service.start_job("alpaca", ["AAPL"], "1d", since, until, user_id=user.user_id)
        assert wait_for(lambda: job.state in ("done", "failed"), 20), job
        assert job.state == "done", job.error
        heads = [
            (r.headers["apca-api-key-id"], r.headers["apca-api-secret-key"]) for r in srv.requests
        ]
        assert heads == [("PKTESTKEYID0001", "s3cretS3cretS3cret")] * 3
        assert job.requests == 3 == used(backend, user, "alpaca")
        assert job.rows == 10


def test_a_polymarket_job_is_public_and_metered_per_server(tmp_path: Path) -> None:
    """No key and no user: probability bars into the store, counted on the venue's meter."""
    from core.ingest.meter import public_meter
    from core.ingest.venues import venue

    market = json.loads((DATA / "polymarket" / "market_by_slug.json").read_text())[0]
    yes = json.loads(market["clobTokenIds"])[0]
    day = datetime(2026, 12, 4, tzinfo=UTC)
    with serving({"/prices-history": [recorded("polymarket/prices_history_10min.json")]}) as srv:
        settings = Settings(data_dir=tmp_path, polymarket_clob_url=srv.base)
        service = IngestService(MarketStore(tmp_path / "market"), settings=settings)
        before = public_meter(venue("polymarket")).requests
        job = service.start_job("polymarket", [yes], "1h", day, day + timedelta(days=1))
        assert wait_for(lambda: job.state in ("done", "failed"), 20), job
        assert job.state == "done", job.error
        assert job.requests == len(srv.requests) == 1
        assert public_meter(venue("polymarket")).requests - before == 1
        assert job.rows == 24
