"""Simulate the critical values used by core.analytics.meanrev; write them to
core/analytics/critical_values_data.py.

Johansen (trace and max-eigenvalue, n - r = 1..12): the asymptotic null laws are functionals of
an m = n - r dimensional standard Brownian motion W (Johansen 1995, Theorem 6.1 and ch. 15):

    Q = int dW F' (int F F')^-1 int F dW',   trace -> tr Q,   max-eigenvalue -> lambda_max(Q),

with F by deterministic case, as statsmodels' coint_johansen(det_order=d) uses its tables
(MacKinnon-Haug-Michelis 1999 / Osterwald-Lenum 1992):
    d = -1 no deterministic terms:              F = W
    d =  0 unrestricted constant (linear trend in the levels):
                                                F = (W_1..W_{m-1}, u) corrected for a constant
    d =  1 unrestricted trend (quadratic trend in the levels):
                                                F = (W_1..W_{m-1}, u^2) corrected for (1, u)
W is a Gaussian random walk of T = 1000 steps; F is taken at t - 1 against the step at t.
Everything follows from one Gram matrix per replication, so the three cases share the draws.
The O(1/T) discretisation bias (-1.3% for m = 12 at T = 1000) is removed by Richardson
extrapolation 2 q(T) - q(T/2), the T/2 walk summing pairs of the same steps. Replications:
max(40000, 10^6 / m^2); Monte Carlo standard errors come from 10 batch means.

ADF (Dickey-Fuller tau, regression n / c / ct / ctt): the finite-sample t-statistic of a
Gaussian random walk, simulated at several sample sizes; for each of QUANTILES a response
surface q(T) = b0 + b1 / T + b2 / T^2 is fitted by least squares (MacKinnon 1994/2010 method,
our own simulation, not his coefficients).

Run: .venv/bin/python scripts/gen_critical_values.py (673 s measured on one core of a busy
2-core machine, 2026-11-25; BLAS is kept to one thread).
Seeds: numpy SeedSequence(SEED, spawn_key=(part, m or case, chunk)); chunks are independent,
so any chunk can be regenerated on its own (tests/native/test_meanrev_critical.py does).
"""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

# one BLAS thread: thousands of tiny products thrash a threaded BLAS on a busy machine
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

SEED = 20261125
JOH_T = 1000
JOH_CHUNK = 250
JOH_M = tuple(range(1, 13))
LEVELS = (0.90, 0.95, 0.99)
ADF_TS = (25, 50, 100, 250, 500, 1000, 2000)
ADF_CHUNK = 500
ADF_REPS = 100_000
ADF_CASES = ("n", "c", "ct", "ctt")
QUANTILES = tuple(
    [0.0005, 0.001, 0.0025, 0.005]
    + [round(0.01 * i, 2) for i in range(1, 100)]
    + [0.995, 0.9975, 0.999, 0.9995]
)
OUT = Path(__file__).resolve().parents[1] / "core" / "analytics" / "critical_values_data.py"


