"""Every analytics façade takes a seed in 0..2**64-1 and refuses anything else with
InvalidInput (never OverflowError or TypeError from the kernel binding)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from core.analytics import cec2014, chiarella, inputs, optimize, regime
from core.errors import InvalidInput

RNG = np.random.default_rng(7)
X = RNG.normal(0.0, 1.0, 300)
RETURNS = RNG.standard_t(4, 1200) * 0.8  # SYNTHETIC heavy-tailed returns, in percent


def _hmm() -> regime.HMMResult:
    return regime.fit_hmm(X, 2, n_init=1, max_iter=5, seed=0)


def _cec(seed: Any) -> object:
    k, _, _ = cec2014.layout(1)
    problem = cec2014.Problem(1, 10, np.zeros((k, 10)), np.tile(np.eye(10), (k, 1)))
    return problem.minimize(max_evals=400, seed=seed)


def _objective(seed: Any) -> object:
    w, _ = chiarella.weight_matrix(RETURNS, block=100, n_boot=20, seed=0)
    return chiarella.objective(
        None, chiarella.moments(RETURNS), w, n_steps=300, n_paths=2, seed=seed
    )


def _start(seed: Any) -> object:
    job = chiarella.start_calibration(
        RETURNS, seed=seed, budget=12, pop_size=6, n_paths=2, n_boot=20, block=100
    )
    assert job.wait(120)
    return job


FACADES: dict[str, Callable[[Any], object]] = {
    "regime.fit_hmm": lambda s: regime.fit_hmm(X, 2, n_init=1, max_iter=5, seed=s),
    "regime.select_n_states": lambda s: regime.select_n_states(
        X, k_max=2, n_init=1, max_iter=5, seed=s
    ),
    "regime.HMMResult.sample": lambda s: _hmm().sample(10, seed=s),
    "chiarella.simulate": lambda s: chiarella.simulate(None, 100, seed=s),
    "chiarella.weight_matrix": lambda s: chiarella.weight_matrix(
        RETURNS, block=100, n_boot=20, seed=s
    ),
    "chiarella.objective": _objective,
    "chiarella.calibrate": lambda s: chiarella.calibrate(
        RETURNS, budget=12, pop_size=6, n_paths=2, n_boot=20, block=100, seed=s
    ),
    "chiarella.start_calibration": _start,
    "optimize.minimize": lambda s: optimize.minimize(
        "sphere", [(-1.0, 1.0)] * 2, max_evals=200, seed=s
    ),
    "optimize.initial_population": lambda s: optimize.initial_population(
        [(-1.0, 1.0)] * 2, 8, seed=s
    ),
    "cec2014.Problem.minimize": _cec,
}

BAD = {
    "2**64": 2**64,
    "2**70": 2**70,
    "-1": -1,
    "-(2**70)": -(2**70),
    "True": True,
    "False": False,
    "1.5": 1.5,
    "2.0": 2.0,
    "str": "3",
    "np.float64": np.float64(3.0),
    "np.int64(-1)": np.int64(-1),
}
GOOD = {
    "0": 0,
    "2**64-1": 2**64 - 1,
    "np.uint64 max": np.uint64(2**64 - 1),
    "np.int64": np.int64(5),
}


@pytest.mark.parametrize("bad", list(BAD.values()), ids=list(BAD))
@pytest.mark.parametrize("facade", list(FACADES.values()), ids=list(FACADES))
def test_a_bad_seed_is_invalid_input(facade: Callable[[Any], object], bad: object) -> None:
    with pytest.raises(InvalidInput, match="seed"):
        facade(bad)


@pytest.mark.parametrize("good", list(GOOD.values()), ids=list(GOOD))
@pytest.mark.parametrize("facade", list(FACADES.values()), ids=list(FACADES))
def test_every_seed_in_range_is_accepted(facade: Callable[[Any], object], good: object) -> None:
    out = facade(good)
    if isinstance(out, chiarella.CalibrationJob):
        assert out.error is None
        assert out.result is not None


def test_the_shared_check() -> None:
    assert inputs.check_seed(2**64 - 1) == 2**64 - 1
    assert inputs.check_seed(np.uint64(7)) == 7
    assert 0 <= inputs.seed_or_random(None) < 2**64
    with pytest.raises(InvalidInput, match=r"0\.\.2\*\*64-1"):
        inputs.check_seed(2**64)
    with pytest.raises(InvalidInput, match="seed"):
        inputs.check_seed(None)
