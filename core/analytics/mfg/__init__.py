"""Mean-field games on a 1-D grid: HJB backward + Fokker–Planck forward (docs/compute.md §5).

Two problems, each with its closed form:
- `solve_crowding`: the Cardaliaguet–Lehalle trade-crowding MFG of controls (problem A).
  Agents liquidate an inventory q with temporary impact κ, the crowd's net flow μ(t)
  moves the price by α μ dt, and μ(t) = ∫ ν*(t, q) m(t, dq) is the fixed point.
- `solve_lq`: the linear-quadratic MFG of mean attraction (Bensoussan–Frehse–Yam, problem B).

The solver is rust/kernels/src/mfg: implicit upwind HJB with the control lagged one step,
the Fokker–Planck matrix built as the transpose of the HJB generator (exact discrete
duality, mass conserved to round-off, density ≥ 0), one twisted Thomas factorisation per
time step shared by both, and damped Picard (λ = 0.5) or fictitious play on the mean-field
object. `closed_form` holds the exact solutions, `solver` the façade over the kernel.
"""

from core.analytics.mfg.closed_form import (
    CrowdingClosedForm,
    CrowdingParams,
    LQClosedForm,
    LQParams,
    crowding_closed_form,
    lq_closed_form,
)
from core.analytics.mfg.solver import (
    MFGSolution,
    SolveCancelled,
    SolveJob,
    fokker_planck,
    gaussian_density,
    solve_crowding,
    solve_lq,
    start_crowding,
    start_lq,
)

__all__ = [
    "CrowdingClosedForm",
    "CrowdingParams",
    "LQClosedForm",
    "LQParams",
    "MFGSolution",
    "SolveCancelled",
    "SolveJob",
    "crowding_closed_form",
    "fokker_planck",
    "gaussian_density",
    "lq_closed_form",
    "solve_crowding",
    "solve_lq",
    "start_crowding",
    "start_lq",
]
