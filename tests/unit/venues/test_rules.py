"""Opt-in venue rules at order entry: each refuses exactly past its limit, names it, and leaves everything unchanged.

The market is Hyperliquid's BTC grid (tick 0.1, lot 0.001, 6 quote decimals: a tick·lot is 100 quote
units, so one lot at 100,000 ticks is worth 10 USDC), listed bare (no margin) unless a test needs
liquidations, so each rule is seen alone. Every boundary is tested one unit on either side.
"""

from __future__ import annotations

import importlib
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from abm.errors import InvalidInput, OrderLimitViolation
from abm.exchange import Exchange
from abm.exchange.entry import OrderEntry
from abm.model.scenario import InvalidScenario, model_scenario, scenario_venue
from abm.units import BUY, SELL, USDC
from abm.venues import InvalidProfile, load_venue
from abm.venues.rules import VENUE_RULES, MinOrderValue, VenueRule, build_rules
from tests.unit.exchange.test_bad_input import snapshot

SYM = "BTC"
P = 100_000  # ticks: 10,000 USDC per BTC, 10 USDC per lot
FUND = 10**15


def world(rules, overrides=None, tier="btc", risk=False):
    venue = load_venue("hyperliquid", {"rules": list(rules), **(overrides or {})})
    spec = venue.market_spec(SYM, "0.1", "0.001")
    assert spec.multiplier == 100
    ex = Exchange()
    ex.list_market(spec, venue.risk_params(tier) if risk else None, venue.order_rules(tier, spec))
    return ex, venue


def refused(ex, call, *args, **kw) -> OrderLimitViolation:
    """The call is refused by a rule and nothing changed."""
    before = snapshot(ex)
    with pytest.raises(OrderLimitViolation) as e:
        call(*args, **kw)
    assert snapshot(ex) == before
    ex.check_conservation()
    return e.value


# ------------------------------------------------------------------------------ min_order_value


