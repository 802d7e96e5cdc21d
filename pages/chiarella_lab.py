"""Chiarella lab: simulate the fundamentalist/chartist market, compare its stylized facts
with a real market, and calibrate it by simulated moments."""

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.analytics import chiarella as ch
from core.errors import InvalidInput
from pages._shared.auth import require_role
from pages._shared.format import md_escape
from pages._shared.series import pick_series

require_role("analyst")
JOB_KEY = "chiarella_job"
SHOWN_KEY = "chiarella_job_shown"
LAGS = (1, 5, 10, 25, 50, 100)
D = ch.ChiarellaParams()
RULE_LABELS = {
    "fw_linear": "FW linear trend",
    "chiarella_tanh": "Chiarella tanh of an EWMA trend",
    "ma_tanh": "tanh of price minus moving average (He–Hommes)",
}

st.title("Chiarella lab")
st.caption(
    "Franke–Westerhoff structural stochastic volatility model (DCA-HPM): fundamentalists and "
    "chartists switch by herding, predisposition and misalignment. Returns are in percent."
)


def facts_table(columns: dict[str, ch.StylizedFacts]) -> pd.DataFrame:
    rows = {
        "kurtosis": [f.kurtosis for f in columns.values()],
        "Hill index (5%)": [f.hill for f in columns.values()],
        "ACF r lag 1": [f.acf_r[1] for f in columns.values()],
        **{f"ACF |r| lag {k}": [f.acf_abs[k] for f in columns.values()] for k in LAGS},
        "kurtosis of 5-day sums": [f.aggregated_kurtosis[5] for f in columns.values()],
    }
    return pd.DataFrame(rows, index=list(columns)).T


# --- simulate ---------------------------------------------------------------------
st.subheader("Simulate")
st.warning("SIMULATED data: every path on this section comes from the model, not a market.")
with st.expander("Model parameters", expanded=True):
    c1, c2, c3 = st.columns(3)
    rule = c1.selectbox(
        "Chartist rule", list(RULE_LABELS), format_func=RULE_LABELS.__getitem__, key="ch_rule"
    )
    phi = c1.slider("φ fundamentalist reaction", 0.0, 0.5, D.phi, 0.01, key="ch_phi")
    chi = c1.slider("χ chartist reaction", 0.0, 3.0, D.chi, 0.05, key="ch_chi")
    sigma_f = c2.slider("σ_f fundamentalist noise", 0.2, 2.0, D.sigma_f, 0.01, key="ch_sf")
    sigma_c = c2.slider("σ_c chartist noise", 0.5, 4.0, D.sigma_c, 0.01, key="ch_sc")
    alpha0 = c2.slider("α₀ predisposition", -1.0, 1.0, D.alpha0, 0.01, key="ch_a0")
    alpha_n = c3.slider("α_n herding", 0.0, 4.0, D.alpha_n, 0.01, key="ch_an")
    alpha_p = c3.slider("α_p misalignment", 0.0, 40.0, D.alpha_p, 0.1, key="ch_ap")
    n_steps = c3.slider("Days", 500, 20_000, 5030, 10, key="ch_steps")
    seed = c1.number_input("Seed", 0, 2**31 - 1, 1, key="ch_seed")
    gamma, alpha_m, ma_window = D.gamma, D.alpha_m, D.ma_window
    if rule != "fw_linear":
        gamma = c1.slider("γ trend sensitivity", 0.5, 50.0, D.gamma, 0.5, key="ch_gamma")
    if rule == "chiarella_tanh":
        alpha_m = c2.slider("α_M trend memory weight", 0.01, 1.0, D.alpha_m, 0.01, key="ch_am")
    if rule == "ma_tanh":
        ma_window = c2.slider("L moving-average days", 1, 250, D.ma_window, 1, key="ch_ma")
params = ch.ChiarellaParams(
    phi=phi,
    chi=chi,
    sigma_f=sigma_f,
    sigma_c=sigma_c,
    alpha0=alpha0,
    alpha_n=alpha_n,
    alpha_p=alpha_p,
    rule=rule,
    gamma=gamma,
    alpha_m=alpha_m,
    ma_window=int(ma_window),
)
sim = ch.simulate(params, int(n_steps), seed=int(seed))
if sim.blown_up[0]:
    st.error("The simulated path exploded (|log-price| > 1000); lower χ or raise φ.")
    st.stop()
sim_r = sim.returns[0]
fig = go.Figure(go.Scatter(y=sim_r, mode="lines", line={"width": 1}, name="returns"))
fig.update_layout(title="SIMULATED daily returns (%)", height=280, margin={"t": 40, "b": 20})
st.plotly_chart(fig, key="ch_sim_returns")
fig = go.Figure(go.Scatter(y=sim.nf[0], mode="lines", line={"width": 1}, name="n_f"))
fig.update_layout(
    title="SIMULATED fundamentalist share n_f",
    height=220,
    margin={"t": 40, "b": 20},
    yaxis={"range": [0, 1]},
)
st.plotly_chart(fig, key="ch_sim_nf")

