from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings
from core.errors import InvalidInput


def test_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    s = Settings.from_env({})
    assert s.data_dir == tmp_path / "data"
    assert s.lakehouse_dir == tmp_path / "data" / "lakehouse"
    assert s.market_dir == tmp_path / "data" / "market"
    assert s.session_ttl_hours == 168


def test_reads_env(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "HFT_DATA_DIR": str(tmp_path / "x"),
            "HFT_SQL_MAX_ROWS": "10",
            "HFT_DEMO_VENUE": "off",
            "HFT_SESSION_IDLE_MINUTES": "1.5",
        }
    )
    assert s.data_dir == tmp_path / "x"
    assert s.sql_max_rows == 10
    assert s.demo_venue is False
    assert s.session_idle_minutes == 1.5


def test_frozen() -> None:
    s = Settings.from_env({})
    with pytest.raises(AttributeError):
        s.data_dir = Path("/")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({"HFT_SQL_MAX_ROWS": "many"}, "HFT_SQL_MAX_ROWS"),
        ({"HFT_DEMO_VENUE": "maybe"}, "true or false"),
        ({"HFT_SQL_TIMEOUT_S": "0"}, "must be > 0"),
    ],
)
def test_bad_values_are_clear(env: dict[str, str], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        Settings.from_env(env)


def test_no_secret_constants_in_code() -> None:
    src = Path(__file__).resolve().parents[2] / "core" / "config.py"
    text = src.read_text().lower()
    for word in ("secret =", "password =", "jwt_key ="):
        assert word not in text


def test_trusted_proxies_and_sql_memory() -> None:
    s = Settings.from_env(
        {"HFT_TRUSTED_PROXIES": "127.0.0.1, 10.0.0.0/8,::1", "HFT_SQL_MEMORY_MB": "256"}
    )
    assert [str(n) for n in s.trusted_proxy_networks] == ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert s.sql_memory_mb == 256
    assert Settings.from_env({}).trusted_proxy_networks == ()
    with pytest.raises(InvalidInput, match=r"HFT_TRUSTED_PROXIES: 'example\.org'"):
        Settings.from_env({"HFT_TRUSTED_PROXIES": "10.0.0.0/8,example.org"})
    with pytest.raises(InvalidInput, match="HFT_SQL_MEMORY_MB must be > 0"):
        Settings.from_env({"HFT_SQL_MEMORY_MB": "0"})
