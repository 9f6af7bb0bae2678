"""What an opt-in order-entry rule is shown, the one call that runs a market's rules, and the trading states.

Why the exchange knows only this much: the rules themselves (minimum order value, position caps, ...)
are venue policy, built from a venue profile one layer up (``abm.venues.rules``); the exchange holds
each market's built rules in ``Market.rules`` and, when there are any, shows every user order to them
after its own validity checks and before margin admission. A market with no rules pays one truth test
per order. The exchange's own liquidation orders never pass through here. A rule whose ``applies`` is
``"liquidations"`` is a liquidation hold instead (``LiquidationHold``): kept in ``Market.holds`` and asked at
every mark update whether the engine must stop in the market (``Exchange.set_mark``).

The trading states (``MARKET_STATES``) are the venue's other entry gate, scheduled by a scenario's
``venue_state`` events and set by the exchange that owns the market (``Exchange.set_market_state``, and the
spot venue's equivalent), so both venues refuse the same actions in the same words:

- ``halted``: nothing gets in, not even a cancel (the gateway is down; resting orders stay in the book);
- ``cancel_only``: cancels only;
- ``post_only``: only orders that rest without taking: market, IOC and FOK orders, and a limit or a
  modify that would cross, are refused (never repriced);
- ``reduce_only``: only reduce-only orders, cancels and size cuts of resting orders (a perp's state).

A refusal is ``VenueStateViolation``, its field the state's name. An open market pays one truth test.
"""

from __future__ import annotations

from typing import Any, NamedTuple, NoReturn, Optional, Protocol

from abm.accounts.account import Account
from abm.accounts.market_state import Market
from abm.errors import InvalidInput, VenueStateViolation
from abm.units import BUY

OPEN, HALTED, CANCEL_ONLY, POST_ONLY, REDUCE_ONLY = range(5)
MARKET_STATES = ("open", "halted", "cancel_only", "post_only", "reduce_only")  # a state's code is its index
ACCEPTS = ("every action",
           "no orders, modifies or cancels until it reopens (resting orders stay in the book)",
           "cancels only: no new orders or modifies",
           "only orders that rest without taking liquidity: no market, IOC or FOK orders, and a limit or a modify "
           "that would cross is refused",
           "only reduce-only orders, cancels and size cuts of resting orders")


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
    now: int = 0  # the venue's time (µs): what a rule on the oracle's age measures from


class OrderRule(Protocol):
    """A built rule: ``check`` returns None to let the order through, or raises an ``AbmError`` to refuse it."""

    def check(self, order: OrderEntry) -> None: ...


class LiquidationHold(Protocol):
    """A built rule that stops the venue's liquidation engine in a market while ``holds`` is true (a built rule whose
    ``applies`` is ``"liquidations"``): asked at every mark update, with the venue's time and the new mark."""

    def holds(self, market: Market, now: int, mark: int) -> bool: ...


def check_rules(ex: Any, m: Market, a: Account, side: int, qty: int, price: int, reduce_only: bool,
                market_order: bool, replaces: int = 0) -> None:
    """Show an order to each of the market's rules in turn; the first that refuses raises, and nothing changed."""
    mark = ex.risk.marks.get(m.index, 0)
    if market_order:
        opp = m.book.best_ask() if side == BUY else m.book.best_bid()
        price = mark or opp or price or 0
    order = OrderEntry(a, m, side, qty, price, mark, reduce_only, market_order, replaces, ex.now)
    for rule in m.rules:
        rule.check(order)


def state_code(field: str, state: object, allowed: tuple[str, ...] = MARKET_STATES) -> int:
    """A state's name as its code, or a refusal naming ``field`` and the states ``allowed``."""
    if isinstance(state, str) and state in allowed:
        return MARKET_STATES.index(state)
    raise InvalidInput(field, state, f"must be one of {list(allowed)}")


