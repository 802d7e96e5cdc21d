"""The SQL Explorer's saved queries: the "Save query" form and the list of mine and the team's.

Loading a saved query puts its SQL in the editor and restores its chart (sql_chart.apply_spec);
"Run" does the same and asks the page to run it once (`take_run_request`). Buttons act in
callbacks, before the script runs, so the list and the editor show the change at once; their
outcome is shown on that run as a one-line message.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import streamlit as st

from core.errors import InvalidInput
from core.research.queries import MAX_DESCRIPTION, MAX_NAME, SavedQueries, SavedQuery
from lakehouse import User
from lakehouse.errors import LakehouseError
from pages._shared import sql_chart
from pages._shared.format import integer, md_escape

TEXT_KEY = "sql_explorer_text"
RESULT_KEY = "sql_explorer_result"
RUN_KEY = "saved_query_run"
FLASH_KEY = "saved_query_flash"
CONFIRM_KEY = "saved_query_confirm_delete"
CLEAR_KEY = "saved_query_clear_form"
CHART_CHOICES = ("Keep the saved chart", "Use the current chart", "No chart")
Problem = (InvalidInput, LakehouseError)


def _flash(kind: str, text: str) -> None:
    st.session_state[FLASH_KEY] = (kind, text)


def _show_flash() -> None:
    kind, text = st.session_state.pop(FLASH_KEY, ("", ""))
    if kind == "success":
        st.success(md_escape(text))  # names and messages are user text
    elif kind:
        st.warning(md_escape(text))


def take_run_request() -> bool:
    """Whether a saved query's "Run" asked the page to run the editor's SQL (once)."""
    return bool(st.session_state.pop(RUN_KEY, False))


def current_frame() -> pl.DataFrame | None:
    result = st.session_state.get(RESULT_KEY)
    return result.frame if result is not None else None


def _load(queries: SavedQueries, user: User, query_id: str, run: bool) -> None:
    """Put a saved query's SQL in the editor and restore its chart (as stored now)."""
    try:
        query = queries.get(user, query_id)
    except Problem as exc:
        _flash("warning", f"Could not load it: {exc}")
        return
    st.session_state[TEXT_KEY] = query.sql
    st.session_state.pop(RESULT_KEY, None)  # the old result belongs to other SQL
    st.session_state.pop(sql_chart.PENDING_KEY, None)
    st.session_state.pop(sql_chart.SPEC_KEY, None)
    if query.chart is None:
        _flash("success", f"Loaded “{query.name}”.")
    else:
        try:
            sql_chart.apply_spec(query.chart)
        except InvalidInput as exc:
            _flash("warning", f"Loaded the SQL; its chart could not be restored: {exc}")
        else:
            _flash("success", f"Loaded “{query.name}” and its chart.")
    if run:
        st.session_state[RUN_KEY] = True


def _share(queries: SavedQueries, user: User, query: SavedQuery) -> None:
    try:
        done = queries.share(user, query.query_id, not query.shared)
    except Problem as exc:
        _flash("warning", f"Could not change sharing: {exc}")
        return
    state = "now shared with the team" if done.shared else "now private"
    _flash("success", f"“{done.name}” is {state}.")


def _delete(queries: SavedQueries, user: User, query: SavedQuery) -> None:
    st.session_state.pop(CONFIRM_KEY, None)
    try:
        queries.delete(user, query.query_id)
    except Problem as exc:
        _flash("warning", f"Could not delete it: {exc}")
        return
    _flash("success", f"Deleted “{query.name}”.")


def _ask_delete(query_id: str | None) -> None:
    st.session_state[CONFIRM_KEY] = query_id


def save_form(queries: SavedQueries, user: User) -> None:
    """Save the editor's SQL (as last run or loaded), optionally with the drawn chart."""
    chart = sql_chart.chart_spec(current_frame())
    if st.session_state.pop(CLEAR_KEY, False):  # saved on the last run: an empty form again
        for key in ("sq-new-name", "sq-new-desc", "sq-new-shared"):
            st.session_state.pop(key, None)
    with st.expander("Save query"), st.form("save_query_form"):
        name = st.text_input("Name", max_chars=MAX_NAME, key="sq-new-name")
        description = st.text_area(
            "Description", max_chars=MAX_DESCRIPTION, height=80, key="sq-new-desc"
        )
        left, right = st.columns(2)
        shared = left.checkbox(
            "Share with the team", help="Every analyst can load and run it.", key="sq-new-shared"
        )
        with_chart = right.checkbox(
            "Include the current chart",
            value=chart is not None,
            disabled=chart is None,
            help="The chart drawn under the result, with its overlays."
            if chart
            else "Draw a chart under a result first.",
        )
        st.caption("Saves the SQL last run or loaded in the editor.")
        if not st.form_submit_button("Save query"):
            return
    try:
        saved = queries.save(
            user,
            name,
            str(st.session_state.get(TEXT_KEY, "")),
            description=description,
            chart=chart if with_chart else None,
            shared=shared,
        )
    except Problem as exc:
        st.error(f"Not saved: {md_escape(str(exc))}")
        return
    extra = " with its chart" if saved.chart else ""
    where = "shared with the team" if saved.shared else "private"
    _flash("success", f"Saved “{saved.name}”{extra} ({where}).")
    st.session_state[CLEAR_KEY] = True
    st.rerun()


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _chart_text(chart: dict[str, Any] | None) -> str:
    if not chart:
        return "No chart."
    overlays = chart.get("overlays") or []
    extra = f" with {', '.join(map(str, overlays))}" if overlays else ""
    return f"Chart: {chart.get('kind', '?')}{extra}."


