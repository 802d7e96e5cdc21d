"""Studies: my saved runs and the team's shared ones; reopen, rerun, compare, share, delete.

Form -> core.research.studies -> render. Nothing is recomputed to show a study: metrics and
artefacts are read back as saved. Rerun runs the kind again on the stored inputs and says
whether the numbers are reproduced exactly.
"""

from __future__ import annotations

import polars as pl
import streamlit as st

from core.analytics.runs import study_kinds
from core.errors import HftError
from core.research.compare import Comparison, RerunReport
from core.research.studies import Owner, Studies, Study
from lakehouse import LakehouseError, User
from lakehouse.errors import StorageError
from pages._shared.auth import require_role
from pages._shared.format import md_escape, num, plural, show_table
from pages._shared.services import get_services
from pages._shared.studies import STUDY_PARAM

OWNERS: dict[str, Owner | None] = {"Mine and the team's": None, "Mine": "me", "Team": "team"}
KEY_METRICS = 3
MAKERS = "Regimes, Chiarella lab, Mean reversion and Optimizer & MFG"


def problem(exc: Exception) -> str:
    """A message for the user; storage failures say what to do, never where."""
    if isinstance(exc, StorageError):
        return "The studies store could not be read or written; try again in a moment."
    return md_escape(str(exc))


def metric_text(study: Study) -> str:
    items = list(study.metrics.items())[:KEY_METRICS]
    return ", ".join(f"{name} {num(value)}" for name, value in items)


def study_table(found: list[Study], titles: dict[str, str]) -> None:
    rows = pl.DataFrame(
        {
            "title": [s.title for s in found],
            "kind": [titles.get(s.kind, s.kind) for s in found],
            "series": [s.series for s in found],
            "owner": [s.username or "—" for s in found],
            "created": [s.created_at for s in found],
            "shared": [s.shared for s in found],
            "key_metrics": [metric_text(s) for s in found],
        },
        schema_overrides={"created": pl.Datetime("us", "UTC")},
    )
    show_table(rows, times=["created"])


def show_frame(studies: Studies, user: User, study: Study, name: str) -> None:
    frame = studies.frame(user, study.study_id, name)
    times = [c for c, t in frame.schema.items() if isinstance(t, pl.Datetime | pl.Date)]
    numeric = [c for c, t in frame.schema.items() if t.is_numeric()]
    st.markdown(f"**{md_escape(name)}** · {plural(frame.height, 'row')}")
    if times and numeric and frame.height > 1:
        st.line_chart(frame.sort(times[0]), x=times[0], y=numeric)
    else:
        st.dataframe(frame, hide_index=True)
    data = studies.files.raw(study.user_id, study.study_id, name) or b""
    st.download_button(
        f"Download {name}.parquet",
        data,
        file_name=f"study-{study.study_id[:8]}-{name}.parquet",
        mime="application/vnd.apache.parquet",
        key=f"download-{study.study_id}-{name}",
    )


def show_report(report: RerunReport) -> None:
    if report.identical:
        st.success(md_escape(report.summary), icon=":material/verified:")
        return
    st.warning(md_escape(report.summary), icon=":material/difference:")
    if report.metric_diffs:
        diffs = pl.DataFrame(
            {
                "metric": [d.name for d in report.metric_diffs],
                "stored": [d.stored for d in report.metric_diffs],
                "new": [d.new for d in report.metric_diffs],
            },
            schema_overrides={"stored": pl.Float64, "new": pl.Float64},
        )
        show_table(diffs, sig=["stored", "new"])


def show_comparison(cmp: Comparison, a: Study, b: Study) -> None:
    metrics = pl.DataFrame(
        {
            "metric": [r.name for r in cmp.metrics],
            "a": [r.a for r in cmp.metrics],
            "b": [r.b for r in cmp.metrics],
            "difference": [r.diff for r in cmp.metrics],
        },
        schema_overrides={"a": pl.Float64, "b": pl.Float64, "difference": pl.Float64},
    )
    show_table(
        metrics,
        sig=["a", "b", "difference"],
        labels={"a": a.title, "b": b.title, "difference": "B − A"},
    )
    if cmp.params:
        st.markdown("Parameters that differ")
        params = pl.DataFrame(
            {
                "parameter": [p.name for p in cmp.params],
                "a": [str(p.a) for p in cmp.params],
                "b": [str(p.b) for p in cmp.params],
            }
        )
        show_table(params, labels={"a": a.title, "b": b.title})
    else:
        st.caption("Both studies used the same parameters.")


