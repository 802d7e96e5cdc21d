"""Classic DE strategies (best/1, current-to-best/1, rand/2, ..., exponential
crossover, dither) and the first-population layouts (uniform, LHS, Sobol)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

from core.analytics import optimize as opt
from core.errors import InvalidInput
from core.native import ext
from tests.native.test_optimize import TapeRef, np_functions

# --- one generation with injected randomness -------------------------------------

DRAWS = {"rand1": 3, "best1": 2, "currenttobest1": 2, "randtobest1": 3, "rand2": 5, "best2": 4}


def ref_de_trials(pop, fit, lo, hi, tape, *, strategy, f, cr, dither=None):
    """Numpy reference of one generation of classic DE (resample repair)."""
    n, d = pop.shape
    best = pop[int(np.argsort(fit, kind="stable")[0])]
    if dither is not None:
        f = dither[0] + tape.uniform() * (dither[1] - dither[0])
    mut, xo = strategy[:-3], strategy[-3:]
    out = np.empty_like(pop)
    for i in range(n):
        r: list[int] = []
        for _ in range(DRAWS[mut]):
            r.append(tape.distinct(n, [i, *r]))
        x = pop[r]
        if mut == "rand1":
            v = x[0] + f * (x[1] - x[2])
        elif mut == "best1":
            v = best + f * (x[0] - x[1])
        elif mut == "currenttobest1":
            v = pop[i] + f * (best - pop[i]) + f * (x[0] - x[1])
        elif mut == "randtobest1":
            v = x[0] + f * (best - x[0]) + f * (x[1] - x[2])
        elif mut == "rand2":
            v = x[0] + f * (x[1] + x[2] - x[3] - x[4])
        else:
            v = best + f * (x[0] + x[1] - x[2] - x[3])
        u = pop[i].copy()
        if xo == "bin":
            jrand = tape.index(d)
            for j in range(d):
                if tape.uniform() < cr or j == jrand:
                    u[j] = v[j]
        else:  # exponential: a wrapping run from a random start, grown while U < CR
            j = tape.index(d)
            u[j] = v[j]
            for _ in range(d - 1):
                if tape.uniform() >= cr:
                    break
                j = (j + 1) % d
                u[j] = v[j]
        for j in range(d):
            if u[j] < lo[j] or u[j] > hi[j]:
                u[j] = lo[j] + tape.uniform() * (hi[j] - lo[j])
        out[i] = u
    return out, f


def de_state(seed: int, n: int = 12, d: int = 6):
    rng = np.random.default_rng(seed)
    lo, hi = np.full(d, -2.0), np.full(d, 3.0)
    pop = rng.uniform(lo, hi, (n, d))
    fit = rng.normal(size=n)
    fit[3] = fit[5] = fit.min() - 1  # a tie for the best: the lower index wins
    return pop, fit, lo, hi, rng.uniform(size=20_000)


@pytest.mark.parametrize("strategy", opt.STRATEGIES)
@pytest.mark.parametrize("seed", [1, 2])
def test_de_strategy_trials_match_numpy(strategy: str, seed: int) -> None:
    pop, fit, lo, hi, tape = de_state(seed)
    empty = np.empty((0, pop.shape[1]))
    mem = np.array([0.5])
    # F = 0.9 and wide mutants force bound repairs too.
    got = ext.de_trials(
        "de", pop, fit, empty, mem, mem, lo, hi, tape,
        f=0.9, cr=0.6, repair="resample", strategy=strategy,
    )  # fmt: skip
    ref_tape = TapeRef(tape)
    want, _ = ref_de_trials(pop, fit, lo, hi, ref_tape, strategy=strategy, f=0.9, cr=0.6)
    np.testing.assert_array_equal(got[0], want)
    assert got[3] == ref_tape.pos
    assert np.all(got[2] == 0.9)


def test_exponential_crossover_takes_wrapping_runs() -> None:
    pop, fit, lo, hi, tape = de_state(4, n=40, d=6)
    # Row i is constant (sqrt(i + 2) / 10): a mutant coordinate never equals its parent's.
    pop = np.repeat(np.sqrt(np.arange(40.0) + 2)[:, None] / 10.0, 6, axis=1)
    lo, hi = np.full(6, -1.0), np.full(6, 1.0)
    empty = np.empty((0, 6))
    mem = np.array([0.5])
    got = ext.de_trials(
        "de", pop, fit, empty, mem, mem, lo, hi, tape, f=0.5, cr=0.7, strategy="rand1exp"
    )
    lengths = []
    for i, row in enumerate(got[0]):
        taken = row != pop[i]
        k = int(taken.sum())
        assert 1 <= k <= 6
        if k < 6:
            # One contiguous run on the circle: exactly one place where it starts.
            starts = taken & ~np.roll(taken, 1)
            assert starts.sum() == 1
        lengths.append(k)
    assert len(set(lengths)) > 2  # runs of several lengths occur


@pytest.mark.parametrize("strategy", ["rand1bin", "best1exp"])
def test_dither_draws_one_f_per_generation(strategy: str) -> None:
    pop, fit, lo, hi, tape = de_state(3)
    empty = np.empty((0, pop.shape[1]))
    mem = np.array([0.5])
    got = ext.de_trials(
        "de", pop, fit, empty, mem, mem, lo, hi, tape,
        f=0.5, cr=0.9, repair="resample", strategy=strategy, dither=(0.5, 1.0),
    )  # fmt: skip
    ref_tape = TapeRef(tape)
    want, f = ref_de_trials(
        pop, fit, lo, hi, ref_tape, strategy=strategy, f=0.5, cr=0.9, dither=(0.5, 1.0)
    )
    np.testing.assert_array_equal(got[0], want)
    assert np.all(got[2] == f)
    assert f == 0.5 + tape[0] * 0.5
    assert got[3] == ref_tape.pos


# --- run level ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("strategy", "mutation", "init"),
    [
        ("best1bin", 0.5, "uniform"),
        ("currenttobest1exp", (0.5, 1.0), "lhs"),
        ("rand2bin", 0.5, "sobol"),
        ("rand1exp", (0.4, 0.9), "uniform"),
    ],
)
def test_variant_runs_reproducible_any_thread_count(
    strategy: str, mutation: float | tuple[float, float], init: str
) -> None:
    b = opt.builtin_bounds("rastrigin", 6)
    kw = {"method": "de", "strategy": strategy, "mutation": mutation, "init": init}
    r1 = opt.minimize("rastrigin", b, max_evals=12_000, seed=5, workers=1, **kw)  # type: ignore[arg-type]
    r2 = opt.minimize("rastrigin", b, max_evals=12_000, seed=5, workers=2, **kw)  # type: ignore[arg-type]
    r3 = opt.minimize("rastrigin", b, max_evals=12_000, seed=5, workers=1, **kw)  # type: ignore[arg-type]
    assert np.array_equal(r1.history, r2.history)
    assert np.array_equal(r1.history, r3.history)
    assert np.array_equal(r1.x, r2.x)
    assert r1.nfev == 12_000
    assert np.all(np.diff(r1.history) <= 0)


@pytest.mark.parametrize("strategy", ["best1bin", "currenttobest1bin", "rand2exp", "best2bin"])
def test_variants_converge_on_sphere(strategy: str) -> None:
    r = opt.minimize(
        "sphere", opt.builtin_bounds("sphere", 3), method="de", strategy=strategy,
        max_evals=20_000, seed=2,
    )  # fmt: skip
    assert r.fun < 1e-8, (strategy, r.fun)


def test_immediate_updating_with_best_strategy() -> None:
    b = opt.builtin_bounds("sphere", 3)
    kw = {"method": "de", "strategy": "best1bin", "max_evals": 9000, "seed": 3}
    imm = opt.minimize("sphere", b, updating="immediate", **kw)  # type: ignore[arg-type]
    again = opt.minimize("sphere", b, updating="immediate", **kw)  # type: ignore[arg-type]
    assert np.array_equal(imm.history, again.history)
    assert imm.fun < 1e-6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "de", "strategy": "rand3bin"}, "unknown strategy"),
        ({"strategy": "best1bin"}, "only defined for method='de'"),
        ({"method": "de", "mutation": (0.9, 0.5)}, "dither"),
        ({"method": "de", "mutation": (0.5, 2.5)}, "dither"),
        ({"method": "de", "mutation": (0.5,)}, "dither"),
        ({"mutation": (0.5, 1.0)}, "only defined for method='de'"),
        ({"method": "de", "mutation": 2.5}, "mutation"),
        ({"method": "de", "mutation": "x"}, "mutation"),
        ({"method": "de", "strategy": "rand2bin", "pop_size": 5}, "at least 6"),
        ({"init": "halton"}, "unknown init"),
        ({"init": np.full((6, 2), 2.0)}, "inside the bounds"),
        ({"init": np.full((6, 2), np.nan)}, "inside the bounds"),
        ({"init": np.zeros((6, 3))}, "shape"),
        ({"init": [["a", "b"]]}, "init"),
    ],
)
def test_bad_variant_input_is_rejected(kwargs: dict, match: str) -> None:
    args = {"max_evals": 1000, "seed": 0} | kwargs
    with pytest.raises(InvalidInput, match=match):
        opt.minimize("sphere", [(-1.0, 1.0)] * 2, **args)


def test_sobol_dimension_limit_is_clear() -> None:
    with pytest.raises(InvalidInput, match="at most 64 dimensions"):
        opt.minimize("sphere", [(-1.0, 1.0)] * 65, init="sobol", max_evals=10_000, seed=0)
    with pytest.raises(InvalidInput, match="at most 64"):
        opt.initial_population([(-1.0, 1.0)] * 65, 8, init="sobol", seed=0)


# --- initialisation ------------------------------------------------------------------


@pytest.mark.parametrize("d", [1, 2, 7, 64])
def test_unscrambled_sobol_equals_scipy(d: int) -> None:
    n = 1024
    got = ext.de_sobol_points(n, d)
    want = qmc.Sobol(d, scramble=False).random(n)
    np.testing.assert_array_equal(got, want)


def strata(x: np.ndarray, lo: float, hi: float, n: int) -> np.ndarray:
    return np.floor((x - lo) / (hi - lo) * n).astype(int)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [10, 37, 180])
def test_lhs_puts_one_point_per_stratum(seed: int, n: int) -> None:
    d = 9
    pop = opt.initial_population([(-5.0, 3.0)] * d, n, init="lhs", seed=seed)
    assert pop.shape == (n, d)
    for j in range(d):
        assert sorted(strata(pop[:, j], -5.0, 3.0, n)) == list(range(n))
    # The strata are permuted independently per coordinate.
    assert not np.array_equal(np.argsort(pop[:, 0]), np.argsort(pop[:, 1]))


def test_sobol_init_is_a_shifted_net_and_depends_on_seed() -> None:
    d, n = 10, 256
    a = opt.initial_population([(0.0, 1.0)] * d, n, init="sobol", seed=1)
    b = opt.initial_population([(0.0, 1.0)] * d, n, init="sobol", seed=2)
    assert not np.array_equal(a, b)
    plain = ext.de_sobol_points(n, d)
    for j in range(d):
        # A digital shift keeps the (0, m, 1)-net property: one point per stratum ...
        assert sorted(strata(a[:, j], 0.0, 1.0, n)) == list(range(n))
        # ... and is an XOR of the plain coordinates with one word per dimension.
        words = (a[:, j] * 2.0**32).astype(np.uint64) ^ (plain[:, j] * 2.0**32).astype(np.uint64)
        assert np.all(words == words[0])


@pytest.mark.parametrize("init", opt.INITS)
def test_minimize_starts_from_the_named_init(init: str) -> None:
    b = [(-3.0, 2.0)] * 4
    n = 40
    pop = opt.initial_population(b, n, init=init, seed=8)
    assert np.all(pop >= -3.0)
    assert np.all(pop <= 2.0)
    r = opt.minimize("sphere", b, method="de", pop_size=n, init=init, max_evals=n, seed=8)
    assert r.nfev == n
    assert r.fun == np.min(opt.evaluate_builtin("sphere", pop))
    if init == "uniform":
        # The default layout is unchanged: same run as without init.
        plain = opt.minimize("sphere", b, method="de", pop_size=n, max_evals=400, seed=8)
        named = opt.minimize("sphere", b, method="de", pop_size=n, max_evals=400, seed=8,
                             init="uniform")  # fmt: skip
        assert np.array_equal(plain.history, named.history)


# --- parity with SciPy (statistical) ---------------------------------------------------


def scipy_parity(strategy: str, mutation: float | tuple[float, float]) -> float:
    from scipy.optimize import differential_evolution
    from scipy.stats import ks_2samp

    d, n, evals = 5, 50, 3000
    b = opt.builtin_bounds("rastrigin", d)
    f = np_functions()["rastrigin"]
    ours, theirs = [], []
    for s in range(25):
        init = np.random.default_rng(100 + s).uniform(-5.12, 5.12, (n, d))
        r = opt.minimize(
            f, b, method="de", strategy=strategy, mutation=mutation, init=init,  # type: ignore[arg-type]
            max_evals=evals, seed=s,
        )  # fmt: skip
        ours.append(r.fun)
        sp = differential_evolution(
            f, b, strategy=strategy, mutation=mutation, recombination=0.9, init=init,
            maxiter=evals // n - 1, tol=0, atol=0, polish=False, updating="deferred", rng=s,
        )  # fmt: skip
        assert sp.nfev == evals
        theirs.append(sp.fun)
    return float(ks_2samp(ours, theirs).pvalue)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "mutation"),
    [
        ("best1bin", 0.5),
        ("rand1exp", 0.5),
        ("currenttobest1bin", 0.5),
        ("rand2bin", 0.5),
        ("best1bin", (0.5, 1.0)),
    ],
)
def test_de_strategy_matches_scipy_distribution(
    strategy: str, mutation: float | tuple[float, float]
) -> None:
    """Same initial population, deferred updating, polish off: two-sample KS p > 0.01."""
    p = scipy_parity(strategy, mutation)
    assert p > 0.01, (strategy, mutation, p)


# --- the fast cos(2πx) of the built-in objectives -------------------------------------


def test_fast_cos_objectives_are_accurate_and_exact_at_integers() -> None:
    # D = 1 Rastrigin is 10 + x² - 10 cos 2πx; the reference reduces the argument exactly.
    x = np.random.default_rng(5).uniform(-32.768, 32.768, (20_000, 1))
    r = x[:, 0] - np.round(x[:, 0])
    want = 10 + x[:, 0] ** 2 - 10 * np.cos(2 * np.pi * r)
    got = opt.evaluate_builtin("rastrigin", x)
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-14)
    # cos 2πx = 1 exactly at integers: the minimum and the integer grid are exact.
    assert opt.evaluate_builtin("rastrigin", np.zeros(10))[0] == 0.0
    assert opt.evaluate_builtin("rastrigin", np.array([1.0, -2.0, 3.0]))[0] == 14.0
    assert abs(opt.evaluate_builtin("ackley", np.zeros(10))[0]) <= 4.5e-16
    # Huge inputs take the libm path and stay finite.
    assert np.isfinite(opt.evaluate_builtin("rastrigin", np.array([1e15, 0.3]))[0])
