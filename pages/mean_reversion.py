"""Mean reversion: a sparse mean-reverting basket, its OU fit, z-score bands, CARA (or power
utility) positions and a backtest with costs."""

from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.analytics.runs import SeriesInput
from core.analytics.runs.meanrev import (
    MeanReversionStudy,
    MeanRevParams,
    Method,
    Utility,
    ZScore,
    run_meanrev_study,
)
from core.analytics.runs.meanrev_basket import series_names
from core.errors import InvalidInput
from pages._shared.auth import require_role
from pages._shared.format import PALETTE, integer, md_escape, money, num, pct, plural
from pages._shared.series import pick_many
from pages._shared.studies import save_study
from pages._shared.walk_forward_view import INPUTS_KEY, WF_KEY, walk_forward_section

require_role("analyst")
RESULT_KEY = "mean_reversion_result"  # the MeanReversionStudy of the last run
SELECTIONS: dict[Method, str] = {
    "greedy": "Greedy (add the best asset each step)",
    "truncated_power": "Truncated power iteration",
    "exhaustive": "Exhaustive search (every subset)",
}
UTILITIES: dict[Utility, str] = {
    "cara": "CARA (exponential utility) −exp(−γW)",
    "power": "Power utility W^γ/γ",
}
ZSCORES: dict[ZScore, str] = {"rolling": "rolling mean / sd", "ou": "rolling OU fit"}

st.title("Mean reversion")
st.caption(
    "Pick a pair or a basket. A sparse mean-reverting portfolio is chosen by Box–Tiao "
    "predictability (d'Aspremont 2011), fitted as an Ornstein–Uhlenbeck process and traded "
    "with z-score bands and the CARA-optimal rule, net of costs. All prices are real market "
    "history; only the tests' critical values come from a Monte Carlo simulation."
)

picked, last_n = pick_many("mr_series", last_key="mr_last")
# Outside the form, so the power-utility inputs show only when they apply.
utility = st.selectbox(
    "Optimal-rule utility",
    list(UTILITIES),
    key="mr_utility",
    format_func=UTILITIES.__getitem__,
    help="CARA sizes positions independently of wealth; power utility scales them with "
    "wealth and adds a wealth path.",
)
with st.form("mr_form"):
    c1, c2, c3 = st.columns(3)
    use_log = c1.checkbox("Log prices", value=True, key="mr_log")
    k = int(c2.number_input("Assets in the portfolio (k)", 1, 20, 2, key="mr_k"))
    method = c2.selectbox(
        "Selection",
        list(SELECTIONS),
        format_func=SELECTIONS.__getitem__,
        key="mr_method",
        help="How the k assets are chosen to make the most predictable (least noise-like) "
        "combination, by Box–Tiao predictability.",
    )
    swaps = c2.checkbox(
        "Refine by 1-in-1-out swaps",
        value=False,
        key="mr_swaps",
        help="Local search after the selection: swap one asset out and one in while ν falls.",
    )
    zscore = c3.selectbox(
        "z-score", list(ZSCORES), key="mr_zscore", format_func=ZSCORES.__getitem__
    )
    window = int(c3.number_input("Window (bars)", 10, 5000, 60, key="mr_window"))
    d1, d2, d3 = st.columns(3)
    z_in = float(d1.number_input("Enter at |z| ≥", 0.1, 10.0, 2.0, step=0.1, key="mr_zin"))
    z_out = float(d1.number_input("Exit at |z| ≤", 0.0, 9.9, 0.5, step=0.1, key="mr_zout"))
    cost_bp = float(d2.number_input("Cost per leg (bp)", 0.0, 500.0, 5.0, key="mr_cost"))
    capital = float(d2.number_input("Capital", 1_000.0, 1e12, 1e6, step=1e5, key="mr_capital"))
    aversion = float(
        d3.slider("CARA risk-aversion multiplier", 0.25, 4.0, 1.0, 0.25, key="mr_gamma")
    )
    power_gamma, wealth0 = -1.0, 1e6
    if utility == "power":
        e1, e2 = st.columns(2)
        power_gamma = float(
            e1.number_input(
                "γ — power utility exponent (< 1)",
                -20.0,
                0.95,
                -1.0,
                step=0.25,
                key="mr_power_gamma",
                help="0 is log utility; the relative risk aversion is 1 − γ.",
            )
        )
        wealth0 = float(
            e2.number_input("Initial wealth", 1.0, 1e12, 1e6, step=1e5, key="mr_wealth")
        )
    submitted = st.form_submit_button("Run", type="primary")


