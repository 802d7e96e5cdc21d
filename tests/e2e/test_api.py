"""The REST API on the real `streamlit run app.py` server: same process, same port.

A token is made through the lakehouse on the server's data dir by a second backend in a
separate process (as an operator's script would); the server picks it up by polling the
table versions. The coverage it answers is the store's, in Arrow, with the security headers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
import requests
from polars.testing import assert_frame_equal

from tests.e2e.conftest import ROOT, Server

pytestmark = pytest.mark.e2e


def make_token(server: Server, role: str, coverage: Path) -> str:
    """A market:read token of the server's `role` account, made in another process, which
    also writes the store's coverage as Parquet to `coverage`."""
    username, password = server.accounts[role]
    done = subprocess.run(
        [sys.executable, "-m", "tests.e2e.test_api", str(server.data_dir), str(coverage)],
        input=json.dumps({"username": username, "password": password}),
        text=True,
        cwd=ROOT,
        check=False,
        timeout=180,
        capture_output=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"making the token failed:\n{done.stdout}\n{done.stderr}")
    token: str = json.loads(done.stdout)["token"]
    return token


def until_accepted(url: str, token: str, timeout_s: float = 60.0) -> requests.Response:
    """GET `url` with `token` until the server knows the token (it polls the tables)."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        if r.status_code != 401 or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def stable(frame: pl.DataFrame) -> pl.DataFrame:
    """Coverage rows that do not move while the demo venue streams."""
    return frame.filter(pl.col("venue") != "demo").sort("kind", "venue", "symbol", "timeframe")


def test_series_over_the_app_port_with_a_token_from_the_lakehouse(
    server: Server, tmp_path: Path
) -> None:
    index = requests.get(f"{server.url}/api/v1/", timeout=30)
    assert index.status_code == 200
    assert index.json()["openapi"] == "/api/v1/openapi.json"

    bad = requests.get(
        f"{server.url}/api/v1/series", headers={"Authorization": "Bearer nope"}, timeout=30
    )
    assert bad.status_code == 401
    assert bad.headers["Content-Type"] == "application/problem+json"
    assert bad.headers["WWW-Authenticate"].startswith("Bearer")
    assert "malformed access token" in bad.json()["detail"]

    coverage = tmp_path / "coverage.parquet"
    token = make_token(server, "viewer", coverage)
    r = until_accepted(f"{server.url}/api/v1/series", token)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/vnd.apache.arrow.stream"
    got = pl.from_arrow(pa.ipc.open_stream(r.content).read_all())
    assert isinstance(got, pl.DataFrame)
    want = pl.read_parquet(coverage)
    assert got.schema == want.schema
    assert_frame_equal(stable(got), stable(want))
    assert "SP500" in got["symbol"].to_list()

    for answer in (index, bad, r):
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"

    docs = requests.get(f"{server.url}/api/v1/docs", timeout=30)
    assert docs.status_code == 200
    assert "<script" not in docs.text.lower()
    assert "script-src" in docs.headers["Content-Security-Policy"]


def main() -> int:
    """Subprocess entry: make a token for the account on stdin, write the coverage."""
    from core.config import Settings
    from core.engine import Engine
    from lakehouse import LakehouseAuthBackend

    data_dir, coverage = Path(sys.argv[1]), Path(sys.argv[2])
    who = json.load(sys.stdin)
    settings = Settings.from_env({"HFT_DATA_DIR": str(data_dir), "HFT_DEMO_VENUE": "false"})
    backend = LakehouseAuthBackend(settings.lakehouse_dir, secrets_dir=settings.secrets_dir)
    user = backend.find_user(who["username"])
    assert user is not None
    token = backend.create_access_token(
        user.user_id, "e2e", ["market:read"], 1, password=who["password"]
    )
    backend.flush()
    engine = Engine(settings)
    engine.coverage().write_parquet(coverage)
    engine.close()
    print(json.dumps({"token": token}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
