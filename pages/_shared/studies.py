"""Save a page's run as a study of the signed-in user: `save_study(result, inputs, title=)`.

Every analysis page calls it after a run. It never hides the result: a failed save shows a
warning and returns None; a good one shows a caption linking to the Studies page.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from core.analytics.runs import RunResult, SeriesInput
from core.errors import HftError
from lakehouse import LakehouseError
from lakehouse.errors import StorageError
from pages._shared.auth import current_user
from pages._shared.format import md_escape
from pages._shared.services import get_services

STUDY_PARAM = "study"
"""The Studies page's query parameter that opens one study."""


def study_link(study_id: str) -> str:
    """The Studies page opened on one study, relative to the current page (so it works
    under a server.baseUrlPath too)."""
    return f"studies?{STUDY_PARAM}={study_id}"


def save_study(result: RunResult, inputs: Sequence[SeriesInput], *, title: str) -> str | None:
    """Save `result` (computed on `inputs`) as a study; its id, or None if it was not saved."""
    user = current_user()
    if user is None:
        st.warning("Not saved as a study: sign in to keep your runs.")
        return None
    try:
        study = get_services().studies.save(user, result, inputs, title)
    except StorageError:  # its text may name server paths: say what to do instead
        st.warning(
            "This run was not saved as a study: the studies store is unavailable; try again."
        )
        return None
    except (HftError, LakehouseError, ValueError) as exc:
        st.warning(f"This run was not saved as a study: {md_escape(str(exc))}")
        return None
    link = study_link(study.study_id)
    st.caption(f"Saved as study “{md_escape(study.title)}” · [Open in Studies]({link})")
    return study.study_id
