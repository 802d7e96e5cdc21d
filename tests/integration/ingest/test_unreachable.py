"""A venue that cannot be reached fails at once with a message a user understands.

No network exists in CI: a host name that does not resolve and a closed loopback port
are both real failures of the real ccxt client, with no retries and no 8 s of backoff.
"""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ccxt
import pytest

from core.data.store import MarketStore
from core.ingest.base import SourceUnavailable
from core.ingest.ccxt_rest import CcxtRestSource, make_exchange
from core.ingest.ccxt_ws import VenueConfig
from core.ingest.service import IngestService, wait_for
from tests.integration.ingest.recorded import loopback_urls

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


@pytest.mark.parametrize(
    "base",
    ["http://no-such-host.invalid", f"http://127.0.0.1:{closed_port()}"],
    ids=["host-does-not-resolve", "closed-port"],
)
def test_unreachable_venue_fails_fast_with_a_plain_message(base: str) -> None:
    ex = make_exchange("binance", loopback_urls(ccxt.binance(), base))
    src = CcxtRestSource("binance", ex)  # the default retry policy: 5 attempts with backoff
    began = time.monotonic()
    with pytest.raises(SourceUnavailable) as err:
        src.fetch_bars("BTC/USDT", "1m", T0, T0 + timedelta(minutes=10))
    elapsed = time.monotonic() - began
    assert str(err.value) == "Binance is not reachable from this server (no network?)"
    assert "NetworkError" in err.value.detail  # the technical cause, folded away on screen
    assert src.retries == 0
    assert elapsed < 3.0, elapsed  # the backoff alone would take 7.5 s


def test_job_against_an_unreachable_venue_fails_fast(tmp_path: Path) -> None:
    """A history job on a venue whose host does not resolve fails within seconds, with the
    plain message for the page and the technical detail kept apart."""
    store = MarketStore(tmp_path / "market")
    service = IngestService(store)
    urls = loopback_urls(ccxt.binance(), "http://api.binance.invalid")
    service.manager.add_venue(VenueConfig("binance", "binance", urls))
    try:
        began = time.monotonic()
        job = service.start_job("binance", ["BTC/USDT"], "1m", T0, T0 + timedelta(minutes=10))
        assert wait_for(lambda: job.state != "running", 20)
        elapsed = time.monotonic() - began
    finally:
        store.close()
    assert job.state == "failed"
    assert job.error == "Binance is not reachable from this server (no network?)"
    assert "api.binance.invalid" in job.detail
    assert elapsed < 3.0, elapsed
