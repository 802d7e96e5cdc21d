"""DE / SHADE / L-SHADE: benchmark functions, one generation against a numpy
reference fed the same injected uniforms, and run-level behaviour."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from scipy.optimize import rosen

from core.analytics import optimize as opt
from core.errors import InvalidInput
from core.native import ext

# --- benchmark functions ------------------------------------------------------


def np_functions() -> dict[str, object]:
    def ackley(x: np.ndarray) -> float:
        d = x.size
        return float(
            -20 * np.exp(-0.2 * np.sqrt(np.sum(x**2) / d))
            - np.exp(np.sum(np.cos(2 * np.pi * x)) / d)
            + 20
            + np.e
        )

    def griewank(x: np.ndarray) -> float:
        i = np.arange(1, x.size + 1)
        return float(1 + np.sum(x**2) / 4000 - np.prod(np.cos(x / np.sqrt(i))))

    return {
        "sphere": lambda x: float(np.sum(x**2)),
        "rosenbrock": lambda x: float(rosen(x)),
        "rastrigin": lambda x: float(10 * x.size + np.sum(x**2 - 10 * np.cos(2 * np.pi * x))),
        "ackley": ackley,
        "griewank": griewank,
        "schwefel": lambda x: float(
            418.9828872724338 * x.size - np.sum(x * np.sin(np.sqrt(np.abs(x))))
        ),
    }


@pytest.mark.parametrize("name", list(opt.BUILTINS))
def test_builtin_values_match_numpy_and_scipy(name: str) -> None:
    rng = np.random.default_rng(3)
    lo, hi = opt.BUILTINS[name]
    x = rng.uniform(lo, hi, size=(50, 7))
    got = opt.evaluate_builtin(name, x)
    want = np.array([np_functions()[name](row) for row in x])  # type: ignore[operator]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_known_optima() -> None:
    d = 10
    assert opt.evaluate_builtin("sphere", np.zeros(d))[0] == 0.0
    assert opt.evaluate_builtin("rosenbrock", np.ones(d))[0] == 0.0
    for name in ("rastrigin", "ackley", "griewank"):
        assert abs(opt.evaluate_builtin(name, np.zeros(d))[0]) < 1e-12
    assert abs(opt.evaluate_builtin("schwefel", np.full(d, 420.968746))[0]) < 1e-10 * d


# --- one generation with injected randomness -------------------------------------


class TapeRef:
    def __init__(self, u: np.ndarray) -> None:
        self.u, self.pos = u, 0

    def uniform(self) -> float:
        v = float(self.u[self.pos])
        self.pos += 1
        return v

    def index(self, n: int) -> int:
        return min(int(self.uniform() * n), n - 1)

    def normal(self) -> float:
        u1, u2 = self.uniform(), self.uniform()
        return float(np.sqrt(-2.0 * np.log(1.0 - u1)) * np.cos(2.0 * np.pi * u2))

    def distinct(self, n: int, avoid: list[int]) -> int:
        while True:
            r = self.index(n)
            if r not in avoid:
                return r


def ref_trials(method, pop, fit, archive, mem_cr, mem_f, lo, hi, tape, *, p, f, cr, repair):
    """Numpy reference of the trial construction (SHADE / L-SHADE / DE)."""
    n, d = pop.shape
    order = np.argsort(fit, kind="stable")
    pa = np.vstack([pop, archive]) if archive.size else pop
    out, crs, fs = np.empty_like(pop), np.empty(n), np.empty(n)
    for i in range(n):
        if method == "de":
            r1 = tape.distinct(n, [i])
            r2 = tape.distinct(n, [i, r1])
            r3 = tape.distinct(n, [i, r1, r2])
            v = pop[r1] + f * (pop[r2] - pop[r3])
            cri, fi = cr, f
        else:
            k = tape.index(mem_cr.size)
            cri = 0.0 if mem_cr[k] == -1.0 else min(max(mem_cr[k] + 0.1 * tape.normal(), 0), 1)
            while True:
                fi = mem_f[k] + 0.1 * np.tan(np.pi * (tape.uniform() - 0.5))
                if fi > 0:
                    fi = min(fi, 1.0)
                    break
            pi = 2 / n + tape.uniform() * (0.2 - 2 / n) if method == "shade" else p
            nb = int(min(max(round(pi * n), 2), n))
            pbest = pop[order[tape.index(nb)]]
            r1 = tape.distinct(n, [i])
            r2 = tape.distinct(pa.shape[0], [i, r1])
            v = pop[i] + fi * (pbest - pop[i]) + fi * (pop[r1] - pa[r2])
        jrand = tape.index(d)
        u = np.array(
            [v[j] if (tape.uniform() < cri or j == jrand) else pop[i, j] for j in range(d)]
        )
        for j in range(d):
            if u[j] < lo[j] or u[j] > hi[j]:
                if repair == "resample":
                    u[j] = lo[j] + tape.uniform() * (hi[j] - lo[j])
                else:
                    u[j] = (lo[j] + pop[i, j]) / 2 if u[j] < lo[j] else (hi[j] + pop[i, j]) / 2
        out[i], crs[i], fs[i] = u, cri, fi
    return out, crs, fs


def ref_select(method, pop, fit, archive, mem_cr, mem_f, pos, tr, tcr, tf, tfit, tape, **kw):
    """Numpy reference of selection, archive, memory update (Lehmer, terminal CR) and LPSR."""
    pop, fit, mem_cr, mem_f = pop.copy(), fit.copy(), mem_cr.copy(), mem_f.copy()
    arc = [row.copy() for row in archive]
    n = pop.shape[0]
    cap = max(round(kw["arc_rate"] * n), 1)
    s_cr, s_f, s_df = [], [], []
    for i, v in enumerate(tfit):
        if v > fit[i]:
            continue
        if v < fit[i] and method != "de":
            if len(arc) < cap:
                arc.append(pop[i].copy())
            else:
                arc[tape.index(len(arc))] = pop[i].copy()
            s_cr.append(tcr[i])
            s_f.append(tf[i])
            s_df.append(abs(fit[i] - v))
        pop[i], fit[i] = tr[i], v
    nfev = kw["nfev"] + len(tfit)
    if method != "de" and s_f:
        w = np.array(s_df) / np.sum(s_df)
        sf, sc = np.array(s_f), np.array(s_cr)
        mem_f[pos] = np.sum(w * sf**2) / np.sum(w * sf)
        if method == "lshade":
            terminal = mem_cr[pos] == -1.0 or sc.max() == 0.0
            mem_cr[pos] = -1.0 if terminal else np.sum(w * sc**2) / np.sum(w * sc)
        else:
            mem_cr[pos] = np.sum(w * sc)
        pos = (pos + 1) % mem_f.size
    if method == "lshade":
        frac = min(nfev, kw["max_evals"]) / kw["max_evals"]
        target = max(round(kw["n_init"] + (kw["n_min"] - kw["n_init"]) * frac), kw["n_min"])
        if target < pop.shape[0]:
            keep = np.sort(np.argsort(fit, kind="stable")[:target])
            pop, fit = pop[keep], fit[keep]
        cap = max(round(kw["arc_rate"] * pop.shape[0]), 1)
        while len(arc) > cap:
            k = tape.index(len(arc))
            arc[k] = arc[-1]
            arc.pop()
    d = pop.shape[1]
    return pop, fit, np.array(arc).reshape(-1, d), mem_cr, mem_f, pos, tape.pos


def state(seed: int, n: int = 12, d: int = 5, n_arc: int = 4):
    rng = np.random.default_rng(seed)
    lo, hi = np.full(d, -2.0), np.full(d, 3.0)
    pop = rng.uniform(lo, hi, (n, d))
    fit = rng.normal(size=n)
    fit[3] = fit[5]  # a tie, to pin the stable order
    archive = rng.uniform(lo, hi, (n_arc, d))
    mem_cr = np.array([0.5, 0.8, -1.0, 0.2])
    mem_f = np.array([0.5, 0.7, 0.3, 0.9])
    return pop, fit, archive, mem_cr, mem_f, lo, hi, rng.uniform(size=20_000)


@pytest.mark.parametrize("method", ["lshade", "shade", "de"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_trials_match_numpy_reference(method: str, seed: int) -> None:
    pop, fit, archive, mem_cr, mem_f, lo, hi, tape = state(seed)
    # F = 0.9 and wide mutants force many bound repairs.
    kw = {"p": 0.11, "f": 0.9, "cr": 0.6}
    repair = "resample" if method == "de" else "midpoint"
    got = ext.de_trials(method, pop, fit, archive, mem_cr, mem_f, lo, hi, tape, **kw, repair=repair)
    ref_tape = TapeRef(tape)
    want = ref_trials(
        method, pop, fit, archive, mem_cr, mem_f, lo, hi, ref_tape, **kw, repair=repair
    )
    np.testing.assert_allclose(got[0], want[0], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(got[2], want[2], rtol=1e-13, atol=1e-15)
    assert got[3] == ref_tape.pos
    assert np.all(got[0] >= lo)
    assert np.all(got[0] <= hi)
    if method != "de":
        # slot 2 holds the terminal value: whoever drew it has CR = 0
        assert np.any(got[1] == 0.0)


@pytest.mark.parametrize("method", ["lshade", "shade", "de"])
@pytest.mark.parametrize("nfev", [100, 700])
def test_selection_archive_memory_lpsr_match_numpy(method: str, nfev: int) -> None:
    pop, fit, archive, mem_cr, mem_f, lo, hi, tape = state(7)
    rng = np.random.default_rng(11)
    trials = rng.uniform(lo, hi, pop.shape)
    tcr = rng.uniform(size=pop.shape[0])
    tcr[:3] = 0.0
    tf = rng.uniform(0.1, 1, size=pop.shape[0])
    tfit = fit + rng.normal(scale=0.5, size=fit.size)
    tfit[0] = fit[0]  # equal: replaces, but is not a success
    kw = {"nfev": nfev, "n_init": 12, "max_evals": 1000, "n_min": 4, "arc_rate": 0.5}
    for pos in (0, 2):
        got = ext.de_select(
            method, pop, fit, archive, mem_cr, mem_f, pos, trials, tcr, tf, tfit, tape, **kw
        )
        want = ref_select(
            method, pop, fit, archive, mem_cr, mem_f, pos, trials, tcr, tf, tfit,
            TapeRef(tape), **kw,
        )  # fmt: skip
        for g, w in zip(got[:5], want[:5], strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-14, atol=0)
        assert got[5:] == want[5:]
    if method == "lshade" and nfev == 700:
        assert got[0].shape[0] == ext.de_lpsr_size(12, 4, nfev + 12, 1000) < 12


def test_terminal_cr_rule() -> None:
    pop, fit, archive, mem_cr, mem_f, _lo, _hi, tape = state(5)
    n = pop.shape[0]
    tfit = fit - 1.0  # every trial strictly better
    kw = {"nfev": 0, "n_init": n, "max_evals": 10**6, "arc_rate": 2.6}
    zero = np.zeros(n)
    tf = np.full(n, 0.5)
    out = ext.de_select(
        "lshade", pop, fit, archive, mem_cr, mem_f, 0, pop, zero, tf, tfit, tape, **kw
    )
    assert out[3][0] == -1.0  # max S_CR == 0 -> terminal
    out = ext.de_select(
        "lshade", pop, fit, archive, mem_cr, mem_f, 2, pop, np.full(n, 0.9), tf, tfit, tape, **kw
    )
    assert out[3][2] == -1.0  # sticky once terminal
    out = ext.de_select(
        "shade", pop, fit, archive, mem_cr, mem_f, 0, pop, zero, tf, tfit, tape, **kw
    )
    assert out[3][0] == 0.0  # SHADE: plain weighted mean


def test_lpsr_sequence_matches_formula() -> None:
    n_init, n_min, max_evals = 180, 4, 100_000
    for nfev in range(0, max_evals + 1, 997):
        want = max(round(n_init + (n_min - n_init) * nfev / max_evals), n_min)
        assert ext.de_lpsr_size(n_init, n_min, nfev, max_evals) == want


def test_run_population_shrinks_to_n_min() -> None:
    res = opt.minimize("sphere", opt.builtin_bounds("sphere", 5), max_evals=9000, seed=4)
    assert res.final_pop_size == 4
    assert res.nfev == 9000
    assert res.history.size == res.nit + 1
    assert np.all(np.diff(res.history) <= 0)


def test_generation_stream_is_splitmix64_keyed_by_seed_and_generation() -> None:
    """The run's stream re-derived in plain Python from splitmix64.c (Vigna):
    key = mix(mix(seed ^ purpose·γ) + generation), word c = mix(key + c·γ),
    uniform = (word >> 11)·2^-53."""
    mask, gamma = 2**64 - 1, 0x9E3779B97F4A7C15

    def mix(z: int) -> int:
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return z ^ (z >> 31)

    de_generation = 2
    for seed, generation in [(0, 0), (1, 1), (2**64 - 1, 7), (12345, 430)]:
        state = mix((mix(seed ^ (de_generation * gamma & mask)) + generation) & mask)
        want = []
        for _ in range(5):
            state = (state + gamma) & mask
            want.append((mix(state) >> 11) * 2.0**-53)
        got = ext.de_stream_uniforms(seed, generation, 5)
        assert got.tolist() == want


# --- run level --------------------------------------------------------------------


def test_python_scalar_vectorized_and_builtin_agree_bitwise() -> None:
    # The same objective values through all three paths: the runs must be identical.
    b = opt.builtin_bounds("rastrigin", 4)
    a = opt.minimize("rastrigin", b, max_evals=3000, seed=9)
    s = opt.minimize(lambda x: float(opt.evaluate_builtin("rastrigin", x)[0]), b,
                     max_evals=3000, seed=9)  # fmt: skip
    v = opt.minimize(lambda X: opt.evaluate_builtin("rastrigin", X), b, max_evals=3000, seed=9,
                     vectorized=True)  # fmt: skip
    assert np.array_equal(s.history, a.history)
    assert np.array_equal(v.history, a.history)
    assert np.array_equal(s.x, a.x)
    assert a.nfev == s.nfev == v.nfev == 3000
    # A numpy objective (libm-style cos) gives a run of the same quality.
    f = np_functions()["rastrigin"]
    n = opt.minimize(f, b, max_evals=3000, seed=9)  # type: ignore[arg-type]
    assert n.nfev == 3000
    assert n.history[0] == pytest.approx(a.history[0], rel=1e-12)


@pytest.mark.parametrize("method", ["lshade", "shade", "de"])
def test_same_seed_same_run_any_thread_count(method: str) -> None:
    b = opt.builtin_bounds("ackley", 8)
    r1 = opt.minimize("ackley", b, method=method, max_evals=20_000, seed=5, workers=1)
    r2 = opt.minimize("ackley", b, method=method, max_evals=20_000, seed=5, workers=2)
    r3 = opt.minimize("ackley", b, method=method, max_evals=20_000, seed=6, workers=2)
    r4 = opt.minimize("ackley", b, method=method, max_evals=20_000, seed=5, workers=-1)
    assert np.array_equal(r1.history, r4.history)
    assert np.array_equal(r1.history, r2.history)
    assert np.array_equal(r1.x, r2.x)
    assert not np.array_equal(r1.history, r3.history)


def test_python_workers_thread_pool_matches_serial() -> None:
    b = [(-5.0, 5.0)] * 3
    f = np_functions()["sphere"]
    a = opt.minimize(f, b, max_evals=2000, seed=1)  # type: ignore[arg-type]
    w = opt.minimize(f, b, max_evals=2000, seed=1, workers=2)  # type: ignore[arg-type]
    assert np.array_equal(a.history, w.history)


def test_target_stagnation_callback_and_cancel() -> None:
    b = opt.builtin_bounds("sphere", 3)
    r = opt.minimize("sphere", b, max_evals=100_000, seed=1, target=1e-6)
    assert r.success
    assert r.stop == "target"
    assert r.fun <= 1e-6
    assert r.nfev < 100_000
    seen: list[opt.Progress] = []
    r = opt.minimize(
        "sphere", b, max_evals=50_000, seed=1, callback=lambda p: len(seen) > 4 or seen.append(p)
    )
    assert r.stop == "cancelled"
    assert not r.success
    assert len(seen) == 5
    assert [p.generation for p in seen] == list(range(5))
    assert 0 < seen[-1].fraction < 1
    ev = threading.Event()
    ev.set()
    r = opt.minimize("sphere", b, max_evals=50_000, seed=1, cancel=ev)
    assert r.stop == "cancelled"
    assert r.nit == 0
    r = opt.minimize(lambda x: 1.0, b, max_evals=50_000, seed=1, stagnation=3)
    assert r.stop == "stagnation"
    assert r.nit == 3


def test_de_classic_and_shade_converge() -> None:
    for method in ("de", "shade"):
        r = opt.minimize(
            "sphere", opt.builtin_bounds("sphere", 3), method=method, max_evals=20_000, seed=2
        )  # type: ignore[arg-type]
        assert r.fun < 1e-8, (method, r.fun)
    r = opt.minimize("sphere", [(-1, 1)] * 2, preset="lshade_cec21", max_evals=3000, seed=1)
    assert r.mem_f.size == 5


def test_immediate_updating_and_collapse_stop() -> None:
    b = opt.builtin_bounds("sphere", 3)
    imm = opt.minimize("sphere", b, method="de", updating="immediate", max_evals=30_000, seed=1)
    deferred = opt.minimize("sphere", b, method="de", max_evals=30_000, seed=1)
    assert imm.fun < 1e-8
    assert imm.nfev == 30_000
    assert not np.array_equal(imm.history, deferred.history)
    r = opt.minimize("sphere", b, max_evals=100_000, seed=1, tol=0.0, atol=1e-6)
    assert r.stop == "collapse"
    assert r.success
    assert r.nfev < 100_000


def test_init_population_is_used() -> None:
    init = np.random.default_rng(0).uniform(-1, 1, (20, 2))
    r = opt.minimize("sphere", [(-1, 1)] * 2, method="de", init=init, max_evals=20, seed=0)
    assert r.nfev == 20
    assert r.fun == pytest.approx(np.min(np.sum(init**2, axis=1)), rel=1e-15)


def test_objective_errors_propagate() -> None:
    def bad(x: np.ndarray) -> float:
        raise ZeroDivisionError("boom")

    with pytest.raises(ZeroDivisionError):
        opt.minimize(bad, [(0, 1)], max_evals=100, seed=0)
    with pytest.raises(ValueError, match="must return 5 values"):
        opt.minimize(
            lambda X: np.zeros(2), [(0, 1)], max_evals=100, seed=0, vectorized=True, pop_size=5
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"f": "nope"}, "unknown objective"),
        ({"bounds": [(1, 0)]}, "low < high"),
        ({"bounds": [(0, np.inf)]}, "finite"),
        ({"bounds": []}, "pairs"),
        ({"method": "pso"}, "unknown method"),
        ({"max_evals": 0}, "max_evals"),
        ({"max_evals": 5}, "at least the population"),
        ({"seed": -1}, "seed"),
        ({"workers": 0}, "workers"),
        ({"preset": "x"}, "preset"),
        ({"f": 3}, "callable"),
        ({"init": np.zeros((3, 5))}, "init"),
        ({"updating": "later"}, "updating"),
        ({"updating": "immediate"}, "only defined"),
        ({"tol": -1.0}, "tol"),
    ],
)
def test_bad_input_is_rejected(kwargs: dict, match: str) -> None:
    args = {"f": "sphere", "bounds": [(-1.0, 1.0)] * 2, "max_evals": 1000, "seed": 0} | kwargs
    f, bounds = args.pop("f"), args.pop("bounds")
    with pytest.raises(InvalidInput, match=match):
        opt.minimize(f, bounds, **args)


def test_seed_none_is_reported_and_reusable() -> None:
    r = opt.minimize("sphere", [(-1, 1)] * 2, max_evals=500)
    again = opt.minimize("sphere", [(-1, 1)] * 2, max_evals=500, seed=r.seed)
    assert np.array_equal(r.history, again.history)


# --- statistical (slow) -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", list(opt.BUILTINS))
def test_lshade_success_rate_d10(name: str) -> None:
    """L-SHADE (lshade2014) at D = 10 and 1e5 evaluations: >= 9/10 seeds reach 1e-8."""
    b = opt.builtin_bounds(name, 10)
    wins = sum(opt.minimize(name, b, max_evals=100_000, seed=s).fun <= 1e-8 for s in range(10))
    assert wins >= 9, f"{name}: {wins}/10"


@pytest.mark.slow
def test_classic_de_matches_scipy_distribution() -> None:
    """rand/1/bin, F=0.5, CR=0.9, same initial population, deferred: KS p > 0.01."""
    from scipy.optimize import differential_evolution
    from scipy.stats import ks_2samp

    d, n, evals = 5, 50, 3000
    b = opt.builtin_bounds("rastrigin", d)
    f = np_functions()["rastrigin"]
    ours, theirs = [], []
    for s in range(25):
        init = np.random.default_rng(100 + s).uniform(-5.12, 5.12, (n, d))
        r = opt.minimize(f, b, method="de", init=init, max_evals=evals, seed=s, repair="resample")  # type: ignore[arg-type]
        ours.append(r.fun)
        sp = differential_evolution(
            f, b, strategy="rand1bin", mutation=0.5, recombination=0.9, init=init,
            maxiter=evals // n - 1, tol=0, atol=0, polish=False, updating="deferred", rng=s,
        )  # fmt: skip
        theirs.append(sp.fun)
    assert ks_2samp(ours, theirs).pvalue > 0.01, (np.median(ours), np.median(theirs))
