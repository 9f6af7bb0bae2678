"""One-shot price triggers per market: wake an agent when the mark crosses a level it asked about.

Two heaps (levels to fall to, levels to rise to) checked on every mark update: a mark update that
fires nothing looks at two heap tops, so idle agents cost nothing. An agent's newer request replaces
its older one (version numbers, lazy deletion). Replaced requests far from the mark would otherwise
stay in the heaps for the whole run (a maker re-asks at every refresh), so the live entries are
counted and a heap is rebuilt from them once its dead entries outnumber them: memory stays
O(agents with a request), at O(1) amortized per request. Entries are totally ordered (level, then
request sequence), so a rebuilt heap pops exactly as the old one would have: results do not change.
"""

from __future__ import annotations

import heapq
from typing import Any, Optional

_COMPACT_MIN = 64  # dead entries tolerated before a rebuild is worth its pass
_LOW = 1  # bits of a request's live entries (``_live``)
_HIGH = 2


class PriceTriggers:
    __slots__ = ("symbol", "_low", "_high", "_version", "_seq", "_sched", "_live", "_n_low", "_n_high", "rebuilds")

    def __init__(self, symbol: str, sched: Any) -> None:
        self.symbol = symbol
        self._low: list[tuple[int, int, Any, int]] = []  # (-level, seq, agent, version)
        self._high: list[tuple[int, int, Any, int]] = []  # (level, seq, agent, version)
        self._version: dict[int, int] = {}
        self._seq = 0
        self._sched = sched
        self._live: dict[int, int] = {}  # agent id -> _LOW | _HIGH: its current request's entries still in the heaps
        self._n_low = 0  # live entries in each heap
        self._n_high = 0
        self.rebuilds = 0

    def add(self, agent: Any, low: Optional[int], high: Optional[int]) -> None:
        uid = agent.unique_id
        v = self._version.get(uid, 0) + 1
        self._version[uid] = v
        self._seq += 1
        was = self._live.pop(uid, 0)  # the older request's entries are dead now
        self._n_low -= was & _LOW
        self._n_high -= (was & _HIGH) >> 1
        bits = 0
        if low is not None:
            heapq.heappush(self._low, (-int(low), self._seq, agent, v))
            self._n_low += 1
            bits = _LOW
            if len(self._low) - self._n_low > max(self._n_low, _COMPACT_MIN):
                self._low = self._rebuilt(self._low)
        if high is not None:
            heapq.heappush(self._high, (int(high), self._seq, agent, v))
            self._n_high += 1
            bits |= _HIGH
            if len(self._high) - self._n_high > max(self._n_high, _COMPACT_MIN):
                self._high = self._rebuilt(self._high)
        if bits:
            self._live[uid] = bits
        elif was and len(self._low) + len(self._high) - self._n_low - self._n_high > 2 * _COMPACT_MIN:
            self._low, self._high = self._rebuilt(self._low), self._rebuilt(self._high)  # a request withdrawn

    def _rebuilt(self, heap: list[tuple[int, int, Any, int]]) -> list[tuple[int, int, Any, int]]:
        version = self._version
        kept = [e for e in heap if version[e[2].unique_id] == e[3]]
        heapq.heapify(kept)
        self.rebuilds += 1
        return kept

    def sizes(self) -> tuple[int, int]:
        """(entries held in both heaps, of which live): what the compaction bounds."""
        return len(self._low) + len(self._high), self._n_low + self._n_high

    def on_mark(self, t: int, mark: int) -> None:
        fired = []
        live = self._live
        while self._low and -self._low[0][0] >= mark:
            _, _, agent, v = heapq.heappop(self._low)
            if self._version.get(agent.unique_id) == v:
                fired.append(agent)
                self._n_low -= 1
                live[agent.unique_id] &= ~_LOW
        while self._high and self._high[0][0] <= mark:
            _, _, agent, v = heapq.heappop(self._high)
            if self._version.get(agent.unique_id) == v:
                fired.append(agent)
                self._n_high -= 1
                live[agent.unique_id] &= ~_HIGH
        for agent in fired:
            self._version[agent.unique_id] += 1  # one-shot: the other side of the request is void now
            left = live.pop(agent.unique_id, 0)
            self._n_low -= left & _LOW
            self._n_high -= (left & _HIGH) >> 1
            self._sched.at(t, lambda tt, a=agent: a.active and a.on_price(tt, self.symbol, mark))
