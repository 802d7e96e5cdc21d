"""ArcticDB (LMDB) side of the store benchmark, run with the peer venv's python (.venv-peers).

ArcticDB needs pandas<3, so it cannot live in the project venv. bench_store.py starts this
script as a subprocess with a JSON spec on stdin: the LMDB root, the Parquet files its own
store was fed (one per symbol, in ingest order) and the queries. It writes every file to
ArcticDB (timing `write` only), then times the same warm reads with the same protocol
(common.median_time: one warm-up, median of >= 5) and prints one JSON object on stdout,
with a checksum of the data it ingested so the caller can prove both sides saw the same bars.
Imports neither core/ nor polars.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from typing import Any

import arcticdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from common import median_time

COLUMNS = ("open", "high", "low", "close", "volume")


def digest(h: Any, table: pa.Table) -> None:
    """Feed ts (int64 µs since epoch) and the price/volume columns, as raw bytes, to h."""
    ts = table.column("ts").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
    h.update(np.ascontiguousarray(ts, dtype="<i8").tobytes())
    for c in COLUMNS:
        h.update(np.ascontiguousarray(table.column(c).to_numpy(), dtype="<f8").tobytes())


def main() -> None:
    spec = json.load(sys.stdin)
    ac = arcticdb.Arctic(f"lmdb://{spec['root']}?map_size=8GB")
    lib = ac.get_library("bars", create_if_missing=True)
    h = hashlib.sha256()
    rows = 0
    write_s = 0.0
    for name, path in spec["files"]:
        table = pq.read_table(path, columns=["ts", *COLUMNS])
        digest(h, table)
        rows += table.num_rows
        table = table.set_column(0, "ts", table.column("ts").cast(pa.timestamp("ns", tz="UTC")))
        pdf = table.to_pandas().set_index("ts")
        t0 = time.perf_counter()
        lib.write(name, pdf)
        write_s += time.perf_counter() - t0
        del table, pdf

    sym = spec["symbol"]
    lo = pd.Timestamp(spec["lo"])
    hi = pd.Timestamp(spec["hi"]) - pd.Timedelta(microseconds=1)  # date_range is inclusive
    day_rows = len(lib.read(sym, date_range=(lo, hi)).data)
    year_rows = len(lib.read(sym).data)
    day_s = median_time(lambda: lib.read(sym, date_range=(lo, hi)).data)
    year_s = median_time(lambda: lib.read(sym).data)
    out = {
        "checksum": h.hexdigest(),
        "rows": rows,
        "write_s": write_s,
        "day_s": day_s,
        "year_s": year_s,
        "day_rows": day_rows,
        "year_rows": year_rows,
        "versions": {
            "arcticdb": arcticdb.__version__,
            "pandas": pd.__version__,
            "pyarrow": pa.__version__,
            "numpy": np.__version__,
            "python": sys.version.split()[0],
        },
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
