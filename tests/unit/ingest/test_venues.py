"""The venue registry: one consistent record per venue, read by every consumer."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.config import Settings
from core.data.schema import TIMEFRAMES
from core.errors import InvalidInput
from core.ingest import ccxt_rest
from core.ingest.venues import KINDS, VENUES, ccxt_venues, history_venues, keyed, venue
from lakehouse import DEFAULT_PLANS, PROVIDER_NAMES


def test_every_record_is_consistent() -> None:
    for name, v in VENUES.items():
        assert v.name == name
        assert name == name.lower()
        assert v.kind in KINDS, name
        assert set(v.timeframes) <= set(TIMEFRAMES), name
        assert set(v.url_settings) <= set(v.urls), name
        assert not v.key_required or v.key_fields, name
        assert set(v.key_fields) <= {"key", "secret", "passphrase"}, name
        assert (v.paging is not None) == bool(v.ccxt_id and v.history), name
        assert set(v.live) <= {"ohlcv", "trades", "quotes", "book"}, name
        for purpose, url in v.urls.items():
            assert url.startswith(("https://", "wss://")), (name, purpose)


def test_url_settings_override_the_real_hosts() -> None:
    for v in VENUES.values():
        for purpose, setting in v.url_settings.items():
            assert v.url(purpose) == v.urls[purpose]
            assert v.url(purpose, Settings()) == v.urls[purpose]  # empty setting: real host
            local = dataclasses.replace(Settings(), **{setting: "http://127.0.0.1:9/x/"})
            assert v.url(purpose, local) == "http://127.0.0.1:9/x"
    with pytest.raises(InvalidInput, match="no 'ws' URL"):
        venue("alpha_vantage").url("ws")


def test_env_names_are_the_issues() -> None:
    env = {
        "HFT_ALPACA_DATA_URL": ("alpaca", "data"),
        "HFT_ALPACA_STREAM_URL": ("alpaca", "stream"),
        "HFT_FINNHUB_URL": ("finnhub", "rest"),
        "HFT_FINNHUB_WS_URL": ("finnhub", "ws"),
        "HFT_ALPHA_VANTAGE_URL": ("alpha_vantage", "rest"),
        "HFT_POLYMARKET_GAMMA_URL": ("polymarket", "gamma"),
        "HFT_POLYMARKET_CLOB_URL": ("polymarket", "clob"),
        "HFT_POLYMARKET_WS_URL": ("polymarket", "ws"),
    }
    settings = Settings.from_env({k: f"http://127.0.0.1:1/{k}" for k in env})
    for var, (name, purpose) in env.items():
        assert venue(name).url(purpose, settings) == f"http://127.0.0.1:1/{var}"


def test_unknown_venue_names_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match=r"unknown venue 'nyse'.*binance"):
        venue("nyse")


def test_consumers_read_the_registry() -> None:
    history = {n: v.paging for n, v in ccxt_venues().items() if v.history}
    assert history == ccxt_rest.VENUES
    assert set(ccxt_rest.VENUES) == {"binance", "coinbase", "kraken"}
    assert set(ccxt_venues()) == {"binance", "coinbase", "kraken", "okx"}
    assert history_venues()[0].simulated  # offline default first
    assert {v.name for v in keyed()} >= {"alpaca", "finnhub", "alpha_vantage"}


def test_lakehouse_quota_defaults_match_the_registry() -> None:
    # The lakehouse never imports the engine, so it keeps its own defaults: they must agree.
    for name, plan in DEFAULT_PLANS.items():
        quota = VENUES[name].quota
        assert quota is not None, name
        assert (plan.limit, plan.window_s) == (quota.limit, quota.window_s), name
        assert PROVIDER_NAMES[name] == VENUES[name].title
    assert set(DEFAULT_PLANS) == {n for n, v in VENUES.items() if v.quota}


def test_quota_in_words() -> None:
    assert venue("alpha_vantage").quota is not None
    assert venue("alpha_vantage").quota.describe() == "25 requests per day (your key)"
    assert venue("kraken").quota is not None
    assert venue("kraken").quota.describe() == "1 request per second (this server's IP)"


def test_the_app_backend_takes_its_plans_from_the_registry(tmp_path: Path) -> None:
    from core.services import build_auth, registry_plans

    plans = registry_plans()
    assert plans["alpha_vantage"].limit == 25
    assert plans["alpha_vantage"].window_s == 86400
    backend = build_auth(dataclasses.replace(Settings(), data_dir=tmp_path))
    assert backend.keys.plans == plans


def test_book_streams_and_the_okx_record() -> None:
    # the demo venue speaks Binance's protocol, so the Binance client is the one tested
    for name in ("demo", "binance", "kraken", "okx"):
        assert "book" in venue(name).live, name
    okx = venue("okx")
    assert (okx.title, okx.kind, okx.ccxt_id) == ("OKX", "exchange", "okx")
    assert okx.urls == {"rest": "https://www.okx.com", "ws": "wss://ws.okx.com:8443"}
    assert okx.key_fields == ("key", "secret", "passphrase")
    assert okx.quota is not None
    assert okx.quota.describe() == "20 requests per 2 s (this server's IP)"
    assert not okx.history
    assert okx.paging is None
    assert okx not in history_venues()
