"""The Mean reversion page's walk-forward section: a form, then the folds, the stitched
out-of-sample equity, its statistics and the parameter robustness heatmap
(core.analytics.backtest.walk_forward, docs/compute.md §6.6)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.analytics import backtest as bt
from core.analytics.runs import SeriesInput
from core.analytics.runs.meanrev import (
    MeanReversionStudy,
    WalkForwardParams,
    WalkForwardRun,
    run_walk_forward,
)
from core.errors import InvalidInput
from pages._shared.format import PALETTE, integer, md_escape, num, pct, show_table
from pages._shared.studies import save_study

WF_KEY = "mean_reversion_walk_forward"  # the WalkForwardRun of the last walk-forward
INPUTS_KEY = "mean_reversion_inputs"  # the SeriesInput of each series of the last study
WINDOWS = (20, 40, 60, 120, 250)
Z_INS = (1.0, 1.5, 2.0, 2.5, 3.0)
Z_OUTS = (0.0, 0.25, 0.5, 1.0)
FOLD_COLUMNS = [
    "fold",
    "train_start_time",
    "train_end_time",
    "test_start_time",
    "test_end_time",
    "window",
    "z_in",
    "z_out",
    "is_sharpe",
    "oos_sharpe",
    "oos_return",
    "oos_max_drawdown",
    "trades",
]


def walk_forward_params(
    study: MeanReversionStudy,
    windows: Sequence[int],
    z_ins: Sequence[float],
    z_outs: Sequence[float],
    train: int,
    test: int,
    anchored: bool,
) -> WalkForwardParams:
    """The walk-forward of the study's basket and weights, with its costs and capital."""
    c = study.config
    return WalkForwardParams(
        names=c.names,
        use_log=c.use_log,
        last_n=c.last_n,
        weights=tuple(float(v) for v in study.portfolio.weights),
        cost_bp=c.cost_bp,
        capital=c.capital,
        windows=tuple(int(v) for v in windows),
        z_ins=tuple(float(v) for v in z_ins),
        z_outs=tuple(float(v) for v in z_outs),
        train=train,
        test=test,
        anchored=anchored,
    )


