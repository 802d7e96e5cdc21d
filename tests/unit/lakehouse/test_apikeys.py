"""API keys at rest, re-authentication, quotas with alerts, consent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from lakehouse import (
    DEFAULT_PLANS,
    InvalidCredentials,
    InvalidInput,
    LakehouseAuthBackend,
    NotFound,
    Plan,
    QuotaExceeded,
    StorageError,
    User,
)
from tests.lakehouse_support import PASSWORD, FakeClock, all_bytes, make_backend

KEY = "sk_live_9f8e7d6c5b4a3210ZYXW"
KEY2 = "AKIAQWERTYUIOPASDFGH"


def _audit(backend: LakehouseAuthBackend, action: str) -> pl.DataFrame:
    return backend.store.audit_table.read().filter(pl.col("action") == action)


def test_save_and_get_show_only_the_hint(backend: LakehouseAuthBackend, alice: User) -> None:
    backend.save_api_keys(
        alice.user_id, {"finnhub": KEY, "Alpha Vantage": KEY2}, True, password=PASSWORD
    )
    got = backend.get_api_keys(alice.user_id)
    assert got["consent"] is True
    assert set(got["provider_keys"]) == {"finnhub", "alpha_vantage"}
    fin = got["provider_keys"]["finnhub"]
    resets = fin.pop("resets_at")
    assert fin == {
        "queries_done": 0,
        "queries_remaining": 60,
        "limit": 60,
        "window": "minute",
        "key_hint": "…ZYXW",
    }
    # the end of the current UTC minute (the backend's clock)
    now = backend.store.clock()
    assert resets.timestamp() == now - now % 60 + 60
    assert got["provider_keys"]["alpha_vantage"]["window"] == "day"
    assert KEY not in repr(got)
    assert KEY[:-4] not in repr(got)
    assert _audit(backend, "api_key_change").height == 2


def test_secrets_at_rest_no_plaintext_key_anywhere(
    backend: LakehouseAuthBackend, alice: User, client: Any
) -> None:
    backend.save_api_keys(alice.user_id, {"finnhub": KEY, "binance": KEY2}, True, password=PASSWORD)
    backend.update_query_count(alice.user_id, "finnhub")
    client.maintain()
    data_dir = backend.root.parent
    for path, raw in all_bytes(data_dir):
        for secret in (KEY, KEY2, KEY[:12], KEY2[:12]):
            assert secret.encode() not in raw, path
    assert backend.reveal_api_key(alice.user_id, "finnhub", password=PASSWORD) == KEY


def test_adding_or_changing_needs_the_password(backend: LakehouseAuthBackend, alice: User) -> None:
    before = backend.store.api_keys.latest_version()
    for bad in ("wrong password!", "", None):
        with pytest.raises(InvalidCredentials):
            backend.save_api_keys(alice.user_id, {"finnhub": KEY}, True, password=bad)  # type: ignore[arg-type]
    assert backend.store.api_keys.latest_version() == before
    assert backend.get_api_keys(alice.user_id)["provider_keys"] == {}
    assert _audit(backend, "api_key_change")["outcome"].to_list() == ["failure"] * 3


def test_reveal_needs_password_and_is_audited(backend: LakehouseAuthBackend, alice: User) -> None:
    backend.save_api_keys(alice.user_id, {"kraken": KEY}, True, password=PASSWORD)
    with pytest.raises(InvalidCredentials):
        backend.reveal_api_key(alice.user_id, "kraken", password="nope nope nope")
    assert backend.reveal_api_key(alice.user_id, "kraken", password=PASSWORD) == KEY
    outcomes = sorted(_audit(backend, "api_key_reveal")["outcome"].to_list())
    assert outcomes == ["failure", "success"]
    with pytest.raises(NotFound):
        backend.reveal_api_key(alice.user_id, "coinbase", password=PASSWORD)


def test_replace_and_delete(backend: LakehouseAuthBackend, alice: User) -> None:
    backend.save_api_keys(alice.user_id, {"alpaca": KEY}, True, password=PASSWORD)
    backend.save_api_keys(alice.user_id, {"alpaca": KEY2}, True, password=PASSWORD)
    assert backend.store.api_keys.read().height == 1
    assert backend.reveal_api_key(alice.user_id, "alpaca", password=PASSWORD) == KEY2
    ops = [d for d in _audit(backend, "api_key_change")["detail"].to_list()]
    assert any('"op": "add"' in d for d in ops)
    assert any('"op": "replace"' in d for d in ops)
    backend.delete_api_key(alice.user_id, "alpaca")
    assert backend.get_api_keys(alice.user_id)["provider_keys"] == {}
    assert _audit(backend, "api_key_delete").height == 1
    with pytest.raises(NotFound):
        backend.delete_api_key(alice.user_id, "alpaca")


def test_ciphertext_is_bound_to_user_and_provider(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    bob = backend.register("bob", "bob@example.org", PASSWORD)
    backend.save_api_keys(alice.user_id, {"finnhub": KEY}, True, password=PASSWORD)
    row = backend.store.api_keys.read().row(0, named=True)
    moved = dict(row, user_id=bob.user_id)  # copy alice's ciphertext to bob's row
    backend.store.api_keys.upsert([moved])
    with pytest.raises(StorageError, match="integrity"):
        backend.reveal_api_key(bob.user_id, "finnhub", password=PASSWORD)
    moved = dict(row, provider="binance")
    backend.store.api_keys.upsert([moved])
    with pytest.raises(StorageError, match="integrity"):
        backend.reveal_api_key(alice.user_id, "binance", password=PASSWORD)


def test_master_key_rotation_keeps_old_keys_readable(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    backend.save_api_keys(alice.user_id, {"finnhub": KEY}, True, password=PASSWORD)
    backend.store.master_ring.rotate()
    backend.save_api_keys(alice.user_id, {"kraken": KEY2}, True, password=PASSWORD)
    kids = set(backend.store.api_keys.read()["kid"].to_list())
    assert len(kids) == 2
    assert backend.reveal_api_key(alice.user_id, "finnhub", password=PASSWORD) == KEY
    assert backend.reveal_api_key(alice.user_id, "kraken", password=PASSWORD) == KEY2


@pytest.mark.parametrize(
    ("keys", "consent", "match"),
    [
        ("finnhub=abc", True, "must be a dict"),
        ({"nasdaq": KEY}, True, "unknown provider"),
        ({"finnhub": "short"}, True, "8 to 512"),
        ({"finnhub": "x" * 513}, True, "8 to 512"),
        ({"finnhub": "has space inside"}, True, "spaces"),
        ({"finnhub": 12345678}, True, "must be a string"),
        ({"finnhub": KEY}, "yes", "True or False"),
        ({"finnhub": KEY}, False, "consent"),
        ({f"p{i}": KEY for i in range(40)}, True, "at most"),
    ],
)
def test_bad_key_input_changes_nothing(
    backend: LakehouseAuthBackend, alice: User, keys: Any, consent: Any, match: str
) -> None:
    before = {n: t.latest_version() for n, t in backend.store.tables.items()}
    with pytest.raises(InvalidInput, match=match):
        backend.save_api_keys(alice.user_id, keys, consent, password=PASSWORD)
    assert {n: t.latest_version() for n, t in backend.store.tables.items()} == before


def test_withdrawing_consent_deletes_keys(backend: LakehouseAuthBackend, alice: User) -> None:
    backend.save_api_keys(alice.user_id, {"finnhub": KEY}, True, password=PASSWORD)
    backend.save_api_keys(alice.user_id, {}, False, password=PASSWORD)
    got = backend.get_api_keys(alice.user_id)
    assert got == {"provider_keys": {}, "consent": False}
    hist = backend.store.consents.read().filter(pl.col("purpose") == "api_key_storage").sort("ts")
    assert hist["granted"].to_list() == [True, False]
    assert hist["ts"].dtype == pl.Datetime("us", "UTC")


def test_data_sharing_consent_on_off_with_time(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    assert backend.get_consents(alice.user_id)["data_sharing"] == {"granted": False, "at": None}
    backend.set_consent(alice.user_id, "data_sharing", True)
    on = backend.get_consents(alice.user_id)["data_sharing"]
    assert on["granted"] is True
    assert on["at"].timestamp() == pytest.approx(clock.t, abs=1e-3)
    clock.advance(60)
    backend.set_consent(alice.user_id, "data_sharing", False)  # as easy as giving it
    off = backend.get_consents(alice.user_id)["data_sharing"]
    assert off["granted"] is False
    assert off["at"] > on["at"]
    with pytest.raises(InvalidInput):
        backend.set_consent(alice.user_id, "marketing", True)
    with pytest.raises(InvalidInput):
        backend.set_consent(alice.user_id, "data_sharing", 1)  # type: ignore[arg-type]


def test_quota_counts_down_and_raises_at_limit(
    backend: LakehouseAuthBackend, alice: User, clock: FakeClock
) -> None:
    clock.t = clock.t - (clock.t % 86400) + 10  # start of a UTC day
    uid = alice.user_id
    left = [backend.update_query_count(uid, "alpha_vantage") for _ in range(25)]
    assert left == list(range(24, -1, -1))
    with pytest.raises(QuotaExceeded) as exc:
        backend.update_query_count(uid, "alpha_vantage")
    assert exc.value.limit == 25
    assert exc.value.window == "day"
    assert 0 < exc.value.retry_after_s <= 86400
    assert backend.store.api_usage.read()["count"].sum() == 25  # refused call not counted
    clock.advance(86400)
    assert backend.update_query_count(uid, "alpha_vantage") == 24


def test_quota_increment_and_bad_input(backend: LakehouseAuthBackend, alice: User) -> None:
    uid = alice.user_id
    assert backend.update_query_count(uid, "finnhub", increment=10) == 50
    for bad in (0, -1, 1.5, True, "1"):
        with pytest.raises(InvalidInput):
            backend.update_query_count(uid, "finnhub", increment=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        backend.update_query_count(uid, "myspace")
    with pytest.raises(QuotaExceeded):
        backend.update_query_count(uid, "finnhub", increment=51)
    with pytest.raises(NotFound):
        backend.update_query_count("0" * 32, "finnhub")


def test_quota_alerts_fire_at_80_and_95_percent(
    backend: LakehouseAuthBackend, alice: User, root: Path, clock: FakeClock
) -> None:
    fired: list[tuple[str, float]] = []
    b = make_backend(
        root,
        clock=clock,
        plans={"finnhub": Plan(100, 3600)},
        on_quota_alert=lambda u, p, lv: fired.append((p, lv)),
    )
    clock.t = clock.t - (clock.t % 3600) + 1
    b.update_query_count(alice.user_id, "finnhub", 79)
    assert b.quota_alerts(alice.user_id) == []
    assert fired == []
    b.update_query_count(alice.user_id, "finnhub")
    assert fired == [("finnhub", 0.8)]
    b.update_query_count(alice.user_id, "finnhub", 14)
    assert fired == [("finnhub", 0.8)]
    b.update_query_count(alice.user_id, "finnhub")
    assert fired == [("finnhub", 0.8), ("finnhub", 0.95)]
    levels = [a["level"] for a in b.quota_alerts(alice.user_id)]
    assert levels == [0.95, 0.8]
    assert "95%" in b.quota_alerts(alice.user_id)[0]["message"]
    assert _audit(b, "quota_alert").height == 2
    clock.advance(3600)  # new window: alerts are for the current window only
    assert b.quota_alerts(alice.user_id) == []


def test_counts_survive_a_restart(backend: LakehouseAuthBackend, alice: User, root: Path) -> None:
    for _ in range(5):
        backend.update_query_count(alice.user_id, "binance", 100)
    fresh = make_backend(root)
    assert fresh.update_query_count(alice.user_id, "binance") == 6000 - 501


def test_default_plans(tmp_path: Path) -> None:
    assert DEFAULT_PLANS["finnhub"] == Plan(60, 60)
    assert DEFAULT_PLANS["alpha_vantage"] == Plan(25, 86400)
    assert DEFAULT_PLANS["alpaca"] == Plan(200, 60)
    for name in ("binance", "coinbase", "kraken", "polymarket"):
        assert name in DEFAULT_PLANS
    with pytest.raises(InvalidInput):
        Plan(0, 60)
    with pytest.raises(InvalidInput):
        make_backend(tmp_path / "lh", plans={"x": 5})  # type: ignore[dict-item]


def test_quota_status_is_the_keys_row_without_reading_the_key_table(
    backend: LakehouseAuthBackend, alice: User
) -> None:
    backend.save_api_keys(alice.user_id, {"finnhub": KEY}, True, password=PASSWORD)
    backend.update_query_count(alice.user_id, "finnhub", 7)
    row = backend.get_api_keys(alice.user_id)["provider_keys"]["finnhub"]
    row.pop("key_hint")
    assert backend.quota_status(alice.user_id, "finnhub") == row
    assert row["queries_done"] == 7
    reads = backend.store.api_keys.read
    backend.store.api_keys.read = None  # type: ignore[method-assign]  # any read would fail
    try:
        assert backend.quota_status(alice.user_id, "finnhub")["queries_remaining"] == 53
    finally:
        backend.store.api_keys.read = reads  # type: ignore[method-assign]
    with pytest.raises(InvalidInput):
        backend.quota_status(alice.user_id, "nosuch")
