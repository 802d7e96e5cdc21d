"""`hfthot query "SQL" [--csv PATH | --parquet PATH]`: the SQL explorer from a terminal."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import polars as pl

from core.config import Settings
from core.errors import InvalidInput


def run(args: Any) -> int:
    from core.engine import build_engine

    settings = Settings.from_env()
    if args.timeout is not None and args.timeout <= 0:
        raise InvalidInput("--timeout must be > 0")
    engine = build_engine(settings)
    try:
        result = engine.sql.execute(
            args.sql,
            timeout_s=args.timeout,
            max_rows=args.max_rows,
            user=args.user,
        )
        frame = result.frame
        if args.csv:
            frame.write_csv(Path(args.csv))
            print(f"wrote {frame.height} row(s) to {args.csv}")
        elif args.parquet:
            frame.write_parquet(Path(args.parquet))
            print(f"wrote {frame.height} row(s) to {args.parquet}")
        else:
            with pl.Config(tbl_rows=args.show, tbl_cols=-1, fmt_str_lengths=40):
                print(frame)
        for change in result.notes:
            print(f"note: {change}", file=sys.stderr)
        note = " (truncated at the row cap)" if result.truncated else ""
        print(f"{frame.height} row(s) in {result.elapsed_s * 1000:.1f} ms{note}", file=sys.stderr)
    finally:
        engine.close()
    return 0


def register(sub: argparse._SubParsersAction[Any]) -> None:
    p = sub.add_parser("query", help="run one read-only SQL query over bars, trades and daily")
    p.add_argument("sql", help='the query, e.g. "SELECT * FROM daily LIMIT 10"')
    out = p.add_mutually_exclusive_group()
    out.add_argument("--csv", metavar="PATH", help="write the result as CSV")
    out.add_argument("--parquet", metavar="PATH", help="write the result as Parquet")
    p.add_argument(
        "--timeout", type=float, default=None, help="seconds (default HFT_SQL_TIMEOUT_S)"
    )
    p.add_argument("--max-rows", type=int, default=None, help="row cap (default HFT_SQL_MAX_ROWS)")
    p.add_argument("--show", type=int, default=50, help="rows to print (default 50)")
    p.add_argument("--user", default="cli", help="history owner (default cli)")
    p.set_defaults(run=run)


__all__ = ["register", "run"]
