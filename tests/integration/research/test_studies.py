"""Studies on real Delta tables and a real MarketStore: save, visibility, share, delete,
rerun (identical, and after the input bars changed), compare, crash safety."""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl
import pytest

import lakehouse.tables
from core.analytics.runs import SeriesInput
from core.data.catalog import load_series
from core.errors import InvalidInput
from lakehouse.errors import NotFound, PermissionDenied, StorageError
from tests.integration.research.conftest import REF, Team, save_sma
from tests.integration.research.sma_kind import KIND, SmaRun, WalkRun, run_sma


def test_save_writes_the_row_and_the_artefacts(team: Team) -> None:
    study = save_sma(team, team.alice, n=10, title="  My SMA  ")
    assert study.title == "My SMA"
    assert study.kind == KIND
    assert study.username == "alice"
    assert study.params == {"n": 10}
    assert study.shared is False
    assert study.artefacts == ["sma", "summary"]
    assert study.inputs[0].rows == 300
    assert len(study.inputs[0].sha256) == 64
    assert math.isnan(study.metrics["first_sma"])
    assert study.code_version.startswith("hfthot ")
    folder = team.services.studies.files.study_dir(team.alice.user_id, study.study_id)
    assert sorted(p.name for p in folder.iterdir()) == ["sma.parquet", "summary.parquet"]
    stored = team.services.studies.get(team.alice, study.study_id)
    assert stored.to_json() == study.to_json()  # NaN metrics as null
    frames = team.services.studies.frames(team.alice, study.study_id)
    expected = run_sma(load_series(REF, team.services.engine.store), 10).frames()
    assert frames["sma"].equals(expected["sma"], null_equal=True)
    assert frames["summary"].to_dicts() == [{"n": 10, "rows": 300}]


def test_others_private_studies_stay_hidden_until_shared(team: Team) -> None:
    studies = team.services.studies
    mine = save_sma(team, team.alice, title="alice private")
    theirs = save_sma(team, team.bob, n=20, title="bob study")
    assert [s.title for s in studies.list(team.alice)] == ["alice private"]
    with pytest.raises(NotFound):
        studies.get(team.alice, theirs.study_id)
    with pytest.raises(NotFound):
        studies.frame(team.alice, theirs.study_id, "sma")
    with pytest.raises(NotFound):  # not PermissionDenied: existence is not revealed
        studies.share(team.alice, theirs.study_id, True)

    shared = studies.share(team.bob, theirs.study_id, True)
    assert shared.shared is True
    assert {s.title for s in studies.list(team.alice)} == {"alice private", "bob study"}
    assert [s.title for s in studies.list(team.alice, owner="me")] == ["alice private"]
    team_view = studies.list(team.alice, owner="team")
    assert [(s.title, s.username) for s in team_view] == [("bob study", "bob")]
    assert studies.frame(team.alice, theirs.study_id, "summary")["n"].to_list() == [20]
    with pytest.raises(PermissionDenied):  # visible, but only the owner shares
        studies.share(team.alice, theirs.study_id, False)
    with pytest.raises(PermissionDenied):
        studies.delete(team.alice, theirs.study_id)

    studies.share(team.bob, theirs.study_id, False)
    assert [s.study_id for s in studies.list(team.alice)] == [mine.study_id]


def test_list_filters_by_kind_and_series(team: Team) -> None:
    studies = team.services.studies
    save_sma(team, team.alice)
    assert len(studies.list(team.alice, kind=KIND)) == 1
    assert studies.list(team.alice, kind="regimes") == []
    assert len(studies.list(team.alice, series="syn/usd")) == 1
    assert len(studies.list(team.alice, series=REF.label)) == 1
    assert studies.list(team.alice, series="BTC/USDT") == []
    with pytest.raises(InvalidInput):
        studies.list(team.alice, owner="everyone")  # type: ignore[arg-type]


