"""A cross-venue spot arbitrageur: buys a pair on the simulated spot venue where it is cheap and sells it
on the one where it is rich, so the venues an index is made of cannot drift apart by more than the
costs of trading between them.

Why this agent: without it each spot venue's book is its own random walk (its market makers quote
around their own mid), and two venues of one index were measured drifting 0.5-1.6% apart in 15 minutes
(docs/design.md). Real venues stay within a few bps of each other because someone takes that edge.

What it does, on each wake: it reads both venues' best bid and ask (with its data latency) and, when one
venue's best bid exceeds the other's best ask by more than both taker fees plus ``threshold_bps``, it
sends an IOC sell at that bid on the rich venue and an IOC buy at that ask on the cheap one, each through
that venue's own link (its latency). The size is the smaller top-of-book size, at most ``clip`` base
units, the inventory it holds on the rich venue and what its cash buys on the cheap one. It holds
inventory and cash on both venues and never borrows or transfers: over a stress window its capacity is
what it brought (``spot_inventory`` and ``deposit_usdc`` on ``venue``, ``other_inventory`` and
``other_cash_usdc`` on ``other_venue``), which is how an inventory-limited arbitrage runs out. The two
legs land at different times, so a leg can fill while the other finds the price gone: that is legging
risk, and it shows in the agent's inventory, not in a silent fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Iterator, Optional

import numpy as np

from abm.agents.base import Trader, TraderParams, WakeMode
from abm.agents.params import BaseUnits, Bps, PositiveSeconds, Usdc, number
from abm.config import Problem
from abm.errors import InvalidInput
from abm.units import BUY, SELL, USDC


@dataclass(frozen=True, slots=True)
class SpotArbitrageurParams(TraderParams):
    deposit_usdc: Usdc = 1_000_000.0  # cash on ``venue``
    wake: WakeMode = "periodic"
    wake_every_s: PositiveSeconds = 1.0
    other_venue: Optional[str] = None  # the second [spot.NAME] venue (required)
    other_inventory: BaseUnits = 0.0  # base units of each pair on ``other_venue`` at the start
    other_cash_usdc: Usdc = 1_000_000.0
    threshold_bps: Bps = 2.0  # edge wanted beyond both taker fees
    clip: Annotated[float, number(gt=0, unit="base units")] = 1.0  # largest pair of trades

    def cross_checks(self) -> Iterator[Problem]:
        if self.other_venue is not None and self.other_venue == self.venue:
            yield Problem("other_venue", self.other_venue, "must be another venue than venue")


class SpotArbitrageur(Trader):
    kind = "spot_arbitrageur"
    role = "spot_arbitrageur"
    Params = SpotArbitrageurParams
    p: SpotArbitrageurParams

    def __init__(self, model: Any, rng: np.random.Generator, params: SpotArbitrageurParams, ctx: Any = None) -> None:
        super().__init__(model, rng, params, ctx)
        from abm.agents.spot_context import SpotContext

        p = params
        # both venues are required, but only a scenario has venues: the defaults stay constructible
        if p.venue is None:
            raise InvalidInput(f"agents.{self.kind}.venue", None, "must name one of the scenario's spot venues (the "
                                                                  "first of the two)")
        if p.other_venue is None or p.other_venue not in model.spot_venues:
            raise InvalidInput(f"agents.{self.kind}.other_venue", p.other_venue,
                               f"must be one of the scenario's spot venues {sorted(model.spot_venues)}")
        perp = model.perp_of_spot[p.venue][self.symbol]
        pairs = {q: s for q, s in model.perp_of_spot[p.other_venue].items() if s == perp}
        if self.symbol not in pairs:
            raise InvalidInput(f"agents.{self.kind}.other_venue", p.other_venue, f"must list {self.symbol}")
        self.other = SpotContext(model, self, p.other_venue, int(round(p.other_cash_usdc * USDC)), p.other_inventory,
                                 self.latency, False)
        spec = self.ctx.spec(self.symbol)
        self._lot = float(spec.lot_size)
        self._mult = spec.multiplier
        self._clip = max(1, round(p.clip / self._lot))
        fees_ppm = spec.taker_ppm + self.other.spec(self.symbol).taker_ppm
        self._fee_ppm = max(spec.taker_ppm, self.other.spec(self.symbol).taker_ppm)
        self._edge = (fees_ppm / 100 + p.threshold_bps) / 1e4  # fraction of the price both legs must clear
        self.trades = 0  # pairs of orders sent
        self.legs_short = 0  # legs that filled less than sent (the price moved before they landed)

    def _place(self, group: str, index: int, network: Any) -> None:
        """The second link's jitter has a network stream of its own, a child of the first's (no draws taken)."""
        super()._place(group, index, network)
        self.other.set_network(np.random.default_rng(network.bit_generator.seed_seq.spawn(1)[0]))

    def on_wake(self, t: int) -> None:
        a, b = self.ctx, self.other
        va, vb = self.view(), b.view(self.symbol)
        for rich, cheap, v_rich, v_cheap in ((a, b, va, vb), (b, a, vb, va)):
            bid, ask = v_rich.best_bid(), v_cheap.best_ask()
            if bid is None or ask is None or bid <= ask * (1.0 + self._edge):
                continue
            per_lot = ask * self._mult
            per_lot += -(-per_lot * self._fee_ppm // 1_000_000)  # what a buy holds per lot: price and fee
            lots = min(self._clip, v_rich.l2(1)[0][0][1], v_cheap.l2(1)[1][0][1], rich.free_inventory(self.symbol),
                       cheap.balance() // per_lot)
            if lots <= 0:
                return
            self.trades += 1
            rich.submit_limit(self.symbol, SELL, lots, bid, "IOC", on_done=self._leg_done)
            cheap.submit_limit(self.symbol, BUY, lots, ask, "IOC", on_done=self._leg_done)
            return

    def _leg_done(self, res: Any, error: Any) -> None:
        if error is not None or res.filled < res.qty:
            self.legs_short += 1


__all__ = ["SpotArbitrageur", "SpotArbitrageurParams"]
