"""Margin and liquidation: exact trigger prices, backstop, cross vs isolated, insurance fund, ADL, bad input."""

from __future__ import annotations

from fractions import Fraction

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from abm import Exchange, MarketSpec
from abm.errors import InsufficientFunds, InvalidInput, UnknownAccount
from abm.margin.engine import CROSS_UNIT
from abm.margin.params import LiquidationConfig, RiskParams, binance_liquidation
from abm.margin.tiers import bracket_tiers, hyperliquid_tiers

USDC = 10**6
# tick 0.01 USDC, lot 0.001: one lot at one tick is 0.00001 USDC = 10 quote units
SPEC = dict(tick_size="0.01", lot_size="0.001", maker_fee_bps=0, taker_fee_bps=0)
BTC_TIERS = hyperliquid_tiers([(0, 40), (150_000_000 * USDC, 20)])


def venue(*symbols: str, liquidation: LiquidationConfig | None = None, vault: int | None = 1_000_000 * USDC) -> Exchange:
    ex = Exchange()
    for s in symbols or ("BTC",):
        ex.list_market(MarketSpec(s, **SPEC), RiskParams(BTC_TIERS, liquidation=liquidation or LiquidationConfig()))
        ex.set_mark(s, 10_000)  # 100.00 USDC
    if vault:
        ex.create_backstop_vault(vault)
    return ex


def open_long(ex: Exchange, acct: int, sym: str, lots: int, price: int = 10_000, maker: int | None = None) -> int:
    maker = maker or ex.open_account(10_000_000 * USDC)
    ex.limit(maker, sym, "sell", lots, price)
    r = ex.market_order(acct, sym, "buy", lots)
    assert r.filled == lots
    return maker


def bids(ex: Exchange, acct: int, sym: str, top: int, levels: int = 50, size: int = 1_000) -> None:
    for k in range(levels):
        ex.limit(acct, sym, "buy", size, top - 10 * k)


def test_isolated_long_liquidated_at_documented_price_not_a_tick_earlier():
    ex = venue(vault=None)
    t = ex.open_account(1_000 * USDC)
    ex.set_margin_mode(t, "BTC", "isolated")
    ex.set_leverage(t, "BTC", 10)
    mm = open_long(ex, t, "BTC", 1_000)  # 1 BTC... of 0.001 lots: notional 100 USDC at 100.00
    pos = ex.position(t, "BTC")
    assert pos.margin == 10 * USDC  # IM = 100 USDC / 10
    # reference: liq = P - side*M/q/(1 - l*side) with l = 1/80 (40x max), M = 10 USDC, q = 1 unit of 0.001*1000
    # in ticks: (cost - M) / (size*mult*(1 - 1/80)) = 90e6 / (10_000 * 79/80) = 720000/79 = 9113.92...
    liq = ex.liquidation_price(t, "BTC")
    assert liq == Fraction(720_000, 79)
    bids(ex, mm, "BTC", 9_990)
    ex.set_mark("BTC", 9_114)  # one tick above: equity 1.14 USDC > MM 1.13925 USDC
    assert ex.position(t, "BTC").size == 1_000 and len(ex.liquidations) == 0
    ex.set_mark("BTC", 9_113)
    assert ex.position(t, "BTC").size == 0
    (ev,) = ex.liquidations.rows()
    assert ev["kind"] == "book" and ev["size"] == -1_000 and ev["mark"] == 9_113 and ev["account"] == t
    assert ev["equity_before"] == 10 * USDC + 1_000 * 10 * (9_113 - 10_000)  # margin + uPnL at the mark
    # the isolated trader lost at most its margin
    assert ex.account(t).balance >= 990 * USDC
    ex.check_conservation()


