"""Fixtures shared by every suite."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh HFT_DATA_DIR for one test."""
    d = tmp_path / "data"
    monkeypatch.setenv("HFT_DATA_DIR", str(d))
    return d