def johansen_reps(m: int) -> int:
    """Replications for dimension m: small m has a relatively wider spread."""
    return max(40_000, (1_000_000 // (m * m)) // JOH_CHUNK * JOH_CHUNK)


def _rng(*key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(SEED, spawn_key=key))


def _johansen_stats(eps: np.ndarray) -> np.ndarray:
    """(3 cases, 2 statistics [trace, max-eig], reps) from steps eps (reps, T, m)."""
    reps, t, m = eps.shape
    walk = np.cumsum(eps, axis=1) - eps  # W at t - 1
    u = np.arange(1, t + 1, dtype=np.float64) / t
    poly = np.broadcast_to(np.stack([np.ones(t), u, u * u], axis=1), (reps, t, 3))
    y = np.concatenate([walk, poly, eps], axis=2)
    gram = np.matmul(y.transpose(0, 2, 1), y)
    w_ix = list(range(m))
    one, lin, quad = m, m + 1, m + 2
    e_ix = list(range(m + 3, 2 * m + 3))
    out = np.empty((3, 2, reps))
    for case, (f_ix, c_ix) in enumerate(
        [
            (w_ix, []),
            ([*w_ix[: m - 1], lin], [one]),
            ([*w_ix[: m - 1], quad], [one, lin]),
        ]
    ):
        gff = gram[:, f_ix][:, :, f_ix]
        gfe = gram[:, f_ix][:, :, e_ix]
        if c_ix:
            gfc = gram[:, f_ix][:, :, c_ix]
            gcc = gram[:, c_ix][:, :, c_ix]
            gce = gram[:, c_ix][:, :, e_ix]
            gff = gff - gfc @ np.linalg.solve(gcc, gfc.transpose(0, 2, 1))
            gfe = gfe - gfc @ np.linalg.solve(gcc, gce)
        q = gfe.transpose(0, 2, 1) @ np.linalg.solve(gff, gfe)
        lam = np.linalg.eigvalsh(0.5 * (q + q.transpose(0, 2, 1)))
        out[case, 0] = lam.sum(axis=1)
        out[case, 1] = lam[:, -1]
    return out


def johansen_chunk(m: int, chunk: int, t: int = JOH_T, reps: int = JOH_CHUNK) -> np.ndarray:
    """(2 grids [T, T/2], 3 cases, 2 statistics, reps) for one chunk of replications. The T/2
    walk sums pairs of the same steps (common random numbers for the extrapolation)."""
    eps = _rng(0, m, chunk).standard_normal((reps, t, m))
    half = (eps[:, 0::2] + eps[:, 1::2]) / np.sqrt(2.0)
    return np.stack([_johansen_stats(eps), _johansen_stats(half)])


def adf_chunk(t: int, chunk: int, reps: int = ADF_CHUNK) -> np.ndarray:
    """(4 cases, reps) Dickey-Fuller t-statistics of Gaussian random walks with t observations
    of the differenced regression (dy_t on y_{t-1} and deterministic terms)."""
    eps = _rng(1, t, chunk).standard_normal((reps, t))
    level = np.cumsum(eps, axis=1) - eps  # y_{t-1}, y_0 = 0
    u = np.arange(1, t + 1, dtype=np.float64) / t
    trend = [np.broadcast_to(v, (reps, t)) for v in (np.ones(t), u, u * u)]
    y = np.stack([level, *trend, eps], axis=2)
    gram = np.matmul(y.transpose(0, 2, 1), y)
    out = np.empty((4, reps))
    for case, cols in enumerate([[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]):
        xx = gram[:, cols][:, :, cols]
        xe = gram[:, cols, 4]
        inv = np.linalg.inv(xx)
        beta = np.einsum("rij,rj->ri", inv, xe)
        ssr = gram[:, 4, 4] - np.einsum("ri,ri->r", beta, xe)
        s2 = ssr / (t - len(cols))
        out[case] = beta[:, 0] / np.sqrt(s2 * inv[:, 0, 0])
    return out


def johansen_table(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Quantiles (3 cases, 2 stats, 3 levels) extrapolated to T = inf as 2 q(T) - q(T/2)
    (Richardson: the discretisation bias is O(1/T)), their Monte Carlo standard errors from
    10 batch means, and the first chunk's first 4 statistics at T."""
    chunks = [johansen_chunk(m, c) for c in range(johansen_reps(m) // JOH_CHUNK)]
    stats = np.concatenate(chunks, axis=3)

    def extrapolated(s: np.ndarray) -> np.ndarray:
        q = np.quantile(s, LEVELS, axis=3).transpose(1, 2, 3, 0)
        return np.asarray(2.0 * q[0] - q[1])

    batches = np.stack([extrapolated(b) for b in np.array_split(stats, 10, axis=3)])
    se = batches.std(axis=0, ddof=1) / np.sqrt(10.0)
    return extrapolated(stats), se, chunks[0][0, :, :, :4]


def adf_surface() -> tuple[np.ndarray, np.ndarray]:
    """(4 cases, len(QUANTILES), 3) response-surface coefficients and the first chunk probe."""
    q = np.empty((len(ADF_TS), 4, len(QUANTILES)))
    probe = np.empty((4, 4))
    for i, t in enumerate(ADF_TS):
        chunks = [adf_chunk(t, c) for c in range(ADF_REPS // ADF_CHUNK)]
        if i == 0:
            probe = chunks[0][:, :4]
        q[i] = np.quantile(np.concatenate(chunks, axis=1), QUANTILES, axis=1).T
    inv_t = 1.0 / np.asarray(ADF_TS, dtype=np.float64)
    design = np.stack([np.ones_like(inv_t), inv_t, inv_t**2], axis=1)
    coef = np.empty((4, len(QUANTILES), 3))
    for case in range(4):
        coef[case] = np.linalg.lstsq(design, q[:, case, :], rcond=None)[0].T
    return coef, probe


def _rows(a: np.ndarray, per_line: int = 4) -> str:
    """Numbers as whitespace-separated text, `per_line` a line (parsed with np.array(split))."""
    flat = [repr(float(v)) for v in np.asarray(a, dtype=np.float64).reshape(-1)]
    lines = [" ".join(flat[i : i + per_line]) for i in range(0, len(flat), per_line)]
    return "\n".join(lines)


def main() -> None:
    start = time.perf_counter()
    tables, ses, probes = [], [], []
    for m in JOH_M:
        tab, se, probe = johansen_table(m)
        tables.append(tab)
        ses.append(se)
        probes.append(probe)
        print(f"m={m} reps={johansen_reps(m)} {time.perf_counter() - start:.0f}s", flush=True)
    joh = np.stack(tables)  # (m, case, stat, level)
    coef, adf_probe = adf_surface()
    took = time.perf_counter() - start
    print(f"adf done {took:.0f}s", flush=True)
    reps = {m: johansen_reps(m) for m in JOH_M}
    probe = np.stack(probes[:2])
    text = f'''"""Simulated critical values: GENERATED by scripts/gen_critical_values.py.

Seed {SEED}; run time {took:.0f} s on one core (2026-11-25).
Johansen: Gaussian random walks of T = {JOH_T} steps; replications per m = n - r:
{textwrap.fill(repr(reps), 96, initial_indent="  ", subsequent_indent="  ")}.
  JOHANSEN, shape {joh.shape}: [m - 1, case, stat, level]; case 0/1/2 = det_order -1/0/1,
  stat 0 trace / 1 max-eigenvalue, level 90/95/99%; extrapolated to T = inf as
  2 q(T) - q(T/2) (T/2 from summed step pairs). JOHANSEN_SE: Monte Carlo standard errors
  from 10 batch means. JOHANSEN_PROBE, shape {probe.shape}: chunk 0 of m = 1, 2 at T, the
  first 4 replications (bitwise regeneration check).
ADF: {ADF_REPS} replications at each T in {ADF_TS}.
  ADF_SURFACE, shape {coef.shape}: [case, i, (b0, b1, b2)]; quantile ADF_QUANTILES[i]
  of tau with T observations is b0 + b1 / T + b2 / T^2; case 0..3 = regression n, c, ct,
  ctt. ADF_PROBE, shape {adf_probe.shape}: chunk 0 at T = {ADF_TS[0]}, first 4 replications
  per case.
"""

SEED = {SEED}
JOHANSEN_T = {JOH_T}
ADF_REPS = {ADF_REPS}
ADF_TS = {ADF_TS!r}
LEVELS = {LEVELS!r}

JOHANSEN = """
{_rows(joh)}
"""

JOHANSEN_SE = """
{_rows(np.stack(ses))}
"""

JOHANSEN_PROBE = """
{_rows(probe)}
"""

ADF_QUANTILES = """
{_rows(np.asarray(QUANTILES))}
"""

ADF_SURFACE = """
{_rows(coef)}
"""

ADF_PROBE = """
{_rows(adf_probe)}
"""
'''
    OUT.write_text(text)
    print(f"wrote {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
