"""The opt-in oracle rules at the exchange: a stale oracle refuses orders that add risk (and only those) exactly past
staleness.trading_s; a stale oracle (staleness.margin_s) or a mark far from it (staleness.divergence_pct) stops
liquidations in the market, and the first mark update at which neither holds liquidates at once.

Hyperliquid's profile: trading 4 s, margin 48 s, divergence 10 %. Times are set on the exchange by hand (``ex.now``),
as the scheduler does in a run.
"""

from __future__ import annotations

import pytest

from abm.errors import InvalidInput, StaleOracle
from abm.exchange import Exchange
from abm.units import BUY, SELL
from abm.venues import load_venue
from tests.unit.exchange.test_bad_input import snapshot

SYM = "BTC"
P = 100_000  # ticks
S = 1_000_000  # µs per second


def world(rules: list[str]) -> tuple[Exchange, int, int]:
    """A maker with a deep two-sided book around P and a trader long 10 lots at 20x (isolated), the oracle at P at t=0."""
    venue = load_venue("hyperliquid", {"rules": rules})
    spec = venue.market_spec(SYM, "0.1", "0.001")
    ex = Exchange()
    ex.list_market(spec, venue.risk_params("btc"), venue.order_rules("btc", spec))
    ex.create_backstop_vault(10**14)
    ex.seed_ledger("insurance", 10**12)
    ex.set_oracle(SYM, P)
    ex.set_mark(SYM, P)
    mm = ex.open_account(10**14)
    for k in range(1, 200):
        ex.limit(mm, SYM, SELL, 1_000, P + 10 * k)
        ex.limit(mm, SYM, BUY, 1_000, P - 10 * k)
    t = ex.open_account(60_000_000)  # 60 USDC against 10 lots worth 1,000 USDC: 20x
    ex.set_margin_mode(t, SYM, "isolated")
    ex.set_leverage(t, SYM, 20)
    ex.market_order(t, SYM, BUY, 10)
    return ex, mm, t


def test_a_stale_oracle_refuses_only_what_adds_risk_exactly_past_trading_s() -> None:
    ex, mm, t = world(["oracle_trading_staleness"])
    ex.now = 4 * S  # exactly 4 s old: fresh
    ex.limit(t, SYM, BUY, 1, P - 500)
    ex.now = 4 * S + 1
    before = snapshot(ex)
    for call in (lambda: ex.limit(t, SYM, BUY, 1, P - 500), lambda: ex.market_order(t, SYM, BUY, 1),
                 lambda: ex.market_order(t, SYM, SELL, 12)):  # more than it closes: it opens a short
        with pytest.raises(StaleOracle) as e:
            call()
        assert snapshot(ex) == before
    assert e.value.field == "oracle_trading_staleness" and e.value.value == "4.000001 s old"
    assert "staleness.trading_s = 4 s" in e.value.allowed and "reduce-only" in e.value.allowed
    ex.market_order(t, SYM, SELL, 5)  # closes part of the position
    ex.limit(t, SYM, SELL, 2, P + 500, reduce_only=True)
    ex.cancel_all(t)
    ex.set_oracle(SYM, P)  # publishes again: everything passes
    ex.market_order(t, SYM, BUY, 1)
    ex.check_conservation()


def test_before_the_first_publication_the_oracle_is_stale() -> None:
    venue = load_venue("hyperliquid", {"rules": ["oracle_trading_staleness"]})
    spec = venue.market_spec(SYM, "0.1", "0.001")
    ex = Exchange()
    ex.list_market(spec, None, venue.order_rules("btc", spec))
    a = ex.open_account(10**12)
    with pytest.raises(StaleOracle, match="never published"):
        ex.limit(a, SYM, BUY, 1, P)


def liquidated(ex: Exchange) -> int:
    return len(ex.liquidations)


