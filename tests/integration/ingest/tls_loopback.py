"""A loopback HTTPS proxy that answers for the named hosts with recorded payloads.

A client configured with this proxy (as any client behind a corporate proxy is)
sends `CONNECT host:443`; the proxy accepts, terminates TLS with a throwaway
certificate for those hosts (trusted by the test session only) and serves the
request itself. So a client library runs its real HTTP/TLS stack end to end.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Handler = Callable[[str, str, dict[str, str]], tuple[int, bytes, dict[str, str]]]
"""handler(host, path, query) -> (status, body, headers)"""


def make_cert(hosts: list[str], folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(h) for h in hosts]
                + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsLoopback:
    def __init__(self, hosts: list[str], folder: Path, handler: Handler) -> None:
        self.cert, key = make_cert(hosts, folder)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_CONNECT(self) -> None:
                self.send_response(200, "Connection Established")
                self.end_headers()
                self.wfile.flush()
                tls = ctx.wrap_socket(self.connection, server_side=True)
                self.connection = tls
                self.rfile = tls.makefile("rb", self.rbufsize)
                self.wfile = tls.makefile("wb", 0)
                self.close_connection = False
                while not self.close_connection:
                    self.handle_one_request()

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                host = (self.headers.get("Host") or "").split(":")[0]
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                outer.requests.append((host, parts.path, query))
                status, body, headers = handler(host, parts.path, query)
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def session(self) -> Any:
        """A curl_cffi session (yfinance's default client) that goes through this proxy."""
        from curl_cffi import requests as cr

        proxy = f"http://127.0.0.1:{self.port}"
        return cr.Session(verify=str(self.cert), proxies={"http": proxy, "https": proxy})

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
