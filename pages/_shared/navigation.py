"""The page list handed to st.navigation, built for the signed-in user's role.

Add a page by adding one PageSpec. `min_role=None` marks a public page shown
only to visitors who are not signed in (login, register).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    PageSpec("pages/live_market.py", "Live Market", ":material/monitoring:", "Market", "viewer"),
    PageSpec("pages/sql_explorer.py", "SQL Explorer", ":material/database:", "Market", "analyst"),
    PageSpec("pages/data.py", "Data", ":material/storage:", "Market", "analyst"),
    PageSpec(
        "pages/chiarella_lab.py", "Chiarella lab", ":material/groups:", "Analytics", "analyst"
    ),
    PageSpec(
        "pages/regimes.py", "Regimes", ":material/stacked_line_chart:", "Analytics", "analyst"
    ),
    PageSpec(
        "pages/optimizer_mfg.py", "Optimizer & MFG", ":material/tune:", "Analytics", "analyst"
    ),
    PageSpec(
        "pages/mean_reversion.py", "Mean reversion", ":material/swap_vert:", "Analytics", "analyst"
    ),
    PageSpec("pages/login.py", "Sign in", ":material/login:", "Account", None, default=True),
    PageSpec("pages/register.py", "Register", ":material/person_add:", "Account", None),
    PageSpec("pages/account.py", "My account", ":material/badge:", "Account", "viewer"),
    PageSpec("pages/api_keys.py", "API keys & quotas", ":material/key:", "Account", "viewer"),
    PageSpec("pages/privacy.py", "Privacy", ":material/shield_person:", "Account", "viewer"),
    PageSpec("pages/admin_users.py", "Users", ":material/group:", "Admin", "admin"),
    PageSpec("pages/admin_audit.py", "Audit log", ":material/history_edu:", "Admin", "admin"),
    PageSpec("pages/admin_tables.py", "Table history", ":material/history:", "Admin", "admin"),
    PageSpec("pages/admin_maintenance.py", "Maintenance", ":material/build:", "Admin", "admin"),
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
    """The role's pages. A signed-in user also gets the public pages, hidden from the menu, so
    the login page's URL still resolves right after signing in (it then moves on to Home)."""
    specs = visible_specs(role)
    has_default = any(p.default for p in specs)
    sections: dict[str, list[StreamlitPage]] = {}
    for i, p in enumerate(specs):
        default = p.default or (not has_default and i == 0)
        if default and p.min_role is None:
            # A visitor's start page is served at "/"; a hidden twin keeps its own URL
            # (e.g. /login) working instead of showing "page not found".
            stem = Path(p.path).stem
            twin = st.Page(p.path, title=p.title, icon=p.icon, url_path=stem, visibility="hidden")
            sections.setdefault(p.section, []).append(twin)
            page = st.Page(
                p.path, title=p.title, icon=p.icon, default=True, url_path=f"{stem}-start"
            )
        else:
            page = st.Page(p.path, title=p.title, icon=p.icon, default=default)
        sections.setdefault(p.section, []).append(page)
    if role is not None and specs:
        for p in PAGES:
            if p.min_role is None:
                hidden = st.Page(p.path, title=p.title, icon=p.icon, visibility="hidden")
                sections.setdefault(p.section, []).append(hidden)
    return sections
