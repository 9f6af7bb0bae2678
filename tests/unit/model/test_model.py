"""The Mesa model: determinism, seeding per agent, conservation every step, data collection, batch_run."""

from __future__ import annotations

import inspect

import mesa
import pytest

from abm.errors import InvalidInput
from abm.model import MarketModel, stream
from tests.support import group, market, scenario, shock

NOISE = group("noise", 15, {})


def small(seed: int = 1, duration: float = 90, agents=(NOISE,), **kw) -> MarketModel:
    return MarketModel(scenario(seed=seed, duration_s=duration, agents=agents, **kw), audit=True)


def test_same_seed_same_tables_different_seed_differs():
    a, b, c = small(1).run(), small(1).run(), small(2).run()
    ta, tb, tc = a.tables(), b.tables(), c.tables()
    assert len(ta["trades"]) > 20
    assert ta["trades"].equals(tb["trades"]) and ta["funding"].equals(tb["funding"])
    assert a.steps_frame().equals(b.steps_frame())
    assert not ta["trades"].equals(tc["trades"])


def test_each_agent_has_its_own_stream_unchanged_by_other_groups():
    base = MarketModel(scenario(duration_s=5, agents=(NOISE,)))
    more = MarketModel(scenario(duration_s=5, agents=(group("noise", 3, {"mu": 0.5}, name="fast"), NOISE,
                                                         group("noise", 0, {}, name="none"))))
    # the 15 agents of group "noise" draw the same numbers in both models, whatever other groups exist
    s1 = [a.rng.bit_generator.state for a in base.agents_by_group["noise"]]
    s2 = [a.rng.bit_generator.state for a in more.agents_by_group["noise"]]
    assert s1 == s2 and len(s2) == 15
    assert more.agents_by_kind["noise"][:3] == more.agents_by_group["fast"]
    assert stream(1, "agent", "noise", 0).random() != stream(1, "agent", "whale", 0).random()


def test_conservation_and_metrics_every_step():
    m = small(3, duration=60, markets=(market(shocks=(shock(20, 10, -5),)),)).run()
    df = m.steps_frame()
    assert len(df) == 60 and (df["conservation_gap"] == 0).all()
    for col in ("index", "oracle", "mark", "mid", "spread_bps", "depth_bid_1pct", "depth_ask_2pct",
                "volume_taker_buy", "liq_book_count", "liq_adl_notional", "insurance_fund", "vault_equity",
                "funding_predicted", "open_interest", "mm_quoting", "lev_long_isolated"):
        assert col in df.columns
    # the scripted -5% move shows in the index and reaches the oracle within its 3 s cadence
    assert df["index"].iloc[35] < 0.96 * df["index"].iloc[15]
    assert df["oracle"].iloc[35] < 0.97 * df["oracle"].iloc[15]


def test_idle_agents_cost_no_events():
    idle = group("noise", 500, {"mu": 0, "alpha": 0, "delta": 0}, name="idle")
    a = small(4, duration=30).run()
    b = small(4, duration=30, agents=(NOISE, idle)).run()
    assert b.sched.processed == a.sched.processed  # 500 agents that never act add no events


def test_multi_market_columns():
    m = small(5, duration=10, markets=(market(), market(symbol="ETH-PERP", s0=3000, tick_size="0.01",
                                                                      tier_class="eth"))).run()
    df = m.steps_frame()
    assert "mark[ETH-PERP]" in df.columns and abs(df["index[ETH-PERP]"].iloc[-1] / 3000 - 1) < 0.05


def test_batch_run():
    kw = dict(parameters={"run.duration_s": [5.0], "run.seed": [1, 2]}, max_steps=100, display_progress=False,
              number_processes=1)
    if "rng" in inspect.signature(mesa.batch_run).parameters:
        rows = mesa.batch_run(MarketModel, rng=[None], **kw)  # Mesa 3.5 spells repetitions as rng
    else:
        rows = mesa.batch_run(MarketModel, iterations=1, **kw)  # Mesa 3.3
    assert {r["run.seed"] for r in rows} == {1, 2} and all(r["time_s"] == 5.0 for r in rows)  # ran to the end
    assert all("mark" in r for r in rows)


def test_bad_configuration_is_named():
    with pytest.raises(InvalidInput, match=r"agents\.dolphin\.kind: must be one of \['arbitrageur'"):
        MarketModel(scenario(agents=(group("dolphin", 1, {}),)))
    with pytest.raises(InvalidInput, match=r"agents\.noise\.muu.*did you mean 'mu'"):
        MarketModel(scenario(agents=(group("noise", 1, {"muu": 1}),)))
    with pytest.raises(InvalidInput, match=r"run\.durationn_s: unknown key; did you mean 'run\.duration_s'"):
        MarketModel(**{"run.durationn_s": 5})
    with pytest.raises(InvalidInput, match=r"^config: must be a Scenario, a mapping"):
        MarketModel([("run", {})])  # type: ignore[arg-type]
