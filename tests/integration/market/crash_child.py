"""Child process for the crash tests: writes batches and prints "ack <i>" after each returns.

argv: root, first_batch, batches, crash_point ("" for none), crash_after (batches)
Batch i holds 30 synthetic 1-minute bars starting at minute 30*i; every third batch is
buffered and flushed instead of written directly.
"""

from __future__ import annotations

import os
import sys

from core.data.store import MarketStore
from tests.unit.market.helpers import bars

root, first, count, point, after = sys.argv[1:6]
store = MarketStore(root, compact_after=3, buffer_age_s=3600)
frame = bars(30 * 400)
for i in range(int(first), int(first) + int(count)):
    if point and i - int(first) == int(after):
        os.environ["HFT_STORE_CRASH_AT"] = point
    batch = frame.slice(30 * i, 30)
    if i % 3 == 2:
        store.buffer_bars(batch)
        store.flush()
    else:
        store.write_bars(batch)
    print(f"ack {i}", flush=True)
print("done", flush=True)
