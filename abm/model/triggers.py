"""One-shot price triggers per market: wake an agent when the mark crosses a level it asked about.

Two heaps (levels to fall to, levels to rise to) checked on every mark update: a mark update that
fires nothing looks at two heap tops, so idle agents cost nothing. An agent's newer request replaces
its older one (version numbers, lazy deletion).
"""

from __future__ import annotations

import heapq
from typing import Any, Optional


class PriceTriggers:
    __slots__ = ("symbol", "_low", "_high", "_version", "_seq", "_sched")

    def __init__(self, symbol: str, sched: Any) -> None:
        self.symbol = symbol
        self._low: list[tuple[int, int, Any, int]] = []  # (-level, seq, agent, version)
        self._high: list[tuple[int, int, Any, int]] = []  # (level, seq, agent, version)
        self._version: dict[int, int] = {}
        self._seq = 0
        self._sched = sched

    def add(self, agent: Any, low: Optional[int], high: Optional[int]) -> None:
        v = self._version.get(agent.unique_id, 0) + 1
        self._version[agent.unique_id] = v
        self._seq += 1
        if low is not None:
            heapq.heappush(self._low, (-int(low), self._seq, agent, v))
        if high is not None:
            heapq.heappush(self._high, (int(high), self._seq, agent, v))

    def on_mark(self, t: int, mark: int) -> None:
        fired = []
        while self._low and -self._low[0][0] >= mark:
            _, _, agent, v = heapq.heappop(self._low)
            if self._version.get(agent.unique_id) == v:
                fired.append(agent)
        while self._high and self._high[0][0] <= mark:
            _, _, agent, v = heapq.heappop(self._high)
            if self._version.get(agent.unique_id) == v:
                fired.append(agent)
        for agent in fired:
            self._version[agent.unique_id] += 1  # one-shot: the other side of the request is void now
            self._sched.at(t, lambda tt, a=agent: a.active and a.on_price(tt, self.symbol, mark))
