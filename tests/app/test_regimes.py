"""AppTest of the Regimes page: fit on the bundled S&P 500, charts and tables, bad input."""

from __future__ import annotations

import json

import polars as pl
import pytest

from tests.app.conftest import AppAs

pytestmark = pytest.mark.app
PAGE = "pages/regimes.py"


def studies(kind: str) -> pl.DataFrame:
    """The studies of `kind` saved in the test's accounts store."""
    from pages._shared.accounts import get_auth

    return get_auth().store.studies.read().filter(pl.col("kind") == kind)


def test_viewer_is_refused(app_as: AppAs) -> None:
    at = app_as("viewer", PAGE).run()
    assert not at.title or at.title[0].value != "Regimes"


def test_fit_shows_states_charts_and_bic(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE, timeout=180).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Regimes"
    assert any("Fit regimes" in i.value for i in at.info)
    at.number_input(key="rg_kmax").set_value(3)
    at.slider(key="rg_restarts").set_value(3)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["States"] == "3"  # BIC picks 3 of 1..3 on the S&P 500
    assert metrics["Returns used"] == "5,030"
    specs = [json.loads(e.proto.spec) for e in at.get("plotly_chart")]
    assert len(specs) == 3
    price = specs[0]["data"]
    assert [t["name"].split(" (")[0] for t in price[1:]] == ["State 0", "State 1", "State 2"]
    assert sum(len(t["x"]) for t in price[1:]) == 5030
    transmat, stats, bic = (d.value for d in at.dataframe)
    assert transmat.shape == (3, 3)
    run = at.session_state["regimes_result"]
    model = run.fit.selection.fits[3]
    assert abs(model.transmat.sum(axis=1) - 1).max() < 1e-12
    vols = [float(v.rstrip("%")) for v in stats["Volatility"]]
    assert vols == sorted(vols)
    assert 0.5 < vols[0] < 0.6
    assert 2.5 < vols[2] < 2.8
    assert abs(sum(float(v.rstrip("%")) for v in stats["Share of time"]) - 100) < 0.05
    assert list(bic.index) == [1, 2, 3]
    assert bic["BIC"].map(lambda v: float(v.replace(",", ""))).idxmin() == 3

    # the fit was saved as a study of this user, with its input series and numbers
    saved = studies("regimes")
    assert saved.height == 1
    row = saved.row(0, named=True)
    assert row["user_id"] == app_as.last.user.user_id
    assert row["title"] == "Regimes · SP500 · bundled · 1d · K=3"
    assert json.loads(row["params"]) == {"k": None, "k_max": 3, "restarts": 3, "seed": 0}
    (series,) = json.loads(row["inputs"])
    assert (series["symbol"], series["rows"]) == ("SP500", 5031)
    assert json.loads(row["metrics"])["bic"] == pytest.approx(run.metrics()["bic"], rel=1e-15)
    assert any("Saved as study" in c.value for c in at.caption)

    # a fixed K is shown from the same fits without refitting the others
    at.radio(key="rg_mode").set_value("Fixed K")
    at.number_input(key="rg_k").set_value(2)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    assert {m.label: m.value for m in at.metric}["States"] == "2"
    fixed = studies("regimes").filter(pl.col("title").str.ends_with("K=2"))
    assert json.loads(fixed["params"][0])["k"] == 2


def test_too_few_rows_is_a_clear_message(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE, timeout=120).run()
    at.number_input(key="rg_last").set_value(10)
    at.number_input(key="rg_kmax").set_value(3)
    at.button[0].click()
    at.run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    assert "too few" in errors
    assert "SP500" in errors
    assert studies("regimes").height == 0  # a failed fit saves nothing