def test_backstop_takes_over_below_two_thirds_of_maintenance():
    ex = venue()
    vault = ex.risk.vault
    vault_before = ex.account(vault).balance
    t = ex.open_account(1_000 * USDC)
    ex.set_margin_mode(t, "BTC", "isolated")
    ex.set_leverage(t, "BTC", 10)
    mm = open_long(ex, t, "BTC", 1_000)
    bids(ex, mm, "BTC", 9_990)
    # mark gaps to 90.50: equity = 10 + (90.5 - 100) = 0.5 USDC; MM = 90.5/80 = 1.13 USDC; 2/3 MM = 0.754
    ex.set_mark("BTC", 9_050)
    (ev,) = ex.liquidations.rows()
    assert ev["kind"] == "backstop" and ev["price"] == 9_050 and ev["size"] == -1_000
    assert ex.position(t, "BTC").size == 0 and ex.position(vault, "BTC").size == 1_000
    assert ex.account(vault).balance == vault_before + USDC // 2  # the vault keeps the remaining margin
    assert ex.account(t).balance == 990 * USDC
    ex.check_conservation()


def test_book_that_cannot_absorb_hands_over_to_the_backstop():
    ex = venue()
    t = ex.open_account(1_000 * USDC)
    ex.set_margin_mode(t, "BTC", "isolated")
    ex.set_leverage(t, "BTC", 10)
    open_long(ex, t, "BTC", 1_000)
    # equity at 91.00 = 1.0 USDC, MM = 1.1375, above 2/3 MM: the book goes first, but there are no bids
    ex.set_mark("BTC", 9_100)
    kinds = [e["kind"] for e in ex.liquidations.rows()]
    assert kinds == ["backstop"]
    assert ex.position(ex.risk.vault, "BTC").size == 1_000
    ex.check_conservation()


def test_large_positions_are_sliced_with_a_cooldown():
    cfg = LiquidationConfig(slice_threshold=50 * USDC, cooldown_us=30_000_000, backstop=False)
    ex = venue(liquidation=cfg, vault=None)
    t = ex.open_account(1_000 * USDC)
    ex.set_leverage(t, "BTC", 10)
    mm = open_long(ex, t, "BTC", 5_000)  # 500 USDC notional, cross
    ex.withdraw(t, 900 * USDC)  # leave 100 USDC: a 5x long
    bids(ex, mm, "BTC", 8_090, levels=200, size=2_000)
    # 5 units long: equity = 100 + 5*(P - 100) USDC, MM = 5*P/80 -> liquidatable from P <= 81.0127 (8101.27 ticks)
    ex.set_mark("BTC", 8_102)
    assert len(ex.liquidations) == 0
    ex.set_mark("BTC", 8_101)
    assert [e["size"] for e in ex.liquidations.rows()] == [-1_000]  # a 20% slice of 5000 lots, into bids at 80.90
    # left: balance 100 - 1 unit * 19.10 = 80.9 USDC and 4000 lots; at 80.00 equity 0.9 USDC < MM 4 USDC
    ex.now += 10_000_000
    ex.set_mark("BTC", 8_000)  # still in the 30 s cooldown: nothing
    assert len(ex.liquidations) == 1
    ex.now += 25_000_000
    ex.set_mark("BTC", 8_000)
    assert [e["size"] for e in ex.liquidations.rows()] == [-1_000, -800]  # 20% of the 4000 still open
    ex.check_conservation()


def test_cross_account_liquidated_as_a_whole_isolated_position_untouched():
    ex = venue("BTC", "ETH", "SOL", vault=None)
    t = ex.open_account(30 * USDC)
    ex.set_margin_mode(t, "SOL", "isolated")
    ex.set_leverage(t, "SOL", 10)
    for s in ("BTC", "ETH"):
        ex.set_leverage(t, s, 10)
    makers = {s: open_long(ex, t, s, 1_000) for s in ("BTC", "ETH", "SOL")}
    for s, mm in makers.items():
        bids(ex, mm, s, 9_990, levels=120)
    sol_before = ex.position(t, "SOL")
    # cross: equity = 30 - 10 (SOL margin) + 10*(P_btc-100)... BTC falls alone until the cross unit fails
    liq_btc = ex.liquidation_price(t, "BTC")
    assert liq_btc is not None
    ex.set_mark("BTC", int(liq_btc) + 1)
    assert ex.position(t, "BTC").size == 1_000
    ex.set_mark("BTC", int(liq_btc))
    rows = ex.liquidations.rows()
    assert {(e["market"], e["kind"]) for e in rows} == {(0, "book"), (1, "book")}
    assert ex.position(t, "BTC").size == 0 and ex.position(t, "ETH").size == 0
    assert ex.position(t, "SOL") == sol_before
    ex.check_conservation()