def refuse_in_state(state: int, symbol: str, action: str) -> NoReturn:
    """Refuse ``action`` because ``symbol`` is in ``state``: the reason names the state and what it accepts."""
    name = MARKET_STATES[state]
    raise VenueStateViolation(name, action, f"{symbol} is {name.replace('_', '-')}: it accepts {ACCEPTS[state]}")


def _crosses(book: Any, side: int, price: int) -> bool:
    best = book.best_ask() if side == BUY else book.best_bid()
    return best is not None and (price >= best if side == BUY else price <= best)


def check_order_state(state: int, symbol: str, book: Any, side: int, qty: int, price: int, market_order: bool,
                      gtc: bool, reduce_only: bool) -> None:
    """A new order in a market that is not open: returns if the state lets it in, else refuses it."""
    what = (f"{'market' if market_order else 'limit' if gtc else 'IOC/FOK limit'} {'buy' if side == BUY else 'sell'} "
            f"of {qty} lots" + ("" if market_order else f" at {price}"))
    if state == HALTED or state == CANCEL_ONLY:
        refuse_in_state(state, symbol, what)
    if state == POST_ONLY and (market_order or not gtc or _crosses(book, side, price)):
        refuse_in_state(state, symbol, what if market_order or not gtc else what + " (would cross)")
    if state == REDUCE_ONLY and not reduce_only:
        refuse_in_state(state, symbol, what + " (not reduce-only)")


def check_modify_state(state: int, symbol: str, book: Any, oid: int, side: int, price: Optional[int], old_price: int,
                       qty: Optional[int], left: int, reduce_only: bool) -> None:
    """A modify of a resting order in a market that is not open: returns if the state lets it in, else refuses it."""
    action = f"modify of order {oid}"
    if qty == 0 and state != HALTED:
        return  # a modify to nothing is a cancel
    if state == HALTED or state == CANCEL_ONLY:
        refuse_in_state(state, symbol, action)
    moved = price is not None and price != old_price
    if state == POST_ONLY and moved and _crosses(book, side, price):  # type: ignore[arg-type]
        refuse_in_state(state, symbol, f"{action} to {price} (would cross)")
    if state == REDUCE_ONLY and not reduce_only and (moved or (qty is not None and qty > left)):
        refuse_in_state(state, symbol, f"{action} (not reduce-only: only a size cut at its price is accepted)")


def check_cancel_state(state: int, symbol: str, oid: int) -> None:
    """A cancel (of order ``oid``; -1: of all the account's orders there) in a market that is not open: refused
    only by a halt."""
    if state == HALTED:
        refuse_in_state(state, symbol, f"cancel of order {oid}" if oid >= 0 else "cancel of all orders")


def valid_rules(rules: Any) -> tuple[tuple[OrderRule, ...], tuple[LiquidationHold, ...]]:
    """``Exchange.list_market``'s ``rules`` argument as (order rules, each with a callable ``check``; liquidation
    holds, those whose ``applies`` is ``"liquidations"``, each with a callable ``holds``)."""
    try:
        given = tuple(rules)
    except TypeError:
        raise InvalidInput("rules", rules, "must be a sequence of built rules (objects with a check(order) method)") from None
    checks: list[OrderRule] = []
    holds: list[LiquidationHold] = []
    for r in given:
        if getattr(r, "applies", "orders") == "liquidations":
            if not callable(getattr(r, "holds", None)):
                raise InvalidInput("rules", r, "must have a holds(market, now, mark) method (applies = 'liquidations')")
            holds.append(r)
        elif callable(getattr(r, "check", None)):
            checks.append(r)
        else:
            raise InvalidInput("rules", r, "must be built rules: objects with a check(order) method "
                                           "(abm.venues.rules builds them from a venue profile)")
    return tuple(checks), tuple(holds)


__all__ = ["OrderEntry", "OrderRule", "LiquidationHold", "check_rules", "valid_rules", "MARKET_STATES", "OPEN", "HALTED", "CANCEL_ONLY",
           "POST_ONLY", "REDUCE_ONLY", "state_code", "refuse_in_state", "check_order_state", "check_modify_state",
           "check_cancel_state"]
