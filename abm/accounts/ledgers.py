"""Where every quote unit that is not in a trader's account sits, and the conservation check.

The venue's own buckets are named ledgers (fees, insurance fund, funding rounding, ...). Money only
enters or leaves the system through recorded external flows (deposits, withdrawals, seeding a fund),
so the check is a single exact equation; see ``abm.accounts.account`` for why positions' cost
basis appears in it.
"""

from __future__ import annotations

from typing import Protocol

from abm.accounts.account import Account
from abm.accounts.market_state import Market, tagged_slot
from abm.errors import ConservationError, IntArg, InvalidAmount, InvalidInput, StrArg
from abm.market.spec import MAX_MONEY

LEDGER_NAMES = ("fees", "insurance", "funding_rounding")


class Ledgers:
    __slots__ = ("balances", "external")

    def __init__(self) -> None:
        self.balances: dict[str, int] = {name: 0 for name in LEDGER_NAMES}
        self.external = 0  # net money that entered from outside (deposits + seeding - withdrawals)

    def __getitem__(self, name: str) -> int:
        return self.balances[name]

    def check_name(self, name: object) -> str:
        if not isinstance(name, str) or name not in self.balances:
            raise InvalidInput("ledger", name, f"must be one of {sorted(self.balances)}")
        return name

    def seed(self, name: StrArg, amount: IntArg) -> None:
        """Money from outside straight into a ledger (e.g. the insurance fund's starting capital)."""
        self.check_name(name)
        if type(amount) is not int or amount <= 0:
            raise InvalidAmount("amount", amount, "must be a positive integer number of quote units")
        self.check_room(amount)
        self.balances[name] += amount
        self.external += amount

    def check_room(self, amount: int) -> None:
        """Refuse money from outside that would take the exchange past ``MAX_MONEY`` (tables hold 64-bit money)."""
        if self.external + amount > MAX_MONEY:
            raise InvalidAmount("amount", amount, f"must keep the exchange's money from outside within {MAX_MONEY} "
                                                  f"quote units (it holds {self.external})")

    def total(self) -> int:
        return sum(self.balances.values())


class Holdings(Protocol):
    """What the conservation check reads: a venue's accounts, ledgers and markets (the Exchange)."""

    accounts: dict[int, Account]
    ledgers: "Ledgers"
    markets: list[Market]


def conservation_gap(ex: Holdings) -> int:
    """Units created (>0) or destroyed (<0) relative to recorded external flows. Always 0 unless there is a bug."""
    held = ex.ledgers.total()
    for acct in ex.accounts.values():
        held += acct.balance
        for pos in acct.positions.values():
            held += pos.margin - pos.cost
    return held - ex.ledgers.external


def check_conservation(ex: Holdings) -> None:
    """Raise ConservationError unless money is conserved to the unit and longs equal shorts in every market
    (and the running totals kept alongside, open interest, resting orders and tagged lots, match the state).

    O(accounts + positions): for tests and end-of-step audits, not for the matching loop.
    """
    gap = conservation_gap(ex)
    if gap:
        raise ConservationError(f"money not conserved: {gap:+d} quote units relative to external flows")
    net = [0] * len(ex.markets)
    longs = [0] * len(ex.markets)
    tagged: list[dict[str, list[int]]] = [{} for _ in ex.markets]
    for acct in ex.accounts.values():
        for idx, pos in acct.positions.items():
            net[idx] += pos.size
            if pos.size > 0:
                longs[idx] += pos.size
            if acct.tag is not None and pos.size:
                tagged[idx].setdefault(acct.tag, [0, 0, 0, 0])[tagged_slot(pos.size, pos.mode)] += abs(pos.size)
    for acct in ex.accounts.values():
        sums: dict[int, list[int]] = {}
        for oid, mi in acct.open_orders.items():
            _, side, price, q = ex.markets[mi].book.order(oid)
            s = sums.setdefault(mi, [0, 0, 0])
            s[side] += q
            s[2] += q * price
        for mi, r in acct.resting.items():
            if list(r) != sums.get(mi, [0, 0, 0]):
                raise ConservationError(f"account {acct.id}: resting order totals {r} in market {mi} != orders' "
                                        f"{sums.get(mi, [0, 0, 0])} (buy lots, sell lots, tick·lots)")
    for m in ex.markets:
        if net[m.index]:
            raise ConservationError(f"{m.spec.symbol}: long and short open interest differ by {net[m.index]} lots")
        if longs[m.index] != m.open_interest:
            raise ConservationError(
                f"{m.spec.symbol}: running open interest {m.open_interest} != positions' {longs[m.index]}"
            )
        for tag in sorted(set(m.tagged_lots) | set(tagged[m.index])):
            kept, held = m.tagged_lots.get(tag, [0, 0, 0, 0]), tagged[m.index].get(tag, [0, 0, 0, 0])
            if kept != held:
                raise ConservationError(f"{m.spec.symbol}: running lots of tag {tag!r} {kept} != positions' {held}")
