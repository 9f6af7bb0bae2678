"""A time-ordered event queue in integer microseconds.

Events at the same time run by priority (the constants below, lowest first), then by the order they
were scheduled: ties are broken by sequence, never by an agent's id. The exchange's clock is advanced
to each event's time before it runs, so fills, liquidations and funding are stamped with the time
they happened.

The priorities, defined here once and used by name everywhere (``priority=ORACLE``, never a number):

1. ``VENUE``: a venue's trading state changes first (a scenario's ``venue_state`` events), so everything at
   t meets the state of t;
2. ``INDEX``: an index made by the venues reads its sources before the oracle, so an oracle due at t reads the index
   of t (only markets whose index comes from venues schedule it);
3. ``ORACLE``: the oracle publishes next, so everything at t prices off the oracle of t;
4. ``MARK``: the mark recomputed from it (and the liquidation check that every mark update runs),
   so no one trades at t against a stale mark or an account that is already liquidatable;
5. ``FUNDING_PAYMENT``: a payment due at t settles the interval that ends at t (paid at the mark
   and oracle of t) before ...
6. ``FUNDING_SAMPLE``: ... a sample at t, which belongs to the next interval (a schedule refuses a
   sample at or after an unsettled payment);
7. ``AGENT``: agents' wakes, price triggers and orders arriving from their links last, so every agent
   acting at t sees the prices and the funding of t. It is the default of ``at`` and ``push``.

The values are plain ints, compared in the heap's tuples (compiled code keeps them unboxed); only
their order matters (the value 4 is unused). ``tests/unit/sim/test_feed.py`` checks the order.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable, Final, Optional

from abm.errors import InvalidInput

VENUE: Final = -2
INDEX: Final = -1
ORACLE: Final = 0
MARK: Final = 1
FUNDING_PAYMENT: Final = 2
FUNDING_SAMPLE: Final = 3
AGENT: Final = 5
PRIORITIES: Final = {"VENUE": VENUE, "INDEX": INDEX, "ORACLE": ORACLE, "MARK": MARK, "FUNDING_PAYMENT": FUNDING_PAYMENT,
                     "FUNDING_SAMPLE": FUNDING_SAMPLE, "AGENT": AGENT}  # name -> value, in run order


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
