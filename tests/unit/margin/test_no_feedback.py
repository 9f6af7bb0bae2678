"""The no-feedback control (``no_feedback``): every liquidated unit closed off the book at exactly the mark.

What it must keep: money conserved to the unit, the book untouched by liquidations (no fill, the same
levels, so the same mid), the close at the mark (checked against the positions before, computed here),
bad debt to the fund or ADL as in the waterfall, and a counterparty that never unwinds.
"""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from abm import Exchange, MarketSpec, Tape, check_conservation
from abm.margin import LIQUIDATION_PROCESSES, NO_FEEDBACK, NoFeedbackLiquidator
from abm.margin.engine import CROSS_UNIT
from abm.margin.params import LiquidationConfig, RiskParams
from abm.margin.tiers import hyperliquid_tiers
from abm.model import MarketModel
from abm.venues import load_venue
from tests.support import crash_config

SYM = "ETH-PERP"
MULT = 10  # 0.01 ticks x 0.001 lots x 10**6
USDC = 10**6


def _venue(process: str = NO_FEEDBACK, vault: bool = True, insurance: int = 100_000 * USDC) -> tuple[Exchange, Tape, int]:
    """One margined market quoted 100 levels deep each side around 3,000 (ticks of 0.01) by one market maker."""
    ex = Exchange(LIQUIDATION_PROCESSES.resolve(process))
    ex.list_market(MarketSpec(SYM, tick_size="0.01", lot_size="0.001"),
                   RiskParams(hyperliquid_tiers([(0, 25), (100_000_000 * USDC, 15)]), liquidation=LiquidationConfig()))
    tape = Tape()
    ex.subscribe_fills(tape)
    if vault:
        ex.create_backstop_vault(1_000_000 * USDC)
    if insurance:
        ex.seed_ledger("insurance", insurance)
    ex.set_mark(SYM, 300_000)
    mm = ex.open_account(deposit=50_000_000 * USDC)
    for k in range(100):
        ex.limit(mm, SYM, "sell", 1_000, 300_010 + 100 * k)
        ex.limit(mm, SYM, "buy", 1_000, 299_990 - 100 * k)
    return ex, tape, mm


def _trader(ex: Exchange, mode: str, leverage: int, qty: int, side: str) -> int:
    """An account that opens ``qty`` lots at ``leverage`` with about 10% more collateral than its margin."""
    deposit = qty * MULT * 310_000 // leverage * 11 // 10 + 10 * USDC
    t = ex.open_account(deposit=deposit)
    if mode == "isolated":
        ex.set_margin_mode(t, SYM, "isolated")
    ex.set_leverage(t, SYM, leverage)
    r = ex.market_order(t, SYM, side, qty)
    assert r.filled == qty
    return t


def test_registered_and_chosen_by_a_venue_profile():
    assert LIQUIDATION_PROCESSES.resolve(NO_FEEDBACK) is NoFeedbackLiquidator
    v = load_venue("hyperliquid", {"liquidation.process": "no_feedback"})
    assert v.liquidation_process() is NoFeedbackLiquidator
    assert v.to_dict()["liquidation"]["process"] == "no_feedback"


@pytest.mark.parametrize("vault", [True, False])
def test_a_liquidated_unit_is_closed_at_exactly_the_mark_off_the_book(vault):
    ex, tape, mm = _venue(vault=vault)
    iso = _trader(ex, "isolated", 10, 3_000, "buy")
    cross = _trader(ex, "cross", 12, 2_000, "buy")
    short = _trader(ex, "isolated", 5, 1_000, "sell")  # in profit below: must not be touched
    before = {a: ex.position(a, SYM) for a in (iso, cross, short)}
    cross_balance = ex.accounts[cross].balance
    book, fills, vault_id = ex.data(SYM).l2(1_000), len(tape), ex.risk.vault
    mark = 275_000
    ex.set_mark(SYM, mark)

    assert ex.data(SYM).l2(1_000) == book and len(tape) == fills  # no liquidation order, no fill, the same book
    cp_id = ex.risk.vault
    assert cp_id is not None and (vault_id is None or cp_id == vault_id)
    if vault_id is None:
        assert cp_id not in (iso, cross, short, mm)  # the control counterparty opened for the purpose
    rows = ex.liquidations.rows()
    assert sorted((r["account"], r["kind"], r["size"], r["price"], r["mark"]) for r in rows) == [
        (iso, "backstop", -3_000, mark, mark), (cross, "backstop", -2_000, mark, mark)]
    expected_left = 0
    for a, unit in ((iso, SYM), (cross, None)):
        b, after = before[a], ex.position(a, SYM)
        assert after.size == 0 and after.cost == 0
        # closed at the mark: the realised PnL of the close is size x multiplier x mark less the cost
        assert after.realized - b.realized == b.size * MULT * mark - b.cost
        equity_at_mark = (b.margin if unit else cross_balance) + b.size * MULT * mark - b.cost
        assert equity_at_mark > 0
        expected_left += equity_at_mark
    assert ex.position(short, SYM) == before[short]
    assert ex.accounts[cross].balance == 0 and ex.position(iso, SYM).margin == 0  # what was left went on
    cp = ex.position(cp_id, SYM)
    assert cp.size == 5_000 and cp.cost == 5_000 * MULT * mark  # took both over at the mark
    deposit = 1_000_000 * USDC if vault_id is not None else 0
    assert ex.accounts[cp_id].balance == deposit + expected_left  # and kept the units' remaining equity
    check_conservation(ex)
    for m in (270_000, 250_000, 240_000):  # later marks: the counterparty holds, never sells into the book
        ex.set_mark(SYM, m)
    assert ex.position(cp_id, SYM).size == 5_000 and len(tape) == fills and ex.data(SYM).l2(1_000) == book