def test_tier_maintenance_is_continuous_across_bands():
    t = bracket_tiers([(0, 125, "0.004"), (50_000, 100, "0.005"), (250_000, 50, "0.01")])
    # deduction_1 = 50_000 * (0.005 - 0.004) = 50; deduction_2 = 50 + 250_000 * (0.01 - 0.005) = 1300
    assert t.maintenance(50_000) == 200 and t.maintenance(49_999) == Fraction(49_999 * 4, 1000)
    assert t.maintenance(100_000) == 450
    assert t.maintenance(250_000) == 1_200 == 250_000 * Fraction(5, 1000) - 50 == 250_000 * Fraction(1, 100) - 1_300
    assert t.maintenance(300_000) == 3_000 - 1_300
    assert t.max_leverage(49_999) == 125 and t.max_leverage(50_000) == 100
    h = hyperliquid_tiers([(0, 40), (150, 20)])
    assert h.maintenance(150) == Fraction(150, 80) and h.maintenance(300) == Fraction(300, 40) - 150 * (Fraction(1, 40) - Fraction(1, 80))


def test_isolated_and_cross_on_the_same_path():
    ex = venue(vault=None)
    iso, cross = ex.open_account(20 * USDC), ex.open_account(20 * USDC)
    ex.set_margin_mode(iso, "BTC", "isolated")
    for a in (iso, cross):
        ex.set_leverage(a, "BTC", 10)
    mm = open_long(ex, iso, "BTC", 1_000)
    open_long(ex, cross, "BTC", 1_000, maker=mm)
    bids(ex, mm, "BTC", 9_990, levels=300)
    liquidated_at = {}
    for mark in range(10_000, 7_000, -25):
        ex.set_mark("BTC", mark)
        for a in (iso, cross):
            if a not in liquidated_at and ex.position(a, "BTC").size == 0:
                liquidated_at[a] = mark
    assert liquidated_at[iso] > liquidated_at[cross]  # isolated goes first
    # isolated loses at most its 10 USDC margin; cross can lose (nearly) the whole account
    assert ex.account(iso).balance >= 10 * USDC
    assert ex.account(cross).balance < ex.account(iso).balance
    ex.check_conservation()


def test_insurance_fund_pays_bad_debt():
    ex = venue()
    ex.seed_ledger("insurance", 100 * USDC)
    t = ex.open_account(1_000 * USDC)
    ex.set_margin_mode(t, "BTC", "isolated")
    ex.set_leverage(t, "BTC", 10)
    open_long(ex, t, "BTC", 1_000)
    ex.set_mark("BTC", 8_500)  # equity = 10 - 15 = -5 USDC: the vault takes over, the fund pays 5
    kinds = [e["kind"] for e in ex.liquidations.rows()]
    assert kinds == ["backstop", "bad_debt"]
    assert ex.ledgers["insurance"] == 95 * USDC
    assert ex.liquidations.rows()[-1]["bad_debt"] == 5 * USDC
    assert ex.account(t).balance == 990 * USDC and ex.position(t, "BTC").margin == 0
    ex.check_conservation()


def _adl_setup(liquidation: LiquidationConfig) -> tuple[Exchange, dict[str, int]]:
    ex = venue(liquidation=liquidation, vault=None)
    acc = {n: ex.open_account(d * USDC) for n, d in [("A", 1_000), ("B", 100), ("C", 10_000), ("G", 100)]}
    for n, lots in (("A", 500), ("B", 300), ("C", 200)):
        ex.limit(acc[n], "BTC", "sell", lots, 10_000)
    acc["L"] = ex.open_account(6 * USDC)
    ex.set_leverage(acc["L"], "BTC", 10)
    assert ex.market_order(acc["L"], "BTC", "buy", 600).filled == 600  # A 500, B 100
    assert ex.market_order(acc["G"], "BTC", "buy", 400).filled == 400  # B 200, C 200
    return ex, acc


