"""The waterfall's last steps, who pays what in closed form: the vault's limits and ADL trigger, the insurance
fund's takeover, a fund that never goes below zero; and the scenario fields that set them."""

from __future__ import annotations

import pytest

from abm.errors import InvalidAmount
from abm.margin.params import LiquidationConfig, binance_liquidation
from abm.model import MarketModel
from abm.model.scenario import InvalidScenario
from tests.support import scenario
from tests.unit.margin.test_margin import USDC, _adl_setup, bids, open_long, venue


def _isolated_long(ex, deposit: int = 1_000 * USDC, lots: int = 1_000) -> int:
    t = ex.open_account(deposit)
    ex.set_margin_mode(t, "BTC", "isolated")
    ex.set_leverage(t, "BTC", 10)
    open_long(ex, t, "BTC", lots)
    return t


def test_a_vault_past_its_loss_limit_hands_the_unit_to_adl_and_the_fund_pays_exactly_the_bad_debt():
    ex, acc = _adl_setup(LiquidationConfig())
    vault = ex.create_backstop_vault(100 * USDC, min_equity=101 * USDC)  # already past its loss limit
    ex.seed_ledger("insurance", 100 * USDC)  # enough for the debt: only the loss limit keeps the vault out
    ex.set_mark("BTC", 8_000)  # L: equity 6 - 12 = -6 USDC on 600 lots
    rows = ex.liquidations.rows()
    assert not any(r["kind"] == "backstop" for r in rows) and ex.position(vault, "BTC").size == 0
    # ranked B (300) then A (300) (scores in test_margin), at the mark; the fund pays the 6 USDC the mark leaves
    cps = [(r["account"], r["size"], r["price"]) for r in rows if r["kind"] == "adl_counterparty"]
    assert cps == [(acc["B"], 300, 8_000), (acc["A"], 300, 8_000)]
    assert [r["bad_debt"] for r in rows if r["kind"] == "bad_debt"] == [6 * USDC]
    assert ex.ledgers["insurance"] == 94 * USDC and ex.account(acc["L"]).balance == 0
    ex.check_conservation()


def test_a_vault_at_its_notional_limit_hands_the_unit_to_adl():
    ex, acc = _adl_setup(LiquidationConfig())
    # 600 lots at 80.00 are worth 48 USDC: a 40 USDC limit refuses them
    vault = ex.create_backstop_vault(1_000 * USDC, max_notional=40 * USDC)
    ex.seed_ledger("insurance", 100 * USDC)
    ex.set_mark("BTC", 8_000)
    kinds = [r["kind"] for r in ex.liquidations.rows()]
    assert "backstop" not in kinds and "adl" in kinds and ex.position(vault, "BTC").size == 0
    ex.check_conservation()


def test_a_vault_that_cannot_cover_its_losses_is_deleveraged_instead_of_staying_negative():
    ex = venue(vault=None)
    vault = ex.create_backstop_vault(1 * USDC)
    t = _isolated_long(ex)
    ex.set_mark("BTC", 9_050)  # equity 0.5 USDC < 2/3 MM: the vault takes 1,000 lots over at 90.50
    assert ex.position(vault, "BTC").size == 1_000 and ex.position(t, "BTC").size == 0
    ex.set_mark("BTC", 8_890)  # the vault: 1.5 USDC - 160 ticks x 0.01 USDC = -0.1 USDC < 0
    adl = [r for r in ex.liquidations.rows() if r["kind"] == "adl" and r["account"] == vault]
    assert adl and ex.position(vault, "BTC").size == 0
    # the empty fund pays nothing: the counterparty (the maker, short 1,000) takes the vault's position at its
    # bankruptcy price, 8890 + 0.1e6 / 10_000 = 8900 ticks, and the vault ends at exactly zero
    assert {r["price"] for r in adl} == {8_900}
    assert ex.account(vault).balance == 0 and ex.ledgers["insurance"] == 0
    ex.check_conservation()


def test_the_vault_adl_trigger_may_sit_above_zero():
    ex = venue(vault=None)
    vault = ex.create_backstop_vault(2 * USDC, adl_equity=2 * USDC)
    _isolated_long(ex)
    ex.set_mark("BTC", 9_050)  # taken over: the vault holds 2.5 USDC, above its trigger
    assert ex.position(vault, "BTC").size == 1_000
    ex.set_mark("BTC", 9_000)  # 2.5 - 50 ticks x 0.01 = 2.0 USDC: not below the trigger
    assert ex.position(vault, "BTC").size == 1_000
    ex.set_mark("BTC", 8_999)  # 1.99 USDC: below it, deleveraged at the mark (its equity covers it: no shift)
    adl = [r for r in ex.liquidations.rows() if r["kind"] == "adl" and r["account"] == vault]
    assert {r["price"] for r in adl} == {8_999} and ex.position(vault, "BTC").size == 0
    assert ex.account(vault).balance == 1_990_000
    ex.check_conservation()


