"""Opt-in venue rules: at order entry (minimum order value, maximum market-order value, position and open-interest caps,
a stale oracle) and on the liquidation engine (a stale oracle, a mark far from the oracle).

Why opt-in: the venue profiles carry these limits (they are the real venues' numbers), but every
existing study ran without them, and a study must be able to ask what a limit changes by switching it
on or off alone. So a rule acts only when the profile's ``rules = [...]`` (or a scenario's
``venue.rules``) names it; with none named a market holds no rules and an order pays one truth test.

Each rule is built once per market, when the market is listed (``Venue.order_rules``), from the profile
and the market's spec, into integers (quote units, ticks, lots); ``check`` then does integer arithmetic
on each user order (``abm.exchange.entry.OrderEntry``) and returns, or raises ``OrderLimitViolation``
naming the rule, the limit's profile key and value, and the order's value, in the quote currency. A
rule with nothing to enforce in a market (no ``max_notional`` in its tier class, say) builds to None
and costs nothing there. The exchange's own liquidation orders never meet a rule.

The oracle rules (Drift's oracle-validity guards, from the profile's ``[staleness]``):
``oracle_trading_staleness`` refuses risk-increasing orders (``StaleOracle``) while the oracle is older than
``staleness.trading_s``; ``oracle_margin_staleness`` (older than ``staleness.margin_s``) and
``mark_oracle_divergence`` (|mark - oracle| / oracle above ``staleness.divergence_pct``) are liquidation holds
(``applies = "liquidations"``): asked at every mark update, and while one holds the venue's engine stops in the
market as in a paused halt (``Exchange.set_mark``). The oracle's age is measured from its last publication
(``Exchange.set_oracle``); before the first one the oracle counts as stale, as ``Oracle.is_stale`` says.

A user's own rule is a ``VenueRule`` subclass named as ``"module:Class"`` in ``rules``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, ClassVar, NamedTuple, NoReturn, Optional, Sequence

from abm.accounts.market_state import Market
from abm.errors import InvalidInput, OrderLimitViolation, StaleOracle
from abm.exchange.entry import OrderEntry
from abm.market.spec import MarketSpec
from abm.registry import Registry, subclass_of
from abm.units import BUY

if TYPE_CHECKING:
    from abm.venues.venue import Venue

__all__ = ["VENUE_RULES", "VenueRule", "RuleSite", "build_rules", "MinOrderValue", "MaxMarketOrderValue",
           "MaxPositionNotional", "OpenInterestCap", "OracleTradingStaleness", "OracleMarginStaleness",
           "MarkOracleDivergence", "EnforcedLimits", "enforced_limits"]


@dataclass(frozen=True)
class RuleSite:
    """Where a rule is built: one market (its spec and tier class) on one venue."""

    venue: Venue
    tier_class: str
    spec: MarketSpec

    def units(self, path: str, amount: Fraction) -> int:
        """A profile amount (quote currency, at ``path``) in the market's integer quote units, exactly."""
        return self.venue.units(path, amount, self.spec.quote_decimals)

    def money(self, units: int) -> str:
        """Quote units as a person reads them: ``'10 USDC'``, ``'1,000,000 USDC'``, ``'9.999999 USDC'``."""
        return f"{Decimal(units).scaleb(-self.spec.quote_decimals).normalize():,f} {self.venue.profile.quote_currency}"


