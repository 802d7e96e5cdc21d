"""The one gateway for providers' HTTP requests (Alpha Vantage, Alpaca, Finnhub, Polymarket).

`ProviderHttp.get` counts the request on the meter before it is sent (QuotaPause at the
limit: nothing is sent), turns a connection failure into `SourceUnavailable`, a 429 into the
meter's pause (waiting as `Retry-After` says), and scrubs the request's secrets from every
text it hands back. What a status means beyond that is the source's business.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import requests

from core.ingest.base import SourceUnavailable
from core.ingest.meter import Meter

TEXT_CHARS = 300
"""How much of a refusal's body a message quotes."""


def retry_after_s(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds a provider's 429 asks us to wait: `Retry-After` (seconds or an HTTP date),
    else `X-RateLimit-Reset` (Unix time); None when neither is usable."""
    now = time.time() if now is None else now
    retry = headers.get("Retry-After")
    if retry:
        try:
            return max(0.0, float(retry))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(retry).timestamp() - now)
            except (TypeError, ValueError):
                pass
    reset = headers.get("X-RateLimit-Reset")
    try:
        wait = float(reset) - now if reset else None
    except ValueError:
        return None
    return wait if wait is not None and 0 <= wait <= 86400 else None


def scrub(text: str, secrets: Sequence[str]) -> str:
    """`text` with every secret replaced by ***, as sent and as it appears in a URL."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***").replace(quote(secret, safe=""), "***")
    return text


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any
    """The parsed JSON, or None when the body is not JSON."""
    text: str
    """The start of the body, secrets scrubbed: for messages and details."""


class ProviderHttp:
    """A provider's requests: metered, failures typed, secrets never in a message."""

    def __init__(
        self,
        title: str,
        meter: Meter,
        base_url: str,
        session: requests.Session | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.title = title
        self.meter = meter
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.timeout_s = timeout_s
        self.requests = 0
        """Requests sent (each counted on the meter first)."""

    def get(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        headers: Mapping[str, str] | None = None,
        secrets: Sequence[str] = (),
        base_url: str | None = None,
    ) -> Reply:
        self.meter.take()  # counted before it is sent; raises QuotaPause at the limit
        self.requests += 1
        url = (base_url or self.base_url).rstrip("/") + path
        try:
            reply = self.session.get(
                url, params=dict(params), headers=dict(headers or {}), timeout=self.timeout_s
            )
        except requests.RequestException as exc:
            raise SourceUnavailable(
                f"{self.title} is not reachable from this server (no network?)",
                scrub(f"{type(exc).__name__}: {exc}", secrets),
            ) from None
        if reply.status_code == 429:
            raise self.meter.exhausted(retry_after_s(reply.headers))
        try:
            body = reply.json()
        except ValueError:
            body = None
        return Reply(reply.status_code, body, scrub(reply.text[:TEXT_CHARS], secrets))
