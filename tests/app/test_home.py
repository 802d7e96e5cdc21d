from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.conftest import AppAs
from tests.app.helpers import texts

pytestmark = pytest.mark.app


def test_home_shows_engine_facts(data_dir: Path, app_as: AppAs) -> None:
    """The engine's facts moved from Home to the admin System page; Home shows none of them."""
    home = app_as("viewer").run()
    assert not home.exception
    assert not home.metric
    assert str(data_dir) not in texts(home)
    at = app_as("admin", "pages/admin_system.py").run()
    assert not at.exception
    labels = {m.label: m.value for m in at.metric}
    assert labels["Native module"] == "loaded"
    assert labels["Engine version"]
    assert labels["Free disk"].split()[-1] in {"GiB", "TiB", "MiB"}
    assert any("core._native" in s.value for s in at.success)
    assert any(str(data_dir) in t.value for t in at.text)