def owner_actions(studies: Studies, user: User, study: Study) -> None:
    label = "Unshare" if study.shared else "Share with the team"
    if st.button(label, key="share", icon=":material/share:"):
        studies.share(user, study.study_id, not study.shared)
        st.rerun()
    sure = st.checkbox("Yes, delete this study and its artefacts", key="confirm-delete")
    if st.button("Delete", key="delete", icon=":material/delete:", disabled=not sure):
        studies.delete(user, study.study_id)
        st.query_params.pop(STUDY_PARAM, None)
        st.session_state["studies-flash"] = f"Deleted “{study.title}”."
        st.rerun()


def show_inputs(study: Study) -> None:
    inputs = pl.DataFrame(
        {
            "series": [i.ref.label for i in study.inputs],
            "first_bar": [i.start for i in study.inputs],
            "last_bar": [i.end for i in study.inputs],
            "rows": [i.rows for i in study.inputs],
            "sha256": [i.sha256[:12] + "…" for i in study.inputs],
        }
    )
    show_table(inputs, times=["first_bar", "last_bar"], ints=["rows"], labels={"sha256": "SHA-256"})


def show_study(studies: Studies, user: User, study: Study, found: list[Study]) -> None:
    owner = study.username or "a former member"
    st.subheader(md_escape(study.title))
    shared = "shared with the team" if study.shared else "private"
    st.caption(
        f"{md_escape(study.kind)} · by {md_escape(owner)} · "
        f"{study.created_at:%Y-%m-%d %H:%M} UTC · {shared}"
    )
    left, right = st.columns(2)
    with left:
        st.markdown("**Parameters**")
        st.json(study.params, expanded=False)
        st.markdown("**Code version**")
        st.code(study.code_version, language=None)
    with right:
        st.markdown("**Metrics**")
        metrics = pl.DataFrame(
            {"metric": list(study.metrics), "value": list(study.metrics.values())},
            schema_overrides={"value": pl.Float64},
        )
        show_table(metrics, sig=["value"])
    st.markdown("**Inputs**")
    if not study.inputs:
        st.caption("No input series: a simulation from its parameters and seed.")
    else:
        show_inputs(study)

    if st.button("Rerun", key="rerun", icon=":material/replay:", type="primary"):
        with st.spinner("Running the study again on its stored inputs…"):
            show_report(studies.rerun(user, study.study_id))
    if study.user_id == user.user_id:
        owner_actions(studies, user, study)

    for name in study.artefacts:
        show_frame(studies, user, study, name)

    others = [s for s in found if s.kind == study.kind and s.study_id != study.study_id]
    with st.expander("Compare with another study of this kind", expanded=False):
        if not others:
            st.caption("No other study of this kind is visible to you yet.")
        else:
            ids = [s.study_id for s in others]
            by_id = {s.study_id: s for s in others}
            pick = st.selectbox(
                "Second study",
                ids,
                format_func=lambda i: f"{by_id[i].title} · {by_id[i].created_at:%Y-%m-%d %H:%M}",
                key="compare-with",
            )
            if pick:
                cmp = studies.compare(user, study.study_id, pick)
                show_comparison(cmp, study, by_id[pick])


user = require_role("analyst")
studies = get_services().studies
st.title("Studies")
if flash := st.session_state.pop("studies-flash", None):
    st.success(md_escape(str(flash)))

kinds = study_kinds()
titles = {k: v.title for k, v in kinds.items()}
c1, c2, c3 = st.columns(3)
kind = c1.selectbox(
    "Kind", [None, *titles], format_func=lambda k: "All kinds" if k is None else titles[k]
)
owner_label = c2.radio("Owner", list(OWNERS), horizontal=True)
series = c3.text_input("Series", placeholder="symbol or label, e.g. SP500")

try:
    found = studies.list(user, kind=kind, series=series or None, owner=OWNERS[owner_label])
except (HftError, LakehouseError) as exc:
    st.error(problem(exc))
    st.stop()

if not found:
    if kind is None and not series and OWNERS[owner_label] is None:
        st.info(
            "A study is a saved run: its parameters, the exact input bars (with a content "
            "hash), the code version, its metrics and its result tables. "
            f"{MAKERS} save every run here. Reopen one without recomputing, rerun it to check "
            "the numbers are reproduced exactly, compare two, or share one with the team.",
            icon=":material/science:",
        )
    else:
        st.info("No study matches these filters.")
    st.stop()

study_table(found, titles)
ids = [s.study_id for s in found]
by_id = {s.study_id: s for s in found}
wanted = st.query_params.get(STUDY_PARAM)
choice = st.selectbox(
    "Open a study",
    ids,
    index=ids.index(wanted) if wanted in ids else 0,
    format_func=lambda i: (
        f"{by_id[i].title} · {titles.get(by_id[i].kind, by_id[i].kind)} · "
        f"{by_id[i].created_at:%Y-%m-%d %H:%M}"
    ),
)
if choice:
    st.query_params[STUDY_PARAM] = choice
    try:
        show_study(studies, user, by_id[choice], found)
    except (HftError, LakehouseError) as exc:
        st.error(problem(exc))
