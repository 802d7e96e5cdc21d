"""Webhook delivery: an HMAC-signed JSON POST with retries, backoff and dead letters.

The receiver checks `X-HFThot-Signature: sha256=<hex>`, the HMAC-SHA256 of
"<X-HFThot-Timestamp>.<body>" under the rule's secret (`verify` below does it). Network
errors, 5xx and 429 are retried with exponential backoff (Retry-After honoured); other
answers are final. Targets are checked when each attempt is made: http(s) only, and by
default no private, loopback or link-local address (SSRF); the connection goes to the very
address that was checked, so a DNS answer cannot change between check and connect.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from core.errors import InvalidInput

TIMEOUT_S = 5.0
MAX_RETRY_AFTER_S = 300.0
SIGNATURE_HEADER = "X-HFThot-Signature"
TIMESTAMP_HEADER = "X-HFThot-Timestamp"
log = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))


class TargetRefused(InvalidInput):
    """The webhook URL may not be called (scheme, host or a private address)."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does: recompute the signature and compare in constant time."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def backoff_delays(attempts: int, base_s: float, cap_s: float = 60.0) -> list[float]:
    """Waits before attempts 2..n: base, 2 base, 4 base, ... capped at cap_s."""
    return [min(cap_s, base_s * 2**i) for i in range(max(0, attempts - 1))]


def retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date), capped."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text) if text.replace(".", "", 1).isdigit() else None
        if seconds is None:
            seconds = parsedate_to_datetime(text).timestamp() - now
    except (TypeError, ValueError, OverflowError):
        return None
    return min(MAX_RETRY_AFTER_S, max(0.0, seconds))


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    ip: str


