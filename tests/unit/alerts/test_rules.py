"""Each rule kind on hand-made bars: it fires on the crossing, not again while the condition
holds, and not twice within its cool-down."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import polars as pl
import pytest

from core.alerts import rules as r
from core.errors import InvalidInput

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def bars(closes: Sequence[float]) -> pl.DataFrame:
    n = len(closes)
    values = [float(c) for c in closes]
    return pl.DataFrame(
        {
            "ts": [T0 + dt.timedelta(minutes=i) for i in range(n)],
            "open": values,
            "high": values,
            "low": values,
            "close": values,
            "volume": [1.0] * n,
        }
    ).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def replay(
    params: r.Params,
    closes: Sequence[float],
    *,
    cooldown_s: float = 0.0,
    start: int = 2,
    model: r.RegimeModel | None = None,
) -> list[int]:
    """Feed the bars one at a time like the evaluator; returns the indices that fired."""
    frame = bars(closes)
    state: int | None = None
    last_fired: dt.datetime | None = None
    fired = []
    for i in range(start, len(closes) + 1):
        now = T0 + dt.timedelta(minutes=i - 1)
        step = r.step(
            params,
            frame.head(i),
            state,
            last_fired=last_fired,
            now=now,
            cooldown_s=cooldown_s,
            model=model,
        )
        state = step.state
        if step.fired is not None:
            fired.append(i - 1)
            last_fired = now
    return fired


def test_price_cross_fires_once_per_crossing_in_its_direction() -> None:
    closes = [99, 99.5, 100.5, 101, 102, 99, 98, 100.2, 100.4]
    up = r.parse_params("price_cross", {"level": 100, "direction": "up"})
    assert replay(up, closes) == [2, 7]  # not at 3 or 4: still above
    down = r.parse_params("price_cross", {"level": 100, "direction": "down"})
    assert replay(down, closes) == [5]
    both = r.parse_params("price_cross", {"level": 100})
    assert replay(both, closes) == [2, 5, 7]


def test_price_cross_message_has_the_numbers() -> None:
    p = r.parse_params("price_cross", {"level": 100, "direction": "up"})
    step = r.step(p, bars([99, 101.5]), None, last_fired=None, now=T0, cooldown_s=0)
    assert step.fired is not None
    assert step.fired.value == 101.5
    assert "101.5" in step.fired.message
    assert "100" in step.fired.message
    assert step.fired.data_ts == T0 + dt.timedelta(minutes=1)


def test_cooldown_suppresses_a_second_crossing() -> None:
    closes = [99, 101, 99, 101, 99, 101, 99, 101, 99, 101]
    p = r.parse_params("price_cross", {"level": 100, "direction": "up"})
    assert replay(p, closes) == [1, 3, 5, 7, 9]
    # a bar is a minute apart: 5 minutes of cool-down lets every third crossing through
    assert replay(p, closes, cooldown_s=300) == [1, 7]
    suppressed = r.step(
        p, bars([99, 101]), -1, last_fired=T0, now=T0 + dt.timedelta(seconds=10), cooldown_s=60
    )
    assert suppressed.fired is None
    assert suppressed.suppressed
    assert suppressed.state == 1


def test_pct_move_fires_on_entering_the_band_only() -> None:
    p = r.parse_params("pct_move", {"window": 2, "threshold_pct": 5})
    closes = [100, 100, 101, 106, 107, 108, 108, 107, 101, 100]
    # index 3: 106/100 = +6%; 4: 107/101 (+5.9%) still beyond; 5: 108/106 back inside;
    # 8: 101/108 = -6.5% (a new move down)
    assert replay(p, closes, start=3) == [3, 8]
    reading = r.read(p, bars(closes[:4]))
    assert reading is not None
    assert reading.value == pytest.approx(6.0)


def test_zscore_fires_beyond_the_bound_and_again_on_the_other_side() -> None:
    p = r.parse_params("zscore", {"window": 5, "bound": 1.5})
    closes = [10, 10.1, 9.9, 10, 10.05, 12, 12.1, 12.0, 11.9, 12, 12, 8]
    fired = replay(p, closes, start=5)
    assert fired == [5, 11]
    last = r.read(p, bars(closes))
    assert last is not None
    assert last.state == -1
    window = np.array(closes[-5:])
    assert last.value == pytest.approx((8 - window.mean()) / window.std())


def test_zscore_flat_window_is_inside() -> None:
    p = r.parse_params("zscore", {"window": 3, "bound": 1})
    reading = r.read(p, bars([5, 5, 5]))
    assert reading is not None
    assert reading.state == 0
    assert reading.value == 0


def test_indicator_cross_close_over_sma_and_fast_over_slow() -> None:
    p = r.parse_params(
        "indicator_cross", {"fast": "close", "slow": "sma", "slow_n": 3, "direction": "up"}
    )
    closes = [10, 10, 10, 9, 9, 8.5, 11, 12, 13, 12, 8, 12]
    assert replay(p, closes, start=3) == [6, 11]
    ma = r.parse_params("indicator_cross", {"fast": "sma", "fast_n": 2, "slow": "ema", "slow_n": 4})
    closes2 = [10, 10, 10, 10, 9, 8, 8, 9, 11, 12, 12, 12]
    fired = replay(ma, closes2, start=4)
    assert len(fired) == 2  # below once, back above once


def test_regime_change_uses_the_filtered_state() -> None:
    rng = np.random.default_rng(3)
    calm = rng.normal(0, 0.001, 300)
    wild = rng.normal(0, 0.03, 40)
    closes = 100 * np.exp(np.cumsum(np.concatenate([calm, wild, calm[:60]])))
    p = r.parse_params("regime_change", {"n_states": 2, "history": 400, "seed": 1})
    assert isinstance(p, r.RegimeChange)
    model = r.RegimeModel(closes, p)
    states = model.states(closes)
    fired = replay(p, list(closes), start=250, model=model)
    # fires exactly where the filtered path switches, never on a bar that keeps the state
    switches = [i + 1 for i in range(1, len(states)) if states[i] != states[i - 1]]
    assert fired
    assert fired == [i for i in switches if i >= 249]
    assert any(300 <= i <= 310 for i in fired)


def test_no_reading_without_enough_bars() -> None:
    z = r.parse_params("zscore", {"window": 10, "bound": 2})
    assert r.read(z, bars([1, 2, 3])) is None
    step = r.step(z, bars([1, 2, 3]), None, last_fired=None, now=T0, cooldown_s=0)
    assert step.fired is None
    assert step.state is None


@pytest.mark.parametrize(
    ("kind", "params", "words"),
    [
        ("nope", {}, "kind must be one of"),
        ("price_cross", {}, "level is required"),
        ("price_cross", {"level": "high"}, "level must be a number"),
        ("price_cross", {"level": 1, "direction": "sideways"}, "direction must be one of"),
        ("price_cross", {"level": float("nan")}, "finite"),
        ("pct_move", {"window": 0, "threshold_pct": 1}, "window must be between"),
        ("pct_move", {"window": 3, "threshold_pct": -1}, "threshold_pct must be > 0"),
        ("zscore", {"window": 2, "bound": 2}, "window must be between 3"),
        ("zscore", {"window": 20, "bound": 0}, "bound must be > 0"),
        ("zscore", {"window": 2.5}, "window must be a whole number"),
        ("zscore", {"windw": 20}, "has no parameter 'windw'"),
        ("indicator_cross", {"fast": "sma", "fast_n": 30, "slow_n": 20}, "must be below"),
        ("indicator_cross", {"slow": "close"}, "slow must be one of"),
        ("regime_change", {"n_states": 9}, "n_states must be between 2 and 5"),
        ("query_rows", {"max_rows": 0}, "max_rows must be between"),
    ],
)
def test_bad_params_are_clear_errors(kind: str, params: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        r.parse_params(kind, params)


def test_params_round_trip_through_a_dict() -> None:
    for kind, raw in {
        "price_cross": {"level": 1.5, "direction": "down"},
        "pct_move": {"window": 4, "threshold_pct": 2.0},
        "zscore": {"window": 20, "bound": 2.5},
        "indicator_cross": {"fast": "ema", "fast_n": 5, "slow": "sma", "slow_n": 20},
        "regime_change": {"n_states": 3, "history": 300, "seed": 4},
        "query_rows": {"max_rows": 10},
    }.items():
        p = r.parse_params(kind, raw)
        assert r.parse_params(kind, r.params_dict(p)) == p
