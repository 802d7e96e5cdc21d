"""Optimiser quality for bench_optimize: success rates over 25 seeds and a COCO-style ECDF.

L-SHADE (ours, lshade2014) against SciPy's differential_evolution (best1bin, popsize 15,
latinhypercube, deferred, polish=False, tol=0) at equal budgets on the six functions of
docs/compute.md §4 and on a few CEC 2014 functions, D = 10, 10^4·D evaluations. Every run
records (evaluations used, best-so-far error) after each generation; the evaluations to
reach each target 1e1..1e-8 give the ECDF (fraction of (run, target) pairs reached
against evaluations / D), drawn as an SVG beside REPORT.md. The runs are independent and
seeded, so they are spread over worker processes; no time is measured here.
"""

from __future__ import annotations

import functools
import math
import multiprocessing as mp
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import differential_evolution

from core.analytics import optimize as opt

D = 10
BUDGET = 10_000 * D
POP = 15  # SciPy's popsize multiplier
TARGETS = tuple(10.0**e for e in range(1, -9, -1))  # 1e1 .. 1e-8
SOLVED = 1e-8
CEC_FUNCTIONS = (1, 9, 17)
SVG = Path(__file__).with_name("optimize_ecdf.svg")
ALGOS = ("L-SHADE", "SciPy DE")


@dataclass(frozen=True, slots=True)
class Run:
    error: float  # final best f - f*
    hits: tuple[float, ...]  # evaluations to reach each target (inf if never)


def to_targets(trace: list[tuple[int, float]], f_star: float) -> tuple[float, ...]:
    """First evaluation count at which the best-so-far error is <= each target."""
    out = []
    for t in TARGETS:
        hit = next((n for n, best in trace if best - f_star <= t), math.inf)
        out.append(float(hit))
    return tuple(out)


@functools.cache
def cec_problem(n: int) -> object:
    """CEC 2014 F<n> at D = 10 with the data shipped inside opfunu (a bench-only dependency)."""
    import opfunu

    from core.analytics.cec2014 import Problem, layout

    base = Path(opfunu.__file__).parent / "cec_based" / "data_2014"
    k, rot, shuf = layout(n)
    shift = np.loadtxt(base / f"shift_data_{n}.txt", ndmin=2)[:k, :D]
    m = np.loadtxt(base / f"M_{n}_D{D}.txt")[: k * D] if rot else None
    s = np.loadtxt(base / f"shuffle_data_{n}_D{D}.txt").reshape(-1)[: k * D] if shuf else None
    return Problem(n, D, shift, m, s)


def objective(
    fn: str | int,
) -> tuple[Callable[[np.ndarray], np.ndarray], list[tuple[float, float]], float]:
    """A batch objective (rows = points), its box and f*."""
    if isinstance(fn, str):
        return (lambda x: opt.evaluate_builtin(fn, x)), opt.builtin_bounds(fn, D), 0.0
    p = cec_problem(fn)
    return p.evaluate, p.bounds, p.f_global  # type: ignore[attr-defined]


def one_run(algo: str, fn: str | int, seed: int) -> Run:
    f, bounds, f_star = objective(fn)
    trace: list[tuple[int, float]] = []
    if algo == "L-SHADE":

        def note(p: opt.Progress) -> None:
            trace.append((p.nfev, p.best))

        if isinstance(fn, str):
            res = opt.minimize(fn, bounds, max_evals=BUDGET, seed=seed, callback=note)
        else:
            res = cec_problem(fn).minimize(max_evals=BUDGET, seed=seed, callback=note)  # type: ignore[attr-defined]
        trace.append((res.nfev, res.fun))
        return Run(res.fun - f_star, to_targets(trace, f_star))
    state = {"points": 0, "best": math.inf}

    def counted(x: np.ndarray) -> np.ndarray:
        rows = x.T  # SciPy passes (D, S) in vectorised mode
        vals = f(np.ascontiguousarray(rows))
        state["points"] += rows.shape[0]
        state["best"] = min(state["best"], float(np.min(vals)))
        trace.append((state["points"], state["best"]))
        return vals

    res = differential_evolution(
        counted, bounds, popsize=POP, maxiter=BUDGET // (POP * D) - 1, tol=0, atol=0,
        polish=False, init="latinhypercube", updating="deferred", rng=seed, vectorized=True,
    )  # fmt: skip
    assert state["points"] <= BUDGET
    return Run(float(res.fun) - f_star, to_targets(trace, f_star))


