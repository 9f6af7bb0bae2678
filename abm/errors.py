"""The package's one error hierarchy.

Every rejection names the field, the offending value and what is allowed, so a user (or an agent
author) can fix the call without reading our source. Raising one of these always means nothing was
changed: validation happens before any state is touched.
"""

from __future__ import annotations

from typing import Any

# What callers pass to the public API is checked at run time and refused with one of the errors below.
# Those parameters are typed as these aliases (Any) on purpose: the modules compiled with mypyc (setup.py)
# would otherwise refuse, say, a float size with a bare TypeError before the check could name it.
IntArg = Any  # an integer (Python or numpy) where valid
StrArg = Any
FloatArg = Any  # a real number where valid
BoolArg = Any


class AbmError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidInput(AbmError, ValueError):
    """A value is outside what is allowed. ``field``, ``value`` and ``allowed`` are kept for callers."""

    def __init__(self, field: str, value: Any, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"{field}: {allowed}, got {value!r}")


class InvalidPrice(InvalidInput):
    pass


class InvalidSize(InvalidInput):
    pass


class InvalidOrderType(InvalidInput):
    pass


class InvalidAmount(InvalidInput):
    pass


class InvalidMarketSpec(InvalidInput):
    pass


class UnknownMarket(InvalidInput):
    pass


class UnknownAccount(InvalidInput):
    pass


class UnknownOrder(InvalidInput):
    pass


class DuplicateOrderId(InvalidInput):
    pass


class DuplicateClientOrderId(InvalidInput):
    pass


class DuplicateMarket(InvalidInput):
    pass


class ReduceOnlyViolation(InvalidInput):
    pass


class PostOnlyWouldCross(InvalidInput):
    pass


class OrderLimitViolation(InvalidInput):
    """An order an opt-in venue rule refuses (``abm.venues.rules``): ``field`` is the rule's name, ``value`` the
    order's amount and ``allowed`` names the limit and its value, both in the venue's quote currency."""


class VenueStateViolation(InvalidInput):
    """An action a market's trading state refuses (``abm.exchange.entry.MARKET_STATES``: halted, cancel-only,
    post-only, reduce-only): ``field`` is the state's name, ``value`` the action, ``allowed`` what the state accepts."""


class StaleOracle(InvalidInput):
    """A risk-increasing order refused because the market's oracle is older than the venue allows for trading (the
    opt-in rule ``oracle_trading_staleness``): ``field`` is the rule's name, ``value`` the oracle's age, ``allowed``
    the limit (``staleness.trading_s``) and what still passes (reduce-only and closing orders, cancels)."""


class TransferFrozen(InvalidInput):
    """A deposit or withdrawal refused while the venue has transfers frozen (a ``transfer_freeze`` event):
    ``field`` is what is frozen (``deposits`` or ``withdrawals``), ``value`` the amount, ``allowed`` says which venue."""


class GatewayOverload(InvalidInput):
    """An action the venue's gateway turns away because its queue is full (``abm.sim.gateway``; BitMEX's
    "system overload" of March 2020): ``field`` is ``"gateway.queue_limit"``, ``value`` the action, ``allowed``
    the limit and how many actions were waiting."""


class RateLimitExceeded(InvalidInput):
    """An action over one of the account's rate limits (``gateway.rate_limits``): ``field`` names the limit
    (``gateway.rate_limits.NAME``), ``value`` the weight the window would reach, ``allowed`` the limit and window."""


class InsufficientFunds(InvalidInput):
    pass


class NotOwner(InvalidInput):
    pass


class ConservationError(AbmError, AssertionError):
    """Money appeared or vanished: always a bug in this package, never a user error."""


class MoneyOverflow(InvalidInput):
    """An amount left the range the 64-bit event tables hold (see ``abm.market.spec.MAX_MONEY``)."""
