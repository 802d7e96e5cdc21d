"""Optimizer & MFG: an L-SHADE/SHADE/DE playground on the benchmark functions, and the
mean-field game solver (HJB + Fokker–Planck) against its closed forms."""

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.analytics import mfg, optimize
from core.errors import InvalidInput
from pages._shared.auth import require_role
from pages._shared.format import md_escape

require_role("analyst")
JOB_KEY = "mfg_job"
OPT_KEY = "opt_result"
A = mfg.CrowdingParams()
B = mfg.LQParams()

st.title("Optimizer & MFG")
opt_tab, mfg_tab = st.tabs(["Optimizer playground", "Mean-field game"])

# --- optimizer ---------------------------------------------------------------------------
with opt_tab:
    st.caption(
        "Global minimisation of the standard test functions (minimum 0) in their usual "
        "search box, by the Rust L-SHADE, SHADE or classic DE (strategy as in SciPy)."
    )
    with st.form("opt_form"):
        c1, c2, c3 = st.columns(3)
        fname = c1.selectbox("Function", list(optimize.BUILTINS), index=2, key="opt_f")
        dim = c1.slider("Dimension", 2, 30, 10, key="opt_dim")
        method = c2.selectbox(
            "Method",
            list(optimize.METHODS),
            format_func=lambda m: {"lshade": "L-SHADE", "shade": "SHADE", "de": "classic DE"}[m],
            key="opt_method",
        )
        budget = c2.number_input(
            "Evaluation budget", 1_000, 1_000_000, 100_000, 1_000, key="opt_budget"
        )
        seed = c3.number_input("Seed", 0, 2**31 - 1, 0, key="opt_seed")
        strategy = c3.selectbox(
            "DE strategy (classic DE only)", list(optimize.STRATEGIES), key="opt_strategy"
        )
        init = c1.selectbox("Initial population", list(optimize.INITS), key="opt_init")
        minimise = st.form_submit_button("Minimise")
    if minimise:
        try:
            with st.spinner("Minimising in Rust …"):
                st.session_state[OPT_KEY] = optimize.minimize(
                    fname,
                    optimize.builtin_bounds(fname, int(dim)),
                    method=method,
                    max_evals=int(budget),
                    seed=int(seed),
                    strategy=strategy if method == "de" else "rand1bin",
                    init=init,
                )
        except InvalidInput as exc:
            st.error(md_escape(str(exc)))
    res: optimize.OptimizeResult | None = st.session_state.get(OPT_KEY)
    if res is None:
        st.info("Choose a function and press Minimise.")
    else:
        k1, k2, k3, k4 = st.columns(4)
        k1.metric("Best f", f"{res.fun:.3e}")
        k2.metric("Evaluations", f"{res.nfev:,}")
        k3.metric("Generations", f"{res.nit:,}")
        k4.metric("Seed", str(res.seed))
        st.caption(f"{res.method}: {md_escape(res.message)}")
        floor = 1e-16
        fig = go.Figure()
        fig.add_scatter(y=np.maximum(res.history, floor), mode="lines", name="best f")
        fig.update_layout(
            title="Convergence: best f per generation",
            xaxis_title="generation",
            yaxis={"title": "best f", "type": "log"},
            height=320,
            margin={"t": 40, "b": 20},
        )
        st.plotly_chart(fig, key="opt_curve")
        if np.min(res.history) < floor:
            st.caption(
                f"Values below {floor:g} (lowest {np.min(res.history):.3g}) are drawn at {floor:g}."
            )
        st.dataframe({"coordinate": list(range(len(res.x))), "x*": res.x}, key="opt_x", height=200)

