from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from core.native import ext


def test_hit_returns_the_same_object_and_budget_holds() -> None:
    cache = ext.HotCache(10_000)
    frame = pl.DataFrame({"a": [1, 2, 3]})
    assert cache.put("k", frame, 100)
    assert cache.get("k") is frame
    assert cache.get("missing") is None
    for i in range(500):
        cache.put(f"x{i}", i, 97)
        assert cache.stats()["bytes"] <= 10_000
    stats = cache.stats()
    assert stats["hits"] == 1
    assert stats["misses"] == 1
    assert stats["evictions"] > 0


def test_oversized_value_rejected_and_prefix_removal() -> None:
    cache = ext.HotCache(1_000, "lru")
    assert cache.policy == "lru"
    assert not cache.put("big", b"x", 1_001)
    assert "big" not in cache
    for k in ("bars|a|1", "bars|a|2", "bars|b|1"):
        cache.put(k, k, 10)
    assert cache.remove_prefix("bars|a|") == 2
    assert len(cache) == 1
    assert cache.remove("bars|b|1")
    assert cache.stats()["bytes"] == 0


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="policy"):
        ext.HotCache(100, "arc")
    with pytest.raises(ValueError, match="capacity"):
        ext.HotCache(0)
    with pytest.raises(ValueError, match="length"):
        ext.cache_simulate(np.arange(3, dtype=np.uint64), np.ones(2, dtype=np.uint64), 10)


def test_s3fifo_beats_lru_on_skewed_trace_with_scans() -> None:
    rng = np.random.default_rng(3)
    hot = rng.zipf(1.2, 100_000) % 5_000
    scan = np.arange(1_000_000, 1_000_000 + 30_000)
    keys = np.concatenate([hot[:50_000], scan[:15_000], hot[50_000:], scan[15_000:]])
    keys = keys.astype(np.uint64)
    weights = np.full(keys.size, 100, dtype=np.uint64)
    s3, _ = ext.cache_simulate(keys, weights, 100 * 300, "s3fifo")
    lru, _ = ext.cache_simulate(keys, weights, 100 * 300, "lru")
    assert s3 > lru


def test_frames_are_charged_their_string_views() -> None:
    from core.data.hot import ENTRY_OVERHEAD, HotTier, frame_bytes
    from tests.unit.market.helpers import bars

    frame = bars(1000)
    n_str = sum(1 for dt in frame.dtypes if dt == pl.String)
    n_num = frame.width - n_str
    assert n_str == 3
    # 8 bytes per number, a 16-byte view per String value (Polars' own estimate counts the
    # characters: 9 + 7 + 2 per row here).
    assert frame_bytes(frame) == 1000 * (8 * n_num + 16 * n_str)
    assert frame.estimated_size() < frame_bytes(frame)
    tier = HotTier(10 * 2**20)
    assert tier.put("k", frame)
    assert tier.stats()["bytes"] == frame_bytes(frame) + ENTRY_OVERHEAD
    assert frame_bytes(frame.clear()) == 1
