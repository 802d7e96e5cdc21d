"""The page list handed to st.navigation, built for the signed-in user's role.

Add a page by adding one PageSpec. `min_role=None` marks a public page shown only to visitors
who are not signed in (login, register). Every page is registered for every visitor, so any
URL of the portal resolves; the menu shows only the pages the role may use, and each page's
own `require_role` refuses the others with a message that says what happened.
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
    blurb: str = ""
    """One line for Home: what a user does on this page."""

    @property
    def url_path(self) -> str:
        return Path(self.path).stem  # st.Page's default url_path


PAGES: list[PageSpec] = [
    PageSpec("pages/home.py", "Home", ":material/home:", "Portal", "viewer", default=True),
    PageSpec(
        "pages/live_market.py",
        "Live Market",
        ":material/monitoring:",
        "Market",
        "viewer",
        blurb="Candles, trades and spread of the live streams, updated every second.",
    ),
    PageSpec(
        "pages/prediction_markets.py",
        "Prediction markets",
        ":material/online_prediction:",
        "Market",
        "viewer",
        blurb="Search Polymarket and chart an outcome's probability and order book.",
    ),
    PageSpec(
        "pages/sql_explorer.py",
        "SQL Explorer",
        ":material/database:",
        "Market",
        "analyst",
        blurb="Query every stored bar and trade with SQL; download the result.",
    ),
    PageSpec(
        "pages/data.py",
        "Data",
        ":material/storage:",
        "Market",
        "analyst",
        blurb="Fetch history from a venue and subscribe to live streams.",
    ),
    PageSpec(
        "pages/alerts.py",
        "Alerts",
        ":material/notifications:",
        "Market",
        "analyst",
        blurb="Get told when a price, z-score, regime or saved query crosses a line.",
    ),
    PageSpec(
        "pages/chiarella_lab.py",
        "Chiarella lab",
        ":material/groups:",
        "Analytics",
        "analyst",
        blurb="Simulate a fundamentalist/chartist market and fit it to a real series.",
    ),
    PageSpec(
        "pages/regimes.py",
        "Regimes",
        ":material/stacked_line_chart:",
        "Analytics",
        "analyst",
        blurb="Find calm and turbulent market regimes with a hidden Markov model.",
    ),
    PageSpec(
        "pages/optimizer_mfg.py",
        "Optimizer & MFG",
        ":material/tune:",
        "Analytics",
        "analyst",
        blurb="Run the global optimiser and solve mean-field games of optimal execution.",
    ),
    PageSpec(
        "pages/mean_reversion.py",
        "Mean reversion",
        ":material/swap_vert:",
        "Analytics",
        "analyst",
        blurb="Test pairs and baskets for mean reversion and backtest a trading rule.",
    ),
    PageSpec(
        "pages/studies.py",
        "Studies",
        ":material/science:",
        "Analytics",
        "analyst",
        blurb="Reopen, rerun, compare and share the runs saved by the analysis pages.",
    ),
    PageSpec("pages/login.py", "Sign in", ":material/login:", "Account", None, default=True),
    PageSpec("pages/register.py", "Register", ":material/person_add:", "Account", None),
    PageSpec(
        "pages/account.py",
        "My account",
        ":material/badge:",
        "Account",
        "viewer",
        blurb="Your profile, password and signed-in devices.",
    ),
    PageSpec(
        "pages/api_keys.py",
        "API keys & quotas",
        ":material/key:",
        "Account",
        "viewer",
        blurb="Store data-provider keys and watch how much of each quota is left.",
    ),
    PageSpec(
        "pages/privacy.py",
        "Privacy",
        ":material/shield_person:",
        "Account",
        "viewer",
        blurb="Export everything stored about you, or erase your account.",
    ),
    PageSpec(
        "pages/admin_users.py",
        "Users",
        ":material/group:",
        "Admin",
        "admin",
        blurb="Change roles, disable accounts and end sessions.",
    ),
    PageSpec(
        "pages/admin_audit.py",
        "Audit log",
        ":material/history_edu:",
        "Admin",
        "admin",
        blurb="Who did what, when and from where.",
    ),
    PageSpec(
        "pages/admin_tables.py",
        "Table history",
        ":material/history:",
        "Admin",
        "admin",
        blurb="Versions of the account tables, and restoring an older one.",
    ),
    PageSpec(
        "pages/admin_maintenance.py",
        "Maintenance",
        ":material/build:",
        "Admin",
        "admin",
        blurb="Compact and clean the account tables.",
    ),
    PageSpec(
        "pages/admin_system.py",
        "System",
        ":material/memory:",
        "Admin",
        "admin",
        blurb="Engine version, native module, disk, storage tiers and stored data.",
    ),
]
PAGE_PATHS = frozenset(p.path for p in PAGES)


def role_allows(role: str | None, min_role: str | None) -> bool:
    """Deny by default: unknown roles get nothing but public pages."""
    if min_role is None:
        return role is None
    if role not in ROLE_RANK or min_role not in ROLE_RANK:
        return False
    return ROLE_RANK[role] >= ROLE_RANK[min_role]


def visible_specs(role: str | None) -> list[PageSpec]:
    """The pages in this role's menu."""
    return [p for p in PAGES if role_allows(role, p.min_role)]


def spec_of(path: object) -> PageSpec | None:
    """The portal page at `path` ("pages/regimes.py"), or None for anything else."""
    return next((p for p in PAGES if p.path == path), None)


def build_pages(role: str | None) -> dict[str, list[StreamlitPage]]:
    """Every page of the portal, by section: the role's pages in the menu, the others hidden.

    A hidden page still answers at its URL, where its `require_role` asks a visitor to sign in
    or tells a signed-in user which role it needs; it never renders for a lower role.
    """
    shown = visible_specs(role)
    start = next((p for p in shown if p.default), shown[0] if shown else None)
    sections: dict[str, list[StreamlitPage]] = {}
    for p in PAGES:
        page = st.Page(
            p.path, title=p.title, icon=p.icon, visibility="visible" if p in shown else "hidden"
        )
        sections.setdefault(p.section, []).append(page)
        if p is start:
            # The start page also answers at "/" (Streamlit's default page has no URL of its
            # own); the menu links its own URL (e.g. /home), so the entry is highlighted there.
            root = st.Page(
                p.path,
                title=p.title,
                icon=p.icon,
                default=True,
                url_path=f"{p.url_path}-start",
                visibility="hidden",
            )
            sections.setdefault(p.section, []).append(root)
    return sections
