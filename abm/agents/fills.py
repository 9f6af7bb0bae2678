"""Fill notices: an agent that asks (``ctx.watch_fills``) hears of the fills of its resting orders.

Why like this: the venue reports every fill to its subscribers while it matches, and agent code must never
run inside the venue (mid-match, with its books half updated). So a notice is a scheduled wake ``delay_us``
after the fill (the agent's market-data latency: it learns of the fill as it learns of anything else), and
whatever the agent does then travels its link like any action. One dispatcher per venue, subscribed at the
first watch: a run in which no agent watches has no extra subscriber, no extra event and no extra cost, so
its results are unchanged to the byte. The fills of one agent that happen before its pending notice is
delivered (a sweep through several of its levels, several takers at once) are one notice with all of them,
so a market maker requotes once per burst, after all of it; the notice's time is the first fill's time plus
the delay, independent of anything random, so runs stay deterministic.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from abm.errors import InvalidInput


class Fill(NamedTuple):
    """One fill of a resting order, as its owner hears of it."""

    time_us: int  # when it happened at the venue
    symbol: str
    side: int  # the resting order's side: BUY, the owner bought
    price: int  # ticks
    qty: int  # lots
    oid: int  # the resting order's id


FillsFn = Callable[[int, list[Fill]], None]


class _Watch:
    __slots__ = ("fn", "delay_us", "pending")

    def __init__(self, fn: FillsFn, delay_us: int) -> None:
        self.fn = fn
        self.delay_us = delay_us
        self.pending: list[Fill] = []


class FillNotices:
    """The fill subscriber of one venue: for each watching account, ``fn(t, fills)`` ``delay_us`` after its first
    fill not yet told, with every fill of its resting orders since."""

    def __init__(self, sched: Any, venue: Any) -> None:
        self._sched = sched
        self._venue = venue  # for the symbol of a market index (perp and spot venues alike list ``markets``)
        self._by_account: dict[int, _Watch] = {}

    def watch(self, account: int, delay_us: int, fn: FillsFn) -> None:
        """Tell ``fn`` of ``account``'s resting fills ``delay_us`` after they happen (replaces an earlier watch)."""
        if type(delay_us) is not int or delay_us < 0:
            raise InvalidInput("delay_us", delay_us, "must be a non-negative integer (microseconds)")
        if not callable(fn):
            raise InvalidInput("fn", fn, "must be callable as fn(t_us, fills)")
        self._by_account[account] = _Watch(fn, delay_us)

    def __call__(self, t: int, market: int, maker_oid: int, maker: int, taker_oid: int, taker: int, price: int,
                 qty: int, taker_side: int, liquidation: bool) -> None:
        w = self._by_account.get(maker)
        if w is None:
            return
        w.pending.append(Fill(t, self._venue.markets[market].spec.symbol, 1 - taker_side, price, qty, maker_oid))
        if len(w.pending) == 1:  # the first since the last notice: one wake tells of all of them
            self._sched.push(t + w.delay_us, self._deliver, w)

    @staticmethod
    def _deliver(t: int, w: _Watch) -> None:
        fills, w.pending = w.pending, []
        w.fn(t, fills)


__all__ = ["Fill", "FillNotices", "FillsFn"]
