"""A test-only study kind that does a real computation: the SMA of the closes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from core.analytics.indicators import sma
from core.analytics.runs import StudyKind, register

KIND = "test_sma"


@dataclass(frozen=True)
class SmaRun:
    n: int
    bars: pl.DataFrame
    kind: str = KIND

    def params(self) -> dict[str, Any]:
        return {"n": self.n}

    def _sma(self) -> np.ndarray:
        return sma(self.bars["close"].to_numpy(), self.n)

    def metrics(self) -> dict[str, float]:
        values = self._sma()
        return {
            "last_sma": float(values[-1]),
            "mean_close": float(self.bars["close"].mean()),  # type: ignore[arg-type]
            "first_sma": float(values[0]),  # NaN: the warm-up
        }

    def frames(self) -> dict[str, pl.DataFrame]:
        return {
            "sma": pl.DataFrame({"ts": self.bars["ts"], "sma": self._sma()}),
            "summary": pl.DataFrame({"n": [self.n], "rows": [self.bars.height]}),
        }


def run_sma(bars: pl.DataFrame, n: int) -> SmaRun:
    return SmaRun(n, bars)


def rerun_sma(bars: Sequence[pl.DataFrame], params: Mapping[str, Any]) -> SmaRun:
    return run_sma(bars[0], int(params["n"]))


STUDY_KIND = register(StudyKind(KIND, "SMA (test)", "pages/sql_explorer.py", rerun_sma))


WALK = "test_walk"


@dataclass(frozen=True)
class WalkRun:
    """A seeded random walk: a study with no input series (a simulation)."""

    n: int
    seed: int
    kind: str = WALK

    def params(self) -> dict[str, Any]:
        return {"n": self.n, "seed": self.seed}

    def _path(self) -> np.ndarray:
        return np.cumsum(np.random.default_rng(self.seed).normal(0.0, 1.0, self.n))

    def metrics(self) -> dict[str, float]:
        path = self._path()
        return {"final": float(path[-1]), "max": float(path.max())}

    def frames(self) -> dict[str, pl.DataFrame]:
        return {"path": pl.DataFrame({"step": np.arange(self.n), "x": self._path()})}


def rerun_walk(bars: Sequence[pl.DataFrame], params: Mapping[str, Any]) -> WalkRun:
    assert not bars
    return WalkRun(int(params["n"]), int(params["seed"]))


WALK_KIND = register(StudyKind(WALK, "Walk (test)", "pages/chiarella_lab.py", rerun_walk))