if submitted:
    st.session_state.pop(WF_KEY, None)  # a walk-forward belongs to the run it was made from
    refs = [ref for ref, _ in picked]
    bars = [frame for _, frame in picked]
    names = series_names(refs)
    try:
        params = MeanRevParams(
            names=names,
            use_log=use_log,
            last_n=last_n,
            k=k,
            method=method,
            swaps=swaps,
            zscore=zscore,
            window=window,
            z_in=z_in,
            z_out=z_out,
            cost_bp=cost_bp,
            capital=capital,
            aversion=aversion,
            utility=utility,
            power_gamma=power_gamma,
            wealth0=wealth0,
        )
        with st.spinner("Selecting the portfolio and running the backtests …"):
            study = run_meanrev_study(bars, params)
        inputs = tuple(SeriesInput.of(ref, frame) for ref, frame in picked)
        st.session_state[RESULT_KEY] = study
        st.session_state[INPUTS_KEY] = inputs
        save_study(study, inputs, title=f"Mean reversion: {', '.join(names)}")
    except InvalidInput as exc:
        st.session_state.pop(RESULT_KEY, None)
        st.session_state.pop(INPUTS_KEY, None)
        st.error(md_escape(f"Cannot run mean reversion on {', '.join(names) or 'nothing'}: {exc}"))

res: MeanReversionStudy | None = st.session_state.get(RESULT_KEY)
if res is None:
    st.info("Pick two or more markets, choose k and press **Run**.")
    st.stop()

port = res.portfolio
fit = res.fit
bands = res.bands
cara = res.cara
ts = res.basket.ts
asset_names = list(res.basket.names)
a_year = res.basket.periods_per_year
if res.basket.dropped:
    st.warning(
        f"Dropped {plural(res.basket.dropped, 'common bar')} with missing closes before fitting."
    )

m1, m2, m3, m4 = st.columns(4)
m1.metric("Bars used", integer(ts.size))
m2.metric("Predictability ν", num(port.nu), help="Box–Tiao: 0 = noise-like, 1 = trending")
m3.metric(
    "Half-life",
    f"{num(fit.half_life_bars)} bars" if fit.mean_reverting else "not mean-reverting",
)
m4.metric("Sharpe (bands, net)", num(bands.metrics["sharpe"], 3))

st.subheader("Portfolio")
weights = pd.DataFrame(
    {
        "Asset": asset_names,
        "Weight": [num(v) for v in port.weights],
        "In portfolio": port.weights != 0,
    }
)
left, right = st.columns(2)
left.dataframe(weights, hide_index=True, width="stretch")
path = pd.DataFrame(
    {
        "Assets (k)": range(1, len(port.path) + 1),
        "Predictability ν": [num(nu) for _, nu in port.path],
        "Assets chosen": [", ".join(asset_names[i] for i in s) for s, _ in port.path],
    }
)
right.dataframe(path, hide_index=True, width="stretch")
selection_names = {str(key): label for key, label in SELECTIONS.items()}
method_name = selection_names.get(port.method.removesuffix("+swaps"), port.method).split(" (")[0]
swap_note = (
    f", refined by {port.swaps} one-in-one-out swap{'s' if port.swaps != 1 else ''}"
    if port.method.endswith("+swaps")
    else ""
)
st.caption(
    f"Selection: {method_name}{swap_note}; condition number of the scaled covariance "
    f"{num(port.condition_number)}. Weights are in price units with Σ|w| = 1."
)

if port.johansen is not None:
    joh = port.johansen
    with st.expander("Johansen analysis of the assets in the portfolio", expanded=True):
        st.dataframe(
            pd.DataFrame(
                {
                    "Eigenvalue": joh.eig,
                    "Trace statistic": joh.trace_stat,
                    "Trace 90%": joh.trace_crit[:, 0],
                    "Trace 95%": joh.trace_crit[:, 1],
                    "Trace 99%": joh.trace_crit[:, 2],
                    "Max-eigenvalue statistic": joh.max_eig_stat,
                    "Max-eig 90%": joh.max_eig_crit[:, 0],
                    "Max-eig 95%": joh.max_eig_crit[:, 1],
                    "Max-eig 99%": joh.max_eig_crit[:, 2],
                },
                index=pd.Index([f"rank ≤ {r}" for r in range(joh.eig.size)], name="Null"),
            ).style.format(num),
            width="stretch",
        )
        rank = joh.rank(0.05)
        st.markdown(
            f"**Sequential trace test at 5%: cointegration rank {rank} of {joh.eig.size}** "
            + (
                "(no cointegration found)."
                if rank == 0
                else f"({rank} stationary combination{'s' if rank > 1 else ''})."
            )
        )
        st.caption(
            f"Unrestricted constant, {plural(joh.k_ar_diff, 'lagged difference')}, "
            f"{integer(joh.nobs)} observations. Critical values are asymptotic quantiles from "
            "our own Monte Carlo simulation of Gaussian random walks, not market data."
        )

