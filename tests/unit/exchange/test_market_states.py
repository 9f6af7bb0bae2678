"""A market's trading state at order entry: a halt refuses every action and changes nothing, cancel-only lets only
cancels in, post-only nothing that takes, reduce-only nothing that is not reduce-only; a halt that pauses the
engine liquidates nobody until it reopens, and then at once. Refusals name the state."""

from __future__ import annotations

import copy
from typing import Any, Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from abm import Exchange
from abm.errors import InvalidInput, UnknownMarket, VenueStateViolation
from abm.margin.params import LiquidationConfig, RiskParams
from abm.margin.tiers import hyperliquid_tiers
from abm.market.spec import MarketSpec
from abm.units import BUY, SELL

SYM = "ETH-PERP"


def venue() -> tuple[Exchange, int, int]:
    """A maker quoting 300,000 ± 100 ticks (3 ETH a side) and a trader long 1 ETH at 10x isolated."""
    ex = Exchange()
    ex.list_market(MarketSpec(SYM, tick_size="0.01", lot_size="0.001"),
                   RiskParams(hyperliquid_tiers([(0, 25), (100_000_000 * 10**6, 15)]), liquidation=LiquidationConfig()))
    ex.create_backstop_vault(deposit=1_000_000 * 10**6)
    ex.seed_ledger("insurance", 100_000 * 10**6)
    ex.set_mark(SYM, 300_000)
    mm = ex.open_account(deposit=10_000_000 * 10**6)
    ex.limit(mm, SYM, SELL, 3_000, 300_100, client_id="ask")
    for k in range(1, 40):
        ex.limit(mm, SYM, BUY, 1_000, 300_000 - 100 * k, client_id=f"bid{k}")
    t = ex.open_account(deposit=1_000 * 10**6)
    ex.set_margin_mode(t, SYM, "isolated")
    ex.set_leverage(t, SYM, 10)
    ex.market_order(t, SYM, BUY, 1_000)
    return ex, mm, t


def snapshot(ex: Exchange) -> Any:
    m = ex.market(SYM)
    return copy.deepcopy(({aid: (a.balance, {i: (p.size, p.cost, p.margin) for i, p in a.positions.items()},
                                 dict(a.open_orders), dict(a.client_ids)) for aid, a in ex.accounts.items()},
                          dict(ex.ledgers.balances), ex._next_oid, m.book.l2(100), m.volume, len(ex.liquidations)))


def actions(ex: Exchange, mm: int, t: int) -> dict[str, Callable[[], Any]]:
    def bid() -> int:  # the maker's best bid by order id (-1 once it is gone: an unknown order)
        return ex.account(mm).client_ids.get("bid1", -1)

    return {
        "limit": lambda: ex.limit(t, SYM, BUY, 100, 299_000),
        "post-only limit": lambda: ex.limit(t, SYM, BUY, 100, 299_000, post_only=True),
        "crossing limit": lambda: ex.limit(t, SYM, BUY, 100, 300_100),
        "IOC limit": lambda: ex.limit(t, SYM, BUY, 100, 299_000, tif="IOC"),
        "reduce-only limit": lambda: ex.limit(t, SYM, SELL, 100, 301_000, reduce_only=True),
        "market": lambda: ex.market_order(t, SYM, BUY, 100),
        "reduce-only market": lambda: ex.market_order(t, SYM, SELL, 100, reduce_only=True),
        "modify price": lambda: ex.modify(mm, bid(), price=299_800),
        "modify crossing": lambda: ex.modify(mm, client_id="ask", price=299_900),
        "modify size cut": lambda: ex.modify(mm, bid(), qty=500),
        "modify size up": lambda: ex.modify(mm, bid(), qty=2_000),
        "cancel": lambda: ex.cancel(mm, bid()),
        "cancel by client id": lambda: ex.cancel(mm, client_id="ask"),
        "cancel_all": lambda: ex.cancel_all(mm),
        "cancel_all in the market": lambda: ex.cancel_all(mm, SYM),
    }


ACCEPTED = {  # what each state lets in (every other action is refused, naming the state)
    "halted": set(),
    "cancel_only": {"cancel", "cancel by client id", "cancel_all", "cancel_all in the market"},
    "post_only": {"limit", "post-only limit", "reduce-only limit", "modify price", "modify size cut", "modify size up",
                  "cancel", "cancel by client id", "cancel_all", "cancel_all in the market"},
    "reduce_only": {"reduce-only limit", "reduce-only market", "modify size cut", "cancel", "cancel by client id",
                    "cancel_all", "cancel_all in the market"},
    "open": set(actions(*venue())),
}


@pytest.mark.parametrize("state", list(ACCEPTED))
@pytest.mark.parametrize("action", list(actions(*venue())))
def test_each_state_lets_in_what_it_accepts_and_refuses_the_rest_changing_nothing(state: str, action: str) -> None:
    ex, mm, t = venue()
    ex.set_market_state(SYM, state)
    before = snapshot(ex)
    if action in ACCEPTED[state]:
        actions(ex, mm, t)[action]()
        assert snapshot(ex) != before
    else:
        with pytest.raises(VenueStateViolation) as e:
            actions(ex, mm, t)[action]()
        assert e.value.field == state and f"{SYM} is {state.replace('_', '-')}: it accepts" in str(e.value)
        assert snapshot(ex) == before
    ex.check_conservation()
    ex.set_market_state(SYM, "open")  # reopened, everything gets in again
    actions(ex, mm, t)["limit"]()
    ex.check_conservation()


