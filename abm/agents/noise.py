"""Zero-intelligence background flow in the Santa Fe style (Farmer, Patelli & Zovko 2005).

Market orders arrive at rate ``mu``, limit orders at rate ``alpha`` per price level of a placement
window of ``window_levels`` levels (``level_ticks`` apart) behind the opposite best quote, and each
resting order is cancelled at rate ``delta``. The agent draws the time to its next event from the
total rate (exact, Gillespie-style), so its cost is one event per action. Sides are 50/50. It is the
background liquidity and the control population: no strategy, no information.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import islice
from typing import Any

from abm.agents.base import Trader, TraderParams
from abm.errors import InvalidInput

BUY, SELL = 0, 1


@dataclass(frozen=True, slots=True)
class NoiseParams(TraderParams):
    deposit_usdc: float = 1_000_000.0
    wake: str = "none"  # the event clock below replaces scheduled wakes
    # Background flow arrives at the exchange at its Poisson times: a latency would only shift the clock.
    data_latency_ms: float = 0.0
    entry_latency_ms: float = 0.0
    jitter_ms: float = 0.0
    mu: float = 0.05  # market orders per second
    alpha: float = 0.005  # limit orders per second per level
    delta: float = 0.02  # cancellations per second per resting order
    window_levels: int = 40
    level_ticks: int = 5
    size_lots: int = 50
    size_dist: str = "geometric"  # "fixed" or "geometric" (mean size_lots)

    def __post_init__(self) -> None:
        TraderParams.__post_init__(self)
        for name in ("mu", "alpha", "delta"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise InvalidInput(name, v, "must be a rate >= 0 (per second)")
        for name in ("window_levels", "level_ticks", "size_lots"):
            v = getattr(self, name)
            if type(v) is not int or v <= 0:
                raise InvalidInput(name, v, "must be a positive integer")
        if self.size_dist not in ("fixed", "geometric"):
            raise InvalidInput("size_dist", self.size_dist, "must be 'fixed' or 'geometric'")


class NoiseTrader(Trader):
    kind = "noise"
    Params = NoiseParams
    p: NoiseParams

    def start(self) -> None:
        p = self.p
        # hot-path constants: this agent's event runs several hundred thousand times an hour per crowd
        self._steady_rate = p.mu + p.alpha * p.window_levels
        self._open = self.ex.accounts[self.account].open_orders  # the exchange's live dict: read only
        self._book = self.view()
        self._ex_limit = self.ex.limit
        self._ex_market = self.ex.market_order
        self._ex_cancel = self.ex.cancel
        self._size_log = math.log(1.0 - 1.0 / p.size_lots) if p.size_dist == "geometric" and p.size_lots > 1 else 0.0
        self._schedule_next(self.now)

    def _schedule_next(self, t: int) -> None:
        rate = self._steady_rate + self.p.delta * len(self._open)
        if rate > 0 and self.active:  # the time to the next event of any kind, from the total rate
            buf = self._ubuf
            u = buf.pop() if buf else self.uniform()
            self.model.sched.push(t + int(-math.log(1.0 - u) * 1e6 / rate) + 1, self._event)

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
        n_open = len(self._open)
        buf = self._ubuf
        steady = self._steady_rate
        u = (buf.pop() if buf else self.uniform()) * (steady + p.delta * n_open)
        side = BUY if (buf.pop() if buf else self.uniform()) < 0.5 else SELL
        if u < p.mu:
            self._act("market", self._ex_market, self.symbol, side, self._size())
        elif u < steady:
            book = self._book
            ref = book.best_ask() if side == BUY else book.best_bid()
            if ref is None:
                ref = self.mark()  # that side of the book is empty: place around the mark
            if ref is not None:
                k = 1 + int((buf.pop() if buf else self.uniform()) * p.window_levels)
                price = ref - k * p.level_ticks if side == BUY else ref + k * p.level_ticks
                if price > 0:
                    self._act("limit", self._ex_limit, self.symbol, side, self._size(), price)
        elif n_open:
            k = int((buf.pop() if buf else self.uniform()) * n_open)
            self._act("cancel", self._ex_cancel, next(islice(self._open, k, None)))
        self._schedule_next(t)

    def on_reject(self, action: str, error: Any) -> None:
        pass  # races (an order filled before its cancel arrived) are normal for background flow


__all__ = ["NoiseTrader", "NoiseParams"]