class VenueRule:
    """A rule checked on every user order of one market. Subclasses set ``build`` and ``check``.

    ``build`` runs once, when the market is listed: it reads the profile through ``site`` and returns the
    rule with its limit in integers, or None when the rule has nothing to enforce in this market.
    ``check`` runs per order and must only read: return to accept, ``self.refuse(...)`` to reject.
    """

    name: ClassVar[str] = ""
    # "orders": ``check`` runs on every user order; "liquidations": ``holds(market, now, mark)`` runs at every mark
    # update and stops the liquidation engine in the market while it is true (``check`` is then never called)
    applies: ClassVar[str] = "orders"
    # the limit a trader can read through its context (``AgentContext.order_limits``), quote units; None: none
    limit: Optional[int] = None

    def __init__(self, site: RuleSite) -> None:
        self.site = site
        self.multiplier = site.spec.multiplier  # quote units per tick·lot

    @classmethod
    def build(cls, site: RuleSite) -> Optional[VenueRule]:
        raise NotImplementedError

    def check(self, order: OrderEntry) -> None:
        raise NotImplementedError

    def holds(self, market: Market, now: int, mark: int) -> bool:
        raise NotImplementedError

    def refuse(self, amount: int, allowed: str) -> NoReturn:
        """Reject the order: ``amount`` (quote units) is the order's value the limit was held against."""
        raise OrderLimitViolation(self.name or type(self).__name__, self.site.money(amount), allowed)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.site.spec.symbol!r})"


VENUE_RULES: Registry[type[VenueRule]] = Registry("venue rule", "rules", "a subclass of abm.venues.rules.VenueRule",
                                                  subclass_of(VenueRule))


def build_rules(venue: Venue, tier_class: str, spec: MarketSpec, names: Optional[Sequence[str]] = None,
                field: str = "rules") -> tuple[VenueRule, ...]:
    """The named rules (default: the profile's ``rules``) built for one market, those with nothing to enforce left out."""
    site = RuleSite(venue, tier_class, spec)
    out: list[VenueRule] = []
    for i, name in enumerate(venue.profile.rules if names is None else names):
        cls = VENUE_RULES.resolve(name, f"{field}[{i}]")
        rule = cls.build(site)
        if rule is not None:
            if not isinstance(rule, VenueRule):
                raise InvalidInput(f"{field}[{i}]", name, f"{cls.__name__}.build must return a VenueRule or None, "
                                                          f"not {type(rule).__name__}")
            out.append(rule)
    return tuple(out)


def _position(order: OrderEntry) -> int:
    p = order.account.positions.get(order.market.index)
    return p.size if p is not None else 0


@VENUE_RULES.register("min_order_value")
class MinOrderValue(VenueRule):
    """``orders.min_value``: an order worth less (size x price) is refused; reduce-only orders are exempt.

    The exemption is what the real venues do, so that a position smaller than the minimum can still be closed.
    """

    name = "min_order_value"

    def __init__(self, site: RuleSite, minimum: int) -> None:
        super().__init__(site)
        self.minimum = self.limit = minimum

    @classmethod
    def build(cls, site: RuleSite) -> Optional[VenueRule]:
        minimum = site.units("orders.min_value", site.venue.profile.orders.min_value)
        return cls(site, minimum) if minimum > 0 else None

    def check(self, order: OrderEntry) -> None:
        if order.reduce_only or not order.price:
            return
        value = order.qty * order.price * self.multiplier
        if value < self.minimum:
            self.refuse(value, f"an order's value (size x price{', at the mark' if order.market_order else ''}) must be at "
                               f"least orders.min_value = {self.site.money(self.minimum)} (reduce-only orders are exempt)")


@VENUE_RULES.register("max_market_order_value")
class MaxMarketOrderValue(VenueRule):
    """``orders.max_market_value``: a market order worth more (size x mark) than the entry for the market's
    maximum leverage is refused; limit orders are not limited. A large block must be split."""

    name = "max_market_order_value"

    def __init__(self, site: RuleSite, maximum: int, path: str) -> None:
        super().__init__(site)
        self.maximum = self.limit = maximum
        self.path = path

    @classmethod
    def build(cls, site: RuleSite) -> Optional[VenueRule]:
        lev = site.venue.max_leverage(site.tier_class)
        for i, rule in enumerate(site.venue.profile.orders.max_market_value or ()):
            if lev >= rule.min_leverage:
                path = f"orders.max_market_value[{i}].value"
                return cls(site, site.units(path, rule.value), path)
        return None

    def check(self, order: OrderEntry) -> None:
        if not order.market_order or not order.price:
            return
        value = order.qty * order.price * self.multiplier
        if value > self.maximum:
            self.refuse(value, f"a market order's value (size x the mark) must be at most {self.path} = "
                               f"{self.site.money(self.maximum)} (markets of up to "
                               f"{self.site.venue.max_leverage(self.site.tier_class)}x; a larger block must be split)")


