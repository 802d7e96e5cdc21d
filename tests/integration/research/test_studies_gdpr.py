"""Studies in the GDPR export (rows and Parquet artefacts) and gone after erasure."""

from __future__ import annotations

import io
import json
import zipfile

import polars as pl

from tests.integration.research.conftest import Team, save_sma


def test_export_holds_the_rows_and_the_artefacts(team: Team) -> None:
    study = save_sma(team, team.alice, n=12, title="exported")
    save_sma(team, team.bob, title="not alice's")
    blob = team.services.accounts.export_user_data(team.alice.user_id, acting_user=team.alice)
    zf = zipfile.ZipFile(io.BytesIO(blob))
    rows = json.loads(zf.read("studies.json"))
    assert [(r["study_id"], r["title"]) for r in rows] == [(study.study_id, "exported")]
    for name in ("sma", "summary"):
        file = f"studies-{study.study_id}-{name}.parquet"
        frame = pl.read_parquet(io.BytesIO(zf.read(file)))
        assert frame.equals(team.services.studies.frame(team.alice, study.study_id, name))
    manifest = json.loads(zf.read("manifest.json"))
    listed = {k: v["source"] for k, v in manifest["user_files"].items()}
    assert listed[f"studies-{study.study_id}-sma.parquet"] == "studies"
    assert not [n for n in zf.namelist() if "not alice" in n]
    assert len([n for n in zf.namelist() if n.startswith("studies-")]) == 2


def test_erasure_deletes_rows_and_files_and_shared_studies_vanish(team: Team) -> None:
    studies = team.services.studies
    shared = save_sma(team, team.alice, title="shared by alice")
    save_sma(team, team.alice, title="private")
    studies.share(team.alice, shared.study_id, True)
    kept = save_sma(team, team.bob, title="bob keeps his")
    assert {s.title for s in studies.list(team.bob)} == {"shared by alice", "bob keeps his"}

    team.services.accounts.erase_user(team.alice.user_id, acting_user=team.admin)

    assert [s.study_id for s in studies.list(team.bob)] == [kept.study_id]
    assert studies.table.read().filter(pl.col("user_id") == team.alice.user_id).height == 0
    assert not studies.files.user_dir(team.alice.user_id).exists()
    assert studies.files.export_user(team.alice.user_id) == {}
    assert studies.frame(team.bob, kept.study_id, "summary").height == 1
