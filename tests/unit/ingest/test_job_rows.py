"""History jobs count rows the way the store sees them, and say so in words.

The demo venue (a real HTTP server on loopback) serves the history; the real ccxt client
fetches it and a real MarketStore stores it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.data.store import MarketStore
from core.ingest.ccxt_rest import source_for
from core.ingest.demo_venue import DemoVenue
from core.ingest.service import Job, job_line, run_job


@pytest.fixture
def venue() -> Iterator[DemoVenue]:
    with DemoVenue(history_minutes=90) as v:
        yield v


def job(since: datetime, until: datetime) -> Job:
    return Job(1, "demo", ["BTC/USDT"], "1m", since, until)


def test_job_rows_match_the_store_even_when_bars_were_already_stored(
    venue: DemoVenue, tmp_path: Path
) -> None:
    store = MarketStore(tmp_path / "market")
    until = datetime.now(UTC).replace(second=0, microsecond=0)
    since = until - timedelta(minutes=60)
    try:
        src = source_for("binance", venue.ccxt_urls(), name="demo")
        first = run_job(job(since, until), src, store)
        assert first.state == "done", first.error
        stored = store.get_bars("BTC/USDT", since, until, "1m", "demo").height
        assert stored == 60
        assert (first.rows, first.new_rows) == (stored, stored)
        assert first.message == "BTC/USDT: 60 rows written"

        # the same range again (as when the live stream stored the bars first): the job
        # still reports every bar it put in the store, and how many were there already
        again = run_job(job(since, until), src, store)
        assert again.state == "done", again.error
        assert store.get_bars("BTC/USDT", since, until, "1m", "demo").height == stored
        assert (again.rows, again.new_rows) == (stored, 0)
        assert again.message == "BTC/USDT: 60 rows written (60 already stored)"
    finally:
        store.close()


def test_job_line_counts_in_words() -> None:
    assert job_line("ETH/USDT", 1, 1) == "ETH/USDT: 1 row written"
    assert job_line("ETH/USDT", 1500, 1400, 1) == (
        "ETH/USDT: 1,500 rows written (100 already stored, 1 bad bar skipped)"
    )