@VENUE_RULES.register("max_position_notional")
class MaxPositionNotional(VenueRule):
    """``tiers.<class>.max_notional``: refused when the position the order could build is worth more than the cap.

    What it could build: the position on the order's side, plus the account's resting orders on that side,
    plus the order (all valued at the order's price), as Binance counts position and open orders against
    its bracket's maximum. Reduce-only orders, and orders that leave that side flat or short, pass.
    """

    name = "max_position_notional"

    def __init__(self, site: RuleSite, cap: int) -> None:
        super().__init__(site)
        self.cap = self.limit = cap

    @classmethod
    def build(cls, site: RuleSite) -> Optional[VenueRule]:
        cap = site.venue.tier_class(site.tier_class).max_notional
        return None if cap is None else cls(site, site.units(f"tiers.{site.tier_class}.max_notional", cap))

    def check(self, order: OrderEntry) -> None:
        if order.reduce_only or not order.price:
            return
        size = _position(order)
        resting = order.account.resting.get(order.market.index)
        exposure = (size if order.side == BUY else -size) + (resting[order.side] if resting else 0) - order.replaces + order.qty
        if exposure <= 0:
            return
        value = exposure * order.price * self.multiplier
        if value > self.cap:
            self.refuse(value, f"the position an order could build (position, resting orders on its side and the "
                               f"order, at its price) must be worth at most tiers.{self.site.tier_class}.max_notional = "
                               f"{self.site.money(self.cap)}")


@VENUE_RULES.register("open_interest_cap")
class OpenInterestCap(VenueRule):
    """``tiers.<class>.max_open_interest``: an order that would open more than the room left under the cap is refused.

    Open interest is the market's long lots valued at the mark (the order's price before the first mark).
    An order opens what it does not close of the account's position; only that part counts, so orders
    that reduce or close a position always pass, also at the cap. Each fill adds at most the taker's
    opening lots to the open interest, so with every taker checked the cap holds while the mark stands.
    """

    name = "open_interest_cap"

    def __init__(self, site: RuleSite, cap: int) -> None:
        super().__init__(site)
        self.cap = self.limit = cap

    @classmethod
    def build(cls, site: RuleSite) -> Optional[VenueRule]:
        cap = site.venue.tier_class(site.tier_class).max_open_interest
        return None if cap is None else cls(site, site.units(f"tiers.{site.tier_class}.max_open_interest", cap))

    def check(self, order: OrderEntry) -> None:
        if order.reduce_only:
            return
        size = _position(order)
        closes = -size if order.side == BUY else size
        opening = order.qty - closes if closes > 0 else order.qty
        price = order.mark or order.price
        if opening <= 0 or not price:
            return
        value = (order.market.open_interest + opening) * price * self.multiplier
        if value > self.cap:
            self.refuse(value, f"open interest (long lots at the mark) with what the order opens must stay within "
                               f"tiers.{self.site.tier_class}.max_open_interest = {self.site.money(self.cap)} "
                               f"(open now: {self.site.money(order.market.open_interest * price * self.multiplier)}; "
                               "orders that only reduce positions are accepted)")


def _opens(order: OrderEntry) -> bool:
    """Whether the order adds risk: not reduce-only and more than it closes of the account's position."""
    if order.reduce_only:
        return False
    size = _position(order)
    closes = -size if order.side == BUY else size
    return order.qty > closes


def _seconds(us: int) -> str:
    return f"{Decimal(us).scaleb(-6).normalize():f}"


