"""Optimizer & MFG: an L-SHADE/SHADE/DE playground on the benchmark functions, and the
mean-field game solver (HJB + Fokker–Planck) against its closed forms."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.analytics import mfg, optimize
from core.analytics.runs.optimize import (
    FUNCTIONS,
    INITS,
    METHODS,
    MFG_METHODS,
    PROBLEMS,
    MfgParams,
    MfgRun,
    OptimizerParams,
    OptimizerRun,
    mfg_run,
    run_optimizer,
    start_mfg,
)
from core.errors import InvalidInput
from pages._shared.auth import require_role
from pages._shared.format import PALETTE, integer, log_axis, md_escape, num, plural
from pages._shared.jobs import poll_while_running
from pages._shared.studies import save_study

require_role("analyst")
JOB_KEY = "mfg_job"
MFG_PARAMS_KEY = "mfg_params"
MFG_KEY = "mfg_result"  # the typed result of the last finished solve
OPT_KEY = "opt_result"
A = mfg.CrowdingParams()
B = mfg.LQParams()
METHOD_NAMES = {"lshade": "L-SHADE", "shade": "SHADE", "de": "Classic DE"}
INIT_NAMES = {"uniform": "Uniform random", "lhs": "Latin hypercube", "sobol": "Sobol sequence"}
SOLVER, CLOSED = PALETTE[0], PALETTE[1]

st.title("Optimizer & MFG")
opt_tab, mfg_tab = st.tabs(["Optimizer playground", "Mean-field game"])

# --- optimizer ---------------------------------------------------------------------------
with opt_tab:
    st.caption(
        "Global minimisation of the standard test functions (minimum 0) in their usual "
        "search box, by L-SHADE, SHADE or classic differential evolution (DE)."
    )
    with st.form("opt_form"):
        c1, c2, c3 = st.columns(3)
        fname = c1.selectbox(
            "Function", FUNCTIONS, index=2, format_func=str.capitalize, key="opt_f"
        )
        dim = c1.slider("Dimension", 2, 30, 10, key="opt_dim")
        method = c2.selectbox(
            "Method",
            METHODS,
            format_func=METHOD_NAMES.__getitem__,
            key="opt_method",
            help="L-SHADE and SHADE adapt their step sizes as they search; classic DE keeps "
            "them fixed and uses the strategy chosen on the right.",
        )
        budget = c2.number_input(
            "Search effort (function evaluations)",
            1_000,
            1_000_000,
            100_000,
            1_000,
            key="opt_budget",
            help="How many times the search may evaluate the function; more finds better "
            "minima and takes longer.",
        )
        seed = c3.number_input("Seed", 0, 2**31 - 1, 0, key="opt_seed")
        strategy = c3.selectbox(
            "DE strategy (classic DE only)",
            list(optimize.STRATEGIES),
            key="opt_strategy",
            help="SciPy's names: the base vector (rand, best, current-to-best), the number of "
            "difference vectors, and the crossover (bin: binomial, exp: exponential).",
        )
        init = c1.selectbox(
            "Initial population",
            INITS,
            format_func=lambda i: INIT_NAMES.get(i, i),
            key="opt_init",
        )
        minimise = st.form_submit_button("Minimise")
    if minimise:
        try:
            opt_params = OptimizerParams(
                fname,
                int(dim),
                method,
                budget=int(budget),
                seed=int(seed),
                strategy=strategy,
                init=init,
            )
            with st.spinner("Minimising …"):
                opt_run = run_optimizer(opt_params)
        except InvalidInput as exc:
            st.error(md_escape(str(exc)))
        else:
            st.session_state[OPT_KEY] = opt_run
            save_study(
                opt_run,
                [],
                title=f"Optimizer · {METHOD_NAMES[method]} · {fname.capitalize()} "
                f"{int(dim)}-D · seed {int(seed)}",
            )
    shown_opt: OptimizerRun | None = st.session_state.get(OPT_KEY)
    if shown_opt is None:
        st.info("Choose a function and press Minimise.")
    else:
        res = shown_opt.result
        k1, k2, k3, k4 = st.columns(4)
        k1.metric("Best f", num(res.fun))
        k2.metric("Evaluations", integer(res.nfev))
        k3.metric("Generations", integer(res.nit))
        k4.metric("Seed", str(res.seed))
        st.caption(f"{METHOD_NAMES.get(res.method, res.method)}: {md_escape(res.message)}")
        floor = 1e-16
        fig = go.Figure()
        fig.add_scatter(
            y=np.maximum(res.history, floor),
            mode="lines",
            name="Best f",
            line={"color": SOLVER},
        )
        fig.update_layout(
            title="Convergence: best f per generation",
            xaxis_title="Generation",
            yaxis_title="Best f",
            height=320,
            margin={"t": 40, "b": 20},
        )
        log_axis(fig)
        st.plotly_chart(fig, key="opt_curve")
        if np.min(res.history) < floor:
            st.caption(
                f"Values below {floor:g} (lowest {num(np.min(res.history), 3)}) are drawn at "
                f"{floor:g}."
            )
        st.dataframe(
            {"Coordinate": list(range(len(res.x))), "Best point x*": [num(v, 6) for v in res.x]},
            key="opt_x",
            height=200,
            hide_index=True,
            width="stretch",
        )

# --- mean-field game ---------------------------------------------------------------------
with mfg_tab:
    st.caption(
        "MODEL solution, not market data: how a population of traders spreads out when each "
        "one plans against the crowd's average behaviour (a mean-field game), next to the "
        "exact closed-form solution of the same model."
    )
    problem = st.radio(
        "Problem",
        PROBLEMS,
        format_func=lambda p: {
            "crowding": "Trade crowding (Cardaliaguet–Lehalle)",
            "lq": "LQ mean attraction (Bensoussan–Frehse–Yam)",
        }[p],
        horizontal=True,
        key="mfg_problem",
    )
    job: mfg.SolveJob | None = st.session_state.get(JOB_KEY)
    running = job is not None and not job.done
    with st.form("mfg_form"):
        c1, c2, c3 = st.columns(3)
        if problem == "crowding":
            kappa = c1.slider("κ — temporary impact", 0.05, 1.0, A.kappa, 0.01, key="mfg_kappa")
            phi = c1.slider("φ — inventory penalty", 0.01, 1.0, A.phi, 0.01, key="mfg_phi")
            alpha = c1.slider("α — crowd's permanent impact", -1.0, 2.0, A.alpha, 0.05, key="mfg_a")
            big_a = c2.slider("A — terminal penalty", 0.0, 5.0, A.A, 0.1, key="mfg_A")
            e0 = c2.slider("E₀ — initial inventory", 0.2, 2.0, A.E0, 0.05, key="mfg_e0")
            v0 = c2.slider("V₀ — initial variance", 0.005, 0.1, A.V0, 0.005, key="mfg_v0")
            eps = c3.number_input(
                "ε — inventory noise", 0.0, 0.05, A.eps, 0.001, format="%.3f", key="mfg_eps"
            )
            lo = c3.number_input("Lowest inventory q", -10.0, 0.0, A.lo, 0.5, key="mfg_lo")
            hi = c3.number_input("Highest inventory q", 0.5, 10.0, A.hi, 0.5, key="mfg_hi")
        else:
            q = c1.slider("q — running cost weight", 0.1, 5.0, B.q, 0.1, key="mfg_q")
            c_t = c1.slider("c_T — terminal cost weight", 0.0, 5.0, B.c_T, 0.1, key="mfg_ct")
            kappa_m = c1.slider(
                "κ_m — attraction to the mean", -1.0, 2.0, B.kappa_m, 0.05, key="mfg_km"
            )
            kappa_t = c2.slider(
                "κ_T — terminal attraction", -1.0, 2.0, B.kappa_T, 0.05, key="mfg_kt"
            )
            sigma = c2.slider("σ — noise", 0.0, 1.0, B.sigma, 0.05, key="mfg_sigma")
            mean0 = c2.slider("Initial mean", -1.0, 2.0, B.mean0, 0.05, key="mfg_m0")
            var0 = c3.slider("Initial variance", 0.005, 0.2, B.var0, 0.005, key="mfg_var0")
            lo = c3.number_input("Lowest state x", -10.0, 0.0, B.lo, 0.5, key="mfg_lo")
            hi = c3.number_input("Highest state x", 0.5, 10.0, B.hi, 0.5, key="mfg_hi")
        g1, g2, g3, g4 = st.columns(4)
        n = g1.number_input(
            "Grid points in space",
            41,
            2001,
            361,
            20,
            key="mfg_n",
            help="N nodes between the lowest and highest value; more is finer and slower.",
        )
        nt = g2.number_input("Time steps", 20, 2000, 400, 20, key="mfg_nt")
        scheme = g3.selectbox(
            "Iteration on the crowd",
            MFG_METHODS,
            format_func=lambda m: {
                "picard": "Damped Picard",
                "anderson": "Anderson (depth 5)",
                "fictitious_play": "Fictitious play",
            }[m],
            key="mfg_method",
            help="Each iteration solves the traders' optimal control backward in time (an "
            "implicit upwind Hamilton–Jacobi–Bellman scheme), then moves the population "
            "forward with the transposed operator (Fokker–Planck), and updates the crowd's "
            "behaviour: damped Picard, Anderson-accelerated Picard or fictitious play.",
        )
        max_iter = g4.number_input("Max iterations", 1, 2_000_000, 500, 100, key="mfg_iter")
        solve = st.form_submit_button("Solve", disabled=running)
    if solve and not running:
        try:
            model: mfg.CrowdingParams | mfg.LQParams
            if problem == "crowding":
                model = mfg.CrowdingParams(
                    kappa=kappa, phi=phi, alpha=alpha, A=big_a, E0=e0, V0=v0, eps=eps, lo=lo, hi=hi
                )
            else:
                model = mfg.LQParams(
                    q=q,
                    c_T=c_t,
                    kappa_m=kappa_m,
                    kappa_T=kappa_t,
                    sigma=sigma,
                    mean0=mean0,
                    var0=var0,
                    lo=lo,
                    hi=hi,
                )
            mfg_params = MfgParams(model, int(n), int(nt), scheme, int(max_iter))
            job = start_mfg(mfg_params)
        except InvalidInput as exc:
            st.error(md_escape(str(exc)))
        else:
            st.session_state[JOB_KEY] = job
            st.session_state[MFG_PARAMS_KEY] = mfg_params

    def compare(
        title: str,
        t_solver: np.ndarray,
        solver: np.ndarray,
        t_cf: np.ndarray,
        cf: np.ndarray,
        name: str,
    ) -> go.Figure:
        """The solver's curve, and the closed form dashed on top of it in another colour."""
        fig = go.Figure()
        fig.add_scatter(
            x=t_solver, y=solver, name=f"Solver {name}", line={"color": SOLVER, "width": 4}
        )
        fig.add_scatter(
            x=t_cf,
            y=cf,
            name=f"Closed form {name}",
            line={"color": CLOSED, "width": 2, "dash": "dash"},
        )
        fig.update_layout(
            title=title,
            xaxis_title="Time t",
            height=300,
            margin={"t": 40},
            legend={"orientation": "h"},
        )
        return fig

    def show_solution(run: MfgRun) -> None:
        sol = run.solution
        crowding = run.closed_mu is not None
        d = sol.diagnostics
        k1, k2, k3, k4 = st.columns(4)
        k1.metric(
            "Iterations",
            integer(d["iterations"]),
            help="converged" if d["converged"] else "not converged",
        )
        k2.metric(
            "Mass error",
            num(d["mass_error"], 2),
            help="Largest gap over time between the total density and 1.",
        )
        k3.metric(
            "Min density",
            num(d["min_density"], 2),
            help="Negative values were clipped to 0." if d["clipped"] else "Never negative.",
        )
        k4.metric("Solve time", f"{num(run.seconds, 3)} s")
        if d["converged"]:
            st.success(
                f"Converged to tol {d['tol']:g} in {plural(int(d['iterations']), 'iteration')}."
            )
        else:
            st.warning(
                f"Not converged after {plural(int(d['iterations']), 'iteration')} "
                f"(last residual {num(d['residuals'][-1], 3)}); raise Max iterations."
            )
        rows = slice(None, None, max(1, len(sol.t) // 200))
        cols = slice(None, None, max(1, len(sol.x) // 240))
        heat = go.Figure(
            go.Heatmap(
                x=sol.t[rows],
                y=sol.x[cols],
                z=sol.m[rows, cols].T,
                colorscale="Viridis",
                colorbar={"title": "Density m"},
            )
        )
        heat.update_layout(
            title="Density m(t, x) of the population",
            xaxis_title="Time t",
            yaxis_title="Inventory q" if crowding else "State x",
            height=380,
            margin={"t": 40, "b": 20},
        )
        st.plotly_chart(heat, key="mfg_heat")
        left, right = st.columns(2)
        if run.closed_mu is not None:
            mean_fig = compare("Mean inventory", sol.t, sol.mean, sol.t, run.closed_mean, "E(t)")
            mu_fig = compare(
                "Crowd trading speed μ(t)", sol.t[:-1], sol.mu, sol.t, run.closed_mu, "μ(t)"
            )
        else:
            mean_fig = compare("Mean state m̄(t)", sol.t, sol.mean, sol.t, run.closed_mean, "mean")
            mu_fig = compare("Variance Σ(t)", sol.t, sol.var, sol.t, run.closed_var, "variance")
        errors = run.errors()
        left.plotly_chart(mean_fig, key="mfg_mean")
        right.plotly_chart(mu_fig, key="mfg_mu")
        st.dataframe(
            {"Error vs closed form": list(errors), "Value": [num(v, 3) for v in errors.values()]},
            key="mfg_errors",
            hide_index=True,
            width="stretch",
        )
        res_fig = go.Figure()
        res_fig.add_scatter(
            y=d["residuals"], mode="lines", name="max |Tz − z|", line={"color": SOLVER}
        )
        res_fig.update_layout(
            title="Fixed-point residual per iteration",
            xaxis_title="Iteration",
            yaxis_title="Residual",
            height=260,
            margin={"t": 40, "b": 20},
        )
        log_axis(res_fig)
        st.plotly_chart(res_fig, key="mfg_residuals")

    job = st.session_state.get(JOB_KEY)
    # `running` is the state the form was drawn with: a job that ended meanwhile still gets
    # one pass through the fragment, whose rerun re-enables the form.
    if job is not None and (running or not job.done):

        def solve_progress() -> None:
            job: mfg.SolveJob = st.session_state[JOB_KEY]
            p = job.progress
            label = "Cancelling…" if job.cancelling else "Solving…"
            if p is not None:
                label += (
                    f" iteration {integer(p[0])} of at most {integer(job.max_iter)}, "
                    f"residual {num(p[1], 3)}"
                )
            st.progress(min(1.0, p[0] / job.max_iter) if p else 0.0, text=label)
            if st.button("Cancel", key="mfg_cancel", disabled=job.cancelling):
                job.cancel()

        poll_while_running(lambda: bool(st.session_state[JOB_KEY].done), solve_progress, 0.5)
    elif job is None:
        st.info("Set the parameters and press Solve.")
    elif job.cancelled:
        st.warning("The solve was cancelled.")
    elif job.error is not None:
        st.error(f"The solve failed: {md_escape(str(job.error))}")
    elif job.result is not None:
        solved: MfgRun | None = st.session_state.get(MFG_KEY)
        if solved is None or solved.solution is not job.result:
            # the finished job becomes the typed result once, and is saved as a study
            solved = mfg_run(st.session_state[MFG_PARAMS_KEY], job.result)
            st.session_state[MFG_KEY] = solved
            problem_name = "Crowding" if solved.config.problem == "crowding" else "LQ"
            save_study(
                solved,
                [],
                title=f"Mean-field game · {problem_name} · {solved.config.n} × "
                f"{solved.config.nt} grid",
            )
        show_solution(solved)
