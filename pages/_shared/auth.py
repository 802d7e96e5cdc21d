"""Who is signed in, and the role check every page runs at its top.

INTERIM (Foundation): accounts do not exist yet, so every visitor acts as an
admin. The accounts issue replaces this module's internals with the real
token check against the lakehouse; the two functions keep their signatures.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from pages._shared.navigation import role_allows


@dataclass(frozen=True, slots=True)
class SignedIn:
    user_id: str
    username: str
    role: str


def current_user() -> SignedIn | None:
    return SignedIn(user_id="local", username="local", role="admin")


def require_role(min_role: str) -> SignedIn:
    """Stop the page with a clear message unless the user's role allows it."""
    user = current_user()
    if user is None or not role_allows(user.role, min_role):
        st.error(f"This page needs the {min_role} role.")
        st.stop()
    return user