def _update_form(queries: SavedQueries, user: User, query: SavedQuery) -> None:
    qid = query.query_id
    with st.form(f"sq-update-{qid}"):
        name = st.text_input("Name", query.name, max_chars=MAX_NAME, key=f"sq-name-{qid}")
        description = st.text_area(
            "Description", query.description, max_chars=MAX_DESCRIPTION, key=f"sq-desc-{qid}"
        )
        new_sql = st.checkbox("Replace the SQL with the editor's", True, key=f"sq-sql-{qid}")
        choice = st.radio("Chart", CHART_CHOICES, horizontal=True, key=f"sq-chart-{qid}")
        if not st.form_submit_button("Update"):
            return
    changes: dict[str, Any] = {"name": name, "description": description}
    if new_sql:
        changes["sql"] = str(st.session_state.get(TEXT_KEY, ""))
    if choice == CHART_CHOICES[2]:
        changes["chart"] = None
    elif choice == CHART_CHOICES[1]:
        chart = sql_chart.chart_spec(current_frame())
        if chart is None:
            st.error("No chart is drawn under a result: draw one, or keep the saved chart.")
            return
        changes["chart"] = chart
    try:
        done = queries.update(user, qid, **changes)
    except Problem as exc:
        st.error(f"Not updated: {md_escape(str(exc))}")
        return
    _flash("success", f"Updated “{done.name}”.")
    st.rerun()


def _item(queries: SavedQueries, user: User, query: SavedQuery) -> None:
    mine = query.user_id == user.user_id
    owner = "you" if mine else (query.owner or "a former member")
    access = "shared" if query.shared else "private"
    label = f"{query.name} · {owner} · {access} · updated {_when(query.updated_at)}"
    qid = query.query_id
    with st.expander(md_escape(label)):
        if query.description:
            st.text(query.description)
        st.code(query.sql, language="sql")
        st.caption(md_escape(_chart_text(query.chart)))
        cols = st.columns(4)
        load = (queries, user, qid)
        cols[0].button("Load", key=f"sq-load-{qid}", on_click=_load, args=(*load, False))
        cols[1].button("Run", key=f"sq-run-{qid}", on_click=_load, args=(*load, True))
        if mine:
            cols[2].button(
                "Unshare" if query.shared else "Share",
                key=f"sq-share-{qid}",
                on_click=_share,
                args=(queries, user, query),
            )
        if mine or user.is_admin:
            cols[3].button("Delete", key=f"sq-del-{qid}", on_click=_ask_delete, args=(qid,))
        if st.session_state.get(CONFIRM_KEY) == qid:
            st.warning(f"Delete “{md_escape(query.name)}” for good?")
            yes, no = st.columns(2)
            yes.button(
                "Yes, delete", key=f"sq-yes-{qid}", on_click=_delete, args=(queries, user, query)
            )
            no.button("Cancel", key=f"sq-no-{qid}", on_click=_ask_delete, args=(None,))
        if mine:
            _update_form(queries, user, query)


def saved_panel(queries: SavedQueries, user: User) -> None:
    """My saved queries and the team's shared ones, newest first, with their actions."""
    st.subheader("Saved queries")
    _show_flash()
    try:
        items = queries.list(user)
    except Problem as exc:
        st.error(f"Saved queries unavailable: {md_escape(str(exc))}")
        return
    if not items:
        st.caption(
            "No saved queries yet. Under “Save query”, name the query in the editor (and the "
            "chart drawn from it): it stays here for you to load or run again, and, if you "
            "share it, for every analyst of the team."
        )
        return
    shown = items
    if len(items) > 10:
        needle = st.text_input("Filter by name", key="sq-filter").strip().casefold()
        shown = [q for q in items if needle in q.name.casefold()]
    mine = sum(q.user_id == user.user_id for q in items)
    st.caption(f"{integer(mine)} yours · {integer(len(items) - mine)} shared by others")
    for query in shown:
        _item(queries, user, query)
