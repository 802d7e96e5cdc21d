"""Regimes study: a Gaussian HMM on one market's percent log-returns (kind "regimes").

`run_regimes(bars, params)` fits K = 1..k_max (or a fixed K) with `regime_fit.fit_series`
and returns a `RegimesRun`: the fit, its Viterbi path and filtered probabilities, as the
Regimes page draws them and a study stores them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from core.analytics import regime_fit
from core.analytics.regime import HMMResult
from core.analytics.runs import RunResult, StudyKind, register
from core.errors import InvalidInput

__all__ = ["KIND", "RegimesParams", "RegimesRun", "rerun_regimes", "run_regimes"]

KIND = "regimes"
F64 = NDArray[np.float64]
_KEYS = ("k", "k_max", "restarts", "seed")


@dataclass(frozen=True, slots=True)
class RegimesParams:
    """k: a fixed number of states, or None for the K of the lowest BIC among 1..k_max.
    restarts: EM starting points per K; seed: the seed of those starts."""

    k: int | None = None
    k_max: int = regime_fit.DEFAULT_K_MAX
    restarts: int = regime_fit.DEFAULT_RESTARTS
    seed: int = 0

    def __post_init__(self) -> None:
        top = regime_fit.MAX_STATES
        if self.k is not None:
            regime_fit.check_whole("k", self.k, 1, top)
        regime_fit.check_whole("k_max", self.k_max, 1, top)
        regime_fit.check_whole("restarts", self.restarts, 1, regime_fit.MAX_RESTARTS)
        regime_fit.check_whole("seed", self.seed, 0, 2**31 - 1)

    def to_json(self) -> dict[str, Any]:
        return {"k": self.k, "k_max": self.k_max, "restarts": self.restarts, "seed": self.seed}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RegimesParams:
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise InvalidInput(f"unknown regimes parameter(s) {unknown}")
        missing = [k for k in _KEYS if k not in data]
        if missing:
            raise InvalidInput(f"missing regimes parameter(s) {missing}")
        return cls(k=data["k"], k_max=data["k_max"], restarts=data["restarts"], seed=data["seed"])


@dataclass(frozen=True, slots=True, eq=False)
class RegimesRun:
    """A regimes fit: `fit` holds every K tried; `path` is the Viterbi state of each return
    and `filtered` its P(state | returns up to t), shape (returns, K)."""

    config: RegimesParams
    fit: regime_fit.RegimeFit
    ts: pl.Series
    """Open times of the bars of the returns (each bar after the first), as given."""
    path: NDArray[np.int64]
    filtered: F64
    kind: str = field(default=KIND, init=False)

    @property
    def model(self) -> HMMResult:
        return self.fit.model

    @property
    def n_states(self) -> int:
        return self.fit.n_states

    @property
    def share_of_time(self) -> F64:
        """Share of the Viterbi path in each state."""
        counts = np.bincount(self.path, minlength=self.n_states)
        out: F64 = counts / self.path.size
        return out

    @property
    def bic_picked_largest(self) -> bool:
        """BIC chose the largest K tried: more states might fit better."""
        sel = self.fit.selection
        return self.fit.auto and sel.n_states == int(sel.table[-1][0])

    def params(self) -> dict[str, Any]:
        return self.config.to_json()

    def metrics(self) -> dict[str, float]:
        model = self.model
        r = self.fit.returns
        now = self.filtered[-1]
        out: dict[str, float] = {
            "n_states": float(self.n_states),
            "n_returns": float(r.size),
            "log_likelihood": float(model.log_likelihood),
            "bic": float(model.bic(r)),
            "converged": float(model.converged),
            "n_iter": float(model.n_iter),
            "current_state": float(np.argmax(now)),
            "current_probability": float(np.max(now)),
        }
        share = self.share_of_time
        for s in range(self.n_states):
            out[f"state_{s}_mean"] = float(model.means[s, 0])
            out[f"state_{s}_vol"] = float(model.state_vol[s])
            out[f"state_{s}_persistence"] = float(model.transmat[s, s])
            out[f"state_{s}_duration"] = float(model.expected_durations[s])
            out[f"state_{s}_share"] = float(share[s])
            out[f"state_{s}_stationary"] = float(model.stationary_distribution[s])
        return out

    def frames(self) -> dict[str, pl.DataFrame]:
        k = self.n_states
        states = pl.DataFrame(
            {
                "ts": self.ts,
                "close": self.fit.prices,
                "return": self.fit.returns,
                "state": self.path.astype(np.int64),
                **{f"p_{s}": self.filtered[:, s] for s in range(k)},
            }
        )
        table = self.fit.selection.table
        selection = pl.DataFrame(
            {
                "k": [int(row[0]) for row in table],
                "log_likelihood": [float(row[1]) for row in table],
                "n_params": [int(row[2]) for row in table],
                "bic": [float(row[3]) for row in table],
                "aic": [float(row[4]) for row in table],
            }
        )
        transitions = pl.DataFrame(
            {
                "from_state": list(range(k)),
                **{f"to_{s}": self.model.transmat[:, s].astype(np.float64) for s in range(k)},
            }
        )
        return {"states": states, "selection": selection, "transitions": transitions}


def run_regimes(
    bars: pl.DataFrame,
    params: RegimesParams,
    progress: Callable[[int, int], None] | None = None,
) -> RegimesRun:
    """Fit regimes on the closes of `bars` (columns ts and close, in time order).
    progress(done, total) is called once per K fitted."""
    if not isinstance(bars, pl.DataFrame) or not {"ts", "close"} <= set(bars.columns):
        raise InvalidInput("bars must be a frame with ts and close columns")
    closes = bars["close"].cast(pl.Float64).to_numpy()
    if not np.all(np.isfinite(closes)) or np.any(closes <= 0):
        raise InvalidInput("every close must be a finite price above 0")
    fit = regime_fit.fit_series(
        bars["ts"].to_numpy(),
        closes,
        k=params.k,
        k_max=params.k_max,
        n_init=params.restarts,
        seed=params.seed,
        progress=progress,
    )
    model = fit.model
    return RegimesRun(
        config=params,
        fit=fit,
        ts=bars["ts"].slice(1),
        path=np.asarray(model.viterbi(fit.returns), dtype=np.int64),
        filtered=np.asarray(model.filtered(fit.returns), dtype=np.float64),
    )


def rerun_regimes(inputs: Sequence[pl.DataFrame], params: Mapping[str, Any]) -> RunResult:
    """The study kind's rerun: the same fit on the stored input bars."""
    if len(inputs) != 1:
        raise InvalidInput(f"a regimes study has one input series, got {len(inputs)}")
    return run_regimes(inputs[0], RegimesParams.from_json(params))


register(StudyKind(KIND, "Regimes", "pages/regimes.py", rerun_regimes))
