"""Composition root: the app's services, built by one function.

The pages (through their cached wrappers), the CLI, the REST API and the Flight service all
get their accounts backend, lakehouse client and engine from `build_services`, so the
wiring (data dir layout, session limits, the per-user files the GDPR export must cover)
lives in one place::

    services = build_services()           # settings from HFT_* variables
    services.engine.store.get_bars("BTC/USDT", last=100)
    services.auth.login(...)

The engine is cheap to build (it opens the store on first use); the accounts backend opens
its Delta tables at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.alerts import Alerts
from core.config import Settings
from core.engine import Engine
from core.ingest.venues import VENUES
from core.research.queries import SavedQueries
from core.research.studies import Studies
from core.research.study_files import StudyFiles, studies_folder
from core.serve.access import Gate
from core.sql_history import QueryHistory, history_folder
from lakehouse import LakehouseAuthBackend, LakehouseClient, Plan

AuthFactory = Callable[[Settings], LakehouseAuthBackend]


def build_auth(settings: Settings, **extra: Any) -> LakehouseAuthBackend:
    """The production accounts backend (RFC 9106 Argon2) over the settings' data dir;
    `extra` goes to the backend (tests: fast hashing, a clock)."""
    extra.setdefault("plans", registry_plans())
    return LakehouseAuthBackend(
        settings.lakehouse_dir,
        secrets_dir=settings.secrets_dir,
        session_ttl_hours=settings.session_ttl_hours,
        session_idle_minutes=settings.session_idle_minutes,
        **extra,
    )


def registry_plans() -> dict[str, Plan]:
    """The quota of every provider with one, from the venue registry (the source of truth)."""
    return {n: Plan(v.quota.limit, v.quota.window_s) for n, v in VENUES.items() if v.quota}


def build_accounts(settings: Settings, auth: LakehouseAuthBackend) -> LakehouseClient:
    """The lakehouse client over `auth`, with every per-user file source under the data dir."""
    return LakehouseClient(
        settings.lakehouse_dir,
        backend=auth,
        audit_retention_days=settings.audit_retention_days,
        user_data=[
            QueryHistory(history_folder(settings.market_dir)),
            StudyFiles(studies_folder(settings.data_dir)),
        ],
    )


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    auth: LakehouseAuthBackend
    accounts: LakehouseClient
    engine: Engine
    gate: Gate
    """Admits REST and Flight calls: one per-token rate budget across both doors."""
    studies: Studies
    """Saved research runs (core.research.studies): Delta rows plus Parquet artefacts."""
    queries: SavedQueries
    """Saved SQL Explorer queries with their charts (core.research.queries)."""
    alerts: Alerts
    """Alert rules, inbox and webhooks (core.alerts); `alerts.start()` runs the evaluator."""

    def close(self) -> None:
        """Stop background work and write pending account state; safe to call twice."""
        self.alerts.close()
        self.engine.close()
        self.auth.flush()


def build_services(
    settings: Settings | None = None, *, auth_factory: AuthFactory = build_auth
) -> Services:
    """Everything the portal serves, wired once. `auth_factory` lets tests use fast hashing."""
    s = settings or Settings.from_env()
    auth = auth_factory(s)
    engine = Engine(s, keys=auth)
    return Services(
        settings=s,
        auth=auth,
        accounts=build_accounts(s, auth),
        engine=engine,
        gate=Gate(auth, s.api_rate_per_minute),
        studies=Studies(auth.store, lambda: engine.store, StudyFiles(studies_folder(s.data_dir))),
        queries=SavedQueries(auth.store),
        alerts=Alerts(auth.store, s, engine),
    )