def run_all(seeds: int, workers: int) -> dict[tuple[str, str | int], list[Run]]:
    jobs = [
        (algo, fn, s)
        for fn in (*opt.BUILTINS, *CEC_FUNCTIONS)
        for algo in ALGOS
        for s in range(seeds)
    ]
    out: dict[tuple[str, str | int], list[Run]] = {}
    if workers > 1:
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            runs = list(pool.map(one_run, *zip(*jobs, strict=True), chunksize=4))
    else:
        runs = [one_run(*j) for j in jobs]
    for (algo, fn, _), r in zip(jobs, runs, strict=True):
        out.setdefault((algo, fn), []).append(r)
    return out


def ecdf(runs: list[Run], xs: np.ndarray) -> np.ndarray:
    """Fraction of (run, target) pairs reached within xs·D evaluations."""
    hits = np.array([h for r in runs for h in r.hits]) / D
    return np.array([np.mean(hits <= x) for x in xs])


def svg_ecdf(path: Path, curves: dict[str, tuple[np.ndarray, np.ndarray, str, str]]) -> None:
    """Step curves of the ECDF on a log x axis, as SVG (no plotting library)."""
    w, h, pad = 680, 380, 70
    xl, xh = 0.0, math.log10(BUDGET / D)

    def px(x: float) -> float:
        return pad + (math.log10(x) - xl) / (xh - xl) * (w - 2 * pad)

    def py(v: float) -> float:
        return h - pad - v * (h - 2 * pad)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="black"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="black"/>',
        f'<text x="{w / 2}" y="{h - 25}" text-anchor="middle">evaluations / D (log)</text>',
        f'<text x="16" y="{h / 2}" transform="rotate(-90 16 {h / 2})" text-anchor="middle">'
        "fraction of (run, target) pairs reached</text>",
        f'<text x="{w / 2}" y="24" text-anchor="middle" font-size="13">ECDF of evaluations to '
        f"targets 1e1..1e-8, D={D}, budget {BUDGET:,}</text>",
    ]
    for e in range(int(xh) + 1):
        x = 10.0**e
        parts.append(f'<text x="{px(x):.1f}" y="{h - pad + 15}" text-anchor="middle">1e{e}</text>')
        parts.append(
            f'<line x1="{px(x):.1f}" y1="{pad}" x2="{px(x):.1f}" y2="{h - pad}" stroke="#eee"/>'
        )
    for v in (0.0, 0.25, 0.5, 0.75, 1.0):
        parts.append(f'<text x="{pad - 6}" y="{py(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    for k, (name, (xs, ys, color, dash)) in enumerate(curves.items()):
        pts = []
        prev = ys[0]
        for x, y in zip(xs, ys, strict=True):
            pts.append(f"{px(x):.1f},{py(prev):.1f}")
            pts.append(f"{px(x):.1f},{py(y):.1f}")
            prev = y
        parts.append(
            f'<polyline points="{" ".join(pts)}" fill="none" stroke="{color}" '
            f'stroke-width="2" stroke-dasharray="{dash}"/>'
        )
        ly = pad + 14 + 16 * k
        parts.append(
            f'<line x1="{pad + 10}" y1="{ly - 4}" x2="{pad + 40}" y2="{ly - 4}" stroke="{color}" '
            f'stroke-width="2" stroke-dasharray="{dash}"/>'
        )
        parts.append(f'<text x="{pad + 46}" y="{ly}">{name}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def cec_speed_lines() -> list[str]:
    """Cost per point of our CEC 2014 batch evaluation (1 thread) against opfunu's evaluate."""
    from opfunu.cec_based import cec2014 as oc

    from benchmarks.common import TABLE_HEAD, Row, median_time

    rows = []
    rng = np.random.default_rng(0)
    for n in (1, 17, 23, 30):
        p = cec_problem(n)
        ref = getattr(oc, f"F{n}2014")(ndim=D)
        x = rng.uniform(-100, 100, (2000, D))
        ours = median_time(lambda p=p, x=x: p.evaluate(x, workers=1)) / len(x)  # type: ignore[attr-defined]
        few = x[:200]
        theirs = median_time(lambda ref=ref, few=few: [ref.evaluate(v) for v in few]) / len(few)
        rows.append(Row(f"CEC2014 F{n}, D={D}, per point", ours, "opfunu .evaluate", theirs))
    return [
        "CEC 2014 evaluation cost per point: our Rust batch (one thread) against opfunu 1.0.4 "
        "(pure Python, one point per call; the values differ for F17-F27, F29, F30 where "
        "opfunu deviates from the definition, see tests/native/test_cec2014.py).",
        "",
        TABLE_HEAD,
        *(r.markdown() for r in rows),
        "",
    ]


def section(seeds: int = 25, workers: int | None = None) -> list[str]:
    """Markdown lines: success table, CEC table, ECDF summary and the SVG link."""
    workers = workers or min(2, os.cpu_count() or 1)
    res = run_all(seeds, workers)

    def cells(algo: str, fn: str | int) -> str:
        errs = [r.error for r in res[(algo, fn)]]
        ok = sum(e <= SOLVED for e in errs)
        return f"{ok}/{len(errs)} | {np.median(errs):.2e}"

    lines = [
        *cec_speed_lines(),
        f"Success rate (error <= 1e-8) and median final error over {seeds} seeds at equal "
        f"budgets (D={D}, {BUDGET:,} evaluations). SciPy gets our Rust batch objective in "
        "vectorised mode (same values); it may stop early when its population collapses.",
        "",
        "| function | L-SHADE success | L-SHADE median error | SciPy DE success "
        "| SciPy DE median error |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {fn} | {cells('L-SHADE', fn)} | {cells('SciPy DE', fn)} |" for fn in opt.BUILTINS]
    lines += [
        "",
        f"CEC 2014 (our Rust port, data from opfunu's files), error = f - F*, D={D}, "
        f"{BUDGET:,} evaluations, {seeds} seeds; L-SHADE evaluates natively "
        "(`Problem.minimize`).",
        "",
        "| function | L-SHADE success | L-SHADE median error | SciPy DE success "
        "| SciPy DE median error |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| CEC2014 F{n} | {cells('L-SHADE', n)} | {cells('SciPy DE', n)} |" for n in CEC_FUNCTIONS
    ]
    groups = {
        "six functions": list(opt.BUILTINS),
        f"CEC2014 F{', F'.join(map(str, CEC_FUNCTIONS))}": list(CEC_FUNCTIONS),
    }
    colors = {"L-SHADE": "#1f77b4", "SciPy DE": "#ff7f0e"}
    curves = {}
    summary = [
        "",
        f"ECDF of evaluations to reach the targets 1e1..1e-8 (COCO style; the count is taken "
        f"at the end of the generation that reached it): fraction of (run, target) pairs "
        f"reached within B evaluations. Plot: [optimize_ecdf.svg]({SVG.name}).",
        "",
        "| algorithm | functions | B = 10·D | B = 100·D | B = 1000·D | B = 10000·D |",
        "|---|---|---|---|---|---|",
    ]
    for (gname, fns), dash in zip(groups.items(), ("", "6 4"), strict=True):
        for algo in ALGOS:
            runs = [r for fn in fns for r in res[(algo, fn)]]
            hits = np.array([h / D for run in runs for h in run.hits])
            xs = np.unique(np.concatenate([[1.0, BUDGET / D], hits[np.isfinite(hits)]]))
            curves[f"{algo}, {gname}"] = (xs, ecdf(runs, xs), colors[algo], dash)
            at = ecdf(runs, np.array([10.0, 100.0, 1000.0, 10000.0]))
            summary.append(f"| {algo} | {gname} | " + " | ".join(f"{v:.2f}" for v in at) + " |")
    svg_ecdf(SVG, curves)
    return lines + summary + ["", f"![ECDF of evaluations to target]({SVG.name})"]
