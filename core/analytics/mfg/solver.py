"""The MFG solver façade over rust/kernels/src/mfg: validation, the two problems, the
pure Fokker–Planck step, and background solves with progress and cancel."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.analytics.mfg.closed_form import (
    CrowdingParams,
    LQParams,
    crowding_closed_form,
    lq_closed_form,
)
from core.errors import HftError, InvalidInput
from core.native import ext

Array = NDArray[np.float64]
Method = Literal["picard", "fictitious_play", "anderson"]
METHODS: tuple[str, ...] = ("picard", "fictitious_play", "anderson")
Progress = Callable[[int, float], None]

MAX_NODES = 5001
MAX_STEPS = 20_000
MAX_CELLS = 4_000_000  # the solve keeps ~7 arrays of this size


class SolveCancelled(HftError):
    """The caller cancelled a running solve."""


@dataclass(frozen=True, slots=True)
class MFGSolution:
    """The equilibrium on the grid. Rows of the matrices are time levels."""

    t: Array  # (nt + 1,)
    x: Array  # (n,)
    m: Array  # density (nt + 1, n), Σ m Δx = 1 on every row
    u: Array  # value function (nt + 1, n), maximisation convention
    control: Array  # ν*(t_k, x) used on step k, (nt, n)
    field: Array  # the mean-field object the agents took as given (μ or m̄)
    mu: Array  # mean control ∫ ν* m on each step, (nt,)
    mean: Array  # (nt + 1,)
    var: Array  # (nt + 1,)
    diagnostics: dict[str, Any]


def _finite(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise InvalidInput(f"{name} must be finite, got {v}")
    return v


def _positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    v = _finite(name, value)
    if v < 0 or (v == 0 and not allow_zero):
        raise InvalidInput(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {v}")
    return v


def _grid_size(n: object, nt: object) -> tuple[int, int]:
    for name, v in (("n", n), ("nt", nt)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise InvalidInput(f"{name} must be an int, got {type(v).__name__}")
    assert isinstance(n, int)
    assert isinstance(nt, int)
    if not 11 <= n <= MAX_NODES:
        raise InvalidInput(f"n (space nodes) must be in [11, {MAX_NODES}], got {n}")
    if not 10 <= nt <= MAX_STEPS:
        raise InvalidInput(f"nt (time steps) must be in [10, {MAX_STEPS}], got {nt}")
    if n * (nt + 1) > MAX_CELLS:
        raise InvalidInput(
            f"grid too large: n * (nt + 1) = {n * (nt + 1):,} cells, the limit is {MAX_CELLS:,}"
        )
    return n, nt


def _check_domain(lo: float, hi: float, low_mean: float, high_mean: float, sd: float) -> None:
    """The density must be negligible at the edges: 6 sd beyond the extreme means."""
    if not hi > lo:
        raise InvalidInput(f"the domain needs lo < hi, got [{lo}, {hi}]")
    need_lo, need_hi = low_mean - 6.0 * sd, high_mean + 6.0 * sd
    if need_lo < lo or need_hi > hi:
        raise InvalidInput(
            f"the domain [{lo:g}, {hi:g}] is too narrow: the population reaches "
            f"[{need_lo:.3g}, {need_hi:.3g}] (6 standard deviations beyond the extreme means); "
            "widen lo/hi"
        )


def _method(method: str, damping: object) -> float:
    if method not in METHODS:
        raise InvalidInput(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    d = _finite("damping", damping)
    if not 0 < d <= 1:
        raise InvalidInput(f"damping must be in (0, 1], got {d}")
    return d


def _run(
    *,
    x: Array,
    m0: Array,
    init: Array,
    t_end: float,
    nt: int,
    kwargs: dict[str, Any],
    method: str,
    damping: float,
    tol: float,
    max_iter: int,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> MFGSolution:
    callback: Callable[[int, float], bool] | None = None
    if progress is not None or cancel is not None:

        def callback(k: int, residual: float) -> bool:
            if progress is not None:
                progress(k, residual)
            return cancel is not None and cancel.is_set()

    start = time.perf_counter()
    try:
        raw = ext.mfg_solve(
            m0,
            init,
            a=float(x[0]),
            b=float(x[-1]),
            t_end=t_end,
            nt=nt,
            method=method,
            damping=damping,
            tol=tol,
            max_iter=max_iter,
            callback=callback,
            report_every=0.1 if progress is not None else 0.05,
            **kwargs,
        )
    except ext.CancelledError as exc:
        raise SolveCancelled("the MFG solve was cancelled") from exc
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    elapsed = time.perf_counter() - start
    dx = float(x[1] - x[0])
    m = raw["m"]
    control = raw["nu"]
    mu = np.einsum("ij,ij->i", control, m[:-1]) * dx
    edge = float(np.max(m[:, 0] + m[:, -1]) * dx)
    diagnostics: dict[str, Any] = {
        "iterations": int(raw["iterations"]),
        "converged": bool(raw["converged"]),
        "residuals": raw["residuals"].tolist(),
        "density_changes": raw["density_changes"].tolist(),
        "mass_error": float(raw["mass_error"]),
        "min_density": float(raw["min_density"]),
        "clipped": int(raw["clipped"]),
        "edge_mass": edge,
        "method": method,
        "damping": None if method == "fictitious_play" else damping,
        "tol": tol,
        "n": int(x.size),
        "nt": nt,
        "seconds": elapsed,
    }
    return MFGSolution(
        t=np.linspace(0.0, t_end, nt + 1),
        x=x,
        m=m,
        u=raw["u"],
        control=control,
        field=raw["field"],
        mu=mu,
        mean=raw["mean"],
        var=raw["var"],
        diagnostics=diagnostics,
    )


def _max_iter(max_iter: object) -> int:
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise InvalidInput(f"max_iter must be a positive int, got {max_iter!r}")
    return max_iter


def _initial_guess(init: float | ArrayLike, size: int) -> Array:
    if isinstance(init, int | float) and not isinstance(init, bool):
        return np.full(size, _finite("init", init))
    arr = np.ascontiguousarray(init, dtype=np.float64)
    if arr.shape != (size,):
        raise InvalidInput(f"init must be a number or an array of {size} values, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise InvalidInput("init must be finite")
    return arr


def gaussian_density(x: Array, mean: float, var: float) -> Array:
    """N(mean, var) sampled at the nodes and normalised to Σ m Δx = 1."""
    m = np.exp(-((x - mean) ** 2) / (2.0 * var))
    return np.asarray(m / (m.sum() * (x[1] - x[0])))


def fokker_planck(
    x: ArrayLike, m0: ArrayLike, control: ArrayLike, t_end: float, eps: float
) -> tuple[Array, dict[str, Any]]:
    """Moves the density m0 on the uniform nodes x under a given node control (nt, n) with
    diffusion eps, using the solver's own Fokker–Planck step. Returns (m, diagnostics)."""
    xs = np.ascontiguousarray(x, dtype=np.float64)
    if xs.ndim != 1 or xs.size < 3 or not np.all(np.diff(xs) > 0):
        raise InvalidInput("x must be an increasing 1-D grid of at least 3 nodes")
    if not np.allclose(np.diff(xs), xs[1] - xs[0], rtol=1e-9, atol=0.0):
        raise InvalidInput("x must be uniformly spaced")
    dens = np.ascontiguousarray(m0, dtype=np.float64)
    nu = np.ascontiguousarray(control, dtype=np.float64)
    if nu.ndim != 2:
        raise InvalidInput(f"control must be 2-D (nt, n), got shape {nu.shape}")
    try:
        raw = ext.mfg_fokker_planck(
            dens,
            nu,
            a=float(xs[0]),
            b=float(xs[-1]),
            t_end=_positive("t_end", t_end),
            eps=_positive("eps", eps, allow_zero=True),
        )
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    diagnostics = {
        "mass_error": float(raw["mass_error"]),
        "min_density": float(raw["min_density"]),
        "clipped": int(raw["clipped"]),
    }
    return raw["m"], diagnostics


