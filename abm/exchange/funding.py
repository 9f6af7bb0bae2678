"""Paying funding between the longs and shorts of one market, to the quote unit, with nothing lost.

Each open position owes ``size × price × multiplier × rate`` quote units (exact, a Fraction): positive
means it pays (longs when the rate is positive, shorts when it is negative), negative means it receives.
Amounts are rounded in the venue's favour, like fees: a payer pays the *ceiling* of what it owes, a
receiver gets the *floor* of what it is owed. Because longs equal shorts, the exact amounts sum to zero,
so ``sum(paid) − sum(received)`` is exactly the rounding, always in ``[0, number of positions)``; it goes
to the ``funding_rounding`` ledger and ``conservation_gap`` stays 0.

Money settles into the bucket the position draws on (``Account.balance`` for cross, ``Position.margin``
for isolated and strict isolated) and is recorded in ``Position.funding`` (received > 0, paid < 0).
Funding is applied in full even when it drives a bucket below zero: refusing or trimming a payment
would create money, and what an under-margined account owes is the margin engine's business.

The price is the one the venue pays on: Hyperliquid the oracle, Binance the mark.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Union

from abm.accounts.account import CROSS
from abm.errors import InvalidInput, InvalidPrice

if TYPE_CHECKING:
    from abm.exchange.exchange import Exchange


@dataclass(frozen=True, slots=True)
class FundingResult:
    """What one payment moved, in quote units.

    ``paid``: sum over payers (ceilings); ``received``: sum over receivers (floors); ``rounding`` =
    ``paid − received``, credited to the ``funding_rounding`` ledger. ``accounts`` and ``touched``: the
    accounts whose money changed (a position owing less than one unit after rounding is not touched), in
    ascending id order; these are the ones a margin engine must re-check.
    """

    paid: int
    received: int
    rounding: int
    accounts: int
    touched: tuple[int, ...]


def pay_funding(ex: "Exchange", symbol: str, rate: Union[Fraction, int], oracle_ticks: int) -> FundingResult:
    """Settle one funding payment at ``rate`` (per payment; > 0: longs pay shorts) on ``oracle_ticks``.

    Deterministic: positions are settled in ascending account id. Validates everything before changing
    anything, so a rejected call leaves the exchange as it was.

    Cost: O(open positions in the market log of that), from the market's holder index. Touched units
    are re-keyed in the margin engine's liquidation index before returning.
    """
    m = ex.market(symbol)  # UnknownMarket names the symbol
    if isinstance(rate, bool) or not isinstance(rate, (int, Fraction)):
        raise InvalidInput("rate", rate, "must be an int or Fraction (per payment, e.g. Fraction(1, 80000))")
    rate = Fraction(rate)
    if not -1 < rate < 1:
        raise InvalidInput("rate", rate, "must be in (-1, 1): a fraction of the notional per payment")
    if isinstance(oracle_ticks, bool) or not hasattr(oracle_ticks, "__index__") or isinstance(oracle_ticks, float):
        raise InvalidPrice("oracle_ticks", oracle_ticks, "must be a positive integer number of ticks")
    price = int(oracle_ticks.__index__())
    if price <= 0:
        raise InvalidPrice("oracle_ticks", oracle_ticks, "must be a positive integer number of ticks")

    idx = m.index
    k = price * m.spec.multiplier * rate.numerator  # owed = size * k / d exactly
    d = rate.denominator
    plan = []  # (account, position, signed money delta) -- computed in full before anything moves
    paid = received = 0
    accounts = ex.accounts
    for aid in sorted(m.holders):
        acct = accounts[aid]
        pos = m.holders[aid]
        owed = pos.size * k
        if owed > 0:
            delta = (-owed) // d  # -ceil(owed / d)
            paid -= delta
        else:
            delta = (-owed) // d  # floor(|owed| / d)
            received += delta
        if delta:
            plan.append((acct, pos, delta))
    for acct, pos, delta in plan:
        if pos.mode == CROSS:
            ex.settlement.credit(acct, delta)
        else:
            pos.margin += delta
        pos.funding += delta
    rounding = paid - received
    ex.ledgers.balances["funding_rounding"] += rounding
    touched = tuple(acct.id for acct, _, _ in plan)
    if m.margined:
        for acct, _, _ in plan:
            ex.risk.dirty.add((acct.id, idx))
    ex.risk.process_dirty()
    return FundingResult(paid, received, rounding, len(touched), touched)
