"""A time-ordered event queue in integer microseconds.

Events at the same time run by priority (oracle before mark before funding before agents, so every
agent acting at t sees the prices published at t), then by the order they were scheduled: ties are
broken by sequence, never by an agent's id. The exchange's clock is advanced to each event's time
before it runs, so fills, liquidations and funding are stamped with the time they happened.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable, Optional

from abm.errors import InvalidInput

ORACLE, MARK, FUNDING_PAYMENT, FUNDING_SAMPLE, AGENT = 0, 1, 2, 3, 5


class Scheduler:
    __slots__ = ("_heap", "_seq", "now", "_clock", "processed", "started")

    def __init__(self, clock: Optional[Any] = None, start_us: int = 0) -> None:
        self._heap: list[tuple[int, int, int, Callable[..., None], tuple]] = []
        self._seq = 0
        self.now = start_us
        self._clock = clock  # an object with a ``now`` attribute to keep in step (the Exchange)
        self.processed = 0
        self.started = False  # set by the first ``run_until``: agents' set-up calls apply at once before it
        if clock is not None:
            clock.now = start_us

    def at(self, t_us: int, fn: Callable[..., None], *args: Any, priority: int = AGENT) -> None:
        if type(t_us) is not int or t_us < self.now:
            raise InvalidInput("t_us", t_us, f"must be an integer time not before now ({self.now} µs)")
        self._seq += 1
        heapq.heappush(self._heap, (t_us, priority, self._seq, fn, args))

    def push(self, t_us: int, fn: Callable[..., None], *args: Any) -> None:
        """``at`` for agents' own wakes, whose times are built from ``now`` plus a positive gap: no checks."""
        self._seq += 1
        heapq.heappush(self._heap, (t_us, AGENT, self._seq, fn, args))

    def next_time(self) -> Optional[int]:
        return self._heap[0][0] if self._heap else None

    def run_until(self, t_us: int) -> int:
        """Run every event due at or before ``t_us`` (including ones scheduled meanwhile); returns how many."""
        heap = self._heap
        clock = self._clock
        self.started = True
        n = 0
        while heap and heap[0][0] <= t_us:
            t, _, _, fn, args = heapq.heappop(heap)
            self.now = t
            if clock is not None:
                clock.now = t
            fn(t, *args)
            n += 1
        self.now = max(self.now, t_us)
        if clock is not None:
            clock.now = self.now
        self.processed += n
        return n

    def __len__(self) -> int:
        return len(self._heap)
