"""The page list handed to st.navigation, built for the signed-in user's role.

Add a page by adding one PageSpec. `min_role=None` marks a public page shown
only to visitors who are not signed in (login, register).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.navigation.page import StreamlitPage

ROLE_RANK = {"viewer": 0, "analyst": 1, "admin": 2}


@dataclass(frozen=True, slots=True)
class PageSpec:
    path: str
    title: str
    icon: str
    section: str
    min_role: str | None
    default: bool = False


PAGES: list[PageSpec] = [
    PageSpec("pages/home.py", "Home", ":material/home:", "Portal", "viewer", default=True),
]


def role_allows(role: str | None, min_role: str | None) -> bool:
    """Deny by default: unknown roles get nothing but public pages."""
    if min_role is None:
        return role is None
    if role not in ROLE_RANK or min_role not in ROLE_RANK:
        return False
    return ROLE_RANK[role] >= ROLE_RANK[min_role]


def visible_specs(role: str | None) -> list[PageSpec]:
    return [p for p in PAGES if role_allows(role, p.min_role)]


def build_pages(role: str | None) -> dict[str, list[StreamlitPage]]:
    specs = visible_specs(role)
    has_default = any(p.default for p in specs)
    sections: dict[str, list[StreamlitPage]] = {}
    for i, p in enumerate(specs):
        default = p.default or (not has_default and i == 0)
        page = st.Page(p.path, title=p.title, icon=p.icon, default=default)
        sections.setdefault(p.section, []).append(page)
    return sections
