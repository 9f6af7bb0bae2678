"""Scenario files without a run: the catalogue loads and round-trips, overrides change exactly the named fields,
bad files and overrides name the path."""

from __future__ import annotations

import tomllib

import pytest

from abm.errors import InvalidInput
from abm.model.scenario import parse_scenario
from abm.scenarios import InvalidScenario, catalogue, load_scenario, parse_set, to_toml


def test_catalogue_scenarios_load_and_round_trip():
    names = catalogue()
    assert {"baseline", "whale_dump"} <= set(names)
    for name in names:
        scn = load_scenario(name)
        assert scn.description.strip(), name
        again = parse_scenario(tomllib.loads(to_toml(scn)), "round trip")
        assert again == scn


def test_overrides_change_exactly_the_named_fields():
    base = load_scenario("whale_dump")
    scn = load_scenario("whale_dump", parse_set(["agents.whale.size=120", "markets[0].sigma=0.8", "run.seed=3"]))
    assert scn.agents["whale"]["size"] == 120 and scn.markets[0].sigma == 0.8 and scn.run.seed == 3
    assert scn.agents["long_crowd"] == base.agents["long_crowd"] and scn.funds == base.funds
    assert load_scenario("whale_dump", seed=9).run.seed == 9


@pytest.mark.parametrize("data, message", [
    ({"name": "x", "rn": {}}, "rn: unknown key; did you mean 'run'?"),
    ({"name": "x", "run": {"duration_s": -5}}, "run.duration_s: "),
    ({"name": "x", "run": {"seed": "one"}}, "run.seed: "),
    ({"name": "x", "markets": [{"sigma": -1}]}, "markets[0].sigma: "),
    ({"name": "x", "agents": {"market_maker": {"pull_vol": -1}}}, "agents.market_maker.pull_vol: "),
    ({"name": "x", "agents": {"market_maker": {"gama": 0.1}}}, "agents.market_maker.gama: unknown parameter; did you mean 'gamma'?"),
    ({"name": "x", "agents": {"dolphins": {"count": 3}}}, "agents.dolphins.kind: "),
    ({"name": "x", "agents": {"noise": {"count": -2}}}, "agents.noise.count: must be a non-negative integer"),
    ({"name": "x", "agents": {"noise": {"symbol": "ETH-PERP"}}}, "agents.noise.symbol: must be one of ['BTC-PERP']"),
])
def test_bad_scenarios_name_the_path(data, message):
    with pytest.raises(InvalidScenario) as e:
        parse_scenario(data, "test")
    assert message in str(e.value)


def test_unknown_override_path_and_unknown_scenario():
    with pytest.raises(InvalidScenario, match="did you mean"):
        load_scenario("whale_dump", {"agents.whale.size": 1, "rum.seed": 2})
    with pytest.raises(InvalidInput, match="did you mean 'whale_dump'"):
        load_scenario("whale_dumb")


def test_only_an_explicitly_named_class_is_imported(tmp_path):
    scn = parse_scenario({"name": "x", "agents": {"mine": {"kind": "abm.agents.noise:NoiseTrader", "count": 2}}}, "t")
    assert scn.agents["mine"]["kind"] == "abm.agents.noise:NoiseTrader"
    with pytest.raises(InvalidScenario, match="agents.mine.kind"):
        parse_scenario({"name": "x", "agents": {"mine": {"kind": "os:system"}}}, "t")


def test_bad_correlation_is_named():
    data = {"name": "x", "markets": [{"symbol": "A"}, {"symbol": "B"}], "correlation": [[1, 2], [2, 1]]}
    with pytest.raises(InvalidScenario, match="correlation"):
        parse_scenario(data, "t")


def test_basket_params_are_checked():
    with pytest.raises(InvalidScenario, match=r"agents\.b\.side: must be 'long' or 'short'"):
        parse_scenario({"name": "x", "agents": {"b": {"kind": "basket", "side": "up"}}}, "t")
    with pytest.raises(InvalidScenario, match=r"agents\.b\.leverage"):
        parse_scenario({"name": "x", "agents": {"b": {"kind": "basket", "leverage": 0}}}, "t")
