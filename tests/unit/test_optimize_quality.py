"""The evaluations-to-target and ECDF helpers behind the optimize benchmark."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from benchmarks.optimize_quality import TARGETS, D, Run, ecdf, one_run, svg_ecdf, to_targets


def test_evaluations_to_target_takes_the_first_crossing() -> None:
    trace = [(100, 50.0), (200, 5.0), (300, 0.5), (400, 0.5), (500, 1e-9)]
    hits = to_targets(trace, f_star=0.0)
    assert len(hits) == len(TARGETS) == 10
    assert hits[0] == 200  # 1e1
    assert hits[1] == 300  # 1e0
    assert hits[2:] == (500.0,) * 8  # 1e-1 .. 1e-8
    # Errors are measured from f*.
    assert to_targets([(10, 105.0)], f_star=100.0)[0] == 10
    assert math.isinf(to_targets(trace[:3], f_star=0.0)[-1])


def test_ecdf_counts_run_target_pairs() -> None:
    runs = [Run(0.0, (10.0 * D,) * 10), Run(1.0, (100.0 * D,) * 5 + (math.inf,) * 5)]
    got = ecdf(runs, np.array([1.0, 10.0, 100.0, 1e4]))
    np.testing.assert_allclose(got, [0.0, 0.5, 0.75, 0.75])


def test_one_run_traces_both_algorithms(tmp_path: Path) -> None:
    ours = one_run("L-SHADE", "sphere", 0)
    theirs = one_run("SciPy DE", "sphere", 0)
    for r in (ours, theirs):
        assert r.error >= 0
        finite = [h for h in r.hits if math.isfinite(h)]
        assert finite == sorted(finite)
        assert all(h <= 100_000 for h in finite)
    assert ours.error <= 1e-8
    assert math.isfinite(ours.hits[-1])
    path = tmp_path / "e.svg"
    xs = np.array([1.0, 10.0, 1e4])
    svg_ecdf(path, {"a": (xs, np.array([0.0, 0.5, 1.0]), "#000", "")})
    text = path.read_text()
    assert text.startswith("<svg")
    assert "polyline" in text
