"""Analytics over stored series for the REST API: the Regimes page's fit, as JSON.

`RegimesRequest.from_json` checks a request body; `regimes(engine, req)` reads the bars
and runs `core.analytics.regime_fit.fit_series`, the same function the page calls, so a
seed gives the page's numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from core.analytics.regime_fit import (
    DEFAULT_K_MAX,
    DEFAULT_RESTARTS,
    MAX_RESTARTS,
    MAX_STATES,
    RegimeSummary,
    check_whole,
    fit_series,
)
from core.errors import InvalidInput
from core.serve.data import BARS_FIELDS, BarsRequest, bars

if TYPE_CHECKING:
    from core.engine import Engine

REGIME_FIELDS = ("k", "k_max", "n_init", "seed", "path")
DEFAULT_LAST = 15_000
"""Bars used when the request names no range: the Regimes page's default window."""


@dataclass(frozen=True, slots=True)
class RegimesRequest:
    bars: BarsRequest
    k: int | None = None
    k_max: int = DEFAULT_K_MAX
    n_init: int = DEFAULT_RESTARTS
    seed: int = 0
    path: bool = False
    """Also answer the most likely state of every return (Viterbi)."""

    @classmethod
    def from_json(cls, body: object) -> RegimesRequest:
        if not isinstance(body, Mapping):
            raise InvalidInput('send a JSON object: {"symbol": "SP500", "k_max": 4}')
        unknown = sorted(set(body) - set(BARS_FIELDS) - set(REGIME_FIELDS))
        if unknown:
            names = ", ".join((*BARS_FIELDS, *REGIME_FIELDS))
            raise InvalidInput(f"unknown field {', '.join(unknown)}; use {names}")
        bars = BarsRequest.from_params({k: v for k, v in body.items() if k in BARS_FIELDS})
        if bars.start is None and bars.end is None and bars.last is None:
            bars = BarsRequest(bars.symbol, bars.venue, bars.timeframe, last=DEFAULT_LAST)
        k, k_max = body.get("k"), body.get("k_max")
        if k is not None and k_max is not None:
            raise InvalidInput(
                "send k (a fixed number of states) or k_max (the largest K to try, the "
                "best by BIC), not both"
            )
        return cls(
            bars=bars,
            k=None if k is None else check_whole("k", k, 1, MAX_STATES),
            k_max=check_whole("k_max", DEFAULT_K_MAX if k_max is None else k_max, 1, MAX_STATES),
            n_init=check_whole("n_init", body.get("n_init", DEFAULT_RESTARTS), 1, MAX_RESTARTS),
            seed=check_whole("seed", body.get("seed", 0), 0, 2**31 - 1),
            path=_flag(body.get("path", False), "path"),
        )


def _flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{name} must be true or false")
    return value


def regimes(engine: Engine, req: RegimesRequest) -> dict[str, object]:
    """The fit of `req` as a JSON-ready dict; InvalidInput when the series has no bars."""
    b = req.bars
    frame = bars(engine, b)
    if frame.height == 0:
        where = f" on {b.venue}" if b.venue else ""
        raise InvalidInput(f"no {b.timeframe} bars stored for {b.symbol}{where} in that range")
    fit = fit_series(
        frame["ts"].to_numpy(),
        frame["close"].to_numpy(),
        k=req.k,
        k_max=req.k if req.k is not None else req.k_max,
        n_init=req.n_init,
        seed=req.seed,
    )
    series = {"symbol": b.symbol, "venue": frame["venue"][0], "timeframe": b.timeframe}
    out = {**series, "n_bars": frame.height, **summary_json(fit.summary())}
    if req.path:
        states = fit.model.viterbi(fit.returns)
        out["path"] = {
            "ts": [f"{t}Z" for t in np.datetime_as_string(fit.ts, unit="s")],
            "state": [int(x) for x in states],
        }
    return out


def _num(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def summary_json(s: RegimeSummary) -> dict[str, object]:
    """A summary as JSON values (non-finite numbers, e.g. an endless stay, become null)."""
    states = [
        {
            "state": i,
            "mean": _num(s.means[i]),
            "volatility": _num(s.volatilities[i]),
            "expected_duration": _num(s.expected_durations[i]),
            "stationary_share": _num(s.stationary_distribution[i]),
        }
        for i in range(s.n_states)
    ]
    return {
        "units": "percent log-returns per bar",
        "n_states": s.n_states,
        "selected_by": s.selected_by,
        "start": _iso(s.first),
        "end": _iso(s.last),
        "n_returns": s.n_returns,
        "states": states,
        "transition_matrix": [[_num(p) for p in row] for row in s.transition_matrix],
        "stationary_distribution": [_num(p) for p in s.stationary_distribution],
        "log_likelihood": _num(s.log_likelihood),
        "bic": _num(s.bic),
        "converged": s.converged,
        "n_iter": s.n_iter,
        "current_state": s.current_state,
        "current_probability": _num(s.current_probability),
        "bic_table": [
            {"k": k, "log_likelihood": ll, "n_params": p, "bic": bic, "aic": aic}
            for k, ll, p, bic, aic in s.bic_table
        ],
    }
