"""Mean reversion: OU fits, CARA positions, sparse portfolios, Johansen against their peers."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np

from benchmarks.common import TABLE_HEAD, Row, median_time
from core.analytics import meanrev as mr


def ou_paths(t: int, m: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    theta = rng.uniform(2, 30, m)
    b = np.exp(-theta / 252)
    sd = np.sqrt((1 - b * b) / (2 * theta))
    x = np.zeros((t, m))
    eps = rng.normal(size=(t, m))
    for i in range(1, t):
        x[i] = b * x[i - 1] + sd * eps[i]
    return 100 + x


def pandas_rolling(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    lag = pd.DataFrame(x[:-1])
    lead = pd.DataFrame(x[1:])
    b = lag.rolling(w - 1).cov(lead) / lag.rolling(w - 1).var()
    a = lead.rolling(w - 1).mean() - b * lag.rolling(w - 1).mean()
    return a.to_numpy(), b.to_numpy()


def autoreg_loop(x: np.ndarray, w: int) -> list[float]:
    from statsmodels.tsa.ar_model import AutoReg

    return [
        float(AutoReg(x[t - w + 1 : t + 1], lags=1, trend="c").fit().params[1])
        for t in range(w - 1, x.size)
    ]


def scipy_brute(m: np.ndarray, g: np.ndarray, k: int) -> float:
    from scipy.linalg import eigh

    best = math.inf
    for sub in itertools.combinations(range(m.shape[0]), k):
        ix = np.ix_(sub, sub)
        best = min(best, float(eigh(m[ix], g[ix], eigvals_only=True)[0]))
    return best


def scipy_greedy(m: np.ndarray, g: np.ndarray, k: int) -> list[int]:
    from scipy.linalg import eigh

    n = m.shape[0]
    sup = [int(np.argmin(np.diag(m) / np.diag(g)))]
    while len(sup) < k:
        vals = []
        for i in range(n):
            if i in sup:
                vals.append(math.inf)
                continue
            s = [*sup, i]
            ix = np.ix_(s, s)
            vals.append(float(eigh(m[ix], g[ix], eigvals_only=True)[0]))
        sup.append(int(np.argmin(vals)))
    return sup


def factor_prices(n: int, t: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = np.cumsum(rng.normal(size=(t, 3)), axis=0)
    return 50 + f @ rng.normal(size=(n, 3)).T + rng.normal(size=(t, n))


def run() -> str:
    rows: list[Row] = []
    x = ou_paths(5000, 100, 0)
    one = np.ascontiguousarray(x[:, 0])
    import statsmodels.api as sm

    rows.append(
        Row(
            "OU fit, one series of 5,000",
            median_time(lambda: mr.fit_ou(one)),
            "statsmodels OLS",
            median_time(lambda: sm.OLS(one[1:], sm.add_constant(one[:-1])).fit()),
        )
    )
    rows.append(
        Row(
            "rolling OU, 100 spreads x 5,000, window 252",
            median_time(lambda: mr.rolling_ou(x, 252)),
            "pandas rolling cov/var",
            median_time(lambda: pandas_rolling(x, 252)),
        )
    )
    short = one[:1500]
    rows.append(
        Row(
            "rolling OU, 1 spread x 1,500, window 252",
            median_time(lambda: mr.rolling_ou(short, 252)),
            "statsmodels AutoReg per window",
            median_time(lambda: autoreg_loop(short, 252), repeats=3, min_total_s=0),
        )
    )
    pts = np.linspace(-1, 1, 1_000_000)
    tt = np.linspace(0, 1, 1_000_000)
    th, mu, sg, gm = 3.0, 0.0, 0.3, 2.0
    rows.append(
        Row(
            "CARA position, 10^6 (t, x) points",
            median_time(lambda: mr.cara_position(pts, tt, theta=th, mu=mu, sigma=sg, gamma=gm)),
            "numpy formula",
            median_time(lambda: th * (mu - pts) / (gm * sg * sg) * (1 + th * (1.0 - tt))),
        )
    )
    p30 = factor_prices(30, 2000, 1)
    m30, g30, _, _ = mr.var1_matrices(p30)
    rows.append(
        Row(
            "sparse exhaustive, n=30, k=3 (4,060 supports, incl. VAR fit)",
            median_time(lambda: mr.sparse_portfolio(p30, 3, "exhaustive")),
            "Python brute force + scipy eigh",
            median_time(
                lambda: (mr.var1_matrices(p30), scipy_brute(m30, g30, 3)), repeats=5, min_total_s=0
            ),
        )
    )
    rows.append(
        Row(
            "sparse exhaustive, n=30, k=3, selection only (M, G given)",
            median_time(lambda: mr.select_support(m30, g30, 3, "exhaustive")),
            "Python brute force + scipy eigh",
            median_time(lambda: scipy_brute(m30, g30, 3), repeats=5, min_total_s=0),
        )
    )
    p500 = factor_prices(500, 2000, 2)
    m500, g500, _, _ = mr.var1_matrices(p500)
    rows.append(
        Row(
            "sparse greedy, n=500, k=5 (incl. VAR fit)",
            median_time(lambda: mr.sparse_portfolio(p500, 5, "greedy"), repeats=5, min_total_s=0),
            "Python greedy + scipy eigh",
            median_time(
                lambda: (mr.var1_matrices(p500), scipy_greedy(m500, g500, 5)),
                repeats=5,
                min_total_s=0,
            ),
        )
    )
    rows.append(
        Row(
            "sparse greedy, n=500, k=5, selection only (M, G given)",
            median_time(lambda: mr.select_support(m500, g500, 5, "greedy")),
            "Python greedy + scipy eigh",
            median_time(lambda: scipy_greedy(m500, g500, 5), repeats=5, min_total_s=0),
        )
    )
    from statsmodels.tsa.vector_ar.vecm import coint_johansen

    p4 = p30[:, :4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows.append(
            Row(
                "Johansen, 4 assets x 2,000",
                median_time(lambda: mr.johansen(p4, 0, 1)),
                "statsmodels coint_johansen",
                median_time(lambda: coint_johansen(p4, 0, 1)),
            )
        )
    from statsmodels.tsa.stattools import adfuller

    spread = p4 @ np.array([1.0, -0.5, 0.25, -0.25])
    rows.append(
        Row(
            "ADF, 2,000 points, AIC search over 0..26 lags",
            median_time(lambda: mr.adf(spread)),
            "statsmodels adfuller",
            median_time(lambda: adfuller(spread, result_object=False)),
        )
    )
    lines = [
        "## Mean reversion (OU, CARA, sparse portfolios, Johansen)",
        "",
        "Johansen is numpy in both columns (our eigen step is the Rust generalised solver).",
        "Our ADF lag search takes every lag's residual sum of squares from one QR.",
        "Rows marked 'incl. VAR fit' include the same numpy VAR(1) estimate on both sides.",
        "",
        TABLE_HEAD,
        *(r.markdown() for r in rows),
    ]
    return "\n".join(lines)