def test_delete_removes_row_then_files_owner_or_admin(team: Team) -> None:
    studies = team.services.studies
    a = save_sma(team, team.alice, title="one")
    b = save_sma(team, team.alice, title="two")
    studies.delete(team.alice, a.study_id)
    with pytest.raises(NotFound):
        studies.get(team.alice, a.study_id)
    assert not studies.files.study_dir(team.alice.user_id, a.study_id).exists()
    with pytest.raises(NotFound):  # the admin does not see a private study
        studies.delete(team.admin, b.study_id)
    studies.share(team.alice, b.study_id, True)
    studies.delete(team.admin, b.study_id)
    assert studies.list(team.alice) == []
    assert not studies.files.user_dir(team.alice.user_id).exists()


def test_bad_titles_and_results_are_refused_and_nothing_is_stored(team: Team) -> None:
    studies = team.services.studies
    frame = load_series(REF, team.services.engine.store)
    inputs = [SeriesInput.of(REF, frame)]
    for title in ("", "   ", "x" * 121, "bad\x07bell", "line\nbreak"):
        with pytest.raises(InvalidInput):
            studies.save(team.alice, run_sma(frame, 5), inputs, title)
    with pytest.raises(InvalidInput, match="SeriesInput"):
        studies.save(team.alice, run_sma(frame, 5), [REF], "not an input")  # type: ignore[list-item]

    class Unknown:
        kind = "no_such_kind"

        def params(self) -> dict[str, object]:
            return {}

        def metrics(self) -> dict[str, float]:
            return {}

        def frames(self) -> dict[str, pl.DataFrame]:
            return {}

    with pytest.raises(InvalidInput, match="unknown study kind"):
        studies.save(team.alice, Unknown(), inputs, "unknown")
    assert studies.table.read().height == 0
    assert not studies.files.folder.exists() or not any(studies.files.folder.rglob("*.parquet"))


def test_rerun_on_the_same_input_reproduces_exactly(team: Team) -> None:
    study = save_sma(team, team.alice, n=15)
    report = team.services.studies.rerun(team.alice, study.study_id)
    assert report.identical
    assert not report.code_changed
    assert report.metrics == 3
    assert report.frames == 2
    assert report.summary == "Reproduced exactly: the 3 metrics and 2 artefacts are identical"


def test_rerun_after_an_edited_bar_reports_the_change(team: Team) -> None:
    study = save_sma(team, team.alice, n=15)
    market = team.services.engine.store
    frame = load_series(REF, market)
    edited = frame.slice(295, 1).with_columns(
        close=pl.col("close") * 1.01, high=pl.max_horizontal("high", pl.col("close") * 1.01)
    )
    assert market.write_bars(edited) == 1
    report = team.services.studies.rerun(team.alice, study.study_id)
    assert not report.identical
    [change] = report.input_changes
    assert change.change == "rows edited"
    assert change.rows_now == 300
    assert change.sha256_now != study.inputs[0].sha256
    assert report.summary.startswith("The input data changed since the study was saved")
    assert "SYN/USD" in report.summary
    assert {d.name for d in report.metric_diffs} == {"last_sma", "mean_close"}
    assert report.frame_diffs == ["sma"]


def test_rerun_of_a_study_whose_kind_is_gone_says_so(team: Team) -> None:
    study = save_sma(team, team.alice)
    team.services.studies.table.update_rows(
        [{"study_id": study.study_id, "kind": "retired_kind"}], on=("study_id",)
    )
    with pytest.raises(InvalidInput, match="retired_kind"):
        team.services.studies.rerun(team.alice, study.study_id)


def test_rerun_under_another_code_version_says_so(team: Team) -> None:
    study = save_sma(team, team.alice)
    team.services.studies.table.update_rows(
        [{"study_id": study.study_id, "code_version": "hfthot 0.0.1; native x (release)"}],
        on=("study_id",),
    )
    report = team.services.studies.rerun(team.alice, study.study_id)
    assert report.identical
    assert report.code_changed
    assert "saved with hfthot 0.0.1" in report.summary


