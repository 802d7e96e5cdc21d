"""Timing protocol shared by every benchmark (docs/compute.md §0(d)).

One warm-up call, then the median of at least 5 repeats with perf_counter;
peer and HFThot run in the same process, and ratios are peer / ours.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPORT = Path(__file__).with_name("REPORT.md")
OUT = Path(__file__).with_name("out")


def median_time(fn: Callable[[], object], repeats: int = 5, min_total_s: float = 0.2) -> float:
    """Median seconds per call, after one warm-up call."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeats or (time.perf_counter() - start < min_total_s and len(times) < 200):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@dataclass(frozen=True, slots=True)
class Row:
    case: str
    ours_s: float
    peer: str
    peer_s: float

    @property
    def ratio(self) -> float:
        return self.peer_s / self.ours_s if self.ours_s > 0 else float("inf")

    def markdown(self) -> str:
        return (
            f"| {self.case} | {fmt_s(self.ours_s)} | {self.peer} | {fmt_s(self.peer_s)} "
            f"| {self.ratio:.1f}× |"
        )


def fmt_s(s: float) -> str:
    if abs(s) < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


TABLE_HEAD = "| case | HFThot | peer | peer time | peer / HFThot |\n|---|---|---|---|---|"


def threads_note() -> str:
    keys = ("RAYON_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    note = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in keys)
    try:
        from threadpoolctl import threadpool_info

        blas = [
            f"{i.get('internal_api')} {i.get('architecture', '')} x{i.get('num_threads')}"
            for i in threadpool_info()
            if i.get("user_api") == "blas"
        ]
    except ImportError:
        blas = []
    return note + (f"; numpy BLAS: {', '.join(blas)}" if blas else "")
