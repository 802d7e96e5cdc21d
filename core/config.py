"""Settings: one frozen object, read from HFT_* environment variables.

Secrets are never constants here; they are generated on first run and kept in
files under the data directory with mode 0600 (see lakehouse.secrets).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from core.errors import InvalidInput

ENV_PREFIX = "HFT_"


def _parse_bool(raw: str, name: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise InvalidInput(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    """Runtime configuration. Build with `Settings.from_env()`."""

    data_dir: Path = field(default_factory=lambda: Path("data").resolve())
    """Root of everything the engine writes (HFT_DATA_DIR, default ./data)."""
    session_ttl_hours: float = 24.0 * 7
    """Absolute lifetime of a login session (HFT_SESSION_TTL_HOURS)."""
    session_idle_minutes: float = 120.0
    """A session unused this long is logged out (HFT_SESSION_IDLE_MINUTES)."""
    audit_retention_days: int = 90
    """Audit records older than this are deleted by maintenance (HFT_AUDIT_RETENTION_DAYS)."""
    sql_timeout_s: float = 10.0
    """Default timeout of a SQL explorer query (HFT_SQL_TIMEOUT_S)."""
    sql_max_rows: int = 100_000
    """Default row cap of a SQL explorer result (HFT_SQL_MAX_ROWS)."""
    sql_memory_mb: int = 1024
    """Memory limit of one SQL explorer query, in MB (HFT_SQL_MEMORY_MB)."""
    trusted_proxies: str = ""
    """Comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed
    (HFT_TRUSTED_PROXIES); empty trusts none."""
    demo_venue: bool = True
    """Start the simulated loopback venue with the app (HFT_DEMO_VENUE)."""
    hot_cache_mb: int = 256
    """Byte budget of the hot in-memory tier (HFT_HOT_CACHE_MB)."""
    access_trace: Path | None = None
    """Record every hot-tier read and bars write to this JSON-lines file (HFT_ACCESS_TRACE)."""
    access_trace_mb: int = 64
    """The access trace stops growing at this size (HFT_ACCESS_TRACE_MB)."""
    flight_port: int = 50053
    """Port of the Arrow Flight data service on HFT_FLIGHT_HOST; 0 turns it off
    (HFT_FLIGHT_PORT)."""
    flight_host: str = "127.0.0.1"
    """Address the Flight service listens on (HFT_FLIGHT_HOST); loopback by default."""
    flight_tls_cert: str = ""
    """PEM certificate chain for Flight over TLS; with HFT_FLIGHT_TLS_KEY (HFT_FLIGHT_TLS_CERT)."""
    flight_tls_key: str = ""
    """PEM private key for Flight over TLS (HFT_FLIGHT_TLS_KEY)."""
    alpaca_data_url: str = ""
    """Alpaca market data REST base (HFT_ALPACA_DATA_URL); empty: https://data.alpaca.markets."""
    alpaca_stream_url: str = ""
    """Alpaca market data WebSocket base (HFT_ALPACA_STREAM_URL); empty: the real host."""
    finnhub_url: str = ""
    """Finnhub REST base (HFT_FINNHUB_URL); empty: https://finnhub.io/api/v1."""
    finnhub_ws_url: str = ""
    """Finnhub WebSocket (HFT_FINNHUB_WS_URL); empty: wss://ws.finnhub.io."""
    alpha_vantage_url: str = ""
    """Alpha Vantage base (HFT_ALPHA_VANTAGE_URL); empty: https://www.alphavantage.co."""
    polymarket_gamma_url: str = ""
    """Polymarket Gamma API base (HFT_POLYMARKET_GAMMA_URL); empty: the real host."""
    polymarket_clob_url: str = ""
    """Polymarket CLOB API base (HFT_POLYMARKET_CLOB_URL); empty: the real host."""
    polymarket_ws_url: str = ""
    """Polymarket market WebSocket (HFT_POLYMARKET_WS_URL); empty: the real host."""
    api_rate_per_minute: int = 120
    """Requests one access token may make per minute to the REST API and Flight
    (HFT_API_RATE_PER_MINUTE); more get 429 with Retry-After."""
    alert_interval_s: float = 1.0
    """How often the alert evaluator looks for new data (HFT_ALERT_INTERVAL_S)."""
    alert_query_interval_s: float = 60.0
    """How often an alert on a saved query runs it (HFT_ALERT_QUERY_INTERVAL_S)."""
    alert_webhook_allow_private: bool = False
    """Let alert webhooks call private, loopback and link-local addresses, e.g. a receiver
    on your LAN (HFT_ALERT_WEBHOOK_ALLOW_PRIVATE)."""
    alert_webhook_attempts: int = 4
    """Tries per webhook before a dead letter (HFT_ALERT_WEBHOOK_ATTEMPTS)."""
    alert_webhook_backoff_s: float = 1.0
    """First wait between webhook tries, doubled each time (HFT_ALERT_WEBHOOK_BACKOFF_S)."""

    @property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """HFT_TRUSTED_PROXIES parsed; raises InvalidInput naming a bad entry."""
        out: list[IPv4Network | IPv6Network] = []
        for part in self.trusted_proxies.split(","):
            if not part.strip():
                continue
            try:
                out.append(ip_network(part.strip(), strict=False))
            except ValueError:
                raise InvalidInput(
                    f"HFT_TRUSTED_PROXIES: {part.strip()!r} is not an IP address or CIDR "
                    "(like 127.0.0.1/32 or 10.0.0.0/8)"
                ) from None
        return tuple(out)

    @property
    def lakehouse_dir(self) -> Path:
        return self.data_dir / "lakehouse"

    @property
    def market_dir(self) -> Path:
        return self.data_dir / "market"

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every field from `HFT_<FIELD>`; unset variables keep their defaults."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            name = ENV_PREFIX + f.name.upper()
            raw = env.get(name)
            if raw is None or raw.strip() == "":
                continue
            try:
                if f.name in ("data_dir", "access_trace"):
                    values[f.name] = Path(raw).expanduser().resolve()
                elif f.type == "bool":
                    values[f.name] = _parse_bool(raw, name)
                elif f.type == "int":
                    values[f.name] = int(raw)
                elif f.type == "float":
                    values[f.name] = float(raw)
                else:
                    values[f.name] = raw
            except ValueError as exc:
                if isinstance(exc, InvalidInput):
                    raise
                raise InvalidInput(f"{name}={raw!r} is not a valid {f.type}") from exc
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        positive = {
            "HFT_SESSION_TTL_HOURS": self.session_ttl_hours,
            "HFT_SESSION_IDLE_MINUTES": self.session_idle_minutes,
            "HFT_AUDIT_RETENTION_DAYS": self.audit_retention_days,
            "HFT_SQL_TIMEOUT_S": self.sql_timeout_s,
            "HFT_SQL_MAX_ROWS": self.sql_max_rows,
            "HFT_SQL_MEMORY_MB": self.sql_memory_mb,
            "HFT_HOT_CACHE_MB": self.hot_cache_mb,
            "HFT_ACCESS_TRACE_MB": self.access_trace_mb,
            "HFT_API_RATE_PER_MINUTE": self.api_rate_per_minute,
            "HFT_ALERT_INTERVAL_S": self.alert_interval_s,
            "HFT_ALERT_QUERY_INTERVAL_S": self.alert_query_interval_s,
            "HFT_ALERT_WEBHOOK_ATTEMPTS": self.alert_webhook_attempts,
            "HFT_ALERT_WEBHOOK_BACKOFF_S": self.alert_webhook_backoff_s,
        }
        for name, value in positive.items():
            if value <= 0:
                raise InvalidInput(f"{name} must be > 0, got {value}")
        self.trusted_proxy_networks  # noqa: B018 (parses, raising on a bad CIDR)
        if not 0 <= self.flight_port <= 65535:
            raise InvalidInput(f"HFT_FLIGHT_PORT must be 0 (off) or a port, got {self.flight_port}")
        if bool(self.flight_tls_cert) != bool(self.flight_tls_key):
            raise InvalidInput("set both HFT_FLIGHT_TLS_CERT and HFT_FLIGHT_TLS_KEY, or neither")
