"""AppTest fixtures: each test gets a fresh data dir and a fresh engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st


@pytest.fixture(autouse=True)
def fresh_engine(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


APP = str(Path(__file__).resolve().parents[2] / "app.py")