def test_the_default_waterfall_sells_the_same_units_into_the_book():
    """The comparison the control exists for: the same mark, book liquidation orders that fill and move the book."""
    ex, tape, _ = _venue(process="book_backstop_adl")
    _trader(ex, "isolated", 10, 3_000, "buy")
    book, fills = ex.data(SYM).l2(1_000), len(tape)
    ex.set_mark(SYM, 275_000)
    assert len(tape) > fills and ex.data(SYM).l2(1_000) != book
    assert [r["kind"] for r in ex.liquidations.rows()] == ["book"]


def test_bad_debt_beyond_the_fund_goes_to_adl_off_the_book():
    ex, tape, mm = _venue(insurance=0)
    t = _trader(ex, "isolated", 20, 3_000, "buy")
    book, fills = ex.data(SYM).l2(1_000), len(tape)
    mm_before = ex.position(mm, SYM)
    ex.set_mark(SYM, 270_000)  # a gap far past the bankruptcy price: negative equity, an empty fund
    kinds = [r["kind"] for r in ex.liquidations.rows()]
    assert kinds[:2] == ["adl", "adl_counterparty"] and "backstop" not in kinds
    assert ex.position(t, SYM).size == 0 and ex.position(mm, SYM).size == mm_before.size + 3_000
    assert ex.data(SYM).l2(1_000) == book and len(tape) == fills
    check_conservation(ex)


def test_bad_debt_the_fund_can_pay_is_taken_over_and_paid():
    ex, _, _ = _venue()
    t = _trader(ex, "isolated", 20, 3_000, "buy")
    ex.set_mark(SYM, 270_000)
    rows = ex.liquidations.rows()
    assert [r["kind"] for r in rows] == ["backstop", "bad_debt"]
    assert rows[1]["bad_debt"] > 0 and ex.ledgers.balances["insurance"] == 100_000 * USDC - rows[1]["bad_debt"]
    assert ex.position(t, SYM).margin == 0
    check_conservation(ex)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traders=st.lists(st.tuples(st.sampled_from(["cross", "isolated"]), st.integers(2, 25), st.integers(50, 3_000),
                                  st.sampled_from(["buy", "sell"])), min_size=1, max_size=6),
       marks=st.lists(st.integers(200_000, 400_000), min_size=1, max_size=8),
       vault=st.booleans(), insurance=st.sampled_from([0, 500 * USDC, 10**12]))
def test_money_is_conserved_and_no_liquidation_touches_the_book(traders, marks, vault, insurance):
    ex, tape, _ = _venue(vault=vault, insurance=insurance)
    ids = [_trader(ex, *t) for t in traders]
    book, fills = ex.data(SYM).l2(1_000), len(tape)
    seen = 0
    for mark in marks:
        held = {a: ex.position(a, SYM) for a in ex.accounts}
        ex.set_mark(SYM, mark)
        check_conservation(ex)
        assert ex.data(SYM).l2(1_000) == book and len(tape) == fills
        rows = ex.liquidations.rows()[seen:]
        seen += len(rows)
        for r in rows:
            assert r["kind"] in ("backstop", "adl", "adl_counterparty", "bad_debt")
            if r["kind"] == "backstop":
                assert r["price"] == mark and r["size"] == -held[r["account"]].size
        cp = ex.risk.vault
        if cp is not None:  # the counterparty took over what the backstop rows say (opened now, or the vault),
            # and gave up what an ADL closed against it (a holder like any other)
            moved = sum(-r["size"] for r in rows if r["kind"] == "backstop")
            moved += sum(r["size"] for r in rows if r["kind"] == "adl_counterparty" and r["account"] == cp)
            assert ex.position(cp, SYM).size - (held[cp].size if cp in held else 0) == moved
        for a in ids:  # every unit the mark made liquidatable is closed at this mark
            unit = ex.risk.unit_of(a, 0)
            assert not ex.risk.liquidatable(ex.accounts[a], unit)


def test_a_run_with_the_control_prints_no_liquidation_trade_and_conserves_money():
    """The crash of the support models with ``no_feedback``: liquidations, none on the tape, the vault never trades."""
    cfg = crash_config(duration_s=300)
    cfg["venue"]["overrides"]["liquidation.process"] = "no_feedback"
    model = MarketModel(cfg, audit=True).run()  # audit: conservation checked after every step
    tables = model.tables()
    liq, trades = tables["liquidations"], tables["trades"]
    assert len(liq) > 0 and set(liq["kind"].astype(str)) <= {"backstop", "adl", "adl_counterparty", "bad_debt"}
    assert not trades["liquidation"].any()
    vault = model.exchange.risk.vault
    assert not ((trades["maker_account"] == vault) | (trades["taker_account"] == vault)).any()
    held = model.exchange.accounts[vault].positions[0].size
    assert held == -int(liq.loc[liq["kind"] == "backstop", "size"].sum())  # everything it took, still held
    assert model.exchange.risk.unit_of(vault, 0) == (vault, CROSS_UNIT)