st.subheader("Ornstein–Uhlenbeck fit of the spread")
ou_table = pd.DataFrame(
    {
        "Estimate": [
            num(v)
            for v in (
                fit.theta,
                fit.mu,
                fit.sigma,
                fit.half_life_years,
                fit.half_life_bars,
                fit.b,
            )
        ],
        "Std. error": [
            num(v)
            for v in (
                fit.se["theta"],
                fit.se["mu"],
                None,
                fit.se["half_life_years"],
                None,
                fit.se["b"],
            )
        ],
    },
    index=[
        "θ — speed of mean reversion (per year)",
        "μ — long-run mean",
        "σ — volatility (per √year)",
        "Half-life (years)",
        "Half-life (bars)",
        "b — AR(1) coefficient",
    ],
)
st.dataframe(ou_table, width="stretch")
st.caption(
    f"Conditional maximum likelihood (closed form) over the whole window, Δ = 1/{a_year:.0f} "
    f"year; log-likelihood {money(fit.log_likelihood)}. Standard errors by the delta method."
)

st.subheader("Augmented Dickey–Fuller test of the spread")
adf = res.adf
a1, a2, a3, a4 = st.columns(4)
a1.metric("ADF statistic", num(adf.stat))
a2.metric(
    "p-value",
    (f"< {num(adf.p_value)}" if adf.p_value < 0.5 else f"> {num(adf.p_value)}")
    if adf.p_value_clipped
    else num(adf.p_value),
)
a3.metric("Lags (AIC)", f"{adf.lag}")
a4.metric("Observations", integer(adf.n_obs))
st.dataframe(
    pd.DataFrame({"Critical value": adf.crit}).rename_axis("Level").style.format(num),
    width="stretch",
)
st.caption(
    "Null: the spread has a unit root; constant in the regression. p-value and critical values "
    f"are finite-sample quantiles at {integer(adf.n_obs)} observations from our own Monte Carlo "
    "simulation of the Dickey–Fuller distribution. The weights were fitted on the same data, "
    "so the test is optimistic: residual-based (Engle–Granger) critical values are stricter."
)

st.subheader("Spread and z-score bands")
zin, zout = res.config.z_in, res.config.z_out
spread_fig = go.Figure()
spread_fig.add_trace(
    go.Scattergl(x=ts, y=res.spread, name="Spread", mode="lines", line={"color": PALETTE[0]})
)
spread_fig.add_trace(
    go.Scattergl(x=ts, y=res.mu, name="Mean", mode="lines", line={"color": PALETTE[1]})
)
for level, dash in ((zin, "dash"), (-zin, "dash"), (zout, "dot"), (-zout, "dot")):
    spread_fig.add_trace(
        go.Scattergl(
            x=ts,
            y=res.mu + level * res.sd,
            name=f"Mean {level:+.2f} sd",
            mode="lines",
            line={"dash": dash, "width": 1, "color": PALETTE[2] if dash == "dash" else PALETTE[7]},
        )
    )
spread_fig.update_layout(height=380, margin={"t": 30, "b": 10}, legend={"orientation": "h"})
st.plotly_chart(spread_fig, width="stretch")
z_fig = go.Figure(go.Scattergl(x=ts, y=res.z, name="z", mode="lines", line={"color": PALETTE[0]}))
for level in (zin, -zin, zout, -zout):
    z_fig.add_hline(y=level, line_dash="dash" if abs(level) == zin else "dot")
z_fig.update_layout(height=260, margin={"t": 30, "b": 10}, title="z-score (data up to t only)")
st.plotly_chart(z_fig, width="stretch")

st.subheader("Positions")
pos_fig = go.Figure()
pos_fig.add_trace(
    go.Scattergl(x=ts, y=bands.positions, name="Bands", mode="lines", line={"color": PALETTE[0]})
)
if cara is not None:
    pos_fig.add_trace(
        go.Scattergl(x=ts, y=cara.positions, name="CARA", mode="lines", line={"color": PALETTE[1]})
    )
pos_fig.update_layout(
    height=300,
    margin={"t": 30, "b": 10},
    yaxis_title="Spread units",
    title="Bands and the CARA rule (backtest)",
)
st.plotly_chart(pos_fig, width="stretch")
if cara is None:
    st.warning("The spread is not mean-reverting over this window, so there is no CARA rule.")
