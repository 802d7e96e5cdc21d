"""Saved, reproducible studies: the Delta table `studies` plus Parquet artefacts on disk.

A study is one run of a kind in `core.analytics.runs.KINDS`: its parameters, the exact input
bars (series, range, row count, sha256), the code version, summary metrics and named frames.
`save` writes the frames durably BEFORE it appends the row, so an acknowledged study has its
files; `delete` removes the row first, then the files. Only the owner (and, for a shared
study, the team) can see a study; a private study of someone else is NotFound, never
PermissionDenied, so its existence is not revealed.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol

import polars as pl

from core.analytics.runs import RunResult, SeriesInput, rows_hash, study_kinds
from core.analytics.runs import code_version as current_code_version
from core.data.catalog import BarSource
from core.errors import HftError, InvalidInput
from core.research.compare import (
    Comparison,
    InputChange,
    MetricDiff,
    RerunReport,
    metric_rows,
    param_diffs,
    same_frame,
    same_number,
)
from core.research.study_files import StudyFiles, check_frame_name, check_id
from lakehouse.errors import NotFound, PermissionDenied, StorageError
from lakehouse.store import Store

MAX_TITLE = 120
Owner = Literal["me", "team"]


class Actor(Protocol):
    """Who acts: a signed-in user (lakehouse.User fits)."""

    @property
    def user_id(self) -> str: ...

    @property
    def role(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Study:
    study_id: str
    user_id: str
    username: str | None
    kind: str
    title: str
    params: dict[str, Any]
    inputs: list[SeriesInput]
    code_version: str
    metrics: dict[str, float]
    artefacts: list[str]
    shared: bool
    created_at: dt.datetime

    @property
    def series(self) -> str:
        return ", ".join(i.ref.label for i in self.inputs)

    def to_json(self) -> dict[str, Any]:
        return {
            "study_id": self.study_id,
            "owner": self.username,
            "kind": self.kind,
            "title": self.title,
            "params": self.params,
            "inputs": [i.to_json() for i in self.inputs],
            "code_version": self.code_version,
            "metrics": {k: _json_number(v) for k, v in self.metrics.items()},
            "artefacts": self.artefacts,
            "shared": self.shared,
            "created_at": self.created_at.isoformat(),
        }


def check_title(title: object) -> str:
    if not isinstance(title, str):
        raise InvalidInput("a study title must be text")
    text = title.strip()
    if not 1 <= len(text) <= MAX_TITLE:
        raise InvalidInput(f"a study title must be 1 to {MAX_TITLE} characters")
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
        raise InvalidInput("a study title must not contain control characters")
    return text


def _json_number(value: float | None) -> float | str | None:
    """NaN as null (the table spec); infinities as "inf"/"-inf" (JSON has none)."""
    if value is None or math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _from_json_number(value: object) -> float:
    if value is None:
        return float("nan")
    if value in ("inf", "-inf"):
        return float(str(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise InvalidInput(f"bad stored metric value {value!r}")


def _metrics(result: RunResult) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in result.metrics().items():
        if not isinstance(name, str) or not name:
            raise InvalidInput("metric names must be non-empty text")
        try:
            out[name] = float(value)
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"metric {name!r} is not a number") from exc
    return out


def _params(result: RunResult) -> str:
    """The parameters as JSON text (keys sorted); InvalidInput when they are not JSON-safe."""
    params = result.params()
    if not isinstance(params, dict):
        raise InvalidInput("study parameters must be a dict")
    try:
        return json.dumps(params, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"study parameters are not JSON-safe: {exc}") from exc


class Studies:
    """Studies of every user over the lakehouse `store`, reloading inputs from `market()`."""

    def __init__(
        self, store: Store, market: Callable[[], BarSource | None], files: StudyFiles
    ) -> None:
        self.store = store
        self.table = store.studies
        self.market = market
        self.files = files

    # --- writes ------------------------------------------------------------------------
    def save(
        self, user: Actor, result: RunResult, inputs: Sequence[SeriesInput], title: str
    ) -> Study:
        """Save `result` as a private study of `user`; its artefacts are on disk first."""
        owner = check_id(user.user_id, "user id")
        name = check_title(title)
        if not isinstance(result, RunResult):
            raise InvalidInput("a study needs a run result (kind, params, metrics, frames)")
        if result.kind not in study_kinds():
            raise InvalidInput(f"unknown study kind {result.kind!r}")
        if not all(isinstance(i, SeriesInput) for i in inputs):
            raise InvalidInput("study inputs must be SeriesInput records (none for a simulation)")
        params_text = _params(result)
        metrics = _metrics(result)
        frames = dict(result.frames())
        for frame_name, frame in frames.items():
            check_frame_name(frame_name)
            if not isinstance(frame, pl.DataFrame):
                raise InvalidInput(f"artefact {frame_name!r} is not a Polars frame")
        study_id = uuid.uuid4().hex
        now = self.store.now()
        row = {
            "study_id": study_id,
            "user_id": owner,
            "kind": result.kind,
            "title": name,
            "params": params_text,
            "inputs": json.dumps([i.to_json() for i in inputs]),
            "code_version": current_code_version(),
            "metrics": json.dumps({k: _json_number(v) for k, v in metrics.items()}),
            "artefacts": json.dumps(list(frames)),
            "shared": False,
            "created_at": now,
            "updated_at": now,
        }
        try:
            self.files.write(owner, study_id, frames)
        except OSError as exc:
            self.files.remove(owner, study_id)
            raise StorageError(f"cannot write the study's artefacts: {exc.strerror}") from exc
        try:
            self.table.append([row])
        except Exception:
            self.files.remove(owner, study_id)
            raise
        return self._study(row, {owner: getattr(user, "username", None)})

    def share(self, user: Actor, study_id: str, shared: bool) -> Study:
        """Share the study with the team, or make it private again (owner only)."""
        study = self.get(user, study_id)
        if study.user_id != user.user_id:
            raise PermissionDenied("only the owner can share or unshare a study")
        self.table.update_rows(
            [{"study_id": study.study_id, "shared": bool(shared), "updated_at": self.store.now()}],
            on=("study_id",),
        )
        return self.get(user, study_id)

    def delete(self, user: Actor, study_id: str) -> None:
        """Delete the row, then the artefacts (owner, or an admin for a shared study)."""
        study = self.get(user, study_id)
        if study.user_id != user.user_id and user.role != "admin":
            raise PermissionDenied("only the owner or an admin can delete a study")
        self.table.delete_matching([{"study_id": study.study_id}], on=("study_id",))
        self.files.remove(study.user_id, study.study_id)

    # --- reads -------------------------------------------------------------------------
    def list(
        self,
        user: Actor,
        *,
        kind: str | None = None,
        series: str | None = None,
        owner: Owner | None = None,
    ) -> list[Study]:
        """The user's studies and the team's shared ones, newest first.

        `owner`: "me" for mine only, "team" for others' shared ones, None for both;
        `series`: a symbol or a series label ("SPX · bundled · 1d"), case-insensitive."""
        if owner not in (None, "me", "team"):
            raise InvalidInput("owner must be 'me' or 'team'")
        frame = self.table.read()
        mine = pl.col("user_id") == user.user_id
        if owner == "me":
            frame = frame.filter(mine)
        elif owner == "team":
            frame = frame.filter(~mine & pl.col("shared"))
        else:
            frame = frame.filter(mine | pl.col("shared"))
        if kind:
            frame = frame.filter(pl.col("kind") == kind)
        rows = frame.sort("created_at", descending=True).to_dicts()
        names = self._usernames({r["user_id"] for r in rows})
        studies = [self._study(r, names) for r in rows]
        if series:
            want = series.strip().lower()
            studies = [
                s
                for s in studies
                if any(want in (i.symbol.lower(), i.ref.label.lower()) for i in s.inputs)
            ]
        return studies

    def get(self, user: Actor, study_id: str) -> Study:
        """One visible study; NotFound when it does not exist or is someone else's private."""
        if not isinstance(study_id, str) or not study_id:
            raise NotFound("no such study")
        rows = self.table.read().filter(pl.col("study_id") == study_id).to_dicts()
        if not rows or not (rows[0]["user_id"] == user.user_id or rows[0]["shared"]):
            raise NotFound("no such study (or it is not shared with you)")
        return self._study(rows[0], self._usernames({rows[0]["user_id"]}))

    def frame(self, user: Actor, study_id: str, name: str) -> pl.DataFrame:
        """One stored artefact, read from disk (no recompute)."""
        study = self.get(user, study_id)
        if name not in study.artefacts:
            raise NotFound(f"study has no artefact {name!r}")
        frame = self.files.read(study.user_id, study.study_id, name)
        if frame is None:
            raise StorageError(f"the artefact {name!r} of this study is missing on disk")
        return frame

    def frames(self, user: Actor, study_id: str) -> dict[str, pl.DataFrame]:
        """Every stored artefact of the study, by name."""
        study = self.get(user, study_id)
        return {name: self.frame(user, study.study_id, name) for name in study.artefacts}

    # --- rerun and compare -------------------------------------------------------------
    def rerun(self, user: Actor, study_id: str) -> RerunReport:
        """Run the study again on its stored inputs and params; report identical or not."""
        study = self.get(user, study_id)
        kinds = study_kinds()
        if study.kind not in kinds:
            raise InvalidInput(
                f"study kind {study.kind!r} is not known to this version; cannot rerun it"
            )
        market = self.market()
        bars: list[pl.DataFrame] = []
        changes: list[InputChange] = []
        for item in study.inputs:
            frame = item.load(market)
            changes.extend(_input_change(item, frame))
            bars.append(frame)
        base = RerunReport(
            study_id=study.study_id,
            metrics=len(study.metrics),
            frames=len(study.artefacts),
            input_changes=changes,
            code_version_then=study.code_version,
            code_version_now=current_code_version(),
        )
        if any(b.height == 0 for b in bars):
            return replace(base, ran=False)
        try:
            result = kinds[study.kind].rerun(bars, study.params)
        except HftError:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise InvalidInput(f"the {study.kind} run failed on the stored inputs: {exc}") from exc
        new_metrics = _metrics(result)
        diffs = [
            MetricDiff(n, study.metrics.get(n), new_metrics.get(n))
            for n in list(study.metrics) + [m for m in new_metrics if m not in study.metrics]
            if n not in study.metrics
            or n not in new_metrics
            or not same_number(study.metrics[n], new_metrics[n])
        ]
        new_frames = result.frames()
        frame_diffs = []
        for name in sorted(set(study.artefacts) | set(new_frames)):
            stored = (
                self.files.read(study.user_id, study.study_id, name)
                if name in study.artefacts
                else None
            )
            fresh = new_frames.get(name)
            if stored is None or fresh is None or not same_frame(stored, fresh):
                frame_diffs.append(name)
        return replace(base, metric_diffs=diffs, frame_diffs=frame_diffs)

    def compare(self, user: Actor, a: str, b: str) -> Comparison:
        """Two visible studies of the same kind: metrics side by side, differing params."""
        first, second = self.get(user, a), self.get(user, b)
        if first.kind != second.kind:
            raise InvalidInput(
                f"only studies of the same kind compare: {first.kind} vs {second.kind}"
            )
        return Comparison(
            first.study_id,
            second.study_id,
            first.kind,
            metric_rows(first.metrics, second.metrics),
            param_diffs(first.params, second.params),
        )

    # --- helpers -----------------------------------------------------------------------
    def _usernames(self, ids: set[str]) -> dict[str, str | None]:
        if not ids:
            return {}
        users = self.store.users.read().filter(pl.col("user_id").is_in(list(ids)))
        return dict(zip(users["user_id"].to_list(), users["username"].to_list(), strict=True))

    @staticmethod
    def _study(row: Mapping[str, Any], names: Mapping[str, str | None]) -> Study:
        try:
            metrics = {k: _from_json_number(v) for k, v in json.loads(row["metrics"]).items()}
            inputs = [SeriesInput.from_json(i) for i in json.loads(row["inputs"])]
            params = json.loads(row["params"])
            artefacts = [str(a) for a in json.loads(row["artefacts"])]
        except (TypeError, ValueError, AttributeError) as exc:
            raise StorageError(f"study {row.get('study_id')} has a damaged record") from exc
        created = row["created_at"]
        return Study(
            study_id=row["study_id"],
            user_id=row["user_id"],
            username=names.get(row["user_id"]),
            kind=row["kind"],
            title=row["title"],
            params=params,
            inputs=inputs,
            code_version=row["code_version"],
            metrics=metrics,
            artefacts=artefacts,
            shared=bool(row["shared"]),
            created_at=created if created.tzinfo else created.replace(tzinfo=dt.UTC),
        )


def _input_change(item: SeriesInput, frame: pl.DataFrame) -> list[InputChange]:
    """[] when the bars hash as stored, else one InputChange saying how they differ."""
    if frame.height == 0:
        return [InputChange(item, 0, None, "no bars any more")]
    digest = rows_hash(frame)
    if digest == item.sha256:
        return []
    if frame.height > item.rows:
        change = "rows added"
    elif frame.height < item.rows:
        change = "rows removed"
    else:
        change = "rows edited"
    return [InputChange(item, frame.height, digest, change)]