def test_min_order_value_at_the_boundary_and_reduce_only_exempt():
    ex, _ = world(["min_order_value"])
    a, b = ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(a, SYM, BUY, 1, P)  # exactly 10 USDC
    e = refused(ex, ex.limit, a, SYM, BUY, 1, P - 1)  # 9.9999 USDC
    assert e.field == "min_order_value" and e.value == "9.9999 USDC"
    assert "orders.min_value = 10 USDC" in str(e) and "reduce-only orders are exempt" in str(e)
    # a position of one lot (b's market order: no mark, so valued at the best bid, exactly the minimum) ...
    ex.market_order(b, SYM, SELL, 1)
    assert ex.position(a, SYM).size == 1
    # ... closed by an order worth less than the minimum: refused unless it is reduce-only
    refused(ex, ex.limit, a, SYM, SELL, 1, P // 2)
    ex.limit(a, SYM, SELL, 1, P // 2 - 1, reduce_only=True)  # 4.9999 USDC: accepted, rests
    ex.limit(b, SYM, BUY, 3, P // 2 - 1)  # 14.9997 USDC: takes it
    assert ex.position(a, SYM).size == 0


def test_min_order_value_of_a_market_order_is_at_the_mark():
    ex, _ = world(["min_order_value"])
    a, b = ex.open_account(FUND), ex.open_account(FUND)
    ex.limit(b, SYM, SELL, 5, P)
    ex.set_mark(SYM, P)
    assert ex.market_order(a, SYM, BUY, 1).filled == 1
    ex.set_mark(SYM, P - 1)
    e = refused(ex, ex.market_order, a, SYM, BUY, 1)
    assert e.value == "9.9999 USDC" and "at the mark" in e.allowed
    # nothing on the other side and no mark, no bound: no reference, nothing can fill, the rule has nothing to say
    ex2, _ = world(["min_order_value"])
    c = ex2.open_account(FUND)
    assert ex2.market_order(c, SYM, BUY, 1).filled == 0


def test_modify_below_the_minimum_by_price_is_refused_and_a_shrink_is_not_checked():
    ex, _ = world(["min_order_value"])
    a = ex.open_account(FUND)
    oid = ex.limit(a, SYM, BUY, 2, P).oid
    refused(ex, ex.modify, a, oid, price=P // 2 - 1)  # 2 lots at 4.9999 USDC: 9.9998 USDC
    ex.modify(a, oid, price=P // 2)  # exactly 10 USDC
    ex.modify(a, oid, qty=1)  # a smaller order only shrinks: not held to the minimum
    assert ex.open_orders(a)[oid][3] == 1


# ------------------------------------------------------------------------------ max_market_order_value


def test_max_market_order_value_by_the_markets_leverage():
    ex, venue = world(["max_market_order_value"])
    a = ex.open_account(FUND)
    ex.set_mark(SYM, P)
    lots = 1_000_000 * USDC // (P * 100)  # BTC is a 40x market: 1M USDC
    assert ex.market_order(a, SYM, BUY, lots).filled == 0  # accepted (the book is empty)
    e = refused(ex, ex.market_order, a, SYM, BUY, lots + 1)
    assert e.field == "max_market_order_value" and e.value == "1,000,010 USDC"
    assert "orders.max_market_value[1].value = 1,000,000 USDC" in e.allowed and "40x" in e.allowed
    ex.limit(a, SYM, BUY, lots + 1, P)  # limit orders are not market orders
    # a 10x class: the 500k entry
    ex2, _ = world(["max_market_order_value"], tier="mid")
    b = ex2.open_account(FUND)
    ex2.set_mark(SYM, P)
    ex2.market_order(b, SYM, SELL, lots // 2)
    assert "orders.max_market_value[2].value = 500,000 USDC" in refused(ex2, ex2.market_order, b, SYM, SELL,
                                                                          lots // 2 + 1).allowed


# ------------------------------------------------------------------------------ max_position_notional

CAP_LOTS = 20_000_000  # 200M USDC at P


def test_max_position_notional_counts_position_and_resting_orders_on_the_side():
    ex, _ = world(["max_position_notional"], {"tiers.btc.max_notional": 200_000_000})
    a, b = ex.open_account(FUND), ex.open_account(FUND)
    oid = ex.limit(a, SYM, BUY, CAP_LOTS, P).oid  # exactly the cap, resting
    e = refused(ex, ex.limit, a, SYM, BUY, 1, P)
    assert e.field == "max_position_notional" and e.value == "200,000,010 USDC"
    assert "tiers.btc.max_notional = 200,000,000 USDC" in e.allowed
    ex.limit(a, SYM, SELL, 1_000, P + 1)  # the other side has its own room
    ex.modify(a, oid, qty=CAP_LOTS - 1)  # a modify counts the order's new size in place of its old one
    ex.modify(a, oid, qty=CAP_LOTS)
    refused(ex, ex.modify, a, oid, qty=CAP_LOTS + 1)
    ex.cancel_all(a)
    # as a position: filled against b, then only orders that reduce it pass
    ex.limit(b, SYM, SELL, CAP_LOTS, P)
    ex.market_order(a, SYM, BUY, CAP_LOTS)  # no mark: valued at the best ask
    assert ex.position(a, SYM).size == CAP_LOTS and ex.position(b, SYM).size == -CAP_LOTS
    refused(ex, ex.market_order, a, SYM, BUY, 1, worst_price=P)  # nothing to take: valued at its bound
    ex.limit(a, SYM, SELL, 1, P + 5)
    ex.limit(b, SYM, BUY, 1, P - 1)  # b buying back: allowed
    refused(ex, ex.limit, b, SYM, SELL, 1, P + 1)  # b shorting more: not


# ------------------------------------------------------------------------------ open_interest_cap


def test_open_interest_cap_boundary_and_closing():
    ex, _ = world(["open_interest_cap"], {"tiers.btc.max_open_interest": 100})  # 10 lots at P
    a, b, c = (ex.open_account(FUND) for _ in range(3))
    ex.set_mark(SYM, P)
    refused(ex, ex.limit, b, SYM, SELL, 11, P)  # a resting order that could open past the cap
    ex.limit(b, SYM, SELL, 10, P)
    e = refused(ex, ex.market_order, a, SYM, BUY, 11)
    assert e.field == "open_interest_cap" and e.value == "110 USDC"
    assert "tiers.btc.max_open_interest = 100 USDC" in e.allowed
    assert ex.market_order(a, SYM, BUY, 10).filled == 10  # up to the cap exactly
    assert ex.markets[0].open_interest == 10
    refused(ex, ex.limit, c, SYM, BUY, 1, P - 10)  # at the cap: no opening order, resting or not
    refused(ex, ex.market_order, a, SYM, SELL, 11)  # a flip would open one lot
    # closing passes at the cap: b buys back 3 of its short lots from a, who sells 3 of its long ones
    ex.limit(a, SYM, SELL, 3, P + 10)
    ex.limit(b, SYM, BUY, 3, P + 10)
    assert ex.markets[0].open_interest == 7
    refused(ex, ex.limit, c, SYM, BUY, 4, P - 10)
    ex.limit(c, SYM, BUY, 3, P - 10)  # room for 3 lots again (resting orders are not open interest)


# ------------------------------------------------------------------------------ bypass and invariants


class RefuseAll(VenueRule):
    name = "refuse_all"

    @classmethod
    def build(cls, site):
        return cls(site)

    def check(self, order: OrderEntry) -> None:
        self.refuse(0, "no orders today")


def test_liquidation_orders_bypass_the_rules():
    venue = load_venue("hyperliquid")
    spec = venue.market_spec(SYM, "0.1", "0.001")
    ex = Exchange()
    ex.list_market(spec, venue.risk_params("btc"))
    a, b = ex.open_account(50 * USDC), ex.open_account(FUND)
    ex.set_mark(SYM, P)
    ex.set_leverage(a, SYM, 40)
    ex.limit(b, SYM, SELL, 100, P)
    ex.market_order(a, SYM, BUY, 100)
    ex.limit(b, SYM, BUY, 1_000, P - 7_000)
    from abm.venues.rules import RuleSite

    ex.markets[0].rules = (RefuseAll(RuleSite(venue, "btc", spec)),)  # from here on every user order is refused
    refused(ex, ex.limit, b, SYM, BUY, 1, P - 7_000)
    ex.set_mark(SYM, P - 5_000)  # a's equity is gone: the exchange's own orders sell into b's bids
    assert ex.position(a, SYM).size == 0 and len(ex.liquidations.rows()) > 0
    ex.check_conservation()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.sampled_from([BUY, SELL]), st.integers(1, 15), st.booleans(),
                          st.integers(-3, 3), st.booleans()), max_size=40))
def test_accepted_orders_never_take_open_interest_or_a_position_past_its_cap(orders):
    cap_oi, cap_pos = 30, 12  # lots at P
    ex, _ = world(["open_interest_cap", "max_position_notional"],
                  {"tiers.btc.max_open_interest": cap_oi * 10, "tiers.btc.max_notional": 200_000_000})
    m = ex.markets[0]
    m.rules[1].cap = cap_pos * P * 100  # a cap below the tiers' bands (the profile refuses one): set on the built rule
    accounts = [ex.open_account(FUND) for _ in range(4)]
    ex.set_mark(SYM, P)
    for who, side, qty, market, offset, ro in orders:
        a = accounts[who]
        try:
            if market:
                ex.market_order(a, SYM, side, qty, reduce_only=ro)
            else:
                ex.limit(a, SYM, side, qty, P + offset, reduce_only=ro)
        except InvalidInput:
            pass
        assert m.open_interest <= cap_oi
        for acc in accounts:
            # every fill is at P +- 3 ticks; the position rule values exposure at the order's price
            assert abs(ex.position(acc, SYM).size) * (P - 3) <= cap_pos * P
    ex.check_conservation()


# ------------------------------------------------------------------------------ configuration


def test_no_rules_by_default_and_records_unchanged():
    hl = load_venue("hyperliquid")
    assert hl.profile.rules == () and "rules" not in hl.to_dict()
    spec = hl.market_spec(SYM, "0.1", "0.001")
    assert hl.order_rules("btc", spec) == ()
    on = load_venue("hyperliquid", {"rules": ["min_order_value", "open_interest_cap"]})
    assert on.to_dict()["rules"] == ["min_order_value", "open_interest_cap"]
    assert load_venue(on.to_dict()) == on and load_venue(on.to_dict()).profile.rules == on.profile.rules
    # open_interest_cap has nothing to enforce without a cap: built to nothing
    assert [type(r) for r in on.order_rules("btc", spec)] == [MinOrderValue]
    assert VENUE_RULES.names() == ("mark_oracle_divergence", "max_market_order_value", "max_position_notional",
                                   "min_order_value", "open_interest_cap", "oracle_margin_staleness",
                                   "oracle_trading_staleness")


def test_unknown_or_repeated_rule_names_are_refused_with_the_field():
    with pytest.raises(InvalidProfile) as e:
        load_venue("hyperliquid", {"rules": ["min_order_value", "max_market_value", "min_order_value"]})
    text = str(e.value)
    assert "rules[1]: must be one of" in text and "(did you mean 'max_market_order_value'?)" in text
    assert "rules[2]: must not repeat rules[0]" in text
    with pytest.raises(InvalidProfile, match=r"rules\[0\]: must name a subclass of abm.venues.rules.VenueRule"):
        load_venue("hyperliquid", {"rules": ["fractions:Fraction"]})
    with pytest.raises(InvalidProfile, match=r"tiers.btc.max_open_interest: must be > 0"):
        load_venue("hyperliquid", {"tiers.btc.max_open_interest": 0})
    with pytest.raises(InvalidInput, match="must be built rules"):
        Exchange().list_market(load_venue().market_spec(SYM, "0.1", "0.001"), None, [object()])


def test_a_scenario_adds_rules_to_the_profiles():
    scn = model_scenario({"venue": {"overrides": {"rules": ["min_order_value"]},
                                    "rules": ["max_market_order_value", "min_order_value"]}}, {}, None)
    assert scenario_venue(scn).profile.rules == ("min_order_value", "max_market_order_value")
    assert "rules" not in model_scenario(None, {}, None).model_dump(mode="json")["venue"]  # hashes unchanged
    with pytest.raises(InvalidScenario) as e:
        model_scenario({"venue": {"rules": ["min_order_valu"]}}, {}, None)
    assert "venue.rules[0]: must be one of" in str(e.value) and "did you mean 'min_order_value'" in str(e.value)


def test_a_users_own_rule_by_module_path(tmp_path, monkeypatch):
    (tmp_path / "my_venue_rules.py").write_text(textwrap.dedent("""
        from abm.venues.rules import VenueRule

        class MaxLots(VenueRule):
            name = "max_lots"

            def __init__(self, site, most):
                super().__init__(site)
                self.most = most

            @classmethod
            def build(cls, site):
                return cls(site, 5)

            def check(self, order):
                if order.qty > self.most:
                    self.refuse(order.qty * order.price * self.multiplier, f"at most {self.most} lots an order")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    ex, venue = world(["my_venue_rules:MaxLots"])
    a = ex.open_account(FUND)
    ex.limit(a, SYM, BUY, 5, P)
    e = refused(ex, ex.limit, a, SYM, BUY, 6, P)
    assert e.field == "max_lots" and "at most 5 lots" in str(e)
    assert [type(r).__name__ for r in build_rules(venue, "btc", ex.markets[0].spec)] == ["MaxLots"]
