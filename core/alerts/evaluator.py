"""The alert evaluator: one daemon thread per process, never run by a page.

Every HFT_ALERT_INTERVAL_S it reads the enabled rules (a cached table read) and evaluates a
series rule only when new data landed for its series: the market store's generation moved,
or the live stream's forming bar changed (time or close). A saved-query rule runs every
HFT_ALERT_QUERY_INTERVAL_S. An error in one rule is kept in its status and never stops the
thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import TYPE_CHECKING, Any

import polars as pl

from core.alerts import rules as r
from core.errors import HftError
from lakehouse.errors import LakehouseError

if TYPE_CHECKING:
    from core.alerts import AlertRule, Alerts
    from core.engine import Engine

log = logging.getLogger(__name__)
BAR_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
SeriesKey = tuple[str, str, str]


def error_text(exc: BaseException) -> str:
    """Our own errors say what is wrong; anything else shows only its type."""
    if isinstance(exc, HftError | LakehouseError):
        return str(exc)[:300]
    return f"evaluation failed ({type(exc).__name__})"


def merge_live(stored: pl.DataFrame, live: pl.DataFrame | None) -> pl.DataFrame:
    """Stored bars with the live stream's recent bars on top (the live bar wins a tie)."""
    cols = list(BAR_COLUMNS)
    base = stored.select(cols).with_columns(pl.col(c).cast(pl.Float64) for c in cols[1:])
    if live is None or live.height == 0:
        return base
    fresh = live.select(cols).with_columns(pl.col(c).cast(pl.Float64) for c in cols[1:])
    fresh = fresh.with_columns(pl.col("ts").cast(base.schema["ts"]))
    both = pl.concat([base, fresh], how="vertical")
    return both.unique("ts", keep="last", maintain_order=True).sort("ts")


