"""MFG solver (docs/compute.md §5) against the numpy + scipy peers of the same scheme.

Both sides run the same grid and the same number of fixed-point iterations (a tolerance of
1e-300 makes every run use exactly `max_iter`). Peers: one `scipy.sparse.linalg.spsolve`
per time step (the anchor of docs/compute.md §5) and one `scipy.linalg.solve_banded` per time step.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import numpy as np

from benchmarks.common import TABLE_HEAD, Row, fmt_s, median_time
from benchmarks.mfg_reference import RefProblem
from benchmarks.mfg_reference import solve as reference_solve
from core.analytics import mfg

P = mfg.CrowdingParams()


def _limits() -> Any:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        return nullcontext()
    return threadpool_limits(limits=1)


def _ours(n: int, nt: int, iters: int) -> mfg.MFGSolution:
    return mfg.solve_crowding(P, n=n, nt=nt, tol=1e-300, max_iter=iters)


def _peer(n: int, nt: int, iters: int, solver: str) -> object:
    prob = RefProblem(P.lo, P.hi, n, P.T, nt, P.kappa, P.eps, P.phi, P.A, "controls", P.alpha)
    x = np.linspace(P.lo, P.hi, n)
    m0 = mfg.gaussian_density(x, P.E0, P.V0)
    return reference_solve(prob, m0, solver=solver, fixed_iterations=iters)


def cpu_time(fn: Callable[[], object], repeats: int = 5) -> float:
    """Median thread CPU seconds per call after one warm-up: on a shared machine this is
    steadier than wall time (both sides run on this thread; the Rust call releases the GIL
    but runs here)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.thread_time()
        fn()
        times.append(time.thread_time() - t0)
    return statistics.median(times)


def run() -> str:
    rows: list[Row] = []
    notes: list[str] = []
    with _limits():
        full = mfg.solve_crowding(P)  # the default solve: iterations to tol 1e-10
        iters = full.diagnostics["iterations"]
        for n, nt in [(181, 200), (361, 400)]:
            rows.append(
                Row(
                    f"problem A ({n}, {nt}), {iters} iterations",
                    median_time(lambda n=n, nt=nt: _ours(n, nt, iters)),
                    "numpy + solve_banded",
                    median_time(lambda n=n, nt=nt: _peer(n, nt, iters, "banded")),
                )
            )
        # spsolve costs seconds per iteration: time 4 iterations at equal count
        rows.append(
            Row(
                "problem A (361, 400), 4 iterations",
                median_time(lambda: _ours(361, 400, 4)),
                "numpy + spsolve (anchor, docs/compute.md §5)",
                median_time(lambda: _peer(361, 400, 4, "spsolve")),
            )
        )
        t0, c0 = time.perf_counter(), time.thread_time()
        _peer(361, 400, iters, "spsolve")
        sp_full, sp_cpu = time.perf_counter() - t0, time.thread_time() - c0
        ours_full = median_time(lambda: _ours(361, 400, iters))
        ours_cpu = cpu_time(lambda: _ours(361, 400, iters))
        banded_cpu = cpu_time(lambda: _peer(361, 400, iters, "banded"), repeats=3)
        notes.append(
            f"One full spsolve run at (361, 400) with {iters} iterations took {fmt_s(sp_full)} "
            f"wall, {fmt_s(sp_cpu)} CPU (single run; docs/compute.md §5 records about 25 s). "
            f"Ours: {fmt_s(ours_full)} wall, {fmt_s(ours_cpu)} CPU. "
            f"Ratio {sp_full / ours_full:.0f}× by wall time, {sp_cpu / ours_cpu:.0f}× by CPU time."
        )
        notes.append(
            f"solve_banded peer at (361, 400), {iters} iterations: {fmt_s(banded_cpu)} CPU, "
            f"{banded_cpu / ours_cpu:.0f}× ours by CPU time."
        )
        lq = mfg.solve_lq()
        notes.append(
            f"Problem B (LQ) at (361, 400): {lq.diagnostics['iterations']} iterations in "
            f"{fmt_s(lq.diagnostics['seconds'])}."
        )
    lines = [
        "## Mean-field game (HJB + Fokker–Planck, 1-D)",
        "",
        "Same scheme, grid and iteration count on both sides; single-threaded (threadpoolctl "
        "limits BLAS to 1 thread, the Rust kernel is serial). Ratios above 1 mean HFThot is "
        "faster. Target: ≥ 100× the spsolve anchor at (361, 400). Wall times on a loaded "
        "2-core machine are noisy, so CPU times (thread_time) are given below too.",
        "",
        TABLE_HEAD,
        *(r.markdown() for r in rows),
        "",
        *(f"- {note}" for note in notes),
    ]
    return "\n".join(lines)
