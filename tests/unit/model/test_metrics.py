"""The per-step metric registry: a user's metric becomes a column; the market-maker and leveraged
metrics count agents by role, so a user's subclass of a built-in kind counts where the built-in does."""

from __future__ import annotations

import math

import pytest

from abm.accounts.account import CROSS
from abm.agents.leveraged import LeveragedTrader
from abm.agents.market_maker import MarketMaker
from abm.errors import InvalidInput
from abm.model import MarketModel, register_metric, registered_metrics, role_of, unregister_metric
from abm.model.reporters import BUILTIN_METRICS, column_names
from tests.support import group, market, scenario


class MyMaker(MarketMaker):
    """A user's market maker: the built-in's behaviour under another kind name."""


class NotAMaker(MarketMaker):
    role = "research"  # declares its own role: not counted as a market maker


class MyLeveraged(LeveragedTrader):
    pass


TWO = (market(), market(symbol="ETH-PERP", s0=3_000.0, tick_size="0.01", lot_size="0.01"))


def model(makers: str = "market_maker", markets=TWO, duration: float = 30) -> MarketModel:
    agents = (group("noise", 10, {}), group(makers, 2, {}, name="makers"))
    return MarketModel(scenario(seed=4, duration_s=duration, markets=markets, agents=agents))


@pytest.fixture
def registered():
    """Metrics a test registers, removed afterwards (the registry is process-wide)."""
    names: list[str] = []

    def add(name, fn, per_market=True):
        register_metric(name, fn, per_market=per_market)
        names.append(name)

    yield add
    for n in names:
        unregister_metric(n)


def test_a_users_metric_is_a_column_per_market_or_global(registered):
    registered("book_orders", lambda m, i: len(m.views[m.symbols[i]]))
    registered("step_events", lambda m: m.sched.processed, per_market=False)
    m = model().run()
    steps = m.steps_frame()
    cols = list(steps.columns)
    # built-ins keep their place: user globals after the built-in globals, user market metrics at each market's end
    assert cols[:5] == ["time_s", "insurance_fund", "vault_equity", "conservation_gap", "step_events"]
    per_market = [c for c in BUILTIN_METRICS if c not in ("time_s", "insurance_fund", "vault_equity", "conservation_gap")]
    assert cols[5:5 + len(per_market) + 1] == [*per_market, "book_orders"]
    assert cols[-1] == "book_orders[ETH-PERP]" and "index[ETH-PERP]" in cols
    assert len(steps) == 30 and steps["book_orders"].iloc[-1] == len(m.views["BTC-PERP"]) > 0
    assert steps["book_orders[ETH-PERP]"].iloc[-1] == len(m.views["ETH-PERP"])  # every agent trades the first market
    assert steps["step_events"].is_monotonic_increasing and steps["step_events"].dtype.kind == "i"


def test_a_model_keeps_the_columns_of_the_registry_it_was_built_with(registered):
    before = model(duration=5)
    registered("late", lambda m, i: 1.0)
    after = model(duration=5)
    assert "late" not in before.run().steps_frame().columns
    assert after.run().steps_frame()["late"].tolist() == [1.0] * 5
    assert column_names(["A", "B"])[-1] == "late[B]"


def test_the_registry_refuses_bad_metrics_with_one_line(registered):
    registered("mine", lambda m, i: 0)
    for args, field in [(("mine", lambda m, i: 0), "already"), (("a[b]", lambda m, i: 0), "brackets"),
                        (("", lambda m, i: 0), "non-empty"), (("x", 3), "function"),
                        (("index", lambda m, i: 0), "already")]:
        with pytest.raises(InvalidInput, match=field):
            register_metric(*args)
    with pytest.raises(InvalidInput, match="per_market"):
        register_metric("y", lambda m: 0, per_market="no")
    with pytest.raises(InvalidInput, match="built-in"):
        unregister_metric("mid")
    with pytest.raises(InvalidInput, match="not registered"):
        unregister_metric("never")
    assert [m.name for m in registered_metrics()][:len(BUILTIN_METRICS)] == list(BUILTIN_METRICS)


def test_roles_are_inherited_and_map_the_kinds_that_declare_none():
    assert role_of(MyMaker) == role_of(MarketMaker) == "market_maker"
    assert role_of(MyLeveraged) == "leveraged" and role_of(NotAMaker) == "research"
    from abm.agents.noise import NoiseTrader

    assert role_of(NoiseTrader) == "background"


def test_a_users_market_maker_counts_in_the_market_maker_metrics():
    one = (market(),)
    builtin = model("market_maker", one).run()
    mine = model(f"{__name__}:MyMaker", one).run()
    other = model(f"{__name__}:NotAMaker", one).run()
    assert [type(a) for a in mine.agents_by_role["market_maker"]] == [MyMaker, MyMaker]
    assert "market_maker" not in other.agents_by_role and len(other.agents_by_role["research"]) == 2
    for m in (builtin, mine):
        s = m.steps_frame()
        assert s["mm_quoting"].iloc[-1] == 2 and s["mm_quoted_notional"].iloc[-1] > 0
    s = other.steps_frame()
    assert (s["mm_quoting"] == 0).all() and (s["mm_quoted_notional"] == 0).all()
    assert s["depth_bid_1pct"].iloc[-1] > 0  # the research makers quote all the same


def test_a_users_leveraged_trader_counts_in_the_leveraged_positions():
    cfg = scenario(seed=2, duration_s=120, agents=(group("noise", 20, {}), group("market_maker", 2, {}),
                                                     group(f"{__name__}:MyLeveraged", 30,
                                                                {"signal": "long", "entry_delay_s": 20.0, "margin_mode": "mixed"},
                                                                name="crowd")))
    m = MarketModel(cfg)
    for _ in range(40):  # the crowd has entered (after up to 20 s) and holds
        m.step()
    market = m.exchange.markets[0]
    held = {"cross": 0, "isolated": 0}
    for a in m.agents_by_group["crowd"]:
        pos = market.holders.get(a.account)
        if pos is not None and pos.size > 0:
            held["cross" if pos.mode == CROSS else "isolated"] += pos.size
    lot = float(market.spec.lot_size)
    assert held["cross"] > 0 and held["isolated"] > 0
    for mode, lots in held.items():
        assert math.isclose(m.metrics[f"lev_long_{mode}"], lots * lot)
