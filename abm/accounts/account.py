"""Accounts and positions, in exact integers.

An account holds cross collateral (``balance``, quote units) and at most one position per market.
Each position carries its own margin mode, so one account can be cross in one market and isolated in
another; an isolated position keeps its own ``margin`` bucket. Realised PnL and fees settle into the
bucket the position draws on: the account balance for cross, the position's margin for isolated.
Margin requirements live in the margin engine, not here.

Cost basis is average cost, kept as the signed entry value ``cost`` (quote units, long > 0). When a
position is reduced by ``q`` of its ``|size|`` lots, the cost released is ``cost * q / |size|``
truncated toward zero; the remainder stays in the cost of the lots still open and is realised with
them, so over a position's life no unit is created or lost.

Why conservation holds: each fill changes ``balance - cost`` of the buyer by ``-price*qty*mult`` and
of the seller by ``+price*qty*mult`` (realised PnL and the cost release cancel out), so
``sum(balances and isolated margins) - sum(cost) + ledgers`` only moves with external flows. Since
longs equal shorts, ``-sum(cost)`` is the sum of all unrealised PnL at any common price.
"""

from __future__ import annotations

from typing import Optional

CROSS = 0
ISOLATED = 1
STRICT_ISOLATED = 2
MARGIN_MODES = {"cross": CROSS, "isolated": ISOLATED, "strict_isolated": STRICT_ISOLATED}
MODE_NAMES = {v: k for k, v in MARGIN_MODES.items()}


class Position:
    __slots__ = ("size", "cost", "realized", "fees", "funding", "mode", "margin", "opened")

    def __init__(self, mode: int = CROSS) -> None:
        self.size = 0  # signed lots
        self.cost = 0  # signed entry value of the open lots, quote units
        self.realized = 0  # cumulative realised trading PnL, quote units (fees excluded)
        self.fees = 0  # cumulative fees paid (negative: net rebates received)
        self.funding = 0  # cumulative funding received (negative: paid)
        self.mode = mode
        self.margin = 0  # isolated margin bucket; always 0 for cross
        self.opened = 0  # sequence number of the fill that opened it: ADL's tie-break, never the account id

    def trade(self, dq: int, price: int, mult: int) -> int:
        """Apply a fill of ``dq`` signed lots at ``price`` ticks; return the realised PnL (quote units)."""
        s = self.size
        if s == 0 or (s > 0) == (dq > 0):
            self.cost += dq * price * mult
            self.size = s + dq
            return 0
        a = -dq if dq < 0 else dq
        sa = -s if s < 0 else s
        cost = self.cost
        if a <= sa:
            released = cost * a // sa if cost >= 0 else -((-cost) * a // sa)
            self.cost = cost - released
            self.size = s + dq
            value = a * price * mult
            return value - released if s > 0 else -released - value
        # flip: close all sa lots, open the rest on the other side
        close_value = sa * price * mult
        pnl = close_value - cost if s > 0 else -cost - close_value
        self.size = s + dq
        self.cost = self.size * price * mult
        return pnl

    def entry_price(self, mult: int) -> float | None:
        """Average entry price in ticks (a float for display; the exact value is ``cost``)."""
        return self.cost / (self.size * mult) if self.size else None

    def unrealized(self, price: int, mult: int) -> int:
        return self.size * price * mult - self.cost


class Account:
    __slots__ = ("id", "balance", "external", "positions", "open_orders", "client_ids", "resting", "tag")

    def __init__(self, account_id: int) -> None:
        self.id = account_id
        self.balance = 0  # cross collateral, quote units
        self.external = 0  # money deposited less money withdrawn: what the account's profit is measured from
        self.positions: dict[int, Position] = {}  # market index -> position
        self.open_orders: dict[int, int] = {}  # resting oid -> market index
        self.client_ids: dict[object, int] = {}  # live client order id -> oid
        # market index -> [resting buy lots, resting sell lots, resting tick·lots of both sides] (margin, quote stats)
        self.resting: dict[int, list[int]] = {}
        self.tag: Optional[str] = None  # a group the owner counts it in (Exchange.tag_account); the venue ignores it

    def position(self, market: int) -> Position:
        p = self.positions.get(market)
        if p is None:
            p = self.positions[market] = Position()
        return p
