"""A full run with every agent kind: money conserved after every step, and the cascade mechanics visible."""

from __future__ import annotations

from abm.model import MarketModel
from tests.builders import group, market, scenario, shock


def full_config(seed: int = 11) -> dict:
    return scenario(
        seed=seed,
        duration_s=600,
        markets=(market(symbol="BTC-PERP", s0=60_000, sigma=0.4, shocks=(shock(240, 30, -9),)),),
        agents=(
            group("noise", 30, {"alpha": 0.005, "delta": 0.02}),
            group("market_maker", 5, {}),
            group("arbitrageur", 3, {}),
            # funding_exit_bps high: the crowd holds until the shock (churning in and out on funding in this
            # thin book liquidates some of it before the shock on a third of the seeds, with or without it)
            group("leveraged", 40, {"signal": "long", "entry_delay_s": 60, "leverage_min": 15,
                                         "leverage_max": 40, "margin_mode": "mixed", "funding_exit_bps": 1000}),
            group("whale", 1, {}),
        ),
    )


def test_every_kind_together_conserves_money_each_step_and_liquidates_the_crowd():
    model = MarketModel(full_config(), audit=True).run()  # audit: conservation checked after every step
    df = model.steps_frame()
    assert (df["conservation_gap"] == 0).all()
    liq = model.tables()["liquidations"]
    crowd = model.leveraged_accounts
    hit = liq[liq["account"].isin(crowd)]
    assert len(hit) > 0 and (hit["time_us"] >= 240e6).all()  # the crowd is liquidated after the shock, not before
    assert (hit["kind"] == "book").any()  # liquidations trade into the book
    crowd_oi = df["lev_long_cross"] + df["lev_long_isolated"]
    assert crowd_oi.iloc[-1] < 0.5 * crowd_oi.iloc[230]  # most of the leveraged long crowd is gone
    # every agent kind did something
    for kind, agents in model.agents_by_kind.items():
        acted = {a.account for a in agents}
        trades = model.tables()["trades"]
        assert trades["taker_account"].isin(acted).any() or trades["maker_account"].isin(acted).any(), kind


def test_full_run_is_deterministic():
    a = MarketModel(full_config(5)).run()
    b = MarketModel(full_config(5)).run()
    assert a.tables()["trades"].equals(b.tables()["trades"])
    assert a.tables()["liquidations"].equals(b.tables()["liquidations"])