@pytest.mark.parametrize("profile", ["hyperliquid", "binance"])
def test_adl_closes_the_right_counterparties_in_order_when_the_fund_is_empty(profile):
    cfg = LiquidationConfig() if profile == "hyperliquid" else binance_liquidation()
    ex, acc = _adl_setup(cfg)
    ex.set_mark("BTC", 8_000)  # L: equity 6 - 12 = -6 USDC, no vault, empty fund -> ADL
    rows = ex.liquidations.rows()
    cps = [(r["account"], r["size"]) for r in rows if r["kind"] == "adl_counterparty"]
    # scores: B (24/106 notional/equity, 6 USDC profit) > A (40/1010) > C (16/10004): B's 300 then A's 300
    assert cps == [(acc["B"], 300), (acc["A"], 300)]
    assert ex.position(acc["L"], "BTC").size == 0
    assert (ex.position(acc["A"], "BTC").size, ex.position(acc["B"], "BTC").size) == (-200, 0)
    if profile == "binance":
        # at the bankruptcy price 90.00 (8000 + 6 USDC / (600 lots * 10)) nothing is left over
        assert {r["price"] for r in rows if r["kind"] == "adl"} == {9_000}
        assert ex.ledgers["insurance"] == 0 and ex.account(acc["L"]).balance == 0
    else:
        # at the mark the 6 USDC deficit would be bad debt the empty fund cannot pay: the counterparties carry
        # it, closing at the bankruptcy price, and the fund stays at zero
        assert {r["price"] for r in rows if r["kind"] == "adl"} == {9_000}
        assert ex.ledgers["insurance"] == 0 and ex.account(acc["L"]).balance == 0
    ex.check_conservation()


def test_adl_at_the_mark_shifts_to_the_counterparties_only_what_the_fund_cannot_pay():
    ex, acc = _adl_setup(LiquidationConfig())
    ex.seed_ledger("insurance", 2 * USDC)
    ex.set_mark("BTC", 8_000)  # L: equity -6 USDC on 600 lots (6,000 quote units a tick); the fund holds 2
    rows = ex.liquidations.rows()
    # the fund covers 2 USDC: the legs close where the unit's equity plus the fund is used up, 8000 + 4e6 / 6000
    # = 8666.67 ticks, rounded up (the unit's favour): L owes 6e6 - (10_000 - 8_667) * 6_000 = 1,998,000 to the fund
    assert {r["price"] for r in rows if r["kind"] in ("adl", "adl_counterparty")} == {8_667}
    assert [r["bad_debt"] for r in rows if r["kind"] == "bad_debt"] == [1_998_000]
    assert ex.ledgers["insurance"] == 2 * USDC - 1_998_000 and ex.account(acc["L"]).balance == 0
    ex.check_conservation()


def test_adl_at_the_mark_stays_at_the_mark_while_the_fund_can_pay():
    ex, acc = _adl_setup(LiquidationConfig())
    ex.seed_ledger("insurance", 6 * USDC)
    ex.set_mark("BTC", 8_000)
    rows = ex.liquidations.rows()
    assert {r["price"] for r in rows if r["kind"] == "adl"} == {8_000}
    assert [r["bad_debt"] for r in rows if r["kind"] == "bad_debt"] == [6 * USDC]
    assert ex.ledgers["insurance"] == 0
    ex.check_conservation()


