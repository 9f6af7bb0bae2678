"""A spot account: cash and inventory, what resting orders hold, and what was borrowed.

Why it looks like this: a spot venue has no leverage, so the only question at order entry is whether
the account holds what the order could cost. A buy holds, per lot, the worst it can cost (its limit
price plus the taker fee on it, rounded up per lot, so the sum of the per-fill fees can never exceed
what was held); a sell holds its lots. Fills draw on what is held and return the rest. Selling beyond
inventory is only possible after an explicit ``borrow``, which locks cash as collateral and accrues
interest, so a short sale is a recorded debt, never a negative inventory.

What came from outside is kept per account (the cash it opened with, its net cash and lots from
outside), so a run's table of spot accounts says what each account brought, not only how it ended.
"""

from __future__ import annotations


class SpotAccount:
    __slots__ = ("id", "cash", "held_cash", "inventory", "held_inventory", "debt", "collateral", "arrears", "holds",
                 "open_orders", "client_ids", "fees_paid", "interest_paid", "opening_cash", "cash_in", "lots_in")

    def __init__(self, account_id: int, n_markets: int) -> None:
        self.id = account_id
        self.cash = 0  # free quote units
        self.held_cash = 0  # held by resting buys
        self.inventory = [0] * n_markets  # free lots per market
        self.held_inventory = [0] * n_markets  # lots held by resting sells
        self.debt = [0] * n_markets  # lots borrowed and not yet repaid
        self.collateral = [0] * n_markets  # quote units locked against each market's debt
        self.arrears = 0  # interest charged that the account could not pay (a claim, not money)
        self.holds: dict[int, tuple[int, int, int]] = {}  # resting oid -> (market, side, quote units held per lot)
        # as on the perp exchange (what agents' contexts read): resting oid -> market, in submission order;
        # live client order id -> oid
        self.open_orders: dict[int, int] = {}
        self.client_ids: dict[object, int] = {}
        self.fees_paid = 0  # net of rebates
        self.interest_paid = 0
        self.opening_cash = 0  # quote units the account was opened with
        self.cash_in = 0  # net quote units from outside: the opening cash, deposits, less withdrawals
        self.lots_in = [0] * n_markets  # net lots from outside per market (inventory deposits less withdrawals)

    def grow(self) -> None:
        """A market was listed after the account was opened."""
        for col in (self.inventory, self.held_inventory, self.debt, self.collateral, self.lots_in):
            col.append(0)

    def total_cash(self) -> int:
        return self.cash + self.held_cash + sum(self.collateral)

    def total_inventory(self, m: int) -> int:
        return self.inventory[m] + self.held_inventory[m]
