"""Chiarella lab: simulate the fundamentalist/chartist market, compare its stylized facts
with a real market, and calibrate it by simulated moments."""

import html

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.analytics import chiarella as ch
from core.analytics.runs import SeriesInput
from core.analytics.runs.chiarella import (
    RULE_CHOICES,
    ChiarellaFitParams,
    ChiarellaFitRun,
    ChiarellaSimulationParams,
    chiarella_fit_run,
    market_returns,
    run_chiarella_simulation,
    start_chiarella_fit,
)
from core.errors import InvalidInput
from pages._shared.auth import require_role
from pages._shared.format import PALETTE, integer, md_escape, num
from pages._shared.jobs import poll_while_running
from pages._shared.series import pick_series
from pages._shared.studies import save_study

require_role("analyst")
JOB_KEY = "chiarella_job"
FIT_KEY = "chiarella_fit"  # the typed result of the last finished calibration
FIT_PARAMS_KEY = "chiarella_fit_params"
FIT_INPUT_KEY = "chiarella_fit_input"
LAGS = (1, 5, 10, 25, 50, 100)
D = ch.ChiarellaParams()
P = ch.PARAM_LABELS
SIM, MARKET = PALETTE[0], PALETTE[1]
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


def symbols(names: object) -> str:
    return ", ".join(P[n].split(" — ")[0] for n in names)  # type: ignore[attr-defined]


# --- simulate ---------------------------------------------------------------------
st.subheader("Simulate")
st.warning("SIMULATED data: every path on this section comes from the model, not a market.")
with st.expander("Model parameters", expanded=True):
    c1, c2, c3 = st.columns(3)
    rule = c1.selectbox(
        "Chartist rule", RULE_CHOICES, format_func=RULE_LABELS.__getitem__, key="ch_rule"
    )
    phi = c1.slider(P["phi"], 0.0, 0.5, D.phi, 0.01, key="ch_phi")
    chi = c1.slider(P["chi"], 0.0, 3.0, D.chi, 0.05, key="ch_chi")
    sigma_f = c2.slider(P["sigma_f"], 0.2, 2.0, D.sigma_f, 0.01, key="ch_sf")
    sigma_c = c2.slider(P["sigma_c"], 0.5, 4.0, D.sigma_c, 0.01, key="ch_sc")
    alpha0 = c2.slider(P["alpha0"], -1.0, 1.0, D.alpha0, 0.01, key="ch_a0")
    alpha_n = c3.slider(P["alpha_n"], 0.0, 4.0, D.alpha_n, 0.01, key="ch_an")
    alpha_p = c3.slider(P["alpha_p"], 0.0, 40.0, D.alpha_p, 0.1, key="ch_ap")
    n_steps = c3.slider("Days", 500, 20_000, 5030, 10, key="ch_steps")
    seed = c1.number_input("Seed", 0, 2**31 - 1, 1, key="ch_seed")
    gamma, alpha_m, ma_window = D.gamma, D.alpha_m, D.ma_window
    if rule != "fw_linear":
        gamma = c1.slider(P["gamma"], 0.5, 50.0, D.gamma, 0.5, key="ch_gamma")
    if rule == "chiarella_tanh":
        alpha_m = c2.slider(P["alpha_m"], 0.01, 1.0, D.alpha_m, 0.01, key="ch_am")
    if rule == "ma_tanh":
        ma_window = c2.slider(P["ma_window"], 1, 250, D.ma_window, 1, key="ch_ma")
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
try:
    sim_run = run_chiarella_simulation(
        ChiarellaSimulationParams(params, n_steps=int(n_steps), seed=int(seed))
    )
except InvalidInput as exc:
    st.error(md_escape(str(exc)))
    st.stop()
