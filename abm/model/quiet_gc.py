"""The cyclic garbage collector kept off the model during a run.

Why: a model is a large, long-lived object graph (agents, orders, accounts, heaps) that makes no
cyclic garbage while it runs, yet every generation-0 collection triggered by the run's short-lived
allocations ends up rescanning it: 20-30 % of CPU at 10,000 agents (issue 18; measured with
``bench/model_throughput.py --gc``). ``gc.freeze()`` moves everything alive at the start into the
permanent generation, which collections skip, and a higher generation-0 threshold makes the
remaining collections rare. Both are undone when the run ends, also on an error, so code around a
run (a notebook, a sweep worker) keeps Python's defaults. Results do not depend on it: nothing in a
run observes the collector.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Iterator

GEN0_THRESHOLD = 100_000  # allocations between young collections during a run (Python's default: 700)


@contextmanager
def quiet_gc() -> Iterator[None]:
    old = gc.get_threshold()
    gc.collect()  # the garbage of the build goes now, not into the permanent generation
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()
