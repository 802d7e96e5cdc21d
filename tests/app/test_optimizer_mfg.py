"""AppTest of the Optimizer & MFG page: a real L-SHADE run and a real MFG solve followed
through the polling fragment, a cancelled solve, and bad input."""

from __future__ import annotations

import base64
import json

import numpy as np
import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from tests.app.conftest import AppAs
from tests.app.helpers import rerun_until, texts

pytestmark = [pytest.mark.app]
PAGE = "pages/optimizer_mfg.py"


def charts(at: AppTest) -> list[dict[str, object]]:
    return [json.loads(e.proto.spec) for e in at.get("plotly_chart")]


def chart_titles(at: AppTest) -> list[str]:
    out = []
    for spec in charts(at):
        title = spec.get("layout", {}).get("title", {})  # type: ignore[union-attr]
        out.append(title.get("text", "") if isinstance(title, dict) else str(title))
    return out


def values(field: object) -> np.ndarray:
    """A plotly array field: a plain list or the typed-array form {dtype, bdata}."""
    if isinstance(field, dict):
        return np.frombuffer(base64.b64decode(field["bdata"]), dtype=np.dtype(field["dtype"]))
    return np.asarray(field, dtype=float)


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def studies(kind: str) -> pl.DataFrame:
    """The studies of `kind` saved in the test's accounts store."""
    from pages._shared.accounts import get_auth

    return get_auth().store.studies.read().filter(pl.col("kind") == kind)


def test_viewer_is_refused(app_as: AppAs) -> None:
    at = app_as("viewer", PAGE).run()
    assert not at.title or at.title[0].value != "Optimizer & MFG"


def test_optimizer_playground(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Optimizer & MFG"
    assert "press Minimise" in texts(at)
    at.selectbox(key="opt_f").set_value("sphere")
    at.slider(key="opt_dim").set_value(5)
    at.number_input(key="opt_budget").set_value(20_000)
    at.number_input(key="opt_seed").set_value(3)
    at.button(key="FormSubmitter:opt_form-Minimise").click()
    at.run()
    assert not at.exception, at.exception
    best = float(metric(at, "Best f"))
    assert best < 1e-6  # L-SHADE on the 5-D sphere with 20 000 evaluations
    assert metric(at, "Evaluations") == "20,000"
    curve = next(c for c in charts(at) if "Convergence" in json.dumps(c.get("layout", {})))
    ys = values(curve["data"][0]["y"])  # type: ignore[index]
    assert len(ys) > 10
    assert np.all(np.diff(ys) <= 0)  # best-so-far never gets worse
    assert ys[-1] == pytest.approx(best, rel=1e-3)

    # the run was saved as a study without input series, its numbers the shown ones
    run = at.session_state["opt_result"]
    saved = studies("optimizer")
    assert saved.height == 1
    row = saved.row(0, named=True)
    assert row["title"] == "Optimizer · L-SHADE · Sphere 5-D · seed 3"
    assert json.loads(row["inputs"]) == []
    params = json.loads(row["params"])
    assert (params["function"], params["dim"], params["budget"], params["seed"]) == (
        "sphere",
        5,
        20_000,
        3,
    )
    stored = json.loads(row["metrics"])
    assert stored["best_f"] == run.result.fun
    assert stored["nfev"] == 20_000


def test_optimizer_classic_de_strategy_and_init(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run()
    at.selectbox(key="opt_f").set_value("sphere")
    at.slider(key="opt_dim").set_value(3)
    at.selectbox(key="opt_method").set_value("de")
    at.selectbox(key="opt_strategy").set_value("best1exp")
    at.selectbox(key="opt_init").set_value("sobol")
    at.number_input(key="opt_budget").set_value(9_000)
    at.button(key="FormSubmitter:opt_form-Minimise").click()
    at.run()
    assert not at.exception, at.exception
    assert metric(at, "Evaluations") == "9,000"
    assert float(metric(at, "Best f")) < 1e-3
    assert any(c.value.startswith("Classic DE:") for c in at.caption)


def test_mfg_solve_shows_density_and_closed_form(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run()
    assert "press Solve" in texts(at)
    at.number_input(key="mfg_n").set_value(121)
    at.number_input(key="mfg_nt").set_value(120)
    at.button(key="FormSubmitter:mfg_form-Solve").click()
    at.run()
    rerun_until(at, lambda: "Converged" in texts(at) or "failed" in texts(at))
    assert "Converged to tol 1e-10" in texts(at), texts(at)
    assert int(metric(at, "Iterations")) < 100
    assert float(metric(at, "Mass error")) < 1e-12
    titles = chart_titles(at)
    assert "Density m(t, x) of the population" in titles
    assert "Mean inventory" in titles
    assert "Crowd trading speed μ(t)" in titles
    heat = next(c for c in charts(at) if c["data"][0]["type"] == "heatmap")  # type: ignore[index]
    z = heat["data"][0]["z"]  # type: ignore[index]
    dens = np.array([values(row) for row in z]) if isinstance(z, list) else values(z)
    assert dens.size > 1000
    assert np.all(dens >= 0)
    assert dens.max() > 1.0  # a peaked density, not an empty map
    errors = at.dataframe[-1].value
    assert errors.iloc[0, 0] == "max |E − E_cf|"
    assert float(errors.iloc[0, 1]) < 0.05  # first order on a 121 x 120 grid

    # the solve is saved once as a study (later reruns of the page do not save it again)
    at.run()
    saved = studies("mfg")
    assert saved.height == 1
    row = saved.row(0, named=True)
    assert row["title"] == "Mean-field game · Crowding · 121 × 120 grid"
    params = json.loads(row["params"])
    assert (params["problem"], params["n"], params["nt"]) == ("crowding", 121, 120)
    stored = json.loads(row["metrics"])
    assert stored["max_error_mean"] == pytest.approx(float(errors.iloc[0, 1]), rel=1e-2)
    assert stored["iterations"] == int(metric(at, "Iterations"))

    # the LQ problem through the same screen
    at.radio(key="mfg_problem").set_value("lq")
    at.run()
    at.number_input(key="mfg_n").set_value(121)
    at.number_input(key="mfg_nt").set_value(120)
    at.button(key="FormSubmitter:mfg_form-Solve").click()
    at.run()
    rerun_until(at, lambda: "Mean state m̄(t)" in chart_titles(at))
    assert "Variance Σ(t)" in chart_titles(at)
    lq = studies("mfg").filter(pl.col("title").str.contains("LQ"))
    assert json.loads(lq["params"][0])["problem"] == "lq"


def test_mfg_cancel_and_bad_domain(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run()
    # a domain that cuts through the population is refused with a clear message
    at.number_input(key="mfg_lo").set_value(0.0)
    at.button(key="FormSubmitter:mfg_form-Solve").click()
    at.run()
    assert "too narrow" in texts(at), texts(at)

    # fictitious play with a huge budget runs long: cancel it from the page
    at.number_input(key="mfg_lo").set_value(-1.5)
    at.selectbox(key="mfg_method").set_value("fictitious_play")
    at.number_input(key="mfg_iter").set_value(2_000_000)
    at.button(key="FormSubmitter:mfg_form-Solve").click()
    at.run()
    assert not at.exception, at.exception
    rerun_until(at, lambda: len(at.button(key="mfg_cancel").proto.label) > 0, timeout=30)
    at.button(key="mfg_cancel").click()
    at.run()
    rerun_until(at, lambda: "cancelled" in texts(at), timeout=60)
    assert studies("mfg").height == 0  # neither the refused nor the cancelled solve is saved
