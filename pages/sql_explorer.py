"""SQL Explorer: read-only SQL over the market views, with history and downloads."""

import io

import streamlit as st

from core import QueryRejected
from core.errors import InvalidInput
from core.sql import EXAMPLES
from pages._shared.auth import require_role
from pages._shared.engine import get_engine
from pages._shared.format import integer, md_escape, num, plural
from pages._shared.saved_queries import (
    RESULT_KEY,
    TEXT_KEY,
    save_form,
    saved_panel,
    take_run_request,
)
from pages._shared.services import get_services
from pages._shared.sql_chart import chart_builder

user = require_role("analyst")
engine = get_engine()
explorer = engine.sql
queries = get_services().queries
# DuckDB's type names, short enough for the schema panel; the stored timestamps are UTC.
TYPE_NAMES = {
    "TIMESTAMP WITH TIME ZONE": "timestamp (UTC)",
    "TIMESTAMP": "timestamp",
    "DATE": "date",
    "VARCHAR": "text",
    "DOUBLE": "float",
    "FLOAT": "float",
    "BIGINT": "integer",
    "INTEGER": "integer",
    "UBIGINT": "integer",
    "UINTEGER": "integer",
    "SMALLINT": "integer",
    "BOOLEAN": "true/false",
}


def short_type(name: str) -> str:
    return TYPE_NAMES.get(name.upper(), name.lower())


st.title("SQL Explorer")
st.caption(
    "One read-only SELECT (or WITH) query over the views `bars`, `trades` and `daily`. "
    f"Queries stop after {engine.settings.sql_timeout_s:g} s and return at most "
    f"{plural(engine.settings.sql_max_rows, 'row')}. Files, settings, extensions and account "
    "data are out of reach."
)

if TEXT_KEY not in st.session_state:
    st.session_state[TEXT_KEY] = next(iter(EXAMPLES.values()))


def use_sql(sql: str) -> None:
    st.session_state[TEXT_KEY] = sql


schema_col, editor_col = st.columns([1, 3])
with schema_col:
    st.subheader("Schema")
    try:
        schema = explorer.schema()
    except QueryRejected as exc:
        schema = {}
        st.error(f"Schema unavailable: {md_escape(str(exc))}")
    for view, columns in schema.items():
        with st.expander(view, expanded=view == "bars"):
            st.dataframe(
                {"Column": [c for c, _ in columns], "Type": [short_type(t) for _, t in columns]},
                hide_index=True,
                width="stretch",
            )
    st.subheader("Examples")
    for title, sql in EXAMPLES.items():
        st.button(title, key=f"example-{title}", on_click=use_sql, args=(sql,), width="stretch")

with editor_col:
    with st.form("sql_form"):
        sql = st.text_area("SQL", key=TEXT_KEY, height=180)
        limit_col, timeout_col = st.columns(2)
        max_rows = limit_col.number_input(
            "Row cap",
            min_value=1,
            max_value=engine.settings.sql_max_rows,
            value=min(10_000, engine.settings.sql_max_rows),
        )
        timeout_s = timeout_col.number_input(
            "Timeout (s)",
            min_value=0.5,
            max_value=float(engine.settings.sql_timeout_s),
            value=float(engine.settings.sql_timeout_s),
        )
        submitted = st.form_submit_button("Run query", type="primary")
    if take_run_request() or submitted:  # "Run" on a saved query put its SQL in the editor
        try:
            st.session_state[RESULT_KEY] = explorer.execute(
                sql, timeout_s=float(timeout_s), max_rows=int(max_rows), user=user.user_id
            )
        except QueryRejected as exc:
            st.session_state.pop(RESULT_KEY, None)
            if exc.reason == "timeout":
                st.error(f"Timed out: {md_escape(str(exc))}")
            elif exc.reason == "memory":
                st.error(f"Too much memory: {md_escape(str(exc))}")
            elif exc.reason == "error" and str(exc).startswith("could not parse"):
                detail = str(exc).removeprefix("could not parse the query").lstrip(" :")
                st.error(f"The SQL could not be parsed: {md_escape(detail)}")
            elif exc.reason == "error":
                st.error(f"Query failed: {md_escape(str(exc))}")
            else:
                st.error(f"Refused: {md_escape(str(exc))}")
        except InvalidInput as exc:
            st.session_state.pop(RESULT_KEY, None)
            st.error(f"Invalid input: {md_escape(str(exc))}")
    save_slot = st.container()  # filled once the chart below is known

    result = st.session_state.get(RESULT_KEY)
    if result is not None:
        note = " (cut at the row cap)" if result.truncated else ""
        rows = plural(result.frame.height, "row")
        st.success(f"{rows} in {num(result.elapsed_s * 1000, 3)} ms{note}")
        for change in result.notes:
            st.info(f"Note: {change}")
        st.dataframe(result.frame, width="stretch", hide_index=True)
        parquet = io.BytesIO()
        result.frame.write_parquet(parquet)
        csv_col, pq_col = st.columns(2)
        csv_col.download_button("Download CSV", result.frame.write_csv(), "query.csv", "text/csv")
        pq_col.download_button(
            "Download Parquet", parquet.getvalue(), "query.parquet", "application/octet-stream"
        )
        chart_builder(result.frame)
    with save_slot:
        save_form(queries, user)

    saved_panel(queries, user)

    st.subheader("Your query history")
    history = explorer.history(user.user_id, limit=20)
    if not history:
        st.caption("No queries yet.")
    for i, item in enumerate(history):
        status = plural(int(item["rows"]), "row") if item["ok"] else "refused or failed"
        with st.expander(f"{item['at']} · {status} · {integer(item['elapsed_ms'])} ms"):
            st.code(item["sql"], language="sql")
            if item.get("error"):
                st.text(item["error"])
            st.button("Load into editor", key=f"hist-{i}", on_click=use_sql, args=(item["sql"],))
    if history and st.button("Clear my history"):
        explorer.clear_history(user.user_id)
        st.rerun()
