"""Agents' price triggers (``abm.model.triggers.PriceTriggers``): requests replaced over and over keep the heaps
bounded by the live requests (compaction), and every mark update wakes exactly the agents, in exactly the order,
that the plain lazy-deletion heaps without compaction wake."""

from __future__ import annotations

import heapq
import random
from typing import Any, Optional

from hypothesis import given, settings
from hypothesis import strategies as st

from abm.model.triggers import PriceTriggers


class Agent:
    active = True

    def __init__(self, uid: int, woken: list[tuple[int, int, int]]) -> None:
        self.unique_id = uid
        self.woken = woken

    def on_price(self, t: int, symbol: str, mark: int) -> None:
        self.woken.append((t, self.unique_id, mark))


class Sched:
    """Runs what a mark update schedules at once, in the order scheduled (the model's scheduler would, at ``t``)."""

    def at(self, t: int, fn: Any) -> None:
        fn(t)


class Uncompacted:
    """The triggers as they were before compaction: the reference the compacting heaps must match."""

    def __init__(self, sched: Sched) -> None:
        self.low: list[tuple[int, int, Any, int]] = []
        self.high: list[tuple[int, int, Any, int]] = []
        self.version: dict[int, int] = {}
        self.seq = 0
        self.sched = sched

    def add(self, agent: Agent, low: Optional[int], high: Optional[int]) -> None:
        v = self.version[agent.unique_id] = self.version.get(agent.unique_id, 0) + 1
        self.seq += 1
        if low is not None:
            heapq.heappush(self.low, (-low, self.seq, agent, v))
        if high is not None:
            heapq.heappush(self.high, (high, self.seq, agent, v))

    def on_mark(self, t: int, mark: int) -> None:
        fired = []
        while self.low and -self.low[0][0] >= mark:
            _, _, a, v = heapq.heappop(self.low)
            if self.version.get(a.unique_id) == v:
                fired.append(a)
        while self.high and self.high[0][0] <= mark:
            _, _, a, v = heapq.heappop(self.high)
            if self.version.get(a.unique_id) == v:
                fired.append(a)
        for a in fired:
            self.version[a.unique_id] += 1
            self.sched.at(t, lambda tt, a=a: a.active and a.on_price(tt, "X", mark))


def drive(ops: list[tuple[int, int, Optional[int], Optional[int]]], n_agents: int) -> tuple[list[Any], list[Any], int]:
    """Run ``ops`` ((0, agent, low, high) a request, (1, mark, _, _) a mark update) on both implementations."""
    got: list[tuple[int, int, int]] = []
    want: list[tuple[int, int, int]] = []
    new, old = PriceTriggers("X", Sched()), Uncompacted(Sched())
    agents_new = [Agent(i, got) for i in range(n_agents)]
    agents_old = [Agent(i, want) for i in range(n_agents)]
    peak = 0
    for t, (kind, x, low, high) in enumerate(ops):
        if kind == 0:
            new.add(agents_new[x], low, high)
            old.add(agents_old[x], low, high)
        else:
            new.on_mark(t, x)
            old.on_mark(t, x)
        held, live = new.sizes()
        assert live == sum(e[3] == new._version[e[2].unique_id] for e in new._low + new._high)
        peak = max(peak, held)
    return got, want, peak


def test_churn_far_from_the_mark_stays_bounded_and_wakes_the_same_agents() -> None:
    rng = random.Random(7)
    ops: list[tuple[int, int, Optional[int], Optional[int]]] = []
    mark = 10_000
    for _ in range(200_000):  # 50 agents re-asking about levels ~1-3 % away, the mark wandering in between
        if rng.random() < 0.05:
            mark += rng.choice((-25, 25))
            ops.append((1, mark, None, None))
        else:
            ops.append((0, rng.randrange(50), mark - rng.randint(100, 300), mark + rng.randint(100, 300)))
    got, want, peak = drive(ops, 50)
    assert got == want and len(got) > 100  # some requests fired, and exactly the reference's
    # without compaction the heaps would hold ~2 entries per request (~380,000); live ones are at most 100
    assert peak <= 2 * (100 + 64) + 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 7), st.none() | st.integers(1, 40),
                          st.none() | st.integers(1, 40)), max_size=400))
def test_any_sequence_wakes_what_the_uncompacted_heaps_wake(raw: list[tuple[int, int, Any, Any]]) -> None:
    ops = [(k, x if k == 0 else 1 + 5 * x, lo, hi) for k, x, lo, hi in raw]  # marks 1..36 cross the levels
    got, want, _ = drive(ops, 8)
    assert got == want
