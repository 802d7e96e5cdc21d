"""The demo venue's price model and trade tape."""

from __future__ import annotations

import math

import numpy as np

from core.ingest.sim import INTERVALS_MS, PriceModel, SimMarket, warm_up

T0 = 1_704_067_200_000


def tape(seed: int) -> list[tuple[int, int, float, float, bool]]:
    m = SimMarket("BTC/USDT", PriceModel(s0=42_000.0, trades_per_s=5.0), seed, T0)
    warm_up(m, 30 * 60_000, T0 + 30 * 60_000)
    return [(t.id, t.ts, t.price, t.qty, t.buyer_maker) for t in m.tape]


def test_same_seed_same_tape_other_seed_other_tape() -> None:
    a, b, c = tape(1), tape(1), tape(2)
    assert a == b
    assert a != c


def test_tape_is_ordered_with_consecutive_ids_and_tick_prices() -> None:
    trades = tape(3)
    ids = [t[0] for t in trades]
    assert ids == list(range(1, len(ids) + 1))
    ts = [t[1] for t in trades]
    assert ts == sorted(ts)
    # Poisson arrivals at 5/s over 30 minutes: 9000 expected, sd about 95
    assert 8_500 < len(trades) < 9_500
    assert all(abs(p * 100 - round(p * 100)) < 1e-6 for _, _, p, _, _ in trades)
    assert all(q > 0 for _, _, _, q, _ in trades)


def test_log_returns_match_the_model_volatility() -> None:
    model = PriceModel(s0=100.0, sigma=0.8, jump_rate=0.0, tick=1e-6, trades_per_s=2.0)
    m = SimMarket("X/USDT", model, 5, T0)
    warm_up(m, 12 * 3_600_000, T0 + 12 * 3_600_000)
    prices = np.array([t.price for t in m.tape])
    minute = np.array([t.ts // 60_000 for t in m.tape])
    last = prices[np.r_[minute[1:] != minute[:-1], True]]
    rets = np.diff(np.log(last))
    annual = rets.std() * math.sqrt(365.25 * 24 * 60)
    assert 0.7 < annual < 0.9


def test_klines_aggregate_the_tape() -> None:
    m = SimMarket("BTC/USDT", PriceModel(s0=42_000.0, trades_per_s=5.0), 9, T0)
    warm_up(m, 10 * 60_000, T0 + 10 * 60_000)
    step = INTERVALS_MS["1m"]
    ks = m.klines(step, T0, T0 + 10 * step, 100)
    assert [k.open_ms for k in ks] == [T0 + i * step for i in range(10)]
    assert sum(k.count for k in ks) == len(m.tape)
    first = [t for t in m.tape if t.ts < T0 + step]
    k0 = ks[0]
    assert k0.open == first[0].price
    assert k0.close == first[-1].price
    assert k0.high == max(t.price for t in first)
    assert k0.low == min(t.price for t in first)
    assert math.isclose(k0.volume, sum(t.qty for t in first))
    five = m.klines(INTERVALS_MS["5m"], T0, T0 + 10 * step, 100)
    assert len(five) == 2
    assert five[0].high == max(k.high for k in ks[:5])


def test_burst_sends_n_market_orders_at_once() -> None:
    m = SimMarket("BTC/USDT", PriceModel(s0=42_000.0), 4, T0)
    out = m.burst(T0 + 1_000, 500)
    assert len(out) >= 500  # an order that walks the book prints one trade per level
    assert [t.id for t in out] == list(range(1, len(out) + 1))
    assert {t.ts for t in out} == {T0 + 1_000}


def test_live_ticks_continue_the_warm_up_tape() -> None:
    m = SimMarket("BTC/USDT", PriceModel(s0=42_000.0, trades_per_s=5.0), 8, T0)
    warm_up(m, 20 * 60_000, T0 + 20 * 60_000)
    before = list(m.tape)
    live = m.advance(T0 + 21 * 60_000)
    assert 200 < len(live) < 400
    assert live[0].id == before[-1].id + 1
    assert live[0].ts > before[-1].ts
    jump = abs(math.log(live[0].price / before[-1].price))
    assert jump < 0.01  # the path continues from the warm-up's last price