def walk_forward_section(study: MeanReversionStudy, inputs: Sequence[SeriesInput]) -> None:
    """Form, run and render; the result stays until the next run of the page's main form."""
    st.subheader("Walk-forward validation")
    st.caption(
        "Each fold picks the band parameters with the best in-sample Sharpe over the grid, "
        "then trades them on the next test window, starting and ending flat; the rolling "
        "z-score of a test window warms up on the bars before it and never sees later ones. "
        "The basket weights are fitted on the whole window above, so only the band parameters "
        "are validated out of sample."
    )
    bars = int(study.basket.closes.shape[0])
    with st.form("wf_form"):
        c1, c2, c3 = st.columns(3)
        train = int(c1.number_input("Train bars", 10, 100_000, min(504, bars // 2), key="wf_train"))
        test = int(c1.number_input("Test bars", 2, 100_000, min(126, bars // 4), key="wf_test"))
        anchored = c1.checkbox(
            "Anchored (expanding) training window",
            value=False,
            key="wf_anchored",
            help="Off: each fold trains on the last Train bars. On: on every bar from the start.",
        )
        windows = c2.multiselect("z-score windows", WINDOWS, [40, 60, 120], key="wf_windows")
        z_ins = c3.multiselect("Enter at |z| ≥", Z_INS, [1.5, 2.0, 2.5], key="wf_zins")
        z_outs = c3.multiselect("Exit at |z| ≤", Z_OUTS, [0.0, 0.5, 1.0], key="wf_zouts")
        run = st.form_submit_button("Run walk-forward", key="wf_run")
    if run:
        try:
            params = walk_forward_params(study, windows, z_ins, z_outs, train, test, anchored)
            with st.spinner("Running the grid on every fold …"):
                result = run_walk_forward(study.bars, params)
            st.session_state[WF_KEY] = result
            save_study(result, inputs, title=f"Walk-forward: {', '.join(study.basket.names)}")
        except InvalidInput as exc:
            st.session_state.pop(WF_KEY, None)
            st.error(md_escape(f"Cannot run the walk-forward: {exc}"))
    done: WalkForwardRun | None = st.session_state.get(WF_KEY)
    if done is not None:
        show_walk_forward(done.walk)


def show_walk_forward(wf: bt.WalkForward) -> None:
    """Metrics, fold table, stitched equity and the robustness heatmap of one walk-forward."""
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Out-of-sample Sharpe", num(wf.oos_sharpe))
    m2.metric("Out-of-sample max drawdown", pct(wf.oos_max_drawdown))
    m3.metric(
        "In-sample − out-of-sample Sharpe",
        num(wf.gap),
        help=f"Mean in-sample Sharpe of the chosen points {num(wf.is_sharpe_mean)} minus the "
        "out-of-sample Sharpe: how much the in-sample choice flatters.",
    )
    m4.metric("Deflated Sharpe", num(wf.deflated_sharpe))
    st.caption(
        "Deflated Sharpe: the probability that the stitched out-of-sample Sharpe beats the best "
        f"of {integer(wf.n_trials)} unskilled grid points (Bailey & López de Prado 2014); "
        f"above 0.95 is evidence of skill. {len(wf.folds)} folds of {integer(wf.test)} test "
        f"bars after {integer(wf.train)} "
        f"{'anchored (expanding)' if wf.anchored else 'rolling'} training bars."
    )
    show_table(
        wf.folds_frame().select(FOLD_COLUMNS),
        pct=["oos_return", "oos_max_drawdown"],
        sig=["is_sharpe", "oos_sharpe"],
        ints=["fold", "window", "trades"],
        times=["train_start_time", "train_end_time", "test_start_time", "test_end_time"],
        labels={
            "train_start_time": "Train from (UTC)",
            "train_end_time": "Train to (UTC)",
            "test_start_time": "Test from (UTC)",
            "test_end_time": "Test to (UTC)",
            "window": "Window",
            "z_in": "Enter |z| ≥",
            "z_out": "Exit |z| ≤",
            "is_sharpe": "In-sample Sharpe",
            "oos_sharpe": "Out-of-sample Sharpe",
            "oos_return": "Out-of-sample return",
            "oos_max_drawdown": "Out-of-sample max drawdown",
            "trades": "Round trips",
        },
    )
    eq_fig = go.Figure(
        go.Scattergl(
            x=wf.times,
            y=wf.equity,
            name="Out-of-sample (stitched)",
            mode="lines",
            line={"color": PALETTE[0]},
        )
    )
    eq_fig.update_layout(
        height=320,
        margin={"t": 40, "b": 10},
        yaxis_title="Equity",
        title="Stitched out-of-sample equity",
    )
    st.plotly_chart(eq_fig, width="stretch")
    st.plotly_chart(heatmap_figure(wf), width="stretch")
    st.caption(
        "Each cell trades one grid point with fixed parameters out of sample over every fold: "
        "a broad bright region is robust, a lone bright cell is likely luck. Blank cells have "
        "the exit band at or outside the entry band."
    )


def heatmap_figure(wf: bt.WalkForward) -> go.Figure:
    """Out-of-sample Sharpe over z_in x z_out, one panel per window, one colour scale."""
    g = wf.grid
    fig = make_subplots(
        rows=1,
        cols=len(g.window),
        subplot_titles=[f"Window {w}" for w in g.window],
        shared_yaxes=True,
    )
    sharpe = {
        (row["window"], row["z_in"], row["z_out"]): row["oos_sharpe"]
        for row in wf.heatmap.iter_rows(named=True)
    }
    for col, window in enumerate(g.window, start=1):
        z = [[sharpe.get((window, zi, zo), np.nan) for zo in g.z_out] for zi in g.z_in]
        fig.add_trace(
            go.Heatmap(
                x=[f"{v:g}" for v in g.z_out],
                y=[f"{v:g}" for v in g.z_in],
                z=z,
                coloraxis="coloraxis",
                name=f"Window {window}",
                hovertemplate="exit %{x}, enter %{y}: Sharpe %{z:.3f}<extra></extra>",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text="Exit |z| ≤", type="category", row=1, col=col)
    fig.update_yaxes(title_text="Enter |z| ≥", type="category", row=1, col=1)
    fig.update_layout(
        height=340,
        margin={"t": 70, "b": 10},
        title="Parameter robustness: out-of-sample Sharpe",
        coloraxis={"colorscale": "RdBu", "cmid": 0.0, "colorbar": {"title": "Sharpe"}},
    )
    return fig
