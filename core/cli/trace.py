"""`hfthot trace replay FILE`: replay a recorded hot-tier access trace (HFT_ACCESS_TRACE)."""

from __future__ import annotations

import argparse
from typing import Any

from core.config import Settings
from core.data import trace
from core.errors import InvalidInput


def _data_bytes(summary: trace.TraceSummary) -> tuple[int, str]:
    """Size of the data the trace ran over: from its provenance record, else this store."""
    if summary.meta is not None:
        return int(summary.meta["data"]["memory_bytes"]), "in memory, from the trace's record"
    from core.data.store import MarketStore

    store = MarketStore(Settings.from_env().market_dir, hot_bytes=1)
    try:
        disk = sum(f.size for _, f in store.warm_files("bars"))
    finally:
        store.close()
    return disk, "on disk, of the store at HFT_DATA_DIR"


def run(args: Any) -> int:
    records = trace.load(args.file)
    summary = trace.summarize(records)
    if summary.reads == 0:
        raise InvalidInput(f"{args.file} holds no reads to replay")
    if args.budget_mb is not None:
        if args.budget_mb <= 0:
            raise InvalidInput("--budget-mb must be > 0")
        budget, basis = int(args.budget_mb * 2**20), "given"
    else:
        if not 0 < args.budget_pct <= 100:
            raise InvalidInput("--budget-pct must be in (0, 100]")
        data, where = _data_bytes(summary)
        budget = max(1, int(data * args.budget_pct / 100))
        basis = f"{args.budget_pct:g}% of {data / 2**20:,.1f} MiB ({where})"
    print(
        f"{summary.reads:,} reads ({summary.distinct:,} distinct), {summary.writes:,} writes "
        f"over {summary.span_s:,.0f} s; recorded hit rate {summary.recorded_hit_rate:.1%}; "
        f"no cache can beat {summary.best_hit_rate:.1%}"
    )
    print(f"budget {budget / 2**20:,.2f} MiB ({basis})")
    for policy in ("s3fifo", "lru"):
        res = trace.replay(records, budget, policy)
        print(f"  {policy:7s} {res.hit_rate:6.1%}  ({res.hits:,} hits, {res.misses:,} misses)")
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("trace", help="replay a recorded hot-tier access trace")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)
    r = verbs.add_parser("replay", help="hit rate of S3-FIFO and LRU on a trace at a budget")
    r.add_argument("file", help="a .jsonl or .jsonl.gz trace (HFT_ACCESS_TRACE)")
    size = r.add_mutually_exclusive_group()
    size.add_argument("--budget-mb", type=float, default=None, help="cache budget in MiB")
    size.add_argument(
        "--budget-pct", type=float, default=10.0, help="budget as %% of the data (default 10)"
    )
    r.set_defaults(run=run)
