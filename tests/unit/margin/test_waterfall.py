"""The waterfall's last steps, who pays what in closed form: the vault's limits and ADL trigger, the insurance
fund's takeover, a fund that never goes below zero; and the scenario fields that set them."""

from __future__ import annotations

import pytest

from abm.errors import InvalidAmount
from abm.margin.params import LiquidationConfig
from abm.model import MarketModel
from abm.model.scenario import InvalidScenario
from tests.support import scenario
from tests.unit.margin.test_margin import USDC, _adl_setup, open_long, venue


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
