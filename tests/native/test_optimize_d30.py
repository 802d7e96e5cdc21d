"""L-SHADE at D = 30 against our own recorded baseline (docs/compute.md §4.3).

The baseline (51 seeds per function, 10^4·D evaluations, CEC rule: errors <= 1e-8
count as 0) lives in tests/data/lshade_d30_baseline.csv. Re-record it with
`python -m tests.native.test_optimize_d30` after an intended change of the algorithm.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from core.analytics import optimize as opt

BASELINE = Path(__file__).resolve().parents[1] / "data" / "lshade_d30_baseline.csv"
D = 30
BUDGET = 10_000 * D


def error(name: str, seed: int) -> float:
    f = opt.minimize(name, opt.builtin_bounds(name, D), max_evals=BUDGET, seed=seed).fun
    return 0.0 if f <= 1e-8 else f


def load() -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    with BASELINE.open() as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["function"], []).append(float(row["error"]))
    return out


def test_baseline_is_complete() -> None:
    base = load()
    assert set(base) == set(opt.BUILTINS)
    assert all(len(v) == 51 for v in base.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", list(opt.BUILTINS))
def test_no_regression_against_baseline(name: str) -> None:
    from scipy.stats import mannwhitneyu

    base = np.array(load()[name])
    new = np.array([error(name, 10_000 + s) for s in range(15)])
    if np.all(new == 0) and np.all(base == 0):
        return
    p = mannwhitneyu(new, base, alternative="greater").pvalue
    assert p >= 0.01, f"{name}: new median {np.median(new):.3g} vs {np.median(base):.3g}, p={p}"


if __name__ == "__main__":
    with BASELINE.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["function", "seed", "error"])
        for name in opt.BUILTINS:
            for seed in range(51):
                w.writerow([name, seed, repr(error(name, seed))])
            print(name, "done", flush=True)