def test_compare_two_studies_of_the_same_kind(team: Team) -> None:
    studies = team.services.studies
    a = save_sma(team, team.alice, n=10, title="ten")
    b = save_sma(team, team.alice, n=30, title="thirty")
    cmp = studies.compare(team.alice, a.study_id, b.study_id)
    assert cmp.kind == KIND
    rows = {r.name: r for r in cmp.metrics}
    assert rows["last_sma"].a == a.metrics["last_sma"]
    assert rows["last_sma"].b == b.metrics["last_sma"]
    assert rows["last_sma"].diff == b.metrics["last_sma"] - a.metrics["last_sma"]
    assert rows["mean_close"].diff == 0.0
    assert [(p.name, p.a, p.b) for p in cmp.params] == [("n", 10, 30)]
    other = save_sma(team, team.bob, title="bob private")
    with pytest.raises(NotFound):
        studies.compare(team.alice, a.study_id, other.study_id)


def test_compare_refuses_different_kinds(team: Team) -> None:
    studies = team.services.studies
    a = save_sma(team, team.alice)
    b = save_sma(team, team.alice)
    studies.table.update_rows([{"study_id": b.study_id, "kind": "other_kind"}], on=("study_id",))
    with pytest.raises(InvalidInput, match="same kind"):
        studies.compare(team.alice, a.study_id, b.study_id)


def test_a_failed_delta_append_leaves_no_row_and_no_files(
    team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    studies = team.services.studies
    real = lakehouse.tables.write_deltalake

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lakehouse.tables, "write_deltalake", disk_full)
    with pytest.raises(StorageError):
        save_sma(team, team.alice, title="lost")
    assert studies.table.read().height == 0
    assert not any(studies.files.folder.rglob("*.parquet"))

    monkeypatch.setattr(lakehouse.tables, "write_deltalake", real)
    study = save_sma(team, team.alice, title="kept")
    assert [s.title for s in studies.list(team.alice)] == ["kept"]
    assert studies.frame(team.alice, study.study_id, "summary").height == 1


def test_caller_ids_and_names_never_reach_the_file_system(team: Team) -> None:
    studies = team.services.studies
    study = save_sma(team, team.alice)
    for bad in ("../../etc", "", "a/b", study.study_id + "/.."):
        with pytest.raises(NotFound):
            studies.get(team.alice, bad)
    with pytest.raises(NotFound):
        studies.frame(team.alice, study.study_id, "../summary")
    with pytest.raises(InvalidInput):
        studies.files.study_dir("..", study.study_id)
    assert studies.files.export_user("../" + team.alice.user_id) == {}
    assert studies.files.erase_user("..") == 0
    assert studies.frame(team.alice, study.study_id, "summary").height == 1


@dataclass(frozen=True)
class EscapingRun(SmaRun):
    def frames(self) -> dict[str, pl.DataFrame]:
        return {"../escape": pl.DataFrame({"a": [1]})}


def test_a_bad_artefact_name_is_refused_before_anything_is_written(team: Team) -> None:
    studies = team.services.studies
    frame = load_series(REF, team.services.engine.store)
    with pytest.raises(InvalidInput, match="artefact name"):
        studies.save(team.alice, EscapingRun(5, frame), [SeriesInput.of(REF, frame)], "bad")
    assert studies.table.read().height == 0
    assert not studies.files.folder.exists() or not any(studies.files.folder.rglob("*"))


def test_a_simulation_without_inputs_saves_and_reruns_exactly(team: Team) -> None:
    studies = team.services.studies
    study = studies.save(team.alice, WalkRun(200, seed=7), [], "walk")
    assert study.inputs == []
    assert study.series == ""
    report = studies.rerun(team.alice, study.study_id)
    assert report.identical
    assert report.summary == "Reproduced exactly: the 2 metrics and 1 artefact are identical"