def test_the_fund_pays_a_closed_units_debt_only_as_far_as_it_holds():
    ex = venue(vault=None)
    ex.seed_ledger("insurance", 1 * USDC)
    t = ex.open_account(1_000 * USDC)
    ex.set_margin_mode(t, "BTC", "isolated")
    ex.set_leverage(t, "BTC", 10)
    open_long(ex, t, "BTC", 1_000)
    # the trader closes itself far below its bankruptcy price before any mark shows it: 10 USDC margin, -15 loss
    buyer = ex.open_account(1_000 * USDC)
    ex.limit(buyer, "BTC", "buy", 1_000, 8_500)
    ex.market_order(t, "BTC", "sell", 1_000)
    rows = ex.liquidations.rows()
    assert [(r["kind"], r["bad_debt"], r["equity_after"]) for r in rows] == [("bad_debt", 1 * USDC, -4 * USDC)]
    assert ex.ledgers["insurance"] == 0
    ex.check_conservation()


def test_bad_input_changes_nothing():
    ex = venue(vault=None)
    t = ex.open_account(100 * USDC)
    with pytest.raises(InvalidInput, match="leverage"):
        ex.set_leverage(t, "BTC", 41)
    ex.set_margin_mode(t, "BTC", "isolated")
    ex.set_leverage(t, "BTC", 10)
    open_long(ex, t, "BTC", 1_000)
    with pytest.raises(InvalidInput, match="mode"):
        ex.set_margin_mode(t, "BTC", "cross")
    margin = ex.position(t, "BTC").margin
    with pytest.raises(InsufficientFunds, match="amount"):
        ex.transfer_isolated_margin(t, "BTC", -margin)  # would leave less than max(IM, 10% notional)
    assert ex.position(t, "BTC").margin == margin
    with pytest.raises(InsufficientFunds, match="qty"):
        ex.market_order(t, "BTC", "buy", 200_000)  # 2000 USDC notional on 90 USDC free collateral
    with pytest.raises(InsufficientFunds, match="amount"):
        ex.withdraw(t, 100 * USDC)
    s = ex.open_account(100 * USDC)
    ex.set_margin_mode(s, "BTC", "strict_isolated")
    open_long(ex, s, "BTC", 100)
    with pytest.raises(InvalidInput, match="strict"):
        ex.transfer_isolated_margin(s, "BTC", -1)
    ex.check_conservation()


# ---------------------------------------------------------------------------- random paths and portfolios


