"""Keeping an agent's orders inside the limits its venue enforces (``ctx.order_limits``, ``abm.venues.rules``).

Why one module: the whale, the leveraged trader, the leashed exits (a position holder's stop, TWAP, hedge) and
the arbitrageur meet the same two limits an agent can plan around, and each kind decides only what to do with
the answer:

- ``max_market_order_value`` refuses a market order worth more (size x mark) than the limit: it can be split, so
  ``market_children`` gives ``ceil(qty / most)`` children of equal size (within one lot), ``most`` the lots worth at
  most the limit at the mark now. Reduce-only orders are not exempt on the venue, so exits split too.
- ``max_position_notional`` (a bracket's ``max_notional``) refuses an order after which the position on its side,
  the account's resting orders on that side and the order, valued at the order's price, are worth more: splitting
  cannot help, so ``position_room`` gives the lots an opening order may still carry, and the kind sizes down and
  records what it gave up (``Trader.record_shortfall``).

Without either rule every answer is "no limit" after one read of the context (a venue with no rules costs a
tuple look-up per order decision).
"""

from __future__ import annotations

from typing import Any, Optional

from abm.units import BUY


def market_most(ctx: Any, symbol: str) -> Optional[int]:
    """The most lots one market order may carry under ``max_market_order_value`` at the mark; None: no limit (or
    no mark yet: the venue values a market order at the mark, so it cannot be planned)."""
    limits = getattr(ctx, "order_limits", None)
    cap = limits(symbol).max_market_order_value if limits is not None else None
    if cap is None:
        return None
    mark = ctx.mark(symbol)
    if not mark:
        return None
    return int(cap // (mark * ctx.multiplier(symbol)))


def market_children(ctx: Any, symbol: str, qty: int) -> list[int]:
    """``qty`` lots as the market orders the venue takes: ``[qty]``, or ``n = ceil(qty / most)`` sizes differing by
    at most one lot. When not even one lot fits, ``[qty]``: the venue refuses it, and says why."""
    most = market_most(ctx, symbol)
    if most is None or most < 1 or qty <= most:
        return [qty]
    n = -(-qty // most)
    base, extra = divmod(qty, n)
    return [base + (1 if i < extra else 0) for i in range(n)]


def position_room(ctx: Any, symbol: str, side: int, price: int) -> Optional[int]:
    """The most lots an order of ``side`` at ``price`` (ticks; a market order: the mark) may carry under
    ``max_position_notional``, counted as the venue counts it (position on the side + resting orders on the side +
    the order, at the order's price); None: no cap. A closing order has room for what it closes and more."""
    limits = getattr(ctx, "order_limits", None)
    cap = limits(symbol).max_position_notional if limits is not None else None
    if cap is None or price <= 0:
        return None
    size = ctx.position(symbol).size
    on_side = size if side == BUY else -size
    resting = sum(q for sym, s, _p, q in ctx.open_orders().values() if sym == symbol and s == side)
    return max(0, int(cap // (price * ctx.multiplier(symbol))) - on_side - resting)


def limit_text(ctx: Any, symbol: str, name: str) -> str:
    """``name = value USDC`` of an enforced limit, for a record's reason."""
    value = getattr(ctx.order_limits(symbol), name)
    return f"the venue's {name} ({value / 10 ** ctx.spec(symbol).quote_decimals:,.2f} in the quote currency)"


__all__ = ["market_most", "market_children", "position_room", "limit_text"]