class Evaluator:
    def __init__(self, alerts: Alerts, engine: Engine) -> None:
        self.alerts = alerts
        self.engine = engine
        self.interval_s = alerts.settings.alert_interval_s
        self.query_interval_s = alerts.settings.alert_query_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: dict[str, tuple[Any, ...]] = {}
        """rule id -> the data key it was last evaluated at."""
        self._query_at: dict[str, float] = {}
        self._models: dict[str, tuple[r.Params, r.RegimeModel]] = {}
        self.ticks = 0
        self.last_pass_at: dt.datetime | None = None
        self.last_error: str | None = None
        """Why the last whole pass failed (reading the rules, say); None when it worked."""

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="alert-evaluator", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception as exc:  # the thread outlives any one bad pass
                self.last_error = error_text(exc)
                log.warning("alert evaluator pass failed: %s", self.last_error)
            else:
                self.last_error = None
            self.last_pass_at = self.alerts.store.now()

    # --- one pass ------------------------------------------------------------------------
    def _live(self) -> Any:
        """The running ingest service over this engine's store, if any (never started here)."""
        from core.ingest.service import running

        market = self.engine.store
        return next((s for s in running() if s.store is market), None)

    def _bars(self, key: SeriesKey, need: int, live: Any) -> tuple[pl.DataFrame, tuple[Any, ...]]:
        venue, symbol, timeframe = key
        market = self.engine.store
        generation = market.generation
        live_bars = None
        if live is not None:
            try:
                live_bars = live.live_bars(venue, symbol, timeframe)
            except (HftError, ValueError, KeyError):
                live_bars = None
        stored = market.get_bars(symbol, timeframe=timeframe, venue=venue, last=need)
        bars = merge_live(stored, live_bars).tail(need)
        tail = (bars["ts"][-1], bars["close"][-1]) if bars.height else (None, None)
        return bars, (generation, *tail)

    def tick(self) -> int:
        """Evaluate every enabled rule that has new data; returns how many fired."""
        self.ticks += 1
        rules = [rule for rule in self.alerts.all_rules() if rule.enabled]
        live_ids = {rule.rule_id for rule in rules}
        for cache in (self._seen, self._query_at, self._models):
            for gone in set(cache) - live_ids:
                cache.pop(gone, None)
        fired = 0
        groups: dict[SeriesKey, list[AlertRule]] = {}
        for rule in rules:
            if rule.kind == "query_rows":
                fired += self._guarded(rule, lambda rule=rule: self._query(rule))
            elif rule.venue and rule.symbol and rule.timeframe:
                groups.setdefault((rule.venue, rule.symbol, rule.timeframe), []).append(rule)
        live = self._live() if groups else None
        for key, members in groups.items():
            need = max(r.bars_needed(rule.params) for rule in members)
            try:
                bars, data_key = self._bars(key, need, live)
            except Exception as exc:  # recorded on each rule of the series
                for rule in members:
                    self._failed(rule, exc)
                continue
            for rule in members:
                if self._seen.get(rule.rule_id) == data_key:
                    continue
                self._seen[rule.rule_id] = data_key
                fired += self._guarded(rule, lambda rule=rule, bars=bars: self._series(rule, bars))
        return fired

    def _guarded(self, rule: AlertRule, run: Any) -> int:
        try:
            return int(run())
        except Exception as exc:  # one bad rule never stops the others
            self._failed(rule, exc)
            return 0

    def _failed(self, rule: AlertRule, exc: BaseException) -> None:
        status = self._status(rule)
        status.error, status.error_at = error_text(exc), self.alerts.store.now()

    def _status(self, rule: AlertRule) -> Any:
        from core.alerts.records import RuleStatus

        return self.alerts.status.setdefault(rule.rule_id, RuleStatus())

    def _model(self, rule: AlertRule, bars: pl.DataFrame) -> r.RegimeModel | None:
        if not isinstance(rule.params, r.RegimeChange):
            return None
        cached = self._models.get(rule.rule_id)
        if cached is not None and cached[0] == rule.params:
            return cached[1]
        if bars.height < 50:
            raise HftError(f"the HMM needs at least 50 bars of history, found {bars.height}")
        closes = bars["close"].cast(pl.Float64).to_numpy()
        model = r.RegimeModel(closes, rule.params)
        self._models[rule.rule_id] = (rule.params, model)
        return model

    def _series(self, rule: AlertRule, bars: pl.DataFrame) -> bool:
        status = self._status(rule)
        now = self.alerts.store.now()
        step = r.step(
            rule.params,
            bars.tail(r.bars_needed(rule.params)),
            status.state,
            last_fired=rule.last_fired_at,
            now=now,
            cooldown_s=rule.cooldown_s,
            model=self._model(rule, bars),
        )
        return self._record(rule, status, step, now)

    def _record(self, rule: AlertRule, status: Any, step: r.Step, now: dt.datetime) -> bool:
        status.checked_at, status.state = now, step.state
        status.error = status.error_at = None
        if step.fired is None:
            return False
        self.alerts.fire(rule, step.fired)
        return True

    def _query(self, rule: AlertRule) -> bool:
        from core.alerts import saved_query_sql

        clock = self.alerts.store.clock()
        last = self._query_at.get(rule.rule_id)
        if last is not None and clock - last < self.query_interval_s:
            return False
        self._query_at[rule.rule_id] = clock
        assert isinstance(rule.params, r.QueryRows)
        assert rule.query_id
        name, sql = saved_query_sql(self.alerts.store, rule.user_id, rule.query_id)
        result = self.engine.sql.execute(sql, max_rows=rule.params.max_rows, user=rule.user_id)
        rows = result.frame.height
        now = self.alerts.store.now()
        data_ts = now
        if "ts" in result.frame.columns and rows:
            newest = result.frame["ts"].max()
            data_ts = newest if isinstance(newest, dt.datetime) else now
        more = "+" if result.truncated else ""
        reading = r.Reading(
            1 if rows else 0,
            float(rows),
            f"saved query {name!r} returned {rows}{more} rows",
            data_ts,
        )
        status = self._status(rule)
        before = 0 if status.state is None else status.state
        fires = r.fires(rule.params, before, reading.state)
        cooling = rule.last_fired_at is not None and (
            (now - rule.last_fired_at).total_seconds() < rule.cooldown_s
        )
        step = r.Step(reading.state, reading if fires and not cooling else None, fires and cooling)
        return self._record(rule, status, step, now)