def solve_crowding(
    params: CrowdingParams | None = None,
    *,
    n: int = 361,
    nt: int = 400,
    method: Method = "picard",
    damping: float = 0.5,
    tol: float = 1e-10,
    max_iter: int = 500,
    init: float | ArrayLike = 0.0,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> MFGSolution:
    """Problem A on n nodes and nt steps. `init` is the initial guess of μ (a constant or nt
    values). method: "picard" (damped by `damping`, stops when the step is below tol),
    "fictitious_play" (1/(k+1) averaging; O(1/k), stops on the residual) or "anderson"
    (damped Picard with Anderson mixing of depth 5; stops on the residual).
    `progress(iteration, residual)` is called after the first iteration and then about
    every 0.1 s, from the solving thread; setting `cancel` stops the solve with
    SolveCancelled."""
    setup = _crowding_setup(params, n, nt, method, damping, tol, max_iter, init)
    return _run(**setup, progress=progress, cancel=cancel)


def _crowding_setup(
    params: CrowdingParams | None,
    n: int,
    nt: int,
    method: str,
    damping: float,
    tol: float,
    max_iter: int,
    init: float | ArrayLike,
) -> dict[str, Any]:
    p = params or CrowdingParams()
    for name in ("alpha", "E0", "lo", "hi"):
        _finite(name, getattr(p, name))
    for name in ("kappa", "T", "V0"):
        _positive(name, getattr(p, name))
    for name in ("A", "eps"):
        _positive(name, getattr(p, name), allow_zero=True)
    # φ > 0: the closed form (used to size the domain and to check the result) needs it
    _positive("phi", p.phi)
    n, nt = _grid_size(n, nt)
    damping = _method(method, damping)
    cf = crowding_closed_form(p, np.linspace(0.0, p.T, 101))
    if not (np.all(np.isfinite(cf.E)) and np.all(np.isfinite(cf.V))):
        raise InvalidInput("these parameters overflow the closed form; use moderate values")
    sd = math.sqrt(float(np.max(cf.V)))
    _check_domain(p.lo, p.hi, float(np.min(cf.E)), float(np.max(cf.E)), sd)
    x = np.linspace(p.lo, p.hi, n)
    kwargs = {
        "kappa": p.kappa,
        "eps": p.eps,
        "phi": p.phi,
        "g2": p.A,
        "coupling": "controls",
        "alpha": p.alpha,
    }
    return {
        "x": x,
        "m0": gaussian_density(x, p.E0, p.V0),
        "init": _initial_guess(init, nt),
        "t_end": p.T,
        "nt": nt,
        "kwargs": kwargs,
        "method": method,
        "damping": damping,
        "tol": _positive("tol", tol),
        "max_iter": _max_iter(max_iter),
    }


def solve_lq(
    params: LQParams | None = None,
    *,
    n: int = 361,
    nt: int = 400,
    method: Method = "picard",
    damping: float = 0.5,
    tol: float = 1e-10,
    max_iter: int = 500,
    init: float | ArrayLike | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> MFGSolution:
    """Problem B. The mean-field object is the mean path m̄ (nt + 1 values); `init`
    defaults to the initial mean held constant. The value function is returned in the
    maximisation convention, u = -(P x²/2 + S x + R). Progress and cancel as solve_crowding."""
    setup = _lq_setup(params, n, nt, method, damping, tol, max_iter, init)
    return _run(**setup, progress=progress, cancel=cancel)


def _lq_setup(
    params: LQParams | None,
    n: int,
    nt: int,
    method: str,
    damping: float,
    tol: float,
    max_iter: int,
    init: float | ArrayLike | None,
) -> dict[str, Any]:
    p = params or LQParams()
    for name in ("kappa_m", "kappa_T", "mean0", "lo", "hi"):
        _finite(name, getattr(p, name))
    for name in ("q", "T", "var0"):
        _positive(name, getattr(p, name))
    for name in ("c_T", "sigma"):
        _positive(name, getattr(p, name), allow_zero=True)
    n, nt = _grid_size(n, nt)
    damping = _method(method, damping)
    cf = lq_closed_form(p, np.linspace(0.0, p.T, 101))
    sd = math.sqrt(float(np.max(cf.var)))
    _check_domain(p.lo, p.hi, float(np.min(cf.mean)), float(np.max(cf.mean)), sd)
    x = np.linspace(p.lo, p.hi, n)
    kwargs = {
        "kappa": 0.5,
        "eps": 0.5 * p.sigma**2,
        "phi": 0.5 * p.q,
        "g2": 0.5 * p.c_T,
        "coupling": "mean",
        "kappa_m": p.kappa_m,
        "kappa_t": p.kappa_T,
    }
    return {
        "x": x,
        "m0": gaussian_density(x, p.mean0, p.var0),
        "init": _initial_guess(p.mean0 if init is None else init, nt + 1),
        "t_end": p.T,
        "nt": nt,
        "kwargs": kwargs,
        "method": method,
        "damping": damping,
        "tol": _positive("tol", tol),
        "max_iter": _max_iter(max_iter),
    }


# --- background solves for the app ---------------------------------------------------------


class SolveJob:
    """One solve running in a daemon thread; poll it, cancel it.

    The inputs are validated before the thread starts (InvalidInput at once).
    `progress`, `result` and `error` are safe to read from any thread.
    """

    def __init__(self, setup: dict[str, Any]) -> None:
        self._setup = setup
        self.max_iter = int(setup["max_iter"])
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._progress: tuple[int, float] | None = None
        self.result: MFGSolution | None = None
        self.error: str | None = None
        self.cancelled = False
        self._thread = threading.Thread(target=self._work, name="mfg-solve", daemon=True)

    def start(self) -> SolveJob:
        self._thread.start()
        return self

    def _on_progress(self, k: int, residual: float) -> None:
        with self._lock:
            self._progress = (k, residual)

    def _work(self) -> None:
        try:
            self.result = _run(**self._setup, progress=self._on_progress, cancel=self._cancel)
        except SolveCancelled:
            self.cancelled = True
        except Exception as exc:  # reported to the owner, never lost in the thread
            self.error = f"{type(exc).__name__}: {exc}"

    @property
    def progress(self) -> tuple[int, float] | None:
        """(iteration, residual) at the last report, or None before the first."""
        with self._lock:
            return self._progress

    @property
    def done(self) -> bool:
        return self._thread.ident is not None and not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelling(self) -> bool:
        return self._cancel.is_set()


def start_crowding(
    params: CrowdingParams | None = None,
    *,
    n: int = 361,
    nt: int = 400,
    method: Method = "picard",
    damping: float = 0.5,
    tol: float = 1e-10,
    max_iter: int = 500,
    init: float | ArrayLike = 0.0,
) -> SolveJob:
    """Validate, then run `solve_crowding` in a background thread."""
    return SolveJob(_crowding_setup(params, n, nt, method, damping, tol, max_iter, init)).start()


def start_lq(
    params: LQParams | None = None,
    *,
    n: int = 361,
    nt: int = 400,
    method: Method = "picard",
    damping: float = 0.5,
    tol: float = 1e-10,
    max_iter: int = 500,
    init: float | ArrayLike | None = None,
) -> SolveJob:
    """Validate, then run `solve_lq` in a background thread."""
    return SolveJob(_lq_setup(params, n, nt, method, damping, tol, max_iter, init)).start()