def check_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an http(s) URL, else TargetRefused."""
    if not isinstance(url, str) or not url.strip():
        raise TargetRefused("the webhook URL is empty")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise TargetRefused("the webhook URL is not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise TargetRefused("the webhook URL must start with http:// or https://")
    if not parts.hostname:
        raise TargetRefused("the webhook URL has no host")
    if parts.username or parts.password:
        raise TargetRefused("put no user name or password in the webhook URL")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path


def _public(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return not (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    )


def resolve(url: str, *, allow_private: bool) -> Target:
    """Check the URL and resolve its host now; every address must be public unless
    `allow_private` (HFT_ALERT_WEBHOOK_ALLOW_PRIVATE)."""
    scheme, host, port, path = check_url(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise TargetRefused("the webhook host does not resolve") from None
    ips = sorted({str(info[4][0]) for info in infos})
    if not ips:
        raise TargetRefused("the webhook host does not resolve")
    if not allow_private and not all(_public(ip) for ip in ips):
        raise TargetRefused(
            "the webhook host is a private, loopback or link-local address; set "
            "HFT_ALERT_WEBHOOK_ALLOW_PRIVATE=true to allow receivers on your own network"
        )
    return Target(scheme, host, port, path, ips[0])


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a fixed IP, with SNI and certificate checks for the URL's host name."""

    def __init__(self, target: Target, timeout: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._ip = target.ip
        self._context = ssl.create_default_context()

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    retry_after: float | None


def post(target: Target, body: bytes, headers: Mapping[str, str], timeout: float) -> Answer:
    """One POST to the checked address; raises OSError on network failure."""
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = _PinnedHTTPS(target, timeout)
    else:
        conn = http.client.HTTPConnection(target.ip, target.port, timeout=timeout)
    default_port = 443 if target.scheme == "https" else 80
    host = target.host if ":" not in target.host else f"[{target.host}]"
    host_header = host if target.port == default_port else f"{host}:{target.port}"
    try:
        conn.request("POST", target.path, body, {**headers, "Host": host_header})
        response = conn.getresponse()
        response.read(65536)
        return Answer(response.status, retry_after(response.getheader("Retry-After"), time.time()))
    except http.client.HTTPException as exc:
        raise OSError(f"bad HTTP answer ({type(exc).__name__})") from None
    finally:
        conn.close()


def error_text(exc: BaseException) -> str:
    """A short reason with no URL or secret in it."""
    if isinstance(exc, TargetRefused):
        return str(exc)
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"timed out after {TIMEOUT_S:g} s"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error ({exc.reason or type(exc).__name__})"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__ if not str(exc) else str(exc)[:200]


@dataclass(order=True)
class Job:
    due: float
    seq: int
    event_id: str = field(compare=False)
    rule_id: str = field(compare=False)
    user_id: str = field(compare=False)
    url: str = field(compare=False)
    secret: str = field(compare=False, repr=False)
    payload: bytes = field(compare=False)
    attempt: int = field(default=1, compare=False)


Record = Callable[[dict[str, Any]], None]


class Deliverer:
    """One worker thread that sends queued webhooks and schedules their retries, so a slow
    or failing receiver never blocks the evaluator. `record` gets one row per attempt (and
    a dead_letter row after the last failure) for `alert_deliveries`."""

    def __init__(
        self,
        record: Record,
        *,
        attempts: int = 4,
        backoff_s: float = 1.0,
        allow_private: bool = False,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.record = record
        self.attempts = attempts
        self.delays = backoff_delays(attempts, backoff_s)
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self._heap: list[Job] = []
        self._seq = 0
        self._busy = 0
        self._cond = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = False
            self._thread = threading.Thread(target=self._loop, name="alert-webhooks", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def submit(
        self, event_id: str, rule_id: str, user_id: str, url: str, secret: str, payload: bytes
    ) -> None:
        with self._cond:
            self._seq += 1
            job = Job(time.monotonic(), self._seq, event_id, rule_id, user_id, url, secret, payload)
            heapq.heappush(self._heap, job)
            self._cond.notify_all()

    def pending(self) -> int:
        """Jobs queued, waiting for a retry, or being sent."""
        with self._cond:
            return len(self._heap) + self._busy

    def wait_idle(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while self.pending():
            if time.monotonic() > end:
                return False
            time.sleep(0.02)
        return True

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._heap or self._heap[0].due > time.monotonic()):
                    wait = self._heap[0].due - time.monotonic() if self._heap else None
                    self._cond.wait(wait)
                if self._stop:
                    return
                job = heapq.heappop(self._heap)
                self._busy += 1
            try:
                self._attempt(job)
            except Exception as exc:  # a recording failure must not end the worker
                log.warning(
                    "webhook delivery of event %s failed: %s", job.event_id, type(exc).__name__
                )
            finally:
                with self._cond:
                    self._busy -= 1

    def _row(self, job: Job, status: str, http_status: int | None, error: str | None) -> None:
        self.record(
            {
                "event_id": job.event_id,
                "rule_id": job.rule_id,
                "user_id": job.user_id,
                "attempt": job.attempt,
                "status": status,
                "http_status": http_status,
                "error": error,
            }
        )

    def _attempt(self, job: Job) -> None:
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "HFThot-alerts/1",
            TIMESTAMP_HEADER: stamp,
            SIGNATURE_HEADER: sign(job.secret, stamp, job.payload),
        }
        status: int | None = None
        wait: float | None = None
        try:
            target = resolve(job.url, allow_private=self.allow_private)
            answer = post(target, job.payload, headers, self.timeout_s)
        except TargetRefused as exc:
            self._row(job, "dead_letter", None, error_text(exc))
            return
        except OSError as exc:
            error = error_text(exc)
        else:
            status, wait = answer.status, answer.retry_after
            if 200 <= status < 300:
                self._row(job, "delivered", status, None)
                return
            error = f"HTTP {status}"
            if status not in RETRY_STATUSES:
                self._row(job, "failed", status, error)
                self._row(job, "dead_letter", status, f"{error} is not retried")
                return
        self._row(job, "failed", status, error)
        if job.attempt >= self.attempts:
            self._row(job, "dead_letter", status, f"gave up after {job.attempt} attempts: {error}")
            return
        delay = max(self.delays[job.attempt - 1], wait or 0.0)
        with self._cond:
            job.attempt += 1
            job.due = time.monotonic() + delay
            heapq.heappush(self._heap, job)
            self._cond.notify_all()