def crash_mark(t: int) -> int:
    """A mark 6 % below P: the trader (liquidation near P x (1 - 1/20 + 1/40)) is liquidatable."""
    return P * 94 // 100


def test_a_stale_oracle_pauses_liquidations_past_margin_s_and_they_run_when_it_publishes() -> None:
    ex, _, t = world(["oracle_margin_staleness"])
    ex.now = 48 * S + 1  # 48 s and 1 µs since the oracle: stale for margin
    ex.set_mark(SYM, crash_mark(ex.now))
    assert ex.market(SYM).paused and liquidated(ex) == 0 and ex.position(t, SYM).size == 10
    ex.now = 60 * S
    ex.set_mark(SYM, crash_mark(ex.now) - 100)
    assert liquidated(ex) == 0
    ex.set_oracle(SYM, P * 94 // 100)  # the oracle is back: the next mark update liquidates
    ex.set_mark(SYM, crash_mark(ex.now))
    assert not ex.market(SYM).paused and liquidated(ex) > 0 and ex.position(t, SYM).size == 0
    ex.check_conservation()


def test_at_margin_s_exactly_liquidations_run() -> None:
    ex, _, t = world(["oracle_margin_staleness"])
    ex.now = 48 * S
    ex.set_mark(SYM, crash_mark(ex.now))
    assert liquidated(ex) > 0 and ex.position(t, SYM).size == 0


@pytest.mark.parametrize("oracle, held", [
    (80_000, False),  # the mark (88,000) exactly 10 % above the oracle: not above the divergence
    (79_999, True),  # one tick lower: (mark - oracle) / oracle > 10 %
    (97_777, False),  # the mark below the oracle: 9,777 / 97,777 < 10 %
    (97_778, True),  # 9,778 / 97,778 > 10 %
])
def test_a_mark_far_from_the_oracle_pauses_liquidations(oracle: int, held: bool) -> None:
    ex, _, t = world(["mark_oracle_divergence"])
    mark = 88_000  # 12 % below P: the trader is liquidatable
    assert (abs(mark - oracle) * 10 > oracle) == held  # the closed form of the 10 % rule
    ex.set_oracle(SYM, oracle)
    ex.set_mark(SYM, mark)
    assert ex.market(SYM).paused == held and (liquidated(ex) == 0) == held
    ex.set_oracle(SYM, mark)
    ex.set_mark(SYM, mark)  # back together: the check runs at once
    assert liquidated(ex) > 0 and not ex.market(SYM).paused


def test_a_hold_and_a_halt_pause_together_and_each_end_leaves_the_other() -> None:
    ex, _, t = world(["mark_oracle_divergence"])
    ex.set_oracle(SYM, P * 2)
    ex.set_mark(SYM, crash_mark(0))  # held
    ex.set_market_state(SYM, "halted", True)
    ex.set_market_state(SYM, "open")  # the halt ends, the hold stands: no check
    assert ex.market(SYM).paused and liquidated(ex) == 0
    ex.set_market_state(SYM, "halted", True)
    ex.set_oracle(SYM, crash_mark(0))
    ex.set_mark(SYM, crash_mark(0))  # the hold ends inside the halt: still paused
    assert ex.market(SYM).paused and liquidated(ex) == 0
    ex.set_market_state(SYM, "open")  # reopening runs the check
    assert liquidated(ex) > 0


def test_no_rule_means_no_hold_and_no_refusal() -> None:
    ex, _, t = world([])
    ex.now = 1000 * S
    ex.market_order(t, SYM, BUY, 1)
    ex.set_oracle(SYM, P * 2)
    ex.set_mark(SYM, crash_mark(0))
    assert liquidated(ex) > 0


def test_bad_oracle_input_is_refused_by_name() -> None:
    ex, _, _ = world([])
    with pytest.raises(InvalidInput, match="price"):
        ex.set_oracle(SYM, 0)
    with pytest.raises(InvalidInput, match="market"):
        ex.set_oracle("ETH", P)
