"""The cross-venue spot arbitrageur keeps two simulated spot venues of one index together: a sale on one
venue is carried to the other through real orders on both books, within the costs of trading between
them; every unit stays conserved on both venues; bad venue names are refused by field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from abm.errors import InvalidInput
from abm.model import MarketModel
from abm.scenarios import load_scenario

MM = {"kind": "market_maker", "count": 2, "deposit_usdc": 2_000_000, "spot_inventory": 20.0, "reference": "mid",
      "max_inventory": 15.0}
NOISE = {"kind": "noise", "count": 10, "deposit_usdc": 1_000_000, "spot_inventory": 10.0}
TWO: dict[str, Any] = {
    "run.duration_s": 120, "agents.whale.start_s": 100, "markets[0].shocks": [], "markets[0].index": "venues",
    "spot": {"binance": {"weight": 3}, "okx": {"weight": 2}},
    "agents.mm_binance": {**MM, "venue": "binance"}, "agents.mm_okx": {**MM, "venue": "okx"},
    "agents.noise_binance": {**NOISE, "venue": "binance"}, "agents.noise_okx": {**NOISE, "venue": "okx"},
    # a seller on OKX alone: 6 BTC in 30 s
    "agents.okx_seller": {"kind": "whale", "count": 1, "venue": "okx", "execution": "twap", "side": "sell", "size": 6,
                          "start_s": 40, "duration_s": 30, "slice_s": 5, "deposit_usdc": 0, "spot_inventory": 6.0},
}
ARB = {"kind": "spot_arbitrageur", "count": 1, "venue": "binance", "other_venue": "okx", "spot_inventory": 10.0,
       "other_inventory": 0.0, "deposit_usdc": 0, "other_cash_usdc": 2_000_000, "clip": 0.5}


def run(extra: dict[str, Any]) -> tuple[MarketModel, np.ndarray]:
    m = MarketModel(load_scenario("whale_dump", {**TWO, **extra}, seed=7), audit=True)  # audit: both venues, every step
    gaps = []
    while m.running:
        m.step()
        a, b = (m.spot_venues[n].market("BTC/USDC").book.mid() for n in ("binance", "okx"))
        gaps.append(abs(a / b - 1) * 1e4 if a and b else np.nan)
    return m, np.array(gaps)


@pytest.fixture(scope="module")
def pair() -> tuple[tuple[MarketModel, np.ndarray], tuple[MarketModel, np.ndarray]]:
    return run({}), run({"agents.spot_arb": ARB})


def test_a_sale_on_one_venue_is_carried_to_the_other(pair: Any) -> None:
    (_, alone), (m, arbed) = pair
    window = slice(45, 100)  # during and after the OKX sale
    assert np.nanmedian(alone[window]) > 30  # on its own OKX falls away from Binance
    assert np.nanmedian(arbed[window]) < 0.5 * np.nanmedian(alone[window])
    (arb,) = m.agents_by_group["spot_arb"]
    assert arb.trades > 0
    binance, okx = m.spot_venues["binance"], m.spot_venues["okx"]
    sold = 10_000 - binance.account(arb.account).total_inventory(0)
    bought = okx.account(arb.other.account).total_inventory(0)
    assert sold > 0 and bought > 0  # it sold where BTC was rich and bought where it was cheap
    assert abs(sold - bought) <= 500 * max(1, arb.legs_short)  # the legs match but for legging risk
    for sx in (binance, okx):
        sx.check_conservation()


def test_the_spot_arbitrageur_is_not_a_perp_trader(pair: Any) -> None:
    (_, _), (m, _) = pair
    assert m.agents_by_role["spot_arbitrageur@binance"] == m.agents_by_group["spot_arb"]


@pytest.mark.parametrize("params, field", [
    ({"other_venue": None}, "agents.spot_arb.other_venue"),
    ({"other_venue": "binance"}, "agents.spot_arb.other_venue"),
    ({"other_venue": "kraken"}, "agents.spot_arb.other_venue"),
    ({"venue": None}, "agents.spot_arb.venue"),
])
def test_bad_venues_are_refused_by_field(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as e:
        MarketModel(load_scenario("whale_dump", {**TWO, "agents.spot_arb": {**ARB, **params}}, seed=7))
    assert e.value.field == field
