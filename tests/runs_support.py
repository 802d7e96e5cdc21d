"""The comparison every study-kind test makes: two runs equal bit for bit."""

from __future__ import annotations

import math

from core.analytics.runs import RunResult


def assert_same_run(a: RunResult, b: RunResult) -> None:
    """Equal kind, params, metrics (NaN equal to NaN) and frames, bit for bit."""
    assert (a.kind, a.params()) == (b.kind, b.params())
    ma, mb = a.metrics(), b.metrics()
    assert list(ma) == list(mb)
    for name, value in ma.items():
        other = mb[name]
        assert value == other or (math.isnan(value) and math.isnan(other)), name
    fa, fb = a.frames(), b.frames()
    assert list(fa) == list(fb)
    for name, frame in fa.items():
        assert frame.schema == fb[name].schema, name
        assert frame.equals(fb[name], null_equal=True), name