sim_r = sim_run.returns
fig = go.Figure(go.Scatter(y=sim_r, mode="lines", line={"width": 1, "color": SIM}, name="Returns"))
fig.update_layout(
    title="SIMULATED daily returns (%)",
    xaxis_title="Day",
    yaxis_title="Return (%)",
    height=280,
    margin={"t": 40, "b": 20},
)
st.plotly_chart(fig, key="ch_sim_returns")
fig = go.Figure(
    go.Scatter(
        y=sim_run.fundamentalist_share,
        mode="lines",
        line={"width": 1, "color": SIM},
        name="Fundamentalist share",
    )
)
fig.update_layout(
    title="SIMULATED share of fundamentalists",
    xaxis_title="Day",
    height=220,
    margin={"t": 40, "b": 20},
    yaxis={"range": [0, 1]},
)
st.plotly_chart(fig, key="ch_sim_nf")
if st.button("Save this simulation as a study", key="ch_save_sim"):
    save_study(
        sim_run,
        [],
        title=f"Chiarella simulation · {RULE_LABELS[rule]} · seed {int(seed)}",
    )

# --- compare with a market ----------------------------------------------------------
st.subheader("Stylized facts")
ref, bars = pick_series("ch_market", last_key="ch_last")
try:
    mkt = ch.stylized_facts(market_returns(bars))
except InvalidInput as exc:
    st.error(md_escape(f"{ref.label}: {exc}"))
    st.stop()
simf = sim_run.facts
st.dataframe(
    facts_table({"SIMULATED": simf, ref.label: mkt}).style.format(num),
    key="ch_facts",
    width="stretch",
)
lags = [f"{k} d" for k in LAGS]
fig = go.Figure()
fig.add_bar(x=lags, y=[simf.acf_abs[k] for k in LAGS], name="SIMULATED", marker_color=SIM)
fig.add_bar(
    x=lags, y=[mkt.acf_abs[k] for k in LAGS], name=html.escape(ref.label), marker_color=MARKET
)
fig.update_layout(
    title="Autocorrelation of |r| by lag",
    xaxis={"title": "Lag (days)", "type": "category"},
    yaxis_title="Autocorrelation",
    height=280,
    margin={"t": 40, "b": 20},
)
st.plotly_chart(fig, key="ch_acf")

# --- calibrate ----------------------------------------------------------------------
st.subheader("Calibrate")
st.caption(
    f"Finds the parameters {symbols(ch.DEFAULT_FREE)} whose simulated markets best match "
    f"{md_escape(ref.label)} on {len(ch.MOMENT_NAMES)} statistics (volatility, tails and "
    "autocorrelations), then tests whether the match is within sampling noise (the J-test). "
    f"α₀ and the chartist rule ({RULE_LABELS[rule]}) stay as set above."
)
job: ch.CalibrationJob | None = st.session_state.get(JOB_KEY)
running = job is not None and not job.done
with st.form("ch_calibrate"):
    b1, b2, b3 = st.columns(3)
    budget = b1.number_input(
        "Search effort (model evaluations)",
        120,
        20_000,
        1020,
        60,
        key="ch_budget",
        help="How many parameter sets the search may try. Method of simulated moments: each "
        "evaluation simulates the model and computes the distance J between its moments and "
        "the data's, weighted by a moving-block bootstrap (block 250) of the data; the "
        "search is L-SHADE (differential evolution with adaptive steps).",
    )
    n_paths = b2.number_input(
        "S — simulated paths per evaluation",
        1,
        200,
        20,
        key="ch_paths",
        help="More paths make each evaluation less noisy and slower; every evaluation uses "
        "the same random numbers, so parameter sets are compared fairly.",
    )
    cal_seed = b3.number_input("Seed", 0, 2**31 - 1, 0, key="ch_cal_seed")
    with_kurtosis = st.checkbox(
        "Also match the kurtosis",
        key="ch_kurt",
        help="Adds the kurtosis as a 10th statistic; it is not robust to a few extreme days.",
    )
    start = st.form_submit_button("Calibrate", disabled=running)
if start and not running:
    try:
        fit_params = ChiarellaFitParams(
            params,
            budget=int(budget),
            n_paths=int(n_paths),
            seed=int(cal_seed),
            include_kurtosis=with_kurtosis,
        )
        job = start_chiarella_fit(bars, fit_params)
    except InvalidInput as exc:
        st.error(md_escape(str(exc)))
    else:
        st.session_state[JOB_KEY] = job
        st.session_state[FIT_PARAMS_KEY] = fit_params
        st.session_state[FIT_INPUT_KEY] = SeriesInput.of(ref, bars)