@settings(max_examples=int(__import__('os').environ.get('ABM_MARGIN_EXAMPLES', 40)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    modes=st.lists(st.sampled_from(["cross", "isolated"]), min_size=6, max_size=6),
    levs=st.lists(st.integers(2, 40), min_size=6, max_size=6),
    sides=st.lists(st.booleans(), min_size=6, max_size=6),
    moves=st.lists(st.integers(-400, 400), min_size=5, max_size=25),
    fund=st.integers(0, 50),
    with_vault=st.booleans(),
    binance=st.booleans(),
)
def test_random_paths_conserve_money_and_leave_no_liquidatable_unit(seed, modes, levs, sides, moves, fund, with_vault,
                                                                    binance):
    ex = venue("BTC", "ETH", vault=200 * USDC if with_vault else None,
               liquidation=binance_liquidation() if binance else None)
    if fund:
        ex.seed_ledger("insurance", fund * USDC)
    mm = ex.open_account(100_000 * USDC)
    for s in ("BTC", "ETH"):
        for k in range(40):
            ex.limit(mm, s, "buy", 300, 9_990 - 25 * k)
            ex.limit(mm, s, "sell", 300, 10_010 + 25 * k)
    traders = []
    for i in range(6):
        t = ex.open_account(20 * USDC)
        sym = "BTC" if i % 2 else "ETH"
        ex.set_margin_mode(t, sym, modes[i])
        ex.set_leverage(t, sym, levs[i])
        lots = 20 * USDC * levs[i] // (10 * 10_500) // 2
        try:
            ex.market_order(t, sym, "buy" if sides[i] else "sell", max(1, lots))
        except InsufficientFunds:
            pass
        traders.append(t)
    ex.check_conservation()
    marks = {"BTC": 10_000, "ETH": 10_000}
    for step, mv in enumerate(moves):
        sym = "BTC" if step % 2 else "ETH"
        marks[sym] = max(100, marks[sym] + mv)
        ex.now += 5_000_000
        ex.set_mark(sym, marks[sym])
        ex.check_conservation()  # includes open interest long == short in every market
        # liquidation runs on mark updates: once every market has had one since the last trade, nobody is missed
        other = "ETH" if sym == "BTC" else "BTC"
        ex.set_mark(other, marks[other])
        ex.check_conservation()
        eng = ex.risk
        assert ex.ledgers["insurance"] >= 0  # the fund never goes below zero: what it cannot pay, ADL does
        for a in ex.accounts.values():
            if a.id in (eng.vault, eng.fund_account):
                continue
            units = {(a.id, CROSS_UNIT)} | {(a.id, i) for i, p in a.positions.items() if p.mode != 0}
            for u in units:
                if eng.positions(a, u):
                    # the trigger index missed nobody: every open unit is healthy or in a slice cooldown
                    # (keys of cross accounts split the margin buffer over markets; see abm.margin.engine)
                    assert u in eng.cooling or not eng.liquidatable(a, u), (u, step)
                else:
                    # a closed-out unit never holds negative money: bad debt was recorded and paid
                    money = a.balance if u[1] == CROSS_UNIT else a.positions[u[1]].margin
                    assert money >= 0


def test_funding_payment_rekeys_the_liquidation_index():
    ex = venue(vault=None)
    t = ex.open_account(1_000 * USDC)
    ex.set_margin_mode(t, "BTC", "isolated")
    ex.set_leverage(t, "BTC", 10)
    mm = open_long(ex, t, "BTC", 1_000)
    bids(ex, mm, "BTC", 9_990)
    before = ex.liquidation_price(t, "BTC")
    # a 9% funding print on 100 USDC notional: the long pays 9 USDC out of its 10 USDC margin
    res = ex.pay_funding("BTC", Fraction(9, 100), 10_000)
    assert res.paid == 9 * USDC and ex.position(t, "BTC").margin == USDC and ex.position(t, "BTC").funding == -9 * USDC
    assert ex.liquidation_price(t, "BTC") > before
    ex.set_mark("BTC", 10_000)  # same mark: the index was re-keyed by the payment, so this liquidates
    assert [e["kind"] for e in ex.liquidations.rows()] == ["book"]
    ex.check_conservation()


@settings(max_examples=300, deadline=None)
@given(a0=st.integers(-10**12, 10**12), size=st.integers(-10**6, 10**6).filter(bool), mult=st.sampled_from([1, 10, 1000]),
       table=st.sampled_from([BTC_TIERS, hyperliquid_tiers([(0, 10), (20_000, 5)]),
                              bracket_tiers([(0, 125, "0.004"), (50_000, 100, "0.005"), (250_000, 50, "0.01")])]))
def test_integer_trigger_key_equals_floor_or_ceil_of_the_exact_price(a0, size, mult, table):
    from math import ceil, floor

    from abm.margin.engine import liquidation_key, solve_liquidation_price

    exact = solve_liquidation_price(a0, 0, size, mult, table)
    key = liquidation_key(a0, size, mult, table)
    if exact is None:
        assert key is None
    else:
        assert key == (floor(exact) if size > 0 else ceil(exact))


def test_account_equity_is_cross_plus_isolated_equity_at_the_marks():
    ex = venue("BTC", "ETH", vault=None)
    t = ex.open_account(50 * USDC)
    ex.set_margin_mode(t, "ETH", "isolated")
    open_long(ex, t, "BTC", 100)
    open_long(ex, t, "ETH", 200)
    ex.set_mark("BTC", 10_300)
    ex.set_mark("ETH", 9_900)
    s = ex.margin_summary(t)
    assert ex.equity(t) == s["cross_equity"] + s["ETH"]["equity"]
    # by hand: 50 USDC deposit, zero fees; BTC +3.00 x 0.1, ETH -1.00 x 0.2 (1 lot at 1 tick = 10 units)
    assert ex.equity(t) == 50 * USDC + 100 * 300 * 10 - 200 * 100 * 10
    with pytest.raises(UnknownAccount) as e:
        ex.equity(10**9)
    assert e.value.field == "account" and e.value.value == 10**9