@VENUE_RULES.register("oracle_trading_staleness")
class OracleTradingStaleness(VenueRule):
    """``staleness.trading_s``: while the oracle is older than this (or has never published), an order that adds
    risk is refused with ``StaleOracle``; reduce-only orders, orders that only close, and cancels pass."""

    name = "oracle_trading_staleness"

    def __init__(self, site: RuleSite, max_age_us: int) -> None:
        super().__init__(site)
        self.max_age_us = max_age_us

    @classmethod
    def build(cls, site: RuleSite) -> Optional[VenueRule]:
        return cls(site, _micros(site.venue.profile.staleness.trading_s))

    def check(self, order: OrderEntry) -> None:
        last = order.market.oracle_us
        if last >= 0 and order.now - last <= self.max_age_us:
            return
        if not _opens(order):
            return
        age = "never published" if last < 0 else f"{_seconds(order.now - last)} s old"
        raise StaleOracle(self.name, age, f"{order.market.spec.symbol}'s oracle must be at most staleness.trading_s = "
                                          f"{_seconds(self.max_age_us)} s old for an order that adds risk "
                                          "(reduce-only and closing orders and cancels pass)")


@VENUE_RULES.register("oracle_margin_staleness")
class OracleMarginStaleness(VenueRule):
    """``staleness.margin_s``: liquidations stop in the market while the oracle is older than this (or has never
    published); the first mark update after it publishes again runs the liquidation check."""

    name = "oracle_margin_staleness"
    applies = "liquidations"

    def __init__(self, site: RuleSite, max_age_us: int) -> None:
        super().__init__(site)
        self.max_age_us = max_age_us

    @classmethod
    def build(cls, site: RuleSite) -> Optional[VenueRule]:
        return cls(site, _micros(site.venue.profile.staleness.margin_s))

    def holds(self, market: Market, now: int, mark: int) -> bool:
        return market.oracle_us < 0 or now - market.oracle_us > self.max_age_us


@VENUE_RULES.register("mark_oracle_divergence")
class MarkOracleDivergence(VenueRule):
    """``staleness.divergence_pct``: liquidations stop in the market while |mark - oracle| / oracle is above it
    (exact, in ticks); the first mark update back within it runs the liquidation check. No oracle yet: no hold
    (``oracle_margin_staleness`` says what a missing oracle does)."""

    name = "mark_oracle_divergence"
    applies = "liquidations"

    def __init__(self, site: RuleSite, divergence: Fraction) -> None:
        super().__init__(site)
        self.num = divergence.numerator
        self.den = divergence.denominator

    @classmethod
    def build(cls, site: RuleSite) -> Optional[VenueRule]:
        return cls(site, Fraction(site.venue.profile.staleness.divergence_pct) / 100)

    def holds(self, market: Market, now: int, mark: int) -> bool:
        oracle = market.oracle_price
        return oracle > 0 and abs(mark - oracle) * self.den > self.num * oracle


def _micros(seconds: Fraction) -> int:
    us = Fraction(seconds) * 1_000_000
    assert us.denominator == 1  # the schema admits only whole microseconds
    return int(us)


class EnforcedLimits(NamedTuple):
    """The order limits a market enforces, in quote units (None: not enforced there), as a trader reads them
    (``AgentContext.order_limits``) to keep its orders inside them."""

    min_order_value: Optional[int] = None
    max_market_order_value: Optional[int] = None
    max_position_notional: Optional[int] = None
    open_interest_cap: Optional[int] = None


def enforced_limits(rules: Sequence[object]) -> EnforcedLimits:
    """What a market's built order rules enforce, by rule name (a rule of another name is not a limit here)."""
    found = {}
    for r in rules:
        name, limit = getattr(r, "name", None), getattr(r, "limit", None)
        if name in EnforcedLimits._fields and isinstance(limit, int):
            found[name] = limit
    return EnforcedLimits(**found)
