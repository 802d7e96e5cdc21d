"""The studies routes of the REST API (scope `studies:read`): list, one study, one artefact.

The caller sees what the Studies page shows them: their own studies and the team's shared
ones; someone else's private study is 404, like one that does not exist. Artefacts are read
back as saved (no recompute) and encoded like bars (Arrow by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from core.errors import InvalidInput
from core.research.studies import Owner, Study
from core.services import Services
from lakehouse import User

LIST_FIELDS = ("kind", "owner", "series")
OWNERS: dict[str, Owner] = {"me": "me", "team": "team"}


def study_json(study: Study, user: User) -> dict[str, Any]:
    return {**study.to_json(), "mine": study.user_id == user.user_id}


def list_studies(svc: Services, user: User, params: Mapping[str, str]) -> dict[str, Any]:
    """{"studies": [...]}, newest first, filtered by kind, owner (me or team) and series."""
    owner = params.get("owner")
    if owner is not None and owner not in OWNERS:
        raise InvalidInput("owner must be me or team")
    found = svc.studies.list(
        user,
        kind=params.get("kind") or None,
        series=params.get("series") or None,
        owner=OWNERS[owner] if owner else None,
    )
    return {"studies": [study_json(s, user) for s in found]}


def get_study(svc: Services, user: User, study_id: str) -> dict[str, Any]:
    return study_json(svc.studies.get(user, study_id), user)


def study_frame(svc: Services, user: User, study_id: str, name: str) -> pa.Table:
    return svc.studies.frame(user, study_id, name).to_arrow()