def _binance(fund: int) -> tuple:
    ex = venue(liquidation=binance_liquidation(), vault=None)
    if fund:
        ex.seed_ledger("insurance", fund)
    t = ex.open_account(1_000 * USDC)
    ex.set_margin_mode(t, "BTC", "isolated")
    ex.set_leverage(t, "BTC", 10)
    maker = open_long(ex, t, "BTC", 1_000)  # 1,000 lots at 100.00 on 10 USDC margin; no bids: the book takes nothing
    return ex, t, maker


def _fund(ex) -> int:
    fid = ex.risk.fund_account
    return ex.ledgers["insurance"] + (ex.risk.equity(ex.account(fid), (fid, -1)) if fid is not None else 0)


@pytest.mark.parametrize("mark, bankruptcy_loss", [(8_500, 5 * USDC), (9_100, -1 * USDC)])
def test_binance_what_the_book_cannot_take_closes_against_the_fund_at_the_bankruptcy_price(mark, bankruptcy_loss):
    ex, t, _ = _binance(100 * USDC)
    # equity at the mark: 10 USDC + 1,000 lots x (mark - 10_000) ticks x 10 quote units; bankrupt at 90.00
    ex.set_mark("BTC", mark)
    rows = ex.liquidations.rows()
    assert [r["kind"] for r in rows] == (["backstop", "bad_debt"] if bankruptcy_loss > 0 else ["backstop"])
    fid = ex.risk.fund_account
    assert fid is not None and ex.position(fid, "BTC").size == 1_000 and ex.position(t, "BTC").size == 0
    # as a close at the bankruptcy price 90.00: the trader loses exactly its margin, the fund pays exactly the
    # loss beyond it (8_500: 5 USDC, a bad_debt row) or keeps what was left above it (9_100: 1 USDC)
    assert ex.account(t).balance == 990 * USDC and ex.position(t, "BTC").margin == 0
    assert _fund(ex) == 100 * USDC - bankruptcy_loss
    assert [r["bad_debt"] for r in rows if r["kind"] == "bad_debt"] == ([bankruptcy_loss] if bankruptcy_loss > 0 else [])
    assert not any(r["kind"] == "adl" for r in rows)
    ex.check_conservation()


def test_binance_a_fund_that_cannot_pay_hands_the_unit_to_adl_at_the_bankruptcy_price():
    ex, t, maker = _binance(4 * USDC)
    ex.set_mark("BTC", 8_500)  # 5 USDC of bad debt, 4 in the fund
    rows = ex.liquidations.rows()
    assert ex.risk.fund_account is None and [r["kind"] for r in rows] == ["adl", "adl_counterparty"]
    assert {r["price"] for r in rows} == {9_000} and ex.ledgers["insurance"] == 4 * USDC
    ex.check_conservation()


def test_binance_the_funds_account_sells_its_inventory_and_its_cash_goes_to_the_fund():
    ex, t, maker = _binance(100 * USDC)
    ex.set_mark("BTC", 8_500)  # the fund pays 5 USDC and holds 1,000 lots at 85.00
    fid = ex.risk.fund_account
    bids(ex, maker, "BTC", 8_490, levels=5)
    ex.now = ex.risk.unwind_interval_us  # the first slice is due: 20% at 84.90, within 1% of the mark
    ex.set_mark("BTC", 8_500)
    assert ex.position(fid, "BTC").size == 800
    # 200 lots x -10 ticks x 10 quote units realised: the account's cash moved to the ledger at once
    assert ex.account(fid).balance == 0 and ex.ledgers["insurance"] == 95 * USDC - 20_000
    ex.check_conservation()


