"""The `hfthot` command line. Each sub-command lives in its own module."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import core
from core.cli import doctor, query, serve
from core.cli import ingest as ingest_cli
from core.cli import lakehouse as lakehouse_cli
from core.cli import trace as trace_cli
from core.errors import HftError

COMMANDS = [doctor, query, lakehouse_cli, ingest_cli, trace_cli, serve]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hfthot", description="HFThot research portal: engine command line."
    )
    parser.add_argument("--version", action="version", version=f"hfthot {core.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        code: int = args.run(args)
    except HftError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
