"""What an opt-in order-entry rule is shown, and the one call that runs a market's rules.

Why the exchange knows only this much: the rules themselves (minimum order value, position caps, ...)
are venue policy, built from a venue profile one layer up (``abm.venues.rules``); the exchange holds
each market's built rules in ``Market.rules`` and, when there are any, shows every user order to them
after its own validity checks and before margin admission. A market with no rules pays one truth test
per order. The exchange's own liquidation orders never pass through here.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

from abm.accounts.account import Account
from abm.accounts.market_state import Market
from abm.errors import InvalidInput
from abm.units import BUY


class OrderEntry(NamedTuple):
    """One order at entry, in integers: what a rule may look at (read only)."""

    account: Account
    market: Market
    side: int  # BUY or SELL
    qty: int  # lots, after a reduce-only trim (a modify: the order's new remaining size)
    price: int  # ticks: the limit price; a market order's reference (the mark, else the best opposite price,
    # else its bound); 0 when a market order has none (nothing can fill)
    mark: int  # the market's mark in ticks, 0 before the first one
    reduce_only: bool
    market_order: bool
    replaces: int  # lots of the account's resting orders this order replaces (a modify's old size; else 0)


class OrderRule(Protocol):
    """A built rule: ``check`` returns None to let the order through, or raises an ``AbmError`` to refuse it."""

    def check(self, order: OrderEntry) -> None: ...


def check_rules(ex: Any, m: Market, a: Account, side: int, qty: int, price: int, reduce_only: bool,
                market_order: bool, replaces: int = 0) -> None:
    """Show an order to each of the market's rules in turn; the first that refuses raises, and nothing changed."""
    mark = ex.risk.marks.get(m.index, 0)
    if market_order:
        opp = m.book.best_ask() if side == BUY else m.book.best_bid()
        price = mark or opp or price or 0
    order = OrderEntry(a, m, side, qty, price, mark, reduce_only, market_order, replaces)
    for rule in m.rules:
        rule.check(order)


def valid_rules(rules: Any) -> tuple[OrderRule, ...]:
    """``Exchange.list_market``'s ``rules`` argument as a tuple, each with a callable ``check``."""
    try:
        out = tuple(rules)
    except TypeError:
        raise InvalidInput("rules", rules, "must be a sequence of built rules (objects with a check(order) method)") from None
    for r in out:
        if not callable(getattr(r, "check", None)):
            raise InvalidInput("rules", r, "must be built rules: objects with a check(order) method "
                                           "(abm.venues.rules builds them from a venue profile)")
    return out


__all__ = ["OrderEntry", "OrderRule", "check_rules", "valid_rules"]
