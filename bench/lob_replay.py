"""Replay the shared 1M-event order-book workload through abm's OrderBook.

Prints events/s (median of --runs runs), the book's peak memory over the loaded events (tracemalloc,
in a separate run because tracing slows Python down), and checks the exact published totals.

    python bench/lob_replay.py [--runs 5] [--events PATH]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

from abm.market.replay import SHARED_WORKLOAD_TOTALS, load_events, replay

EXPECTED = SHARED_WORKLOAD_TOTALS
DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "bench" / "lob_1m_events.npz"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--events", type=Path, default=DEFAULT)
    args = ap.parse_args()
    events = load_events(args.events)
    n = len(events)
    rates = []
    totals = None
    for _ in range(args.runs):
        gc.collect()
        t0 = time.perf_counter()
        _, totals = replay(events)
        rates.append(n / (time.perf_counter() - t0))
    gc.collect()
    tracemalloc.start()
    book, _ = replay(events)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ok = totals == EXPECTED
    print(f"events: {n:,}  runs: {args.runs}")
    print(f"events/s: median {statistics.median(rates) / 1e6:.3f} M  (min {min(rates) / 1e6:.3f} M, max {max(rates) / 1e6:.3f} M)")
    print(f"book peak memory over the loaded events: {peak / 2**20:.2f} MiB")
    print(f"totals: {totals}")
    print("totals match the published figures" if ok else f"TOTALS DIFFER from expected {EXPECTED}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