def test_the_reasons_say_what_was_refused_and_what_the_state_accepts() -> None:
    ex, mm, t = venue()
    ex.set_market_state(SYM, "halted")
    with pytest.raises(VenueStateViolation, match=r"^halted: ETH-PERP is halted: it accepts no orders, modifies or "
                                                  r"cancels until it reopens .*got 'market buy of 100 lots'$"):
        ex.market_order(t, SYM, BUY, 100)
    ex.set_market_state(SYM, "post_only")
    with pytest.raises(VenueStateViolation, match=r"got 'limit buy of 100 lots at 300100 \(would cross\)'"):
        ex.limit(t, SYM, BUY, 100, 300_100)
    ex.set_market_state(SYM, "reduce_only")
    with pytest.raises(VenueStateViolation, match=r"only reduce-only orders.*\(not reduce-only\)'"):
        ex.limit(t, SYM, SELL, 100, 301_000)


def test_reduce_only_trims_to_the_position_and_post_only_never_trades() -> None:
    ex, mm, t = venue()
    ex.set_market_state(SYM, "reduce_only")
    r = ex.market_order(t, SYM, SELL, 5_000, reduce_only=True)  # long 1,000 lots: trimmed to them
    assert (r.qty, r.filled, r.trimmed) == (1_000, 1_000, 4_000)
    assert ex.position(t, SYM).size == 0
    ex.set_market_state(SYM, "post_only")
    volume = ex.market(SYM).volume
    r = ex.limit(t, SYM, BUY, 100, 300_050)  # inside the spread: rests (not flagged post-only, treated as one)
    assert r.resting == 100 and ex.market(SYM).volume == volume


def test_a_halt_that_pauses_the_engine_liquidates_nobody_until_it_reopens() -> None:
    ex, mm, t = venue()
    lp = ex.liquidation_price(t, SYM)
    assert lp is not None
    ex.set_market_state(SYM, "halted", pause_liquidations=True)
    ex.set_mark(SYM, int(lp) - 500)  # the mark goes on moving; nobody is liquidated
    assert len(ex.liquidations) == 0 and ex.position(t, SYM).size == 1_000
    ex.now = 5_000_000
    ex.set_market_state(SYM, "open")  # reopening runs the check at once, at the mark of that moment
    rows = ex.liquidations.to_pandas()
    assert len(rows) and (rows.account == t).all() and (rows.time_us == 5_000_000).all()
    assert ex.position(t, SYM).size == 0
    ex.check_conservation()


def test_a_halt_without_the_pause_liquidates_into_the_frozen_book() -> None:
    ex, mm, t = venue()
    lp = ex.liquidation_price(t, SYM)
    assert lp is not None
    ex.set_market_state(SYM, "halted")  # users locked out, the engine runs: the maker's resting bids are hit
    ex.set_mark(SYM, int(lp) - 500)
    rows = ex.liquidations.to_pandas()
    assert len(rows) and set(rows.kind) <= {"book", "backstop"}
    assert ex.position(t, SYM).size == 0
    with pytest.raises(VenueStateViolation):
        ex.cancel_all(mm)
    ex.check_conservation()


def test_bad_states_are_refused_by_name() -> None:
    ex, _, _ = venue()
    with pytest.raises(InvalidInput, match=r"^state: must be one of \['open', 'halted', 'cancel_only', 'post_only', "
                                           r"'reduce_only'\], got 'closed'$"):
        ex.set_market_state(SYM, "closed")
    with pytest.raises(InvalidInput, match=r"pause_liquidations: only a halt pauses liquidations"):
        ex.set_market_state(SYM, "post_only", pause_liquidations=True)
    with pytest.raises(InvalidInput, match=r"pause_liquidations: must be True or False"):
        ex.set_market_state(SYM, "halted", pause_liquidations=1)
    with pytest.raises(UnknownMarket):
        ex.set_market_state("BTC-PERP", "halted")
    assert ex.market(SYM).state == 0 and not ex.market(SYM).paused


ACTION_NAMES = sorted(actions(*venue()))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(ACCEPTED)), st.sampled_from(ACTION_NAMES)), min_size=1, max_size=12))
@example(steps=[("open", "modify crossing"), ("reduce_only", "modify crossing")])
def test_any_sequence_of_states_and_actions_refuses_without_a_trace(steps: list[tuple[str, str]]) -> None:
    """Whatever the order: a refused action changes nothing, no state but open lets an order take liquidity,
    and the venue conserves every unit."""
    ex, mm, t = venue()
    for state, action in steps:
        ex.set_market_state(SYM, state)
        before = snapshot(ex)
        volume = ex.market(SYM).volume
        try:
            actions(ex, mm, t)[action]()
        except VenueStateViolation as e:
            assert e.field == state != "open" and snapshot(ex) == before
        except InvalidInput:  # the action itself is invalid now (an order already gone, no position to reduce)
            assert snapshot(ex) == before
        else:
            if state == "post_only":  # in: whatever rests without taking (a "crossing" one whose match is gone)
                assert action not in ("market", "reduce-only market", "IOC limit")
            else:  # in: what the state lets in, or what changes nothing (a cancel_all that found nothing, a modify
                # to the price the order already has, which reduce-only lets through since it raises no risk)
                assert action in ACCEPTED[state] or snapshot(ex) == before
            if state in ("halted", "cancel_only", "post_only"):
                assert ex.market(SYM).volume == volume
        ex.check_conservation()