# --- compare with a market ----------------------------------------------------------
st.subheader("Stylized facts")
ref, bars = pick_series("ch_market", last_key="ch_last")
try:
    mkt_r = ch.percent_returns(bars["close"].to_numpy())
    mkt = ch.stylized_facts(mkt_r)
except InvalidInput as exc:
    st.error(md_escape(f"{ref.label}: {exc}"))
    st.stop()
simf = ch.stylized_facts(sim_r)
st.dataframe(
    facts_table({"SIMULATED": simf, ref.label: mkt}).style.format("{:.3f}"), key="ch_facts"
)
fig = go.Figure()
fig.add_bar(x=[str(k) for k in LAGS], y=[simf.acf_abs[k] for k in LAGS], name="SIMULATED")
fig.add_bar(x=[str(k) for k in LAGS], y=[mkt.acf_abs[k] for k in LAGS], name=html.escape(ref.label))
fig.update_layout(title="Autocorrelation of |r| by lag", height=280, margin={"t": 40, "b": 20})
st.plotly_chart(fig, key="ch_acf")

# --- calibrate ----------------------------------------------------------------------
st.subheader("Calibrate")
st.caption(
    f"Method of simulated moments on {md_escape(ref.label)}: {len(ch.MOMENT_NAMES)} moments "
    "(the kurtosis is optional, as it is not robust), common random numbers, moving-block "
    "bootstrap weight (block 250), L-SHADE over "
    + ", ".join(ch.DEFAULT_FREE)
    + f". β, μ, α₀ and the chartist rule ({RULE_LABELS[rule]}) stay as set above."
)
job: ch.CalibrationJob | None = st.session_state.get(JOB_KEY)
running = job is not None and not job.done
with st.form("ch_calibrate"):
    b1, b2, b3 = st.columns(3)
    budget = b1.number_input("Budget (J evaluations)", 60, 20_000, 1000, 60, key="ch_budget")
    n_paths = b2.number_input("Simulated paths S", 1, 200, 20, key="ch_paths")
    cal_seed = b3.number_input("Seed", 0, 2**31 - 1, 0, key="ch_cal_seed")
    with_kurtosis = st.checkbox("Also match the kurtosis", key="ch_kurt")
    start = st.form_submit_button("Calibrate", disabled=running)
if start and not running:
    try:
        job = ch.start_calibration(
            mkt_r,
            budget=int(budget),
            seed=int(cal_seed),
            n_paths=int(n_paths),
            base=params,
            include_kurtosis=with_kurtosis,
        )
    except InvalidInput as exc:
        st.error(md_escape(str(exc)))
    else:
        st.session_state[JOB_KEY] = job


def show_result(res: ch.Calibration) -> None:
    status = "cancelled, best so far" if res.cancelled else "done"
    st.success(
        f"Calibration {status} ({RULE_LABELS[res.params.rule]}, {len(res.moment_names)} "
        f"moments): J = {res.J:.3f} after {res.nfev} evaluations; "
        f"J-test {res.j_stat:.2f} on {res.dof} dof, p = {res.p_value:.3g}."
    )
    st.dataframe(pd.DataFrame({"fitted": res.theta}).style.format("{:.4f}"), key="ch_theta")
    names = list(res.moment_names)
    if res.sim_moments is None:
        st.warning("A simulated path blew up at the fitted θ; its moments are not defined.")
    sim_m = res.sim_moments if res.sim_moments is not None else np.full(len(names), np.nan)
    table = pd.DataFrame(
        {"data": res.data_moments, "SIMULATED (fitted)": sim_m, "t-ratio": res.t_ratios},
        index=names,
    )
    st.dataframe(table.style.format("{:.3f}"), key="ch_moments")
    fig = go.Figure()
    fig.add_bar(x=names, y=res.data_moments, name=html.escape(ref.label))
    fig.add_bar(x=names, y=sim_m, name="SIMULATED at fitted θ")
    fig.update_layout(title="Fitted vs data moments", height=320, margin={"t": 40, "b": 20})
    st.plotly_chart(fig, key="ch_fit_chart")


@st.fragment(run_every=1.0)
def calibration_progress() -> None:
    """Polls the running job; once it ends, reruns the page once to show the result."""
    job: ch.CalibrationJob | None = st.session_state.get(JOB_KEY)
    if job is None or st.session_state.get(SHOWN_KEY) is job:
        return
    if job.done:
        st.session_state[SHOWN_KEY] = job
        st.rerun()
    p = job.progress
    label = "Cancelling…" if job.cancelling else "Calibrating…"
    if p is not None:
        label += f" {p.nfev}/{p.max_evals} evaluations, best J {p.best:.3f}"
    st.progress(p.fraction if p else 0.0, text=label)
    if st.button("Cancel", key="ch_cancel", disabled=job.cancelling):
        job.cancel()


calibration_progress()
job = st.session_state.get(JOB_KEY)
if job is None:
    st.info("No calibration yet. Choose a budget and press Calibrate.")
elif job.done and job.error is not None:
    st.error(f"Calibration failed: {md_escape(str(job.error))}")
elif job.done and job.result is not None:
    show_result(job.result)