def test_binance_a_fund_whose_inventory_loses_more_than_it_holds_is_deleveraged_and_stays_at_zero():
    ex, t, maker = _binance(5 * USDC)
    ex.set_mark("BTC", 8_500)  # the fund pays its whole 5 USDC and holds 1,000 lots at 85.00
    fid = ex.risk.fund_account
    assert ex.ledgers["insurance"] == 0 and ex.position(fid, "BTC").size == 1_000
    ex.set_mark("BTC", 8_400)  # its inventory: -1 USDC, more than the empty ledger holds
    adl = [r for r in ex.liquidations.rows() if r["kind"] == "adl" and r["account"] == fid]
    # the maker (short 1,000, ranked alone) takes the inventory at the account's bankruptcy price,
    # 8400 + 1e6 / 10_000 = 8500 ticks: the counterparty carries exactly the 1 USDC the fund cannot
    assert [(r["size"], r["price"]) for r in adl] == [(-1_000, 8_500)]
    assert ex.position(fid, "BTC").size == 0 and ex.account(fid).balance == 0 and ex.ledgers["insurance"] == 0
    ex.check_conservation()


def test_bad_vault_limits_are_refused_naming_the_argument():
    ex = venue(vault=None)
    with pytest.raises(InvalidAmount, match="adl_equity"):
        ex.create_backstop_vault(USDC, adl_equity=-1)
    with pytest.raises(InvalidAmount, match="max_notional"):
        ex.create_backstop_vault(USDC, max_notional=0)
    assert ex.risk.vault is None


def _model(funds: dict) -> MarketModel:
    cfg = scenario(duration_s=5.0)
    cfg["funds"] = {**cfg["funds"], **funds}
    return MarketModel(cfg)


def test_scenario_vault_limits_reach_the_engine():
    m = _model({"vault_usdc": 1_000.0, "vault_loss_limit_usdc": 400.0, "vault_adl_equity_usdc": 100.0,
                "vault_max_notional_usdc": 5_000.0, "vault_unwind_interval_s": 10.0, "vault_unwind_slippage_bps": 50})
    r = m.exchange.risk
    assert (r.vault_min_equity, r.vault_adl_equity, r.vault_max_notional) == (600 * USDC, 100 * USDC, 5_000 * USDC)
    assert (r.unwind_interval_us, r.unwind_slippage_bps) == (10_000_000, 50)


@pytest.mark.parametrize("funds, field", [
    ({"vault_usdc": 1_000.0, "vault_loss_limit_usdc": 2_000.0}, "funds.vault_loss_limit_usdc"),
    ({"vault_usdc": 1_000.0, "vault_adl_equity_usdc": 1_000.0}, "funds.vault_adl_equity_usdc"),
    ({"vault_usdc": 0.0, "vault_max_notional_usdc": 10.0}, "funds.vault_max_notional_usdc"),
    ({"vault_usdc": 1_000.0, "vault_unwind_slippage_bps": 10_000}, "funds.vault_unwind_slippage_bps"),
    ({"vault_usdc": 1_000.0, "vault_unwind_interval_s": 1e-9}, "funds.vault_unwind_interval_s"),
])
def test_bad_vault_fields_are_refused_naming_the_field(funds, field):
    with pytest.raises(InvalidScenario, match=field.replace(".", r"\.")):
        _model(funds)


def test_a_binance_gap_audited_step_by_step_the_fund_takes_what_it_can_then_adl_and_never_goes_below_zero():
    from abm.scenarios import load_scenario

    scn = load_scenario("insurance_depletion", {"venue.profile": "binance", "run.duration_s": 300}, seed=3)
    m = MarketModel(scn, audit=True).run()  # conservation checked after every step
    liq = m.exchange.liquidations.to_pandas()
    kinds = set(liq["kind"])
    assert {"backstop", "bad_debt", "adl"} <= kinds  # the fund took units over, paid their debt, then ran out
    first_adl = liq.index[liq["kind"] == "adl"][0]
    assert (liq.loc[:first_adl, "kind"] == "backstop").any()  # the fund went before ADL
    assert (liq["insurance_after"] >= 0).all() and (m.steps_frame()["insurance_fund"] >= 0).all()
    fid = m.exchange.risk.fund_account
    from abm.results.accounts import accounts_table

    assert fid is not None and accounts_table(m).set_index("account").loc[fid, "group"] == "insurance_fund"


def test_a_bad_insurance_takeover_is_refused_naming_the_profile_key():
    with pytest.raises(InvalidScenario, match=r"liquidation\.insurance_takeover.*yes"):
        MarketModel(scenario(duration_s=5.0, venue_overrides={"liquidation.insurance_takeover": "yes"}))
    hl = MarketModel(scenario(duration_s=5.0, venue_overrides={"liquidation.insurance_takeover": True}))
    assert all(p.liquidation.insurance_takeover for p in hl.exchange.risk.params.values())
