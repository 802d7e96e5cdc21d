"""The per-process meter of public venues: fixed windows, refusals before sending."""

from __future__ import annotations

import pytest

from core.ingest.meter import QuotaPause, WindowMeter, public_meter
from core.ingest.venues import venue


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_the_window_allows_its_limit_then_pauses_until_it_resets() -> None:
    clock = Clock(1_000_040.0)  # 20 s into a minute (1_000_020 is a whole minute)
    meter = WindowMeter(venue("binance"), clock)
    for _ in range(6000):
        meter.take()
    with pytest.raises(QuotaPause, match="6,000 requests per minute") as err:
        meter.take()
    assert err.value.retry_after_s == 40
    assert meter.used() == (6000, 40)
    clock.t += 40  # the next minute
    meter.take()
    assert meter.used() == (1, 60)
    assert meter.requests == 6001


def test_a_venue_asking_to_wait_blocks_the_whole_process() -> None:
    clock = Clock(500.0)
    meter = WindowMeter(venue("kraken"), clock)
    pause = meter.exhausted(12.0)
    assert pause.retry_after_s == 12
    with pytest.raises(QuotaPause, match="Kraken asked to wait"):
        meter.take()
    clock.t += 12
    meter.take()


def test_one_meter_per_public_venue() -> None:
    assert public_meter(venue("coinbase")) is public_meter(venue("coinbase"))
    assert public_meter(venue("coinbase")) is not public_meter(venue("kraken"))
    with pytest.raises(ValueError, match="no quota"):
        WindowMeter(venue("yahoo"))
