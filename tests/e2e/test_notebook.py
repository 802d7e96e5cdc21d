"""examples/research.ipynb end to end: a real `streamlit run app.py` portal, an access token
made in its data dir, and the notebook executed by nbclient in a python3 kernel from this venv.

The notebook reaches the portal only through core.client: bars over Arrow Flight when app.py
starts the Flight service (pages/_shared/flight.py), else over the REST API."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from core.client import Client, Unauthorized
from tests.e2e.conftest import ROOT, Server, free_port

pytestmark = pytest.mark.e2e

NOTEBOOK = ROOT / "examples" / "research.ipynb"
PASSWORD = "notebook horse battery staple 7"
SETUP = """
import sys
from core.config import Settings
from lakehouse import Argon2Params, LakehouseAuthBackend

s = Settings.from_env({"HFT_DATA_DIR": sys.argv[1]})
b = LakehouseAuthBackend(
    s.lakehouse_dir,
    secrets_dir=s.secrets_dir,
    argon2_params=Argon2Params.fast_for_tests(),
    allow_weak_hashing_for_tests=True,
)
password = sys.argv[2]
u = b.register("nb-analyst", "nb-analyst@example.test", password)
b.set_role_as_operator("nb-analyst", "analyst")
make = b.create_access_token
print(make(u.user_id, "notebook", ["market:read", "analytics:run"], 1, password=password))
print(make(u.user_id, "bars only", ["market:read"], 1, password=password))
gone = make(u.user_id, "revoked", ["market:read", "analytics:run"], 1, password=password)
b.revoke_access_token(u.user_id, next(t for t in b.list_access_tokens(u.user_id)
                                      if t.name == "revoked").token_id)
print(gone)
b.flush()
"""


def flight_in_app() -> bool:
    """Whether app.py starts the Flight service (the lead wires pages/_shared/flight.py)."""
    text = (ROOT / "app.py").read_text()
    return "flight_lifespan" in text or "get_flight(" in text


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, str]]]:
    data = tmp_path_factory.mktemp("notebook") / "data"
    made = subprocess.run(
        [sys.executable, "-c", SETUP, str(data), PASSWORD],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    full, bars_only, revoked = made.stdout.split()
    env = {"HFT_FLIGHT_PORT": str(free_port()), "HFT_DEMO_VENUE": "false"}
    server = Server(data, env=env)
    yield server, {"full": full, "bars_only": bars_only, "revoked": revoked}
    server.stop()


def run_notebook(url: str, token: str, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    monkeypatch.setenv("HFT_URL", url)
    monkeypatch.setenv("HFT_TOKEN", token)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "commit the notebook with its outputs cleared"
    )
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}
    )
    client.execute()
    return nb


def texts(nb: nbformat.NotebookNode) -> str:
    out: list[str] = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            out.append(o.get("text", ""))
            out.append(str(o.get("data", {}).get("text/plain", "")))
    return "\n".join(out)


def test_notebook_gets_bars_and_a_regime_fit(
    portal: tuple[Server, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, tokens = portal
    nb = run_notebook(server.url, tokens["full"], monkeypatch)
    text = texts(nb)
    transport = "flight" if flight_in_app() else "rest"
    bars = re.search(
        r"bars: (\d+) daily bars of SP500, 1999-01-04 to 2018-12-31 \(via (\w+)\)", text
    )
    assert bars is not None, text
    assert int(bars.group(1)) > 4_900
    assert bars.group(2) == transport
    fit = re.search(r"regimes: (\d) states by bic over (\d+) returns", text)
    assert fit is not None, text
    assert 1 <= int(fit.group(1)) <= 3
    assert int(fit.group(2)) == int(bars.group(1)) - 1
    per_state = re.search(r"days per state: \{(.*)\}", text)
    assert per_state is not None
    days = [int(part.split(":")[1]) for part in per_state.group(1).split(",")]
    assert sum(days) == int(fit.group(2))
    plots = [
        o
        for cell in nb.cells
        for o in cell.get("outputs", [])
        if "application/vnd.plotly.v1+json" in o.get("data", {})
    ]
    assert len(plots) == 1
    traces = plots[0]["data"]["application/vnd.plotly.v1+json"]["data"]
    assert len(traces) == 1 + int(fit.group(1))  # the close line and one trace per regime


def test_notebook_with_a_token_lacking_analytics_stops_with_403(
    portal: tuple[Server, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, tokens = portal
    with pytest.raises(CellExecutionError) as exc:
        run_notebook(server.url, tokens["bars_only"], monkeypatch)
    assert "Forbidden" in str(exc.value)
    assert "analytics:run" in str(exc.value)
    assert tokens["bars_only"] not in str(exc.value)


def test_revoked_token_is_401_through_the_client(portal: tuple[Server, dict[str, str]]) -> None:
    server, tokens = portal
    for transport in (None, False):
        c = Client(server.url, tokens["revoked"], flight=transport)
        with pytest.raises(Unauthorized, match="revoked"):
            c.bars("SP500", timeframe="1d", last=5)
        c.close()


def test_flight_and_rest_answers_are_equal(portal: tuple[Server, dict[str, str]]) -> None:
    server, tokens = portal
    with (
        Client(server.url, tokens["full"]) as auto,
        Client(server.url, tokens["full"], flight=False) as rest,
    ):
        a = auto.bars("SP500", timeframe="1d", start="2008-01-01", end="2009-01-01")
        b = rest.bars("SP500", timeframe="1d", start="2008-01-01", end="2009-01-01")
        assert auto.transport == ("flight" if flight_in_app() else "rest")
    assert a.height == 253
    assert a.equals(b)