def show_result(run: ChiarellaFitRun, market: str) -> None:
    res = run.calibration
    status = "cancelled, best so far" if res.cancelled else "done"
    summary = (
        f"Calibration {status} ({RULE_LABELS[res.params.rule]}, {len(res.moment_names)} "
        f"moments): J = {num(res.J)} after {integer(res.nfev)} evaluations; "
        f"J-test {num(res.j_stat)} on {res.dof} degrees of freedom, p = {num(res.p_value, 3)}."
    )
    if res.rejected(0.05):
        st.warning(
            f"{summary} The J-test rejects the fit at the 5% level: the model does not "
            "reproduce this market's statistics within sampling noise, so read the fitted "
            "parameters as the closest match found, not as estimates. A larger search effort "
            "or more paths may help; the model may also not fit this market."
        )
    else:
        st.success(f"{summary} The J-test does not reject the fit at the 5% level.")
    theta = pd.DataFrame(
        {"Fitted": list(res.theta.values())}, index=[P.get(k, k) for k in res.theta]
    )
    st.dataframe(theta.style.format(num), key="ch_theta", width="stretch")
    names = list(res.moment_names)
    if res.sim_moments is None:
        st.warning("A simulated path blew up at the fitted θ; its moments are not defined.")
    sim_m = run.simulated_moments
    table = pd.DataFrame(
        {"Data": res.data_moments, "SIMULATED (fitted)": sim_m, "t-ratio": res.t_ratios},
        index=names,
    )
    st.dataframe(table.style.format(num), key="ch_moments", width="stretch")
    fig = go.Figure()
    fig.add_bar(x=names, y=res.data_moments, name=html.escape(market), marker_color=MARKET)
    fig.add_bar(x=names, y=sim_m, name="SIMULATED at fitted θ", marker_color=SIM)
    fig.update_layout(title="Fitted vs data moments", height=320, margin={"t": 40, "b": 20})
    st.plotly_chart(fig, key="ch_fit_chart")


job = st.session_state.get(JOB_KEY)
# `running` is the state the form was drawn with: a job that ended meanwhile still gets
# one pass through the fragment, whose rerun re-enables the form.
if job is not None and (running or not job.done):

    def calibration_progress() -> None:
        job: ch.CalibrationJob = st.session_state[JOB_KEY]
        p = job.progress
        label = "Cancelling…" if job.cancelling else "Calibrating…"
        if p is not None:
            label += (
                f" {integer(p.nfev)} of {integer(p.max_evals)} evaluations, best J {num(p.best)}"
            )
        st.progress(p.fraction if p else 0.0, text=label)
        if st.button("Cancel", key="ch_cancel", disabled=job.cancelling):
            job.cancel()

    poll_while_running(lambda: bool(st.session_state[JOB_KEY].done), calibration_progress, 1.0)
elif job is None:
    st.info("No calibration yet. Choose a search effort and press Calibrate.")
elif job.error is not None:
    st.error(f"Calibration failed: {md_escape(str(job.error))}")
elif job.result is not None:
    fit_input: SeriesInput = st.session_state[FIT_INPUT_KEY]
    fit_run: ChiarellaFitRun | None = st.session_state.get(FIT_KEY)
    if fit_run is None or fit_run.calibration is not job.result:
        # the finished job becomes the typed result once, and a finished run is saved
        fit_run = chiarella_fit_run(st.session_state[FIT_PARAMS_KEY], job.result)
        st.session_state[FIT_KEY] = fit_run
        if fit_run.cancelled:
            st.caption("A cancelled calibration is not saved as a study.")
        else:
            rule_label = RULE_LABELS[fit_run.config.model.rule]
            save_study(
                fit_run,
                [fit_input],
                title=f"Chiarella calibration · {fit_input.ref.label} · {rule_label}",
            )
    show_result(fit_run, fit_input.ref.label)
