"""What an order names, parsed and checked: its side, time in force, client id, the order an id refers to,
a slippage bound.

Only checks that need no more than the account and the book live here; the price band and the
reduce-only rule, which read the market's margin state, stay with order entry (``Exchange``).
"""

from __future__ import annotations

from fractions import Fraction
from math import ceil, floor
from typing import Optional

from abm.errors import DuplicateClientOrderId, IntArg, InvalidInput, UnknownOrder
from abm.market.book import BUY, FOK, GTC, IOC, SELL, OrderBook
from abm.market.spec import exact_fraction

SIDES = {"buy": BUY, "sell": SELL, BUY: BUY, SELL: SELL}
TIFS = {"GTC": GTC, "IOC": IOC, "FOK": FOK, GTC: GTC, IOC: IOC, FOK: FOK}


def parse_side(side: object) -> int:
    """A side given as 'buy'/'sell' (any case) or BUY/SELL, as the book's constant."""
    if side is BUY or side is SELL:  # the common case: the book's own constants
        return side  # type: ignore[return-value]
    if isinstance(side, str):
        s = SIDES.get(side.lower())
    else:
        s = SIDES.get(side) if type(side) is int else None  # no bools, floats or unhashables
    if s is None:
        raise InvalidInput("side", side, "must be 'buy', 'sell', BUY (0) or SELL (1)")
    return s


def slippage_bound(book: OrderBook, side: int, bps: float) -> int:
    """Worst acceptable price for a market order ``bps`` away from the mid; 0 when nothing is on the other side."""
    bb, ba = book.best_bid(), book.best_ask()
    opp = ba if side == BUY else bb
    if opp is None:
        return 0
    ref = Fraction(bb + ba, 2) if bb is not None and ba is not None else Fraction(opp)
    f = exact_fraction(bps) / 10000
    if side == BUY:
        return floor(ref * (1 + f))
    return max(1, ceil(ref * (1 - f)))


def check_client_id(client_ids: dict[object, int], client_id: object) -> None:
    """A new order's client id: a str or int that none of the account's live orders uses."""
    if client_id is None:
        return
    if isinstance(client_id, bool) or not isinstance(client_id, (str, int)):
        raise InvalidInput("client_id", client_id, "must be a str or int")
    if client_id in client_ids:
        raise DuplicateClientOrderId("client_id", client_id, "must differ from the account's live orders' client ids")


def owned_oid(account_id: int, open_orders: dict[int, int], client_ids: dict[object, int], oid: Optional[IntArg],
              client_id: object) -> int:
    """The id of one of the account's resting orders, named by order id or by client id (exactly one).

    Takes the account's two maps rather than the account, so a perp and a spot venue's accounts share it."""
    if (oid is None) == (client_id is None):
        raise InvalidInput("oid", oid, "give exactly one of oid or client_id")
    if oid is None:
        ok = isinstance(client_id, (str, int)) and not isinstance(client_id, bool)
        found = client_ids.get(client_id) if ok else None
        if found is None:
            raise UnknownOrder("client_id", client_id, f"must be the client id of one of account {account_id}'s "
                                                       "resting orders")
        return found
    if type(oid) is not int or oid not in open_orders:
        raise UnknownOrder("oid", oid, f"must be the id of one of account {account_id}'s resting orders")
    return oid
