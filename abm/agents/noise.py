"""Zero-intelligence background flow in the Santa Fe style (Farmer, Patelli & Zovko 2005).

Market orders arrive at rate ``mu``, limit orders at rate ``alpha`` per price level of a placement
window of ``window_levels`` levels (``level_ticks`` apart) behind the opposite best quote, and each
resting order is cancelled at rate ``delta``. Sides are 50/50. It is the background liquidity and
the control population: no strategy, no information.

The clock is exact by thinning: other traders' fills remove its resting orders between its events,
so its total rate can only fall until its next event, and the total rate at its last event bounds
it. The next event is drawn at that bound and is a market order, a limit order or a cancel with
probability rate / bound each, or nothing (the part of the bound fills took away). The flow thus
sends exactly ``mu`` market and ``alpha x window_levels`` limit orders per second, however many agents
it is split over. With latency, limit orders still on their way count toward the bound.

A market order the book cannot fill in full (an empty side) is the flow itself, not a strategy's
parent order: the agent only counts those (``short_orders``, lots asked and filled) and reports them
as one shortfall row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import islice
from typing import Annotated, Any, Literal

from abm.agents.base import Shortfall, Trader, TraderParams, WakeMode
from abm.agents.params import Millis, PositiveInt, Rate, Usdc, number
from abm.units import BUY, SELL


@dataclass(frozen=True, slots=True)
class NoiseParams(TraderParams):
    deposit_usdc: Usdc = 1_000_000.0
    wake: WakeMode = "none"  # the event clock below replaces scheduled wakes
    # Background flow arrives at the exchange at its Poisson times: a latency would only shift the clock.
    data_latency_ms: Millis = 0.0
    entry_latency_ms: Millis = 0.0
    jitter_ms: Millis = 0.0
    mu: Rate = 0.05  # market orders per second
    alpha: Rate = 0.005  # limit orders per second per level
    delta: Rate = 0.02  # cancellations per second per resting order
    window_levels: PositiveInt = 40
    level_ticks: PositiveInt = 5
    size_lots: PositiveInt = 50
    size_dist: Literal["fixed", "geometric"] = "geometric"  # "fixed" or "geometric" (mean size_lots)
    # Anchoring: a limit order is placed around (1 - w) x the best quote + w x the value it observes (ctx.value),
    # so a book without market makers drifts back toward value instead of keeping any level forced flow left
    value_weight: Annotated[float, number(ge=0, le=1)] = 0.0


class NoiseTrader(Trader):
    kind = "noise"
    role = "background"  # what the metrics count it as (inherited by subclasses: abm.model.role_of)
    Params = NoiseParams
    flow = True
    p: NoiseParams

    def __init__(self, model: Any, rng: Any, params: NoiseParams, ctx: Any = None) -> None:
        super().__init__(model, rng, params, ctx)
        self._in_flight = 0  # limit orders sent, not landed yet (latency only)
        self._bound = 0.0  # total rate at the last event: an upper bound of the rate until the next one
        self.market_orders = self.limit_orders = self.cancels = 0  # orders and cancels sent
        self.short_orders = 0  # market orders that found the book side empty before they were filled
        self.short_requested = self.short_filled = 0  # their lots
        self._first_short_us = 0

    def start(self) -> None:
        p = self.p
        ctx = self.ctx
        # hot-path constants: this agent's event runs several hundred thousand times an hour per crowd
        self._steady_rate = p.mu + p.alpha * p.window_levels
        self._open = ctx.orders  # the account's live resting orders, read only
        self._book = self.view()
        self._lagged = self.latency.max_us > 0
        self._submit_limit = ctx.submit_limit
        self._submit_market = ctx.submit_market
        self._cancel = ctx.cancel
        self._push_wake = ctx.push_wake
        self._limit_done = self._limit_lands if self._lagged else None
        self._anchor = p.value_weight
        self._tick = float(ctx.spec(self.symbol).tick_size)
        self._size_log = math.log(1.0 - 1.0 / p.size_lots) if p.size_dist == "geometric" and p.size_lots > 1 else 0.0
        self._schedule_next(self.now)

    def _schedule_next(self, t: int) -> None:
        bound = self._steady_rate + self.p.delta * (len(self._open) + self._in_flight)
        self._bound = bound
        if bound > 0 and self.active:  # the time to the next candidate event, at the bound
            buf = self._ubuf
            u = buf.pop() if buf else self.uniform()
            self._push_wake(t + int(-math.log(1.0 - u) * 1e6 / bound) + 1, self._event)

    def _market_done(self, res: Any, error: Any) -> None:
        """A market order landed: count it when the book could not fill it (refused ones filled nothing either)."""
        if error is None and res.filled < res.qty:
            if not self.short_orders:
                self._first_short_us = self.now
            self.short_orders += 1
            self.short_requested += res.qty
            self.short_filled += res.filled

    def _limit_lands(self, res: Any, error: Any) -> None:
        self._in_flight -= 1

    def _size(self) -> int:
        if not self._size_log:
            return self.p.size_lots
        # geometric on {1, 2, ...} with mean size_lots, by inversion of one uniform draw
        buf = self._ubuf
        u = buf.pop() if buf else self.uniform()
        return 1 + int(math.log(1.0 - u) / self._size_log)

    def _event(self, t: int) -> None:
        if not self.active:
            return
        p = self.p
        buf = self._ubuf
        steady = self._steady_rate
        u = (buf.pop() if buf else self.uniform()) * self._bound  # where on [0, bound) this event falls
        if u < steady:
            side = BUY if (buf.pop() if buf else self.uniform()) < 0.5 else SELL
            if u < p.mu:
                self.market_orders += 1
                self._submit_market(self.symbol, side, self._size(), None, None, False, None, self._market_done)
            else:
                book = self._book
                ref = book.best_ask() if side == BUY else book.best_bid()
                if ref is None:
                    ref = self.mark()  # that side of the book is empty: place around the mark
                if self._anchor:  # an anchored crowd also seeds an empty book around the value
                    value = self.ctx.value(self.symbol) / self._tick
                    ref = int(round(value if ref is None else (1.0 - self._anchor) * ref + self._anchor * value))
                if ref is not None:
                    k = 1 + int((buf.pop() if buf else self.uniform()) * p.window_levels)
                    price = ref - k * p.level_ticks if side == BUY else ref + k * p.level_ticks
                    if price > 0:
                        self.limit_orders += 1
                        self._in_flight += self._lagged
                        self._submit_limit(self.symbol, side, self._size(), price, "GTC", False, False, None,
                                           self._limit_done)
        else:
            n_open = len(self._open)
            if u < steady + p.delta * n_open:  # a cancel; beyond it the rate fills took away: nothing happens
                k = min(int((u - steady) / p.delta), n_open - 1)  # u is uniform on the cancel band: it picks the order
                self.cancels += 1
                self._cancel(next(islice(self._open, k, None)))
        self._schedule_next(t)

    def shortfall_records(self) -> list[Shortfall]:
        """One row for all market orders that came up short (the flow's bookkeeping is counters, not records)."""
        if not self.short_orders:
            return []
        return [Shortfall(self._first_short_us, self.symbol, "market (flow)", self.short_requested, self.short_filled,
                          "the opposite side of the book ran out", self.short_orders)]

    def on_reject(self, action: str, error: Any) -> None:
        pass  # races (an order filled before its cancel arrived) are normal for background flow


__all__ = ["NoiseTrader", "NoiseParams"]

