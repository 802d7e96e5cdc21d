"""AppTest of the Studies page: empty state, list, open, rerun, share, compare, delete."""

from __future__ import annotations

import re

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from core.analytics.runs import SeriesInput
from core.data.catalog import SeriesRef, load_series
from core.research.studies import Study
from lakehouse import User
from tests.app.conftest import AppAs
from tests.app.helpers import texts
from tests.integration.research.sma_kind import run_sma

pytestmark = pytest.mark.app
PAGE = "pages/studies.py"
SP500 = SeriesRef("bundled", "SP500", "1d")


def plain(text: str) -> str:
    """Markdown source as it reads on screen (md_escape's backslashes removed)."""
    return re.sub(r"\\(.)", r"\1", text)


def save(user: User, n: int, title: str) -> Study:
    from pages._shared.services import get_services

    services = get_services()
    bars = load_series(SP500, services.engine.store)
    inputs = [SeriesInput.of(SP500, bars)]
    return services.studies.save(user, run_sma(bars, n), inputs, title)


def test_viewer_is_refused(app_as: AppAs) -> None:
    at = app_as("viewer", PAGE).run()
    assert "needs the analyst role" in texts(at)
    assert not at.title or at.title[0].value != "Studies"


def test_empty_state_says_what_a_study_is(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE).run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Studies"
    shown = texts(at)
    assert "A study is a saved run" in plain(shown)
    assert "Regimes, Chiarella lab, Mean reversion and Optimizer & MFG" in shown


def test_open_rerun_share_compare_and_delete(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE, timeout=120)
    me = app_as.last.user
    first = save(me, 10, "SMA ten")
    second = save(me, 30, "SMA thirty")
    at.run()
    assert not at.exception, at.exception
    listing = at.dataframe[0].value
    assert list(listing["title"]) == ["SMA thirty", "SMA ten"]
    assert set(listing["owner"]) == {app_as.last.username}
    assert list(listing["shared"]) == [False, False]
    assert at.query_params["study"] == second.study_id  # the newest is open
    assert at.subheader[0].value == "SMA thirty"
    shown = texts(at)
    assert "hfthot " in " ".join(c.value for c in at.code)
    assert "sma** · 5,031 rows" in shown
    assert len(at.get("vega_lite_chart")) == 1  # sma over ts; summary as a table
    assert len(at.get("download_button")) == 2

    at.button(key="rerun").click().run()
    assert not at.exception, at.exception
    assert [plain(s.value) for s in at.success] == [
        "Reproduced exactly: the 3 metrics and 2 artefacts are identical"
    ]

    at.button(key="share").click().run()
    assert list(at.dataframe[0].value["shared"]) == [True, False]
    assert at.button(key="share").label == "Unshare"

    at.selectbox(key="compare-with").set_value(first.study_id).run()
    assert not at.exception, at.exception
    compared = [d.value for d in at.dataframe if "difference" in d.value.columns]
    assert len(compared) == 1
    rows = {r["metric"]: r for r in compared[0].to_dict("records")}
    assert float(rows["mean_close"]["difference"]) == 0.0
    assert "Parameters that differ" in texts(at)

    assert at.button(key="delete").disabled
    at.checkbox(key="confirm-delete").check().run()
    at.button(key="delete").click().run()
    assert not at.exception, at.exception
    assert "Deleted “SMA thirty”." in plain(texts(at))
    assert list(at.dataframe[0].value["title"]) == ["SMA ten"]


def test_a_colleague_sees_only_shared_studies_without_owner_buttons(app_as: AppAs) -> None:
    from pages._shared.services import get_services

    owner = app_as.account("analyst").user
    hidden = save(owner, 10, "private one")
    shared = save(owner, 20, "shared one")
    get_services().studies.share(owner, shared.study_id, True)
    at = app_as("analyst", PAGE, timeout=120)
    at.query_params["study"] = hidden.study_id  # a link to a private study opens nothing
    at.run()
    assert not at.exception, at.exception
    assert list(at.dataframe[0].value["title"]) == ["shared one"]
    assert at.subheader[0].value == "shared one"
    assert "private one" not in texts(at)
    keys = {b.key for b in at.button}
    assert "rerun" in keys
    assert not keys & {"share", "delete"}

    at.button(key="rerun").click().run()
    assert plain(at.success[0].value).startswith("Reproduced exactly")


def test_filters_narrow_the_list(app_as: AppAs) -> None:
    at = app_as("analyst", PAGE, timeout=120)
    save(app_as.last.user, 10, "on the S&P")
    at.run()
    at.text_input[0].input("BTC/USDT").run()
    assert "No study matches these filters." in plain(texts(at))
    at.text_input[0].input("sp500").run()
    assert list(at.dataframe[0].value["title"]) == ["on the S&P"]
    at.radio[0].set_value("Team").run()
    assert "No study matches these filters." in plain(texts(at))


SAVE_SCRIPT = """
import streamlit as st
from core.analytics.runs import SeriesInput
from core.data.catalog import SeriesRef, load_series
from pages._shared.services import get_services
from pages._shared.studies import save_study
from tests.integration.research.sma_kind import run_sma

ref = SeriesRef("bundled", "SP500", "1d")
bars = load_series(ref, get_services().engine.store)
title = st.session_state.get("title", "SMA from a page")
st.session_state["saved"] = save_study(run_sma(bars, 5), [SeriesInput.of(ref, bars)], title=title)
st.write("the result stays on screen")
"""


def test_save_study_links_the_study_or_warns_and_keeps_the_result(app_as: AppAs) -> None:
    from pages._shared.auth import TOKEN_KEY
    from pages._shared.services import get_services

    account = app_as.account("analyst")
    at = AppTest.from_string(SAVE_SCRIPT, default_timeout=120)
    at.session_state[TOKEN_KEY] = account.token
    at.run()
    assert not at.exception, at.exception
    study_id = at.session_state["saved"]
    caption = plain(at.caption[0].value)
    assert (
        caption == f"Saved as study “SMA from a page” · [Open in Studies](studies?study={study_id})"
    )
    assert get_services().studies.get(account.user, study_id).title == "SMA from a page"

    at.session_state["title"] = "bell\x07"
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["saved"] is None
    assert "not saved as a study" in plain(at.warning[0].value)
    assert "the result stays on screen" in texts(at)
    assert len(get_services().studies.list(account.user)) == 1


def test_rerun_after_the_input_changed_shows_what_changed(app_as: AppAs) -> None:
    from pages._shared.services import get_services

    at = app_as("analyst", PAGE, timeout=120)
    save(app_as.last.user, 10, "before the edit")
    store = get_services().engine.store
    last = load_series(SP500, store).tail(1)
    edited = last.with_columns(low=pl.col("low") * 0.99, close=pl.col("low") * 0.99)
    assert store.write_bars(edited) == 1
    at.run()
    at.button(key="rerun").click().run()
    assert not at.exception, at.exception
    assert not at.success
    warning = plain(at.warning[0].value)
    assert warning.startswith("The input data changed since the study was saved: SP500 · bundled")
    assert "rows edited (5031 rows then, 5031 now)" in warning
    diffs = [d.value for d in at.dataframe if list(d.value.columns) == ["metric", "stored", "new"]]
    assert len(diffs) == 1
    assert set(diffs[0]["metric"]) == {"last_sma", "mean_close"}
