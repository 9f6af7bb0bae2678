"""What the exchange answers without changing anything: order results, positions, open orders, equity and margins.

Kept apart from order entry and settlement so that the read side can grow (more reports, more
summaries) without touching the code that moves money. The ``Exchange`` methods of the same names
check their arguments and call these.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple, Optional

from abm.accounts.account import CROSS, MODE_NAMES, Account, Position
from abm.accounts.market_state import Market
from abm.margin.engine import CROSS_UNIT, MarginEngine


class OrderResult(NamedTuple):
    """What became of a submitted order: every lot is filled, resting or cancelled.

    A named tuple rather than a dataclass: one is built per order, and a tuple builds several times faster.
    """

    oid: int
    qty: int  # size accepted (after a reduce-only trim)
    filled: int
    notional: int  # filled tick·lots, so avg price = notional / filled exactly
    resting: int
    trimmed: int = 0  # lots removed at submission by the reduce-only rule

    @property
    def cancelled(self) -> int:
        return self.qty - self.filled - self.resting

    @property
    def avg_price(self) -> Optional[Fraction]:
        return Fraction(self.notional, self.filled) if self.filled else None


@dataclass(frozen=True, slots=True)
class PositionInfo:
    symbol: str
    size: int
    cost: int
    realized: int
    fees: int
    funding: int  # received (> 0) or paid (< 0), cumulative
    mode: str
    margin: int
    entry_price: Optional[Fraction]  # ticks, exact

    def unrealized(self, price: int, multiplier: int) -> int:
        return self.size * price * multiplier - self.cost


def position_info(a: Account, m: Market) -> PositionInfo:
    """A snapshot of the account's position in ``m`` (flat when it never traded there)."""
    p = a.positions.get(m.index) or Position()
    entry = Fraction(p.cost, p.size * m.spec.multiplier) if p.size else None
    return PositionInfo(m.spec.symbol, p.size, p.cost, p.realized, p.fees, p.funding, MODE_NAMES[p.mode], p.margin,
                        entry)


def open_orders(a: Account, markets: list[Market]) -> dict[int, tuple[str, int, int, int]]:
    """oid -> (symbol, side, price, remaining qty) of the account's resting orders."""
    out = {}
    for oid, mi in a.open_orders.items():
        m = markets[mi]
        _, side, price, qty = m.book.order(oid)
        out[oid] = (m.spec.symbol, side, price, qty)
    return out


def equity(r: MarginEngine, a: Account) -> int:
    """Cross equity plus the account's isolated positions' equity, at the marks (quote units)."""
    total = r.equity(a, (a.id, CROSS_UNIT))
    for i, p in a.positions.items():
        if p.mode != CROSS and i in r.params:
            total += r.equity(a, (a.id, i))
    return total


def margin_summary(r: MarginEngine, a: Account, markets: list[Market]) -> dict[str, object]:
    """Cross equity, maintenance margin and free collateral, plus each isolated position's equity and MM."""
    cross = (a.id, CROSS_UNIT)
    out: dict[str, object] = {
        "cross_equity": r.equity(a, cross),
        "cross_maintenance": r.maintenance(a, cross),
        "free_collateral": r.free_collateral(a),
    }
    for i, p in sorted(a.positions.items()):
        if p.mode != CROSS and i in r.params:
            out[markets[i].spec.symbol] = {"equity": r.equity(a, (a.id, i)),
                                           "maintenance": r.maintenance(a, (a.id, i))}
    return out
