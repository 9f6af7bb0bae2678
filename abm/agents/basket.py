"""A leveraged holder of several markets on one cross-margin account.

Why it exists: contagion across markets runs through cross margin. A loss in one market eats the
collateral that backs the positions in the others, and the liquidation of the whole cross unit then
sells into every market's book, including markets whose own price never moved. This agent opens
the same direction in each of its markets (equal notional, ``size_fraction`` of its equity times
``leverage`` in total) at one moment and holds; it has no exits of its own. It does not retry, so an
entry the book fills only in part (or the venue refuses) is recorded as a shortfall.

Inside the venue's order limits (``abm.agents.limits``): an entry worth more than ``max_market_order_value`` goes
as equal children sent together (the link is FIFO, so they arrive in order), one shortfall record per entry, not
per child; an entry past a bracket's ``max_position_notional`` is sized down to the room and records what it
gave up.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np

from abm.agents.base import Trader, TraderParams, WakeMode
from abm.agents.limits import limit_text, market_children, position_room
from abm.agents.params import Bps, Seconds, Usdc, number
from abm.errors import InvalidInput

if TYPE_CHECKING:
    from abm.model.model import MarketModel


@dataclass(frozen=True, slots=True)
class BasketParams(TraderParams):
    wake: WakeMode = "none"
    deposit_usdc: Usdc = 10_000.0
    symbols: tuple[str, ...] = field(default_factory=tuple)  # empty: every market of the model
    side: Literal["long", "short"] = "long"
    leverage: Annotated[int, number(ge=1, le=100)] = 10
    size_fraction: Annotated[float, number(gt=0, le=1, unit="share of equity")] = 0.5
    entry_delay_s: Seconds = 60.0  # entry at a uniform time in [0, entry_delay_s]
    slippage_bps: Bps = 100.0


@dataclass(slots=True)
class _Entry:
    """One market's entry, sent as one or more market orders; recorded once, when its last child is back."""

    symbol: str
    side: int
    lots: int
    pending: int  # children not back yet
    filled: int = 0
    reasons: list[str] = field(default_factory=list)  # why children were refused


class BasketTrader(Trader):
    kind = "basket"
    role = "basket"  # what the metrics count it as (inherited by subclasses: abm.model.role_of)
    Params = BasketParams
    p: BasketParams

    @classmethod
    def build(cls, model: MarketModel, rng: np.random.Generator, params: dict[str, Any]) -> "BasketTrader":
        if "symbols" in params and isinstance(params["symbols"], list):
            params = {**params, "symbols": tuple(params["symbols"])}
        return super().build(model, rng, params)  # type: ignore[return-value]

    def __init__(self, model: MarketModel, rng: np.random.Generator, params: BasketParams, ctx: Any = None) -> None:
        super().__init__(model, rng, params, ctx)
        ctx = self.ctx
        self.markets = list(params.symbols) or list(ctx.symbols)
        for s in self.markets:
            if s not in ctx.symbols:
                raise InvalidInput("agents.basket.symbols", s, f"must be one of {list(ctx.symbols)}")
            top = ctx.max_leverage(s)
            if params.leverage > top:  # refused, not capped: the position would not be what the scenario says
                raise InvalidInput(f"agents.{self.kind}.leverage", params.leverage,
                                   f"must be <= {top} (the venue's maximum for {s})")
            ctx.set_leverage(s, params.leverage)
        self._sent: deque[tuple[_Entry, int]] = deque()  # (entry, child lots) on their way, in send order
        self.limit_splits = 0  # entries sent as several market orders to stay within max_market_order_value

    def start(self) -> None:
        self.wake_in(1 + int(self.uniform() * self.p.entry_delay_s * 1_000_000), self._enter)

    def _enter(self, t: int) -> None:
        budget = self.equity() * self.p.size_fraction * self.p.leverage / len(self.markets)  # quote units each
        side = 0 if self.p.side == "long" else 1
        for s in self.markets:
            mark = self.mark(s)
            if not mark:
                continue
            lots = int(Decimal(budget) / (mark * self.ctx.multiplier(s)))
            room = position_room(self.ctx, s, side, mark)
            if room is not None and room < lots:
                self.record_shortfall(self._what(side), lots, room, f"sized down to {room} lots to stay within "
                                      f"{limit_text(self.ctx, s, 'max_position_notional')}", s)
                lots = room
            if lots > 0:
                children = market_children(self.ctx, s, lots)
                self.limit_splits += len(children) > 1
                entry = _Entry(s, side, lots, len(children))
                for child in children:
                    self._sent.append((entry, child))
                    self.market(side, child, symbol=s, slippage_bps=self.p.slippage_bps)

    def on_result(self, action: str, result: Any) -> None:
        entry, _lots = self._sent.popleft()  # the link is FIFO: results come back in send order
        entry.filled += result.filled
        self._child_done(entry, f"no more liquidity within slippage_bps={self.p.slippage_bps:g} of the mid")

    def on_reject(self, action: str, error: Any) -> None:
        entry, _lots = self._sent.popleft()
        entry.reasons.append(f"refused: {error}")
        self._child_done(entry, "")

    def _child_done(self, entry: "_Entry", short_reason: str) -> None:
        entry.pending -= 1
        if entry.pending == 0 and entry.filled < entry.lots:
            reason = "; ".join(entry.reasons) if entry.reasons else short_reason
            self.record_shortfall(self._what(entry.side), entry.lots, entry.filled, reason, entry.symbol)

    @staticmethod
    def _what(side: int) -> str:
        return f"market {'buy' if side == 0 else 'sell'} (entry)"
