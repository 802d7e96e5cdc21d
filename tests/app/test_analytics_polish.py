"""AppTests of issue #18 on the analytics pages: words instead of snake_case, numbers formatted
for quants, messages that never mislead, inputs that apply, charts readable at a glance."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import AppAs
from tests.app.helpers import rerun_until, texts

pytestmark = pytest.mark.app
SNAKE = re.compile(r"\b[a-z]{2,}_[a-z0-9_]+\b")
MISSING_WORDS = re.compile(r"^(None|nan|NaN|<NA>)$")


def charts(at: AppTest) -> list[dict[str, Any]]:
    return [json.loads(e.proto.spec) for e in at.get("plotly_chart")]


def _title(obj: object) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return "" if obj is None else str(obj)


def visible_labels(at: AppTest) -> list[str]:
    """Every label, option, header and chart text a user reads on the page."""
    out: list[str] = []
    for kind in (
        "number_input",
        "slider",
        "selectbox",
        "radio",
        "checkbox",
        "text_area",
        "multiselect",
        "button",
        "expander",
        "tabs",
        "metric",
    ):
        for w in getattr(at, kind):
            out.append(str(w.label))
            if kind in ("selectbox", "radio"):
                out += [str(o) for o in w.options]
    for d in at.dataframe:
        frame = d.value
        out += [str(c) for c in frame.columns]
        if not str(frame.index.dtype).startswith("int"):
            out += [str(i) for i in frame.index]
    for spec in charts(at):
        layout = spec.get("layout", {})
        out.append(_title(layout.get("title")))
        for axis in ("xaxis", "yaxis", "yaxis2"):
            out.append(_title(layout.get(axis, {}).get("title")))
        out += [str(t.get("name", "")) for t in spec.get("data", [])]
    out += [str(e.value) for e in at.subheader] + [str(e.value) for e in at.caption]
    return [s for s in out if s]


def assert_words(at: AppTest) -> None:
    snake = [s for s in visible_labels(at) if SNAKE.search(s)]
    assert not snake, snake


def assert_no_raw_missing(at: AppTest) -> None:
    for d in at.dataframe:
        frame = d.value
        for col in frame.columns:
            if frame[col].dtype == object:
                raw = [v for v in frame[col] if v is None or MISSING_WORDS.match(str(v))]
                assert not raw, (col, raw)


# --- Regimes --------------------------------------------------------------------------------


def test_regimes_warns_when_bic_picks_the_largest_k(app_as: AppAs) -> None:
    at = app_as("analyst", "pages/regimes.py", timeout=180).run()
    at.number_input(key="rg_kmax").set_value(2)
    at.slider(key="rg_restarts").set_value(2)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "the best K is the largest tried" in warnings, warnings
    assert "try a larger range" in warnings
    assert_words(at)
    assert_no_raw_missing(at)
    _transmat, stats, table = (d.value for d in at.dataframe)
    # shares of time are percentages, the BIC has thousands separators
    assert all(str(v).endswith("%") for v in stats["Share of time"])
    assert all("," in str(v) for v in table["BIC"])
    legend = [t["name"] for t in charts(at)[0]["data"][1:]]
    assert legend[0].startswith("State 0"), legend


# --- Mean reversion -------------------------------------------------------------------------


def test_mean_reversion_hides_power_fields_under_cara(app_as: AppAs) -> None:
    at = app_as("analyst", "pages/mean_reversion.py", timeout=120).run()
    assert not at.exception, at.exception
    keys = {w.key for w in at.number_input}
    assert "mr_power_gamma" not in keys
    assert "mr_wealth" not in keys
    at.selectbox(key="mr_utility").set_value("power")
    at.run()
    keys = {w.key for w in at.number_input}
    assert {"mr_power_gamma", "mr_wealth"} <= keys
    at.selectbox(key="mr_utility").set_value("cara")
    at.run()
    assert "mr_power_gamma" not in {w.key for w in at.number_input}


def test_mean_reversion_words_formats_and_copy(app_as: AppAs) -> None:
    at = app_as("analyst", "pages/mean_reversion.py", timeout=120).run()
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert_words(at)
    assert_no_raw_missing(at)
    shown = texts(at) + "\n".join(visible_labels(at))
    for note in ("backtesting.py", "scripts/", "gen_critical_values", "truncated_power"):
        assert note not in shown, note
    table = at.dataframe[-1].value
    assert table.loc["CAGR", "Bands"].endswith("%")
    assert table.loc["Max drawdown", "Bands"].endswith("%")
    assert table.loc["Volatility (annual)", "Bands"].endswith("%")
    assert "," in table.loc["Final equity", "Bands"]
    assert "Sharpe (geometric)" in table.index


# --- Chiarella lab --------------------------------------------------------------------------


def test_chiarella_words_symbols_and_acf_axis(app_as: AppAs) -> None:
    at = app_as("analyst", "pages/chiarella_lab.py", timeout=120).run()
    assert not at.exception, at.exception
    assert_words(at)
    labels = visible_labels(at)
    assert "φ — fundamentalist reaction" in labels
    assert "Search effort (model evaluations)" in labels
    shown = texts(at) + "\n".join(labels)
    for note in ("L-SHADE over", "J evaluations", "sigma_f", "alpha_n"):
        assert note not in shown, note
    acf = next(s for s in charts(at) if "Autocorrelation" in _title(s["layout"].get("title")))
    assert acf["layout"]["xaxis"]["type"] in ("category", "log")
    colours = [t["marker"]["color"] for t in acf["data"]]
    assert len(set(colours)) == 2


@pytest.mark.slow
def test_a_rejected_j_test_is_a_warning(app_as: AppAs) -> None:
    """A tiny search on the S&P 500 cannot match its moments: the J-test rejects the fit."""
    at = app_as("analyst", "pages/chiarella_lab.py", timeout=120).run()
    at.number_input(key="ch_budget").set_value(120)
    at.number_input(key="ch_paths").set_value(1)
    at.button(key="FormSubmitter:ch_calibrate-Calibrate").click()
    at.run()
    rerun_until(at, lambda: "Calibration done" in texts(at) or "failed" in texts(at))
    assert not any("J-test" in s.value for s in at.success), [s.value for s in at.success]
    warning = " ".join(w.value for w in at.warning)
    assert "J-test rejects" in warning, texts(at)
    assert "does not reproduce" in warning
    # the fitted parameters are shown by symbol and name, as in the inputs
    theta = at.dataframe[-2].value
    assert "φ — fundamentalist reaction" in list(theta.index)
    assert_words(at)


# --- Optimizer & MFG ------------------------------------------------------------------------


def test_optimizer_and_mfg_words_log_axes_and_closed_form_on_top(app_as: AppAs) -> None:
    at = app_as("analyst", "pages/optimizer_mfg.py").run()
    at.selectbox(key="opt_f").set_value("sphere")
    at.slider(key="opt_dim").set_value(3)
    at.number_input(key="opt_budget").set_value(5_000)
    at.button(key="FormSubmitter:opt_form-Minimise").click()
    at.run()
    at.number_input(key="mfg_n").set_value(121)
    at.number_input(key="mfg_nt").set_value(120)
    at.button(key="FormSubmitter:mfg_form-Solve").click()
    at.run()
    rerun_until(at, lambda: "Converged" in texts(at) or "failed" in texts(at))
    assert_words(at)
    specs = charts(at)
    log_axes = [s["layout"]["yaxis"] for s in specs if s["layout"].get("yaxis", {}).get("type")]
    assert len(log_axes) == 2  # convergence and residuals
    assert all(a["exponentformat"] == "e" for a in log_axes)
    mean = next(s for s in specs if _title(s["layout"].get("title")) == "Mean inventory")
    solver, closed = mean["data"]
    assert closed["name"].startswith("Closed form")
    assert closed["line"]["dash"] == "dash"
    assert closed["line"]["color"] != solver["line"]["color"]


# --- SQL Explorer ---------------------------------------------------------------------------


def _run_sql(at: AppTest, sql: str) -> None:
    at.text_area[0].set_value(sql)
    next(b for b in at.button if b.label == "Run query").click()
    at.run(timeout=120)


def test_sql_parse_error_short_types_and_plural(app_as: AppAs) -> None:
    at = app_as("analyst", "pages/sql_explorer.py").run(timeout=120)
    assert not at.exception, at.exception
    types = [str(t) for d in at.dataframe for t in d.value["Type"]]
    assert "timestamp (UTC)" in types, types
    assert not [t for t in types if len(t) > 16 or t.isupper()], types
    _run_sql(at, "SELEC 1")
    errors = [e.value for e in at.error]
    assert errors
    assert errors[0].startswith("The SQL could not be parsed"), errors
    assert not any(e.startswith(("Refused", "Query failed")) for e in errors)
    _run_sql(at, "SELECT 1 AS x")
    assert any(s.value.startswith("1 row in") for s in at.success), [s.value for s in at.success]
    history = [e.label for e in at.expander if "row" in e.label]
    assert any("1 row ·" in h for h in history), history
    assert not any("1 rows" in h for h in history)