# --- mean-field game ---------------------------------------------------------------------
with mfg_tab:
    st.caption(
        "MODEL solution, not market data: a population of traders solving a 1-D mean-field "
        "game (implicit upwind HJB backward, the transposed operator for Fokker–Planck "
        "forward, damped Picard or fictitious play on the mean field)."
    )
    problem = st.radio(
        "Problem",
        ["crowding", "lq"],
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
            kappa = c1.slider("κ temporary impact", 0.05, 1.0, A.kappa, 0.01, key="mfg_kappa")
            phi = c1.slider("φ inventory penalty", 0.01, 1.0, A.phi, 0.01, key="mfg_phi")
            alpha = c1.slider("α crowd's permanent impact", -1.0, 2.0, A.alpha, 0.05, key="mfg_a")
            big_a = c2.slider("A terminal penalty", 0.0, 5.0, A.A, 0.1, key="mfg_A")
            e0 = c2.slider("E₀ initial inventory", 0.2, 2.0, A.E0, 0.05, key="mfg_e0")
            v0 = c2.slider("V₀ initial variance", 0.005, 0.1, A.V0, 0.005, key="mfg_v0")
            eps = c3.number_input(
                "ε inventory noise", 0.0, 0.05, A.eps, 0.001, format="%.3f", key="mfg_eps"
            )
            lo = c3.number_input("q min", -10.0, 0.0, A.lo, 0.5, key="mfg_lo")
            hi = c3.number_input("q max", 0.5, 10.0, A.hi, 0.5, key="mfg_hi")
        else:
            q = c1.slider("q running weight", 0.1, 5.0, B.q, 0.1, key="mfg_q")
            c_t = c1.slider("c_T terminal weight", 0.0, 5.0, B.c_T, 0.1, key="mfg_ct")
            kappa_m = c1.slider("κ_m attraction", -1.0, 2.0, B.kappa_m, 0.05, key="mfg_km")
            kappa_t = c2.slider("κ_T terminal attraction", -1.0, 2.0, B.kappa_T, 0.05, key="mfg_kt")
            sigma = c2.slider("σ noise", 0.0, 1.0, B.sigma, 0.05, key="mfg_sigma")
            mean0 = c2.slider("initial mean", -1.0, 2.0, B.mean0, 0.05, key="mfg_m0")
            var0 = c3.slider("initial variance", 0.005, 0.2, B.var0, 0.005, key="mfg_var0")
            lo = c3.number_input("x min", -10.0, 0.0, B.lo, 0.5, key="mfg_lo")
            hi = c3.number_input("x max", 0.5, 10.0, B.hi, 0.5, key="mfg_hi")
        g1, g2, g3, g4 = st.columns(4)
        n = g1.number_input("Space nodes N", 41, 2001, 361, 20, key="mfg_n")
        nt = g2.number_input("Time steps Nt", 20, 2000, 400, 20, key="mfg_nt")
        scheme = g3.selectbox(
            "Fixed point",
            ["picard", "anderson", "fictitious_play"],
            format_func=lambda m: {
                "picard": "Damped Picard",
                "anderson": "Anderson (depth 5)",
                "fictitious_play": "Fictitious play",
            }[m],
            key="mfg_method",
        )
        max_iter = g4.number_input("Max iterations", 1, 2_000_000, 500, 100, key="mfg_iter")
        solve = st.form_submit_button("Solve", disabled=running)
    if solve and not running:
        try:
            if problem == "crowding":
                params_a = mfg.CrowdingParams(
                    kappa=kappa, phi=phi, alpha=alpha, A=big_a, E0=e0, V0=v0, eps=eps, lo=lo, hi=hi
                )
                job = mfg.start_crowding(
                    params_a, n=int(n), nt=int(nt), method=scheme, max_iter=int(max_iter)
                )
                st.session_state["mfg_params"] = params_a
            else:
                params_b = mfg.LQParams(
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
                job = mfg.start_lq(
                    params_b, n=int(n), nt=int(nt), method=scheme, max_iter=int(max_iter)
                )
                st.session_state["mfg_params"] = params_b
        except InvalidInput as exc:
            st.error(md_escape(str(exc)))
        else:
            st.session_state[JOB_KEY] = job

    def show_solution(sol: mfg.MFGSolution, params: object) -> None:
        d = sol.diagnostics
        k1, k2, k3, k4 = st.columns(4)
        k1.metric("Iterations", f"{d['iterations']:,}", help=f"converged: {d['converged']}")
        k2.metric("Mass error", f"{d['mass_error']:.1e}", help="max over t of |Σ m Δx − 1|")
        k3.metric("Min density", f"{d['min_density']:.1e}", help=f"clipped: {d['clipped']}")
        k4.metric("Solve time", f"{d['seconds']:.2f} s")
        if d["converged"]:
            st.success(f"Converged to tol {d['tol']:g} in {d['iterations']} iterations.")
        else:
            st.warning(
                f"Not converged after {d['iterations']} iterations "
                f"(last residual {d['residuals'][-1]:.2e}); raise Max iterations."
            )
        rows = slice(None, None, max(1, len(sol.t) // 200))
        cols = slice(None, None, max(1, len(sol.x) // 240))
        heat = go.Figure(
            go.Heatmap(
                x=sol.t[rows],
                y=sol.x[cols],
                z=sol.m[rows, cols].T,
                colorscale="Viridis",
                colorbar={"title": "m"},
            )
        )
        heat.update_layout(
            title="Density m(t, x) of the population",
            xaxis_title="t",
            yaxis_title="inventory q" if isinstance(params, mfg.CrowdingParams) else "state x",
            height=380,
            margin={"t": 40, "b": 20},
        )
        st.plotly_chart(heat, key="mfg_heat")
        left, right = st.columns(2)
        if isinstance(params, mfg.CrowdingParams):
            cf = mfg.crowding_closed_form(params, sol.t)
            mean_fig = go.Figure()
            mean_fig.add_scatter(x=sol.t, y=sol.mean, name="solver E(t)")
            mean_fig.add_scatter(x=sol.t, y=cf.E, name="closed form", line={"dash": "dash"})
            mean_fig.update_layout(title="Mean inventory", height=300, margin={"t": 40})
            mu_fig = go.Figure()
            mu_fig.add_scatter(x=sol.t[:-1], y=sol.mu, name="solver μ(t)")
            mu_fig.add_scatter(x=sol.t, y=cf.mu, name="closed form E′(t)", line={"dash": "dash"})
            mu_fig.update_layout(title="Crowd trading speed μ(t)", height=300, margin={"t": 40})
            errors = {
                "max |E − E_cf|": float(np.max(np.abs(sol.mean - cf.E))),
                "max |μ − μ_cf|": float(np.max(np.abs(sol.mu - cf.mu[:-1]))),
                "max |V − V_cf|": float(np.max(np.abs(sol.var - cf.V))),
            }
        else:
            assert isinstance(params, mfg.LQParams)
            lq = mfg.lq_closed_form(params, sol.t)
            mean_fig = go.Figure()
            mean_fig.add_scatter(x=sol.t, y=sol.mean, name="solver mean")
            mean_fig.add_scatter(x=sol.t, y=lq.mean, name="closed form", line={"dash": "dash"})
            mean_fig.update_layout(title="Mean state m̄(t)", height=300, margin={"t": 40})
            mu_fig = go.Figure()
            mu_fig.add_scatter(x=sol.t, y=sol.var, name="solver variance")
            mu_fig.add_scatter(x=sol.t, y=lq.var, name="closed form", line={"dash": "dash"})
            mu_fig.update_layout(title="Variance Σ(t)", height=300, margin={"t": 40})
            errors = {
                "max |m̄ − m̄_cf|": float(np.max(np.abs(sol.mean - lq.mean))),
                "max |Σ − Σ_cf|": float(np.max(np.abs(sol.var - lq.var))),
            }
        left.plotly_chart(mean_fig, key="mfg_mean")
        right.plotly_chart(mu_fig, key="mfg_mu")
        st.dataframe(
            {"error vs closed form": list(errors), "value": list(errors.values())},
            key="mfg_errors",
        )
        res_fig = go.Figure()
        res_fig.add_scatter(y=d["residuals"], mode="lines", name="max |Tz − z|")
        res_fig.update_layout(
            title="Fixed-point residual per iteration",
            xaxis_title="iteration",
            yaxis={"type": "log"},
            height=260,
            margin={"t": 40, "b": 20},
        )
        st.plotly_chart(res_fig, key="mfg_residuals")

    @st.fragment(run_every=0.5)
    def solve_status() -> None:
        job: mfg.SolveJob | None = st.session_state.get(JOB_KEY)
        if job is None:
            st.info("Set the parameters and press Solve.")
            return
        if not job.done:
            p = job.progress
            label = "Cancelling…" if job.cancelling else "Solving…"
            if p is not None:
                label += f" iteration {p[0]:,} of at most {job.max_iter:,}, residual {p[1]:.2e}"
            st.progress(min(1.0, p[0] / job.max_iter) if p else 0.0, text=label)
            if st.button("Cancel", key="mfg_cancel", disabled=job.cancelling):
                job.cancel()
            return
        if job.cancelled:
            st.warning("The solve was cancelled.")
        elif job.error is not None:
            st.error(f"The solve failed: {md_escape(str(job.error))}")
        elif job.result is not None:
            show_solution(job.result, st.session_state.get("mfg_params"))

    solve_status()
