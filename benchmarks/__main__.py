"""Run the benchmarks and write benchmarks/REPORT.md.

`python -m benchmarks` runs every suite; `python -m benchmarks [name ...]` runs a
subset (names are module suffixes, e.g. `series`) and replaces only those
suites' sections of the report, each stamped with the time it was measured.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
import platform
import re
import sys

from benchmarks.common import REPORT, threads_note

# docs/compute.md §0(d): single-threaded ratios first. Pin every pool before the suites
# import numpy, BLAS or rayon; an explicit setting in the environment still wins.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

SUITES = [
    "series",
    "store",
    "lakehouse",
    "mfg",
    "hmm",
    "optimize",
    "chiarella",
    "meanrev",
    "backtest",
    "api",
    "book",
    "live",
]


MARK = re.compile(r"<!-- suite: (\w+) -->\n(.*?)<!-- /suite -->\n", re.S)


def merge(existing: str, fresh: dict[str, str]) -> str:
    """The report with `fresh` sections replacing or joining the stored ones, in SUITES order."""
    sections = {m.group(1): m.group(2) for m in MARK.finditer(existing)}
    sections.update(fresh)
    head = [
        "# HFThot benchmark report",
        "",
        f"Written by `make bench` ({platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}; each section names its thread settings). "
        "Each time is the median of at least "
        "5 runs after a warm-up; the peer runs in the same process, so every ratio compares "
        "two measurements of the same run. Ratios above 1 mean HFThot is faster.",
        "",
    ]
    body = [f"<!-- suite: {n} -->\n{sections[n]}<!-- /suite -->\n" for n in SUITES if n in sections]
    return "\n".join(head) + "\n" + "\n".join(body)


def main(argv: list[str]) -> int:
    chosen = argv or SUITES
    unknown = sorted(set(chosen) - set(SUITES))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; choose from {', '.join(SUITES)}")
        return 2
    fresh: dict[str, str] = {}
    for name in chosen:
        print(f"running {name}…", flush=True)
        section = importlib.import_module(f"benchmarks.bench_{name}").run()
        print(section, flush=True)
        stamp = f"_Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {threads_note()}._"
        fresh[name] = f"{section.rstrip()}\n\n{stamp}\n"
        # Write after every suite so a long run that is stopped keeps what it measured.
        existing = REPORT.read_text() if REPORT.exists() else ""
        REPORT.write_text(merge(existing, fresh))
    print(f"wrote {REPORT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
