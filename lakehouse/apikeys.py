"""Provider API keys (encrypted), query quotas with alerts, and consents.

Adding, replacing or revealing a key needs the account password again; every change and
every reveal is audited. Query counts are kept per (user, provider, window) in this process
and every increment is appended to `api_usage` (group-committed), which feeds the billing
summary. A second process counts its own increments on top of what the table held when it
first saw the pair, so quotas are exact within one process and conservative across several.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from lakehouse import validate
from lakehouse.accounts import Accounts
from lakehouse.errors import InvalidInput, NotFound, QuotaExceeded
from lakehouse.keys import Sealed
from lakehouse.quotas import DEFAULT_PLANS, PROVIDER_NAMES, Plan, alert_level

PURPOSES = ("data_sharing", "api_key_storage")
MAX_PROVIDERS_PER_CALL = 32


@dataclass(slots=True)
class _Counter:
    window_start: float
    count: int
    alerted: set[float] = field(default_factory=set)


class KeyService:
    def __init__(
        self,
        accounts: Accounts,
        plans: dict[str, Plan] | None,
        on_alert: Callable[[str, str, float], None] | None,
    ) -> None:
        self.accounts = accounts
        self.store = accounts.store
        merged = dict(DEFAULT_PLANS)
        if plans is not None:
            if not isinstance(plans, dict):
                raise InvalidInput("plans must be a dict of provider -> Plan")
            for name, plan in plans.items():
                if not isinstance(name, str) or not isinstance(plan, Plan):
                    raise InvalidInput("plans must map provider names to Plan objects")
                merged[name] = plan
        self.plans = merged
        self._on_alert = on_alert
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, str], _Counter] = {}
        self._alerts: dict[str, list[dict[str, Any]]] = {}

    # --- helpers ---------------------------------------------------------------------------
    def provider(self, value: object) -> str:
        name = validate.text(value, "provider").strip().lower().replace(" ", "_")
        if name not in self.plans:
            raise InvalidInput(
                f"unknown provider {str(value)[:40]!r}; choose from {', '.join(self.plans)}"
            )
        return name

    def _key_rows(self, user_id: str) -> pl.DataFrame:
        return self.store.api_keys.read().filter(pl.col("user_id") == user_id)

    def _consent_rows(self, user_id: str) -> pl.DataFrame:
        return self.store.consents.read().filter(pl.col("user_id") == user_id).sort("ts")

    # --- keys ------------------------------------------------------------------------------
    def save(
        self, user_id: str, provider_keys: object, consent: object, *, password: object
    ) -> None:
        uid = validate.user_id(user_id)
        if not isinstance(provider_keys, dict):
            raise InvalidInput("provider_keys must be a dict of provider -> key")
        if len(provider_keys) > MAX_PROVIDERS_PER_CALL:
            raise InvalidInput(f"at most {MAX_PROVIDERS_PER_CALL} keys per call")
        agreed = validate.flag(consent, "consent")
        cleaned: dict[str, str] = {}
        for prov, key in provider_keys.items():
            name = self.provider(prov)
            cleaned[name] = validate.api_key(key, PROVIDER_NAMES.get(name, name))
        if cleaned and not agreed:
            raise InvalidInput("storing API keys needs your consent; tick the consent box")
        self.accounts.check_password(uid, password, action="api_key_change")
        current = self.get_consents(uid).get("api_key_storage", {}).get("granted", False)
        if agreed != current:
            self.set_consent(uid, "api_key_storage", agreed)
        if not agreed:
            existing = self._key_rows(uid)["provider"].to_list()
            for prov in existing:
                self.delete(uid, prov, reason="consent withdrawn")
            return
        now = self.store.now()
        have = set(self._key_rows(uid)["provider"].to_list())
        rows = []
        for name, key in cleaned.items():
            sealed = self.store.vault.seal(uid, name, key)
            rows.append(
                {
                    "user_id": uid,
                    "provider": name,
                    "kid": sealed.kid,
                    "nonce": sealed.nonce,
                    "ciphertext": sealed.ciphertext,
                    "key_hint": key[-4:],
                    "created_at": now,
                    "updated_at": now,
                }
            )
            self.store.audit.record(
                "api_key_change",
                "success",
                user_id=uid,
                detail={"provider": name, "op": "replace" if name in have else "add"},
            )
        self.store.api_keys.upsert(rows)

    def get(self, user_id: str) -> dict[str, Any]:
        uid = validate.user_id(user_id)
        self.accounts.get(uid)
        keys: dict[str, dict[str, Any]] = {}
        for r in self._key_rows(uid).sort("provider").iter_rows(named=True):
            prov = r["provider"]
            if prov in self.plans:
                keys[prov] = {**self._usage(uid, prov), "key_hint": "…" + r["key_hint"]}
        consent = self.get_consents(uid).get("api_key_storage", {}).get("granted", False)
        return {"provider_keys": keys, "consent": bool(consent)}

    def quota(self, user_id: str, provider: str) -> dict[str, Any]:
        """This window's use of the user's quota for `provider`, from the in-memory counter
        (no table read once the window is known): cheap enough for a page that polls."""
        uid = validate.user_id(user_id)
        name = self.provider(provider)
        if name not in self.plans:
            raise NotFound(f"{PROVIDER_NAMES.get(name, name)} has no quota")
        return self._usage(uid, name)

    def _usage(self, uid: str, prov: str) -> dict[str, Any]:
        plan = self.plans[prov]
        counter = self._counter(uid, prov, plan)
        done = counter.count
        return {
            "queries_done": done,
            "queries_remaining": max(0, plan.limit - done),
            "limit": plan.limit,
            "window": plan.window,
            "resets_at": dt.datetime.fromtimestamp(counter.window_start + plan.window_s, dt.UTC),
        }

    def delete(self, user_id: str, provider: str, *, reason: str = "deleted by user") -> None:
        uid = validate.user_id(user_id)
        name = self.provider(provider)
        rows = self._key_rows(uid).filter(pl.col("provider") == name)
        if rows.height == 0:
            raise NotFound(f"no stored key for {name}")
        self.store.audit.record(
            "api_key_delete", "success", user_id=uid, detail={"provider": name, "reason": reason}
        )
        self.store.api_keys.delete_matching(
            [{"user_id": uid, "provider": name}], ["user_id", "provider"]
        )

    def reveal(self, user_id: str, provider: str, *, password: object) -> str:
        uid = validate.user_id(user_id)
        name = self.provider(provider)
        self.accounts.check_password(uid, password, action="api_key_reveal")
        rows = self._key_rows(uid).filter(pl.col("provider") == name)
        if rows.height == 0:
            raise NotFound(f"no stored key for {name}")
        r = rows.row(0, named=True)
        self.store.audit.record("api_key_reveal", "success", user_id=uid, detail={"provider": name})
        return self.store.vault.open(uid, name, Sealed(r["kid"], r["nonce"], r["ciphertext"]))

    def provider_key(self, user_id: str, provider: str) -> str:
        """The stored key, decrypted for one request by the engine (no password: the user
        started the job). Not audited per request; NotFound when no key is stored."""
        uid = validate.user_id(user_id)
        name = self.provider(provider)
        rows = self._key_rows(uid).filter(pl.col("provider") == name)
        if rows.height == 0:
            raise NotFound(f"no stored key for {PROVIDER_NAMES.get(name, name)}")
        r = rows.row(0, named=True)
        return self.store.vault.open(uid, name, Sealed(r["kid"], r["nonce"], r["ciphertext"]))

    # --- quotas ----------------------------------------------------------------------------
    def spend(self, user_id: str, provider: str) -> None:
        """The provider said the key's limit is reached: count this window as used up here
        (in memory, so billing keeps only real requests) and audit it."""
        uid = validate.user_id(user_id)
        name = self.provider(provider)
        plan = self.plans[name]
        c = self._counter(uid, name, plan)
        with self._lock:
            spent = plan.limit - c.count
            c.count = max(c.count, plan.limit)
        self.store.audit.record(
            "quota_spent_by_provider",
            "success",
            user_id=uid,
            detail={"provider": name, "unused": max(0, spent)},
        )

    def _counter(self, uid: str, prov: str, plan: Plan) -> _Counter:
        now = self.store.clock()
        start = plan.window_start(now)
        with self._lock:
            c = self._counters.get((uid, prov))
            if c is not None:
                if c.window_start != start:
                    c.window_start, c.count, c.alerted = start, 0, set()
                return c
        # First use in this process: count what the table already holds for this window.
        since = dt.datetime.fromtimestamp(start, dt.UTC)
        df = self.store.api_usage.read().filter(
            (pl.col("user_id") == uid) & (pl.col("provider") == prov) & (pl.col("ts") >= since)
        )
        done = int(df["count"].sum()) if df.height else 0
        with self._lock:
            c = self._counters.setdefault((uid, prov), _Counter(start, done))
            lvl = alert_level(c.count, plan.limit)
            if lvl is not None:
                c.alerted.update(x for x in (0.80, 0.95) if x <= lvl)
            return c

    def update_query_count(self, user_id: str, provider: str, increment: int = 1) -> int:
        """Count `increment` queries; returns what is left. QuotaExceeded (nothing counted)."""
        uid = validate.user_id(user_id)
        name = self.provider(provider)
        inc = validate.positive_int(increment, "increment")
        self.accounts.get(uid)
        plan = self.plans[name]
        c = self._counter(uid, name, plan)
        now = self.store.clock()
        with self._lock:
            if c.count + inc > plan.limit:
                retry = c.window_start + plan.window_s - now
                raise QuotaExceeded(PROVIDER_NAMES.get(name, name), plan.limit, plan.window, retry)
            c.count += inc
            done = c.count
        try:
            ts = dt.datetime.fromtimestamp(now, dt.UTC)
            self.store.api_usage.append(
                [{"ts": ts, "date": ts.date(), "user_id": uid, "provider": name, "count": inc}]
            )
        except Exception:
            with self._lock:
                c.count -= inc
            raise
        lvl = alert_level(done, plan.limit)
        if lvl is not None:
            new = [x for x in (0.80, 0.95) if x <= lvl and x not in c.alerted]
            if new:
                c.alerted.update(new)
                self._raise_alert(uid, name, max(new), done, plan)
        return plan.limit - done

    def _raise_alert(self, uid: str, name: str, level: float, done: int, plan: Plan) -> None:
        alert = {
            "provider": name,
            "level": level,
            "queries_done": done,
            "limit": plan.limit,
            "window": plan.window,
            "at": self.store.now(),
            "message": f"{PROVIDER_NAMES.get(name, name)}: {done} of {plan.limit} queries "
            f"per {plan.window} used ({level:.0%} alert)",
        }
        with self._lock:
            self._alerts.setdefault(uid, []).append(alert)
            del self._alerts[uid][:-100]
        self.store.audit.record(
            "quota_alert", "success", user_id=uid, detail={"provider": name, "level": level}
        )
        if self._on_alert is not None:
            self._on_alert(uid, name, level)

    def alerts(self, user_id: str) -> list[dict[str, Any]]:
        """Quota alerts for the current windows (80 % and 95 %), newest first."""
        uid = validate.user_id(user_id)
        now = self.store.clock()
        with self._lock:
            items = list(self._alerts.get(uid, []))
        live = []
        for a in items:
            plan = self.plans[a["provider"]]
            if a["at"].timestamp() >= plan.window_start(now):
                live.append(a)
        return sorted(live, key=lambda a: (a["at"], a["level"]), reverse=True)

    # --- consent ---------------------------------------------------------------------------
    def set_consent(self, user_id: str, purpose: str, granted: bool) -> None:
        """Record giving or withdrawing consent, with the time (GDPR Art. 7)."""
        uid = validate.user_id(user_id)
        if purpose not in PURPOSES:
            raise InvalidInput(f"purpose must be one of {', '.join(PURPOSES)}")
        flag = validate.flag(granted, "granted")
        self.accounts.get(uid)
        self.store.audit.record(
            "consent", "success", user_id=uid, detail={"purpose": purpose, "granted": flag}
        )
        ts = self.store.now()
        last = self.get_consents(uid)[purpose]["at"]
        if last is not None and ts <= last:
            ts = last + dt.timedelta(microseconds=1)  # keep the order of changes strict
        self.store.consents.append(
            [{"user_id": uid, "purpose": purpose, "granted": flag, "ts": ts}]
        )

    def get_consents(self, user_id: str) -> dict[str, dict[str, Any]]:
        """Current state per purpose: {"granted": bool, "at": datetime | None}."""
        uid = validate.user_id(user_id)
        out: dict[str, dict[str, Any]] = {p: {"granted": False, "at": None} for p in PURPOSES}
        for r in self._consent_rows(uid).iter_rows(named=True):
            out[r["purpose"]] = {"granted": r["granted"], "at": r["ts"]}
        return out
