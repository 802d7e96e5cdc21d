"""Starting the service: TLS from settings, port 0 (off), a port in use, and `hfthot serve`."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.flight as fl
import pytest

from core.cli import main
from core.config import Settings
from core.errors import InvalidInput
from core.serve.flight import PortInUse, open_flight, read_tls, start_flight
from tests.conftest import ROOT
from tests.integration.flight.portal import PASSWORD, SYMBOL, Portal, free_port
from tests.integration.ingest.tls_loopback import make_cert

BARS = fl.Ticket(json.dumps({"kind": "bars", "symbol": SYMBOL, "last": 3}).encode())


def settings_for(portal: Portal, **changes: object) -> Settings:
    s = dataclasses.replace(portal.services.settings, **changes)  # type: ignore[arg-type]
    s.validate()
    return s


def bearer(token: str) -> fl.FlightCallOptions:
    return fl.FlightCallOptions(
        timeout=30, headers=[(b"authorization", f"Bearer {token}".encode())]
    )


@pytest.fixture
def listener() -> Iterator[int]:
    """A port some other process holds."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_tls_from_settings(portal: Portal, tmp_path: Path) -> None:
    cert, key = make_cert(["localhost"], tmp_path)
    s = settings_for(
        portal, flight_port=free_port(), flight_tls_cert=str(cert), flight_tls_key=str(key)
    )
    service = start_flight(lambda: portal.services, s)
    assert service is not None
    try:
        assert service.location.startswith("grpc+tls://127.0.0.1:")
        client = fl.FlightClient(service.location, tls_root_certs=cert.read_bytes())
        assert client.do_get(BARS, bearer(portal.tokens["viewer"])).read_all().num_rows == 3
        client.close()
        # A client that does not trust the certificate gets no data.
        stranger = fl.FlightClient(service.location)
        with pytest.raises(fl.FlightUnavailableError):
            stranger.do_get(BARS, bearer(portal.tokens["viewer"])).read_all()
        stranger.close()
    finally:
        service.stop()


def test_tls_files_that_cannot_be_read_are_named_by_setting(portal: Portal, tmp_path: Path) -> None:
    missing = settings_for(
        portal, flight_tls_cert=str(tmp_path / "none.pem"), flight_tls_key=str(tmp_path / "k")
    )
    with pytest.raises(InvalidInput, match="HFT_FLIGHT_TLS_CERT: cannot read") as exc:
        read_tls(missing)
    assert str(tmp_path) not in str(exc.value)
    (tmp_path / "plain.txt").write_text("not a certificate")
    wrong = settings_for(
        portal,
        flight_tls_cert=str(tmp_path / "plain.txt"),
        flight_tls_key=str(tmp_path / "plain.txt"),
    )
    with pytest.raises(InvalidInput, match="HFT_FLIGHT_TLS_CERT is not a PEM file"):
        read_tls(wrong)


def test_port_zero_turns_it_off(portal: Portal) -> None:
    assert start_flight(lambda: portal.services, settings_for(portal, flight_port=0)) is None


def test_port_in_use_is_a_warning_and_the_app_runs_on(
    portal: Portal, listener: int, caplog: pytest.LogCaptureFixture
) -> None:
    s = settings_for(portal, flight_port=listener)
    with caplog.at_level(logging.WARNING, logger="core.serve.flight"):
        assert start_flight(lambda: portal.services, s) is None
    assert f"the Flight port {listener} on 127.0.0.1 is in use" in caplog.text
    assert "HFT_FLIGHT_PORT" in caplog.text
    with pytest.raises(PortInUse):
        open_flight(lambda: portal.services, s)


def test_cli_serve_refuses_port_zero(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HFT_FLIGHT_PORT", "0")
    assert main(["serve"]) == 2
    assert "the Flight port is 0" in capsys.readouterr().err


def test_cli_serve_reports_a_port_in_use(
    data_dir: Path, listener: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--port", str(listener)]) == 1
    assert f"the Flight port {listener} on 127.0.0.1 is in use" in capsys.readouterr().err


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_cli_serve_runs_until_stopped(tmp_path: Path, stop: signal.Signals) -> None:
    data = tmp_path / "data"
    setup = subprocess.run(
        [sys.executable, "-m", "tests.e2e.accounts_setup", str(data)],
        input=json.dumps({"analyst": ["serve-ana", PASSWORD]}),
        text=True,
        cwd=ROOT,
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert setup.returncode == 0
    port = free_port()
    env = {**os.environ, "HFT_DATA_DIR": str(data), "HFT_DEMO_VENUE": "false"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("hfthot")), "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(f"Arrow Flight data service on grpc://127.0.0.1:{port}"), first
        client = fl.FlightClient(f"grpc://127.0.0.1:{port}")
        assert [a.type for a in client.list_actions(fl.FlightCallOptions(timeout=10))] == ["health"]
        with pytest.raises(fl.FlightUnauthenticatedError):
            client.do_get(BARS, fl.FlightCallOptions(timeout=10)).read_all()
        client.close()
        proc.send_signal(stop)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Flight service stopped" in out
