"""Progress of a background job on a page, without idle reruns."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st


def poll_while_running(done: Callable[[], bool], draw: Callable[[], None], every: float) -> None:
    """Redraw a job's progress every `every` seconds until `done()`; then one full rerun draws
    the outcome, and this fragment and its timer are gone, so an idle page never reruns.

    Call it only while the job runs (or ended since the page was drawn)."""

    @st.fragment(run_every=every)
    def progress() -> None:
        if done():
            st.rerun()
        draw()

    progress()