else:
    st.caption(
        "CARA rule: myopic q* = θ(μ − s)/(γσ²) from a rolling OU fit (at least 252 bars, "
        f"refit every 21), γ = {num(res.gamma, 3)}, "
        "clipped to ±2× the band size (the clip makes it sub-optimal)."
    )

power = res.power
if res.config.utility == "power":
    pg = res.config.power_gamma
    if power is None:
        st.warning("The spread is not mean-reverting over this window: no power-utility rule.")
    else:
        pw_fig = go.Figure()
        pw_fig.add_trace(
            go.Scattergl(
                x=ts,
                y=power.units,
                name=f"Power utility γ = {pg:g}",
                mode="lines",
                line={"color": PALETTE[0]},
            )
        )
        pw_fig.add_trace(
            go.Scattergl(
                x=ts,
                y=power.wealth,
                name="Wealth",
                mode="lines",
                yaxis="y2",
                line={"color": PALETTE[1]},
            )
        )
        pw_fig.update_layout(
            height=300,
            margin={"t": 30, "b": 10},
            title=f"Power utility W^γ/γ, γ = {pg:g}: optimal position",
            yaxis_title="Spread units",
            yaxis2={"title": "Wealth", "overlaying": "y", "side": "right"},
            legend={"orientation": "h"},
        )
        st.plotly_chart(pw_fig, width="stretch")
        st.caption(
            f"Power utility W_T^γ/γ with γ = {pg:g} (relative risk aversion {1 - pg:g}; "
            "Boguslavsky & Boguslavskaya 2004): q* = W θ(μ − s)/σ² · h(T − t), h going from "
            "1/(1 − γ) at the horizon to 1/√(1 − γ) far from it. OU fit of the whole window "
            "(in-sample), horizon T = last bar, self-financed from an initial wealth of "
            f"{money(res.config.wealth0, 0)} without costs; final wealth "
            f"{money(power.wealth[-1], 0)}."
        )
        if power.ruined_at is not None:
            st.warning(
                f"Wealth fell to zero or below at bar {integer(power.ruined_at)} (a "
                "discrete-time jump); the power-utility trader stops there."
            )

st.subheader("Equity with costs")
eq_fig = go.Figure()
eq_fig.add_trace(
    go.Scattergl(x=ts, y=bands.equity, name="Bands", mode="lines", line={"color": PALETTE[0]})
)
if cara is not None:
    eq_fig.add_trace(
        go.Scattergl(x=ts, y=cara.equity, name="CARA", mode="lines", line={"color": PALETTE[1]})
    )
eq_fig.update_layout(height=340, margin={"t": 30, "b": 10}, yaxis_title="Equity")
st.plotly_chart(eq_fig, width="stretch")

# Each metric with its label and how to show it.
METRICS: dict[str, tuple[str, Callable[[object], str]]] = {
    "sharpe_arithmetic": ("Sharpe (arithmetic)", num),
    "sharpe_geometric_bt": ("Sharpe (geometric)", num),
    "sortino": ("Sortino", num),
    "cagr": ("CAGR", pct),
    "volatility": ("Volatility (annual)", pct),
    "max_drawdown": ("Max drawdown", pct),
    "max_drawdown_ccy": ("Max drawdown (currency)", money),
    "max_drawdown_bars": ("Max drawdown duration (bars)", integer),
    "calmar": ("Calmar", num),
    "turnover_annual": ("Turnover (annual)", num),
    "total_cost": ("Total costs", money),
    "cost_to_gross": ("Costs / |gross PnL|", pct),
    "round_trips": ("Round trips", integer),
    "hit_rate": ("Hit rate", pct),
    "avg_holding_bars": ("Avg holding (bars)", num),
    "exposure": ("Exposure", pct),
    "final_equity": ("Final equity", money),
}
runs = {"Bands": bands, **({"CARA": cara} if cara is not None else {})}
table = {
    name: [show(run.metrics[key]) for key, (_, show) in METRICS.items()]
    for name, run in runs.items()
}
st.dataframe(pd.DataFrame(table, index=[label for label, _ in METRICS.values()]), width="stretch")
st.caption(
    "Sharpe (arithmetic) = √A · mean(r) / sd(r) with ddof = 1 on per-bar equity returns "
    f"r = E_t/E_(t−1) − 1, A = {a_year:.0f} bars a year, risk-free 0. Sharpe (geometric) "
    "annualises the compounded return instead, as common backtesting tools do; it is not "
    "comparable with the arithmetic one. Positions decided at close t earn the move to "
    f"t + 1; costs are {res.config.cost_bp:g} bp of traded notional per leg."
)

walk_forward_section(res, st.session_state.get(INPUTS_KEY, ()))
