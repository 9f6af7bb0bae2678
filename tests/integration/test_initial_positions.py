"""A run that starts with open interest in place: a shock liquidates the thin-margined part of the crowd's initial
positions, with conservation checked after every step (``[[initial_positions]]``, abm.model.initial)."""

from __future__ import annotations

import numpy as np

from abm.accounts.ledgers import conservation_gap
from abm.model import MarketModel


def test_a_shock_liquidates_the_high_leverage_initial_positions_first():
    cfg = {"name": "ip_shock", "run": {"duration_s": 120.0, "seed": 3},
           "markets": [{"process": "gbm", "sigma": 0.3, "shocks": [{"start_s": 20.0, "duration_s": 30.0, "pct": -20.0}]}],
           "agents": {"mm": {"kind": "market_maker", "count": 3, "deposit_usdc": 2_000_000},
                      "noise": {"kind": "noise", "count": 10},
                      "crowd": {"kind": "leveraged", "count": 60, "deposit_usdc": 0, "signal": "long", "wake": "none",
                                "funding_exit_bps": None, "exit_on_signal": False},
                      "lp": {"kind": "noise", "count": 2, "deposit_usdc": 0, "wake": "none"}},
           "initial_positions": [{"group": "crowd", "counterparty": "lp", "notional_usdc": 3_000_000.0,
                                  "long_share": 1.0, "size": {"dist": "lognormal", "sigma": 0.8},
                                  "leverage": {"dist": "pareto", "alpha": 0.6, "min": 2, "max": 40},
                                  "entry_spread_pct": 1.0, "margin_mode": "mixed"}]}
    m = MarketModel(cfg, audit=True)
    assert conservation_gap(m.exchange) == 0  # before the first event
    m.run()
    assert conservation_gap(m.exchange) == 0
    crowd = m.agents_by_group["crowd"]
    hold = m.initial_holdings[("crowd", "BTC-PERP")]
    liquidated = np.array([a.liquidations > 0 for a in crowd])
    lev = np.array([h.leverage for h in hold])
    assert 0 < liquidated.sum() < len(crowd)  # some, not all
    # the mark falls ~11 %: every position worth under 1/15 of its notional at s0 goes, none worth 1/5 or more
    assert 0.85 < m.steps_frame()["mark"].min() / 60_000 < 0.92
    assert liquidated[lev >= 15].all()
    assert not liquidated[lev <= 5].any()
    liq = m.tables()["liquidations"]
    crowd_accounts = {a.account for a in crowd}
    assert set(liq["account"]) & crowd_accounts
    assert (liq["time_us"] > 20_000_000).all()  # nothing before the shock: the start is at equilibrium
