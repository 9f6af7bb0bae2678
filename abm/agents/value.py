"""A value trader (fundamentalist): buys the perp below the value it observes, with finite capital and a
leverage cap, so prices can rebound when forced flow stops and leverage can make the fall worse.

Why this agent: without someone who buys a dislocation, a book emptied by liquidations stays where the
forced flow left it, and the simulator cannot show the rebound of 12 Mar 2020 (+40% in 25 min) or of
10 Oct 2025 (+12% in 30 min, shared/reference/venue-mechanics.md). Its demand is the leveraged value
investor of Thurner, Farmer and Geanakoplos (2012, "Leverage causes fat tails and clustered
volatility", Quantitative Finance 12(5)): a position worth ``aggression x mispricing x equity``, where
mispricing is ``(V - p) / p``, capped at ``max_leverage x equity``. When the price falls the
mispricing grows, so it buys; but its equity falls with the price, so past the cap it must *sell* into
the fall (the leverage cycle), which is how more leverage makes tails fatter through the agents' own
behaviour rather than through a drawn path.

What it observes: the market's value process (``ctx.value``: the scenario's exogenous information,
``value_lag_s`` old, with multiplicative noise of ``value_noise_bps`` from its own stream). It trades
with reduce-only market orders when shrinking and plain ones when growing, at most ``clip_usdc`` per
order and one order in flight at a time, each bounded ``slippage_bps`` from the mid. An order is also cut to
the venue's ``max_market_order_value`` and, for the part that opens, a bracket's ``max_position_notional``
(``abm.agents.limits``); it pursues a target, not a parent order, so the rest is what the next wake looks at
again, and ``sized_to_limits`` counts the cuts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Optional

import numpy as np

from abm.agents.base import Trader, TraderParams, WakeMode
from abm.agents.limits import market_most, position_room
from abm.agents.params import Bps, Leverage, PositiveSeconds, PositiveUsdc, Seconds, Usdc, number
from abm.errors import InvalidInput
from abm.units import BUY, SELL, US_PER_S, USDC

if TYPE_CHECKING:
    from abm.model.model import MarketModel


@dataclass(frozen=True, slots=True)
class ValueParams(TraderParams):
    deposit_usdc: Usdc = 1_000_000.0
    wake: WakeMode = "periodic"
    wake_every_s: PositiveSeconds = 5.0  # how often it looks (and rebalances)
    aggression: Annotated[float, number(gt=0, unit="position value per unit of mispricing, in equities")] = 20.0
    max_leverage: Leverage = 3  # |position notional| <= this x equity: past it, it sells whatever the value says
    threshold_bps: Bps = 20.0  # mispricing smaller than this is left alone (unless the leverage cap binds)
    long_only: bool = True  # only buys dislocations below value (a fund); False: also shorts above value
    value_noise_bps: Bps = 0.0  # lognormal noise of each observation of the value
    value_lag_s: Seconds = 0.0  # the value it sees is this old
    reference: Literal["mid", "mark"] = "mid"  # the perp price the mispricing is measured against
    clip_usdc: PositiveUsdc = 250_000.0  # largest single order
    slippage_bps: Bps = 50.0  # each order fills at most this far from the mid


class ValueTrader(Trader):
    kind = "value"
    role = "value"
    Params = ValueParams
    p: ValueParams

    def __init__(self, model: MarketModel, rng: np.random.Generator, params: ValueParams, ctx: Any = None) -> None:
        super().__init__(model, rng, params, ctx)
        top = self.ctx.max_leverage(self.symbol)
        if params.max_leverage > top:  # refused, not capped: the agent would not be the one the scenario describes
            raise InvalidInput(f"agents.{self.kind}.max_leverage", params.max_leverage,
                               f"must be <= {top} (the venue's maximum for {self.symbol})")
        if self.ctx.margined:  # on a spot venue it trades what it holds: max_leverage only caps its demand
            self.ctx.set_leverage(self.symbol, params.max_leverage)
        spec = self.ctx.spec(self.symbol)
        self._tick = float(spec.tick_size)
        self._mult = spec.multiplier
        self._lag_us = int(params.value_lag_s * US_PER_S)
        self._in_flight = False
        self.observed: Optional[float] = None  # the last value it saw, quote currency per base unit
        self.target_lots = 0  # what it last wanted to hold
        self.forced_sells = 0  # orders sent because the leverage cap bound against what the value said
        self.sized_to_limits = 0  # orders cut to the venue's max_market_order_value or max_position_notional

    def on_wake(self, t: int) -> None:
        if self._in_flight:
            return  # one order at a time: the next wake looks again at what the last one did
        price = self._price()
        equity = self.equity()
        if price is None or equity <= 0:
            return
        value = self.ctx.value(self.symbol, self._lag_us)
        if self.p.value_noise_bps:
            value *= math.exp(self.p.value_noise_bps / 10_000 * float(self.rng.standard_normal()))
        self.observed = value
        p_quote = price * self._tick
        mispricing = (value - p_quote) / p_quote
        lot_value = price * self._mult  # quote units per lot at the reference price
        cap_lots = int(self.p.max_leverage * equity // lot_value)
        held = self.position().size
        lo = 0 if self.p.long_only else -cap_lots
        if abs(mispricing) * 10_000 < self.p.threshold_bps:
            target = min(max(held, lo), cap_lots)  # inside the deadband: hold, unless the cap binds
        else:
            want = self.p.aggression * mispricing * equity / lot_value
            target = min(max(int(want), lo), cap_lots)
        self.target_lots = target
        delta = target - held
        if delta == 0:
            return
        clip = max(1, int(self.p.clip_usdc * USDC // lot_value))
        lots = min(abs(delta), clip)
        side = BUY if delta > 0 else SELL
        fits = self._fits(side, lots, price)
        if fits < lots:  # the rest waits for the next wake, which looks again (a target, not a parent order)
            self.sized_to_limits += 1
            lots = fits
            if lots <= 0:
                return
        if side == SELL and not self.ctx.margined:  # a spot sale is of inventory held (a buy is cut to the cash)
            lots = min(lots, self.ctx.free_inventory(self.symbol))
            if not lots:
                return
        shrinking = self.ctx.margined and held != 0 and (delta > 0) != (held > 0) and lots <= abs(held)
        if shrinking and abs(held) > cap_lots and not (mispricing < 0 if held > 0 else mispricing > 0):
            self.forced_sells += 1  # the value says hold or add, the cap says reduce: the leverage cycle
        self._in_flight = True
        self.market(side, lots, slippage_bps=self.p.slippage_bps, reduce_only=shrinking)

    def _fits(self, side: int, lots: int, price: int) -> int:
        """The lots one order may carry within the venue's limits: ``max_market_order_value`` at the mark and
        ``max_position_notional`` on the side it trades (``abm.agents.limits``)."""
        most = market_most(self.ctx, self.symbol)
        if most is not None and most >= 1:
            lots = min(lots, most)
        room = position_room(self.ctx, self.symbol, side, self.mark() or price)  # counts what the order closes
        return lots if room is None else min(lots, room)

    def _price(self) -> Optional[int]:
        if self.p.reference == "mid":
            mid = self.view().mid()
            if mid is not None:
                return max(1, round(mid))
        return self.mark()

    def on_result(self, action: str, result: Any) -> None:
        self._in_flight = False

    def on_reject(self, action: str, error: Any) -> None:
        self._in_flight = False
