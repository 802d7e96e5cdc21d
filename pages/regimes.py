"""Regimes: a Gaussian hidden Markov model on a market's percent log-returns."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.analytics.runs import SeriesInput
from core.analytics.runs.regimes import RegimesParams, RegimesRun, run_regimes
from core.errors import InvalidInput
from pages._shared.auth import require_role
from pages._shared.format import PALETTE, integer, md_escape, money, num, pct, plural
from pages._shared.series import pick_series
from pages._shared.studies import save_study

require_role("analyst")
RESULT_KEY = "regimes_result"
REF_KEY = "regimes_ref"

st.title("Regimes")
st.caption(
    "Gaussian hidden Markov model on percent log-returns, fitted by EM with restarts. "
    "State 0 is the calmest; states are ordered by volatility."
)

ref, bars = pick_series("regimes_series", last_key="rg_last")
with st.form("regimes_form"):
    c1, c2, c3 = st.columns(3)
    auto = (
        c1.radio(
            "Number of states",
            ["Auto (BIC)", "Fixed K"],
            key="rg_mode",
            help="Auto picks the number of states K with the lowest Bayesian information "
            "criterion (BIC) among 1 to the largest K tried.",
        )
        == "Auto (BIC)"
    )
    k_fixed = int(c1.number_input("K when fixed", 1, 6, 3, key="rg_k"))
    k_max = int(c2.number_input("Largest K for BIC", 1, 6, 4, key="rg_kmax"))
    n_init = int(
        c2.slider(
            "Restarts",
            1,
            20,
            10,
            key="rg_restarts",
            help="EM runs from this many random starting points and keeps the best fit.",
        )
    )
    seed = int(c3.number_input("Seed", 0, 2**31 - 1, 0, key="rg_seed"))
    submitted = st.form_submit_button("Fit regimes", type="primary")

if submitted:
    try:
        bar = st.progress(0.0, text="Fitting K = 1 …")

        def progress(done: int, total: int) -> None:
            bar.progress(done / total, text=f"Fitted {done} of {total} models")

        params = RegimesParams(k=None if auto else k_fixed, k_max=k_max, restarts=n_init, seed=seed)
        with st.spinner("Fitting regimes …"):
            run = run_regimes(bars, params, progress)
        bar.empty()
        st.session_state[RESULT_KEY] = run
        st.session_state[REF_KEY] = ref
        save_study(
            run,
            [SeriesInput.of(ref, bars)],
            title=f"Regimes · {ref.label} · K={run.n_states}",
        )
    except InvalidInput as exc:
        st.session_state.pop(RESULT_KEY, None)
        st.error(f"Cannot fit regimes on {md_escape(ref.label)}: {md_escape(str(exc))}")

result: RegimesRun | None = st.session_state.get(RESULT_KEY)
if result is None or st.session_state.get(REF_KEY) != ref:
    st.info("Choose a market and press **Fit regimes**.")
    st.stop()

fit = result.fit
sel = fit.selection
k = fit.n_states
model = fit.model
r = fit.returns
path = result.path
filtered = result.filtered
ts = fit.ts

m1, m2, m3, m4 = st.columns(4)
m1.metric("States", k, help="chosen by BIC" if k == sel.n_states else "fixed")
m2.metric("Log-likelihood", money(model.log_likelihood))
m3.metric("BIC", money(model.bic(r)))
m4.metric("Returns used", integer(r.size))
k_tried = int(sel.table[-1][0])
if result.bic_picked_largest:
    more = (
        "try a larger range (raise Largest K for BIC)."
        if k_tried < 6
        else "6 is the most this page fits, so read the states as a summary."
    )
    st.warning(
        f"BIC picked K = {sel.n_states}: the best K is the largest tried, so more states may "
        f"fit better; {more}"
    )
if not model.converged:
    st.warning(
        f"EM stopped after {plural(model.n_iter, 'iteration')} without meeting the tolerance."
    )

st.subheader(f"{md_escape(ref.label)}: price coloured by Viterbi state")
fig = go.Figure()
fig.add_trace(
    go.Scattergl(
        x=ts, y=fit.prices, mode="lines", name="Close", line={"color": "#bbbbbb", "width": 1}
    )
)
for s in range(k):
    mask = path == s
    fig.add_trace(
        go.Scattergl(
            x=ts[mask],
            y=fit.prices[mask],
            mode="markers",
            marker={"size": 3, "color": PALETTE[s % len(PALETTE)]},
            name=f"State {s} (σ {pct(model.state_vol[s] / 100)})",
        )
    )
fig.update_layout(
    height=420,
    margin={"t": 30, "b": 10},
    legend={"orientation": "h"},
    title="Close price by regime",
)
st.plotly_chart(fig, width="stretch")

st.subheader("Filtered state probabilities (real time, no look-ahead)")
pf = go.Figure()
for s in range(k):
    pf.add_trace(
        go.Scatter(
            x=ts,
            y=filtered[:, s],
            stackgroup="p",
            name=f"State {s}",
            line={"width": 0.5, "color": PALETTE[s % len(PALETTE)]},
        )
    )
pf.update_layout(
    height=300,
    margin={"t": 30, "b": 10},
    yaxis={"range": [0, 1]},
    title="P(state | returns up to t)",
)
st.plotly_chart(pf, width="stretch")

left, right = st.columns(2)
left.markdown("**Transition probabilities** (row: from, column: to)")
names = [f"State {s}" for s in range(k)]
left.dataframe(
    pd.DataFrame([[pct(p) for p in row] for row in model.transmat], index=names, columns=names),
    width="stretch",
)
right.markdown("**Per-state statistics** (returns per bar)")
share = result.share_of_time
stats = pd.DataFrame(
    {
        "Mean return": [pct(v / 100, 3) for v in model.means[:, 0]],
        "Volatility": [pct(v / 100, 3) for v in model.state_vol],
        "Expected duration (bars)": [num(v) for v in model.expected_durations],
        "Share of time": [pct(v) for v in share],
        "Stationary share": [pct(v) for v in model.stationary_distribution],
    },
    index=names,
)
right.dataframe(stats, width="stretch")
right.caption("Share of time counts the bars of the most likely state path (Viterbi).")

st.subheader("BIC across K")
table = pd.DataFrame(sel.table, columns=["K", "Log-likelihood", "Parameters", "BIC", "AIC"])
bf = go.Figure(
    go.Scatter(
        x=table["K"], y=table["BIC"], mode="lines+markers", name="BIC", line={"color": PALETTE[0]}
    )
)
bf.add_trace(
    go.Scatter(
        x=table["K"], y=table["AIC"], mode="lines+markers", name="AIC", line={"color": PALETTE[1]}
    )
)
bf.update_layout(
    height=280,
    margin={"t": 30, "b": 10},
    xaxis={"dtick": 1},
    title=f"Information criteria (minimum BIC at K = {sel.n_states})",
)
st.plotly_chart(bf, width="stretch")
shown = table.astype(object)
for col in ("Log-likelihood", "BIC", "AIC"):
    shown[col] = [money(v) for v in table[col]]
shown["Parameters"] = [integer(v) for v in table["Parameters"]]
st.dataframe(shown.set_index("K"), width="stretch")
