"""Oracle, mark and funding driven as events in simulation time, against a live exchange."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from abm import Exchange, MarketSpec
from abm.errors import InvalidInput
from abm.margin.params import RiskParams
from abm.margin.tiers import hyperliquid_tiers
from abm.prices import BinanceMark, ExternalPerp, ExternalPerps, FundingConfig, FundingSchedule, HyperliquidMark, Move, Oracle, Scripted
from abm.sim import MarketFeed, Scheduler

USDC = 10**6
S = 1_000_000  # µs per second


def build(moves=(), hours: float = 2.5, quote_skew: int = 0, mark=None, external=None):
    ex = Exchange()
    ex.list_market(MarketSpec("BTC", tick_size="0.01", lot_size="0.001", maker_fee_bps=0, taker_fee_bps=0),
                   RiskParams(hyperliquid_tiers([(0, 40)])))
    path = Scripted(list(moves), s0=100.0).path(int(hours * 3600 * S), dt_us=100_000)
    oracle = Oracle(path, Decimal("0.01"), interval_us=3 * S)
    feed = MarketFeed(ex, "BTC", oracle, mark or HyperliquidMark(), FundingSchedule(FundingConfig.hyperliquid()),
                      impact_notional=20 * USDC, external_perps=external(path) if external else None)
    mm = ex.open_account(10_000_000 * USDC)
    ex.set_mark("BTC", 10_000)
    for k in range(1, 60):
        ex.limit(mm, "BTC", "buy", 2_000, 10_000 + quote_skew - 5 * k)
        ex.limit(mm, "BTC", "sell", 2_000, 10_000 + quote_skew + 5 * k)
    sched = Scheduler(ex)
    feed.start(sched)
    return ex, feed, sched, oracle, mm


def test_oracle_mark_and_funding_run_on_their_clocks():
    ex, feed, sched, oracle, _ = build(quote_skew=30)  # the book trades 0.3% rich to the oracle
    longs = ex.open_account(1_000 * USDC)
    ex.market_order(longs, "BTC", "buy", 1_000)
    sched.run_until(2 * 3600 * S)
    assert oracle.last_update_us == 2 * 3600 * S and oracle.price == 10_000
    assert ex.risk.marks[0] == feed.mark
    log = feed.log.to_pandas()
    assert list(log["time_us"]) == [3600 * S, 7200 * S]
    # premium clearly above the +0.06%/8h dead zone -> positive rate, longs pay shorts, hourly
    assert (log["rate"] > 0).all() and (log["paid"] > 0).all()
    assert ex.position(longs, "BTC").funding < 0
    ex.check_conservation()


def test_scripted_crash_reaches_the_mark_and_liquidates_a_leveraged_long():
    """With two inputs averaged, an oracle crash alone moves the mark half way (the book here never moves)."""
    crash = Move(start_s=600, duration_s=60, pct=-10)
    ex, feed, sched, oracle, _ = build(moves=[crash], hours=0.5, mark=HyperliquidMark(book_ema_window_s=None))
    t = ex.open_account(100 * USDC)
    ex.set_margin_mode(t, "BTC", "isolated")
    ex.set_leverage(t, "BTC", 20)
    ex.market_order(t, "BTC", "buy", 15_000)
    sched.run_until(590 * S)
    assert len(ex.liquidations) == 0
    sched.run_until(1_200 * S)
    rows = ex.liquidations.rows()
    assert rows and rows[0]["account"] == t and rows[0]["time_us"] > 600 * S
    assert ex.position(t, "BTC").size == 0
    ex.check_conservation()


def test_with_the_books_ema_as_third_input_an_oracle_crash_alone_does_not_move_the_mark():
    """The documented rule (two_inputs = "book_ema"): median(oracle piece, book, EMA of the book). A book that does not move
    holds two of the three, so the mark stays with the book however far the oracle falls."""
    crash = Move(start_s=600, duration_s=60, pct=-10)
    ex, feed, sched, oracle, _ = build(moves=[crash], hours=0.5, mark=HyperliquidMark(book_ema_window_s=30))
    t = ex.open_account(100 * USDC)
    ex.set_margin_mode(t, "BTC", "isolated")
    ex.set_leverage(t, "BTC", 20)
    ex.market_order(t, "BTC", "buy", 15_000)
    sched.run_until(1_200 * S)
    assert oracle.price < 9_100 and abs(feed.mark - 10_000) < 100 and len(ex.liquidations) == 0  # the book's level


def test_external_perps_let_a_world_crash_reach_the_mark_when_the_book_alone_holds():
    """The same crash as above with an external perp following the world's path (without the oracle's delay): the
    median now has the oracle piece and the external perp below and the book alone above, so the long is
    liquidated (above, with the book's EMA as the third input, it was not)."""
    crash = Move(start_s=600, duration_s=60, pct=-10)
    seen: list[tuple[int, int, tuple]] = []
    ex, feed, sched, oracle, _ = build(moves=[crash], hours=0.5, mark=HyperliquidMark(book_ema_window_s=30),
                                       external=lambda path: ExternalPerps([ExternalPerp("ext", path, "0.01")]))
    feed.mark_listeners.append(lambda t, mark: seen.append((t, mark, feed.mark_model.components)))
    t = ex.open_account(100 * USDC)
    ex.set_margin_mode(t, "BTC", "isolated")
    ex.set_leverage(t, "BTC", 20)
    ex.market_order(t, "BTC", "buy", 15_000)
    sched.run_until(1_200 * S)
    # the mark falls with the oracle piece (the EMA of the book's basis then pulls it back toward the unmoved book)
    assert oracle.price < 9_100 and min(mark for _, mark, _ in seen) < 9_300
    rows = ex.liquidations.rows()
    assert rows and rows[0]["account"] == t and ex.position(t, "BTC").size == 0
    assert feed.external_perps.value == 9_000  # 100 * 0.9 in 0.01 ticks
    for _, mark, pieces in seen:  # every update: the middle of the three
        assert mark == round(sorted(pieces)[1])
    ex.check_conservation()


def test_the_feed_refuses_external_perps_a_mark_model_cannot_read():
    with pytest.raises(InvalidInput, match=r"external_perps: .*BinanceMark has none"):
        build(mark=BinanceMark(), external=lambda path: ExternalPerps([ExternalPerp("ext", path, "0.01")]))
    with pytest.raises(InvalidInput, match=r"external_perps: .*must be None or an abm.prices.ExternalPerps"):
        build(external=lambda path: [ExternalPerp("ext", path, "0.01")])


def test_same_inputs_same_run():
    def run():
        ex, feed, sched, _, _ = build(moves=[Move(600, 60, -10)], hours=0.5, quote_skew=10)
        t = ex.open_account(100 * USDC)
        ex.set_leverage(t, "BTC", 20)
        ex.market_order(t, "BTC", "buy", 15_000)
        sched.run_until(1_800 * S)
        return ex.liquidations.to_pandas(), feed.log.to_pandas(), sched.processed

    a, b = run(), run()
    assert a[0].equals(b[0]) and a[1].equals(b[1]) and a[2] == b[2]
    assert np.all(a[0]["time_us"].to_numpy() >= 600 * S)


def test_events_at_one_time_run_in_the_named_priority_order():
    """venue state, index, oracle, mark, funding payment, funding sample, agents: whatever order they were scheduled in."""
    from abm.sim import AGENT, FUNDING_PAYMENT, FUNDING_SAMPLE, INDEX, MARK, ORACLE, PRIORITIES, VENUE

    assert list(PRIORITIES) == ["VENUE", "INDEX", "ORACLE", "MARK", "FUNDING_PAYMENT", "FUNDING_SAMPLE", "AGENT"]
    assert list(PRIORITIES.values()) == sorted(PRIORITIES.values()) == [VENUE, INDEX, ORACLE, MARK, FUNDING_PAYMENT,
                                                                         FUNDING_SAMPLE, AGENT]
    sched, ran = Scheduler(), []
    for name in reversed(PRIORITIES):
        sched.at(7, lambda t, n=name: ran.append(n), priority=PRIORITIES[name])
    sched.push(7, lambda t: ran.append("pushed"))  # an agent's own wake: AGENT, after the one scheduled before it
    sched.run_until(7)
    assert ran == [*PRIORITIES, "pushed"]


def test_priorities_are_named_never_numbers():
    """Every ``priority=`` in the package names a scheduler constant, so the order lives in one place."""
    import ast
    from pathlib import Path

    import abm
    from abm.sim import PRIORITIES

    root = Path(abm.__file__).parent
    found = []
    for p in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(p.read_text(), str(p))):
            if isinstance(node, ast.keyword) and node.arg == "priority":
                where = f"{p.relative_to(root.parent)}:{node.value.lineno}"
                assert isinstance(node.value, ast.Name) and node.value.id in PRIORITIES, \
                    f"{where}: priority={ast.unparse(node.value)} must name one of {list(PRIORITIES)}"
                found.append(where)
    assert len(found) >= 4  # the feed's oracle, mark and funding events


def test_a_halt_that_pauses_the_engine_skips_funding_samples_and_pays_the_rest():
    """A paused halt from 0 to 30 min: the samples in it are skipped, so the hour's rate averages the second half
    only; the oracle and the mark go on. Without the pause every sample counts."""
    rates = {}
    for paused in (False, True):
        ex, feed, sched, oracle, _ = build(quote_skew=30, hours=1.5)
        ex.set_market_state("BTC", "halted", pause_liquidations=paused)
        sched.run_until(1800 * S - 1)
        skipped = feed.funding._skipped
        ex.set_market_state("BTC", "open")
        sched.run_until(3600 * S)
        rates[paused] = (skipped, feed.log.to_pandas()["rate"].iloc[0])
        assert oracle.last_update_us == 3600 * S and ex.risk.marks[0] == feed.mark
    assert rates[False][0] == 0 and rates[True][0] == 360  # a sample every 5 s for half an hour
    assert rates[False][1] == rates[True][1] > 0  # the same premium in both halves: the same average
