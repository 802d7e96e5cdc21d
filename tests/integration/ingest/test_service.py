"""The ingestion service and the CLI end to end: demo venue -> ccxt.pro -> MarketStore."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from core.cli import main
from core.data.store import MarketStore
from core.ingest.demo_venue import DemoVenue
from core.ingest.service import IngestService, wait_for
from core.ingest.sim import PriceModel

MARKETS = {
    "BTC/USDT": PriceModel(s0=42_000.0, trades_per_s=10.0),
    "ETH/USDT": PriceModel(s0=2_300.0, trades_per_s=10.0),
    "SOL/USDT": PriceModel(s0=95.0, trades_per_s=5.0),
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MarketStore]:
    s = MarketStore(tmp_path / "market")
    yield s
    s.close()


def test_live_streams_land_in_the_store(store: MarketStore) -> None:
    service = IngestService(
        store,
        demo=True,
        flush_s=0.2,
        history_s=3600,
        demo_options={"markets": MARKETS, "history_minutes": 90, "tick_s": 0.05},
    ).start()
    try:
        assert service.is_simulated("demo")
        assert wait_for(lambda: service.writer_stats().trades_written > 20, 30)
        assert wait_for(lambda: service.writer_stats().bars_written >= 50, 30)
        bars = store.get_bars("BTC/USDT", venue="demo", timeframe="1m")
        assert bars.height >= 50
        assert (bars["ts"].diff().drop_nulls().dt.total_seconds() == 60).all()
        live = service.live_bars("demo", "BTC/USDT", "1m")
        assert live["ts"][-1] >= bars["ts"][-1]  # the forming candle is only in memory
        five = service.live_bars("demo", "BTC/USDT", "5m")
        assert five.height >= 10
        assert set(five["timeframe"]) == {"5m"}
        assert service.last_trade("demo", "ETH/USDT") is not None
        # add and remove a subscription at runtime
        key = service.subscribe("demo", "SOL/USDT", "trades")
        assert wait_for(lambda: any(s.key == key and s.messages > 0 for s in service.status()), 20)
        assert service.unsubscribe(key)
        assert key not in service.subscriptions()
        job = service.start_job("demo", ["SOL/USDT"], "1m", datetime.now(UTC) - timedelta(hours=1))
        assert wait_for(lambda: job.state != "running", 30)
        assert job.state == "done", job.error
        assert job.rows >= 55
        assert job.progress == 1.0
    finally:
        service.stop()
    assert all(s.state == "stopped" for s in service.status())
    trades = store.get_trades("ETH/USDT", venue="demo")
    assert trades.height > 0
    assert trades["trade_id"].n_unique() == trades.height


def test_cli_ingest_from_the_demo_venue(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    since = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    with DemoVenue(MARKETS, history_minutes=150) as venue:
        code = main(
            [
                "ingest",
                "--venue",
                "demo",
                "--url",
                venue.rest_url,
                "--symbols",
                "BTC/USDT,ETH/USDT",
                "--timeframe",
                "1m",
                "--since",
                since,
            ]
        )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "100.0%" in err
    assert "rows written" in out
    store = MarketStore(data_dir / "market")
    try:
        for symbol in ("BTC/USDT", "ETH/USDT"):
            bars = store.get_bars(symbol, venue="demo", timeframe="1m")
            assert 110 <= bars.height <= 122
    finally:
        store.close()


def test_cli_ingest_refuses_bad_input(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["ingest", "--venue", "demo", "--symbols", "BTC/USDT", "--since", "2024-01-01"]
    assert main(args) == 1
    assert "needs --url" in capsys.readouterr().err
    bad_date = ["ingest", "--venue", "binance", "--symbols", "BTC/USDT", "--since", "yesterday"]
    assert main(bad_date) == 1
    assert "not a date" in capsys.readouterr().err
    assert main([*bad_date[:-1], "2024-01-01", "--timeframe", "7m"]) == 1
    assert "unknown timeframe" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_demo_imports_history_and_streams(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--seconds", "4", "--report-s", "1"]) == 0
    out = capsys.readouterr().out
    assert "SIMULATED" in out
    assert "demo:BTC/USDT:ohlcv:1m" in out
    store = MarketStore(data_dir / "market")
    try:
        cov = store.coverage()
        assert {"bundled", "demo"} <= set(cov["venue"])
        assert isinstance(cov, pl.DataFrame)
    finally:
        store.close()


def test_a_failed_flush_keeps_the_rows_for_the_next_one(tmp_path: Path) -> None:
    root = tmp_path / "market"
    store = MarketStore(root)
    service = IngestService(store)  # not started: flush() is driven by hand
    blocker = root / "bars"
    blocker.write_text("a file where the store wants its bars folder")
    rows = [
        [1_704_067_200_000 + i * 60_000, 1.0 + i, 2.0 + i, 0.5 + i, 1.5 + i, 1.0] for i in range(5)
    ]
    from core.ingest.base import bars_frame
    from core.ingest.ccxt_ws import StreamKey

    key = StreamKey("demo", "BTC/USDT", "ohlcv", "1m")
    service._on_bars(key, bars_frame(rows, "demo", "BTC/USDT", "1m"), True)
    try:
        assert service.flush() == 0
        stats = service.writer_stats()
        assert stats.bars_buffered == 5
        assert stats.last_error
        blocker.unlink()
        assert service.flush() == 5
        assert service.writer_stats().bars_buffered == 0
        assert store.get_bars("BTC/USDT", venue="demo", timeframe="1m").height == 5
    finally:
        store.close()
