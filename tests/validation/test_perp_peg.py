"""The perpetual's peg to spot through funding and arbitrage: He, S., Manela, A., Ross, O. and von Wachter, V.
(2022), "Fundamentals of perpetual futures", arXiv:2212.06888, derive no-arbitrage bounds for a perpetual in
markets with trading costs: the perp-spot gap is arbitraged back inside a band set by the round-trip cost.
The band here is derived from the venue profile and the arbitrageur's costs, not taken from the paper.
Here the index is made by a simulated spot venue (``index = "venues"``, README "An index made by the
venues"), the arbitrageurs hedge through that venue's book (``spot_venue``), and funding is the Hyperliquid
profile's.

The bound, from the numbers: an arbitrageur sells the perp when its bid is at or above index x (1 + c) and
buys when its ask is at or below index x (1 - c), with c = the profile's taker fee (4.5 bps) + its
``spot_fee_bps`` (1) + half its ``spot_spread_bps`` (0.5) + ``threshold_bps`` (1) = 7 bps. While they have
capital, the perp's quotes cannot stay beyond c from the index, so neither can the mark. Funding adds at most
its clamp of the premium per interval (+-0.05% per 8 h on the profile: 0.0002 bps a second), which is
negligible against c over a run of minutes. Asserted: |mark / index - 1| <= c at every step of a calm run
(the ``whale_dump`` market without its whale, crowd or news). Measured (seed 7, 900 s): 1%-99% -0.7 to +1.5
bps, max 4.0 bps.

A perturbation decays: the same market with ``whale_dump``'s perp whale and its crowd (a market sale at 300 s
that walks the bids and liquidates longs) pushes the basis far outside c; it must be back inside c within
``RECOVERY_S`` of the shock's end and stay there to the end of the run. MISSES (strict xfail): in that run the
basis spikes to 10-119 bps for single steps before the sale (17 bps at 240 s) and after it to the end, from
the crowd's liquidations and the makers' pulls into a thin perp book; what holds (asserted) is the typical
basis: every 30 s median after the shock is 1.8-4.7 bps, inside c. (Not a test: a perp TWAP sale of 300 BTC
over 120 s without the crowd holds the basis at -3 to -6 bps, at the band's edge, while it lasts, with
single-step spikes of -131 bps when the perp book empties. A 60 BTC spot sale or an 80 BTC perp sale alone
does not leave the band: the books fill 14 and 37 BTC of them and the gap closes within a mark update.)
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

from abm.model import MarketModel
from abm.scenarios import load_scenario
from abm.venues import read_profile
from tests.validation.figures import figure_dir, page, save

SPOT = {
    "run.duration_s": 900, "markets[0].shocks": [], "markets[0].index": "venues",
    "spot": {"binance": {"weight": 1, "lending": 200.0, "borrow_bps_per_day": 5.0}},
    "agents.spot_mm": {"kind": "market_maker", "count": 3, "venue": "binance", "deposit_usdc": 2_000_000,
                       "spot_inventory": 20.0, "reference": "mid", "max_inventory": 15.0},
    "agents.spot_noise": {"kind": "noise", "count": 20, "venue": "binance", "deposit_usdc": 1_000_000,
                          "spot_inventory": 10.0},
    "agents.arbitrageur.spot_venue": "binance",
}
CALM = {**SPOT, "agents.whale.count": 0, "agents.long_crowd.count": 0}
SHOCK_END_S = 360.0
RECOVERY_S = 120.0


@functools.lru_cache(maxsize=None)
def basis_bps(stressed: bool, seed: int = 7) -> tuple[pd.DataFrame, float]:
    """(the steps with the mark-index basis in bps, the arbitrageurs' bound c in bps)."""
    m = MarketModel(load_scenario("whale_dump", SPOT if stressed else CALM, seed=seed)).run()
    df = m.steps_frame()
    df["basis_bps"] = (df["mark"] / df["index"] - 1) * 1e4
    arb = m.agents_by_group["arbitrageur"][0]
    taker = read_profile("hyperliquid")[0]["fees"]["taker_bps"]  # the profile's number, 4.5
    c = float(taker) + arb.p.spot_fee_bps + arb.p.spot_spread_bps / 2 + arb.p.threshold_bps
    assert c == pytest.approx(arb.trade_cost_bps + arb.p.threshold_bps)  # the agent's own cost is the profile's
    return df, c


def _figure(df: pd.DataFrame, c: float, name: str) -> None:
    if figure_dir() is None:
        return
    fig, (a1, a2) = page(2)
    a1.plot(df["time_s"], df["basis_bps"], lw=0.7)
    a1.axhspan(-c, c, color="0.9", label=f"fees + threshold: +-{c:g} bps")
    a1.set(xlabel="s", ylabel="mark / index - 1 (bps)", title=f"perp peg: {name}")
    a1.legend(fontsize=8)
    a2.hist(df["basis_bps"].dropna(), bins=80)
    a2.set(xlabel="basis (bps)", title="distribution")
    save(fig, f"perp_peg_{name}")


def test_calm_basis_stays_inside_the_fee_band() -> None:
    df, c = basis_bps(False)
    _figure(df, c, "calm")
    worst = float(np.nanmax(np.abs(df["basis_bps"])))
    assert worst <= c, f"max |basis| {worst:.2f} bps beyond the band {c:g} bps"


@pytest.mark.slow
def test_after_a_perturbation_the_typical_basis_is_back_in_the_band() -> None:
    df, c = basis_bps(True)
    after = df[df["time_s"] >= SHOCK_END_S]
    medians = after.groupby((after["time_s"] // 30).astype(int))["basis_bps"].median()
    assert float(medians.abs().max()) <= c, f"30 s median basis after the shock {medians.round(2).tolist()}, band {c:g}"


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="the basis does not settle: one-step spikes of 40-119 bps recur to the run's "
                   "end (max 119 bps at 870 s) while 30 s medians stay 1.8-4.7 bps, inside the 7 bps band")
def test_a_perturbed_basis_decays_back_into_the_band() -> None:
    df, c = basis_bps(True)
    _figure(df, c, "whale")
    peak = float(np.nanmax(np.abs(df["basis_bps"])))
    assert peak > 2 * c, f"the whale did not perturb the basis (peak {peak:.1f} bps): the test would mean nothing"
    after = df[df["time_s"] >= SHOCK_END_S + RECOVERY_S]["basis_bps"]
    worst = float(np.nanmax(np.abs(after)))
    assert worst <= c, f"{RECOVERY_S:g} s after the shock |basis| reaches {worst:.2f} bps, band {c:g} bps"
