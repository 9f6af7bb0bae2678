"""Venue rules in whole runs: switched on, a catalogue scenario runs and records what they refused; rules that
never bite change nothing; none named is today's run."""

from __future__ import annotations

from abm.results.fingerprint import fingerprint
from abm.scenarios.runner import run

WHALE = {"run.duration_s": 320}  # the whale sells its 80 BTC block at t = 300 s


def test_a_catalogue_run_with_rules_splits_the_block_below_the_limit():
    """The whale reads the venue's maximum market-order value (1,000,000 USDC for a 40x market) through its context
    and sends its 80 BTC block (about 4.8 M USDC) as children within it: none is refused."""
    from abm.model import MarketModel
    from abm.scenarios import load_scenario

    r = run("whale_dump", WHALE, seed=7, report=False)
    rules = {**WHALE, "venue.rules": ["min_order_value", "max_market_order_value"]}
    model = MarketModel(load_scenario("whale_dump", rules, seed=7))
    model.run()
    (whale,) = model.agents_by_group["whale"]
    limit = whale.ctx.order_limits("BTC-PERP").max_market_order_value
    assert limit == 1_000_000 * 10**6
    mark = model.exchange.risk.marks[0]
    assert len(whale.orders) == len({o["oid"] for o in whale.orders}) >= 5  # ceil(4.8 M / 1 M) children at least
    assert sum(o["qty"] for o in whale.orders) == 80_000 and whale.flow_refusals == 0
    assert max(o["qty"] for o in whale.orders) * 600_000 * 100 <= limit * 61 // 60  # each about 1/5 of the block
    assert mark > 0 and sum(o["filled"] for o in whale.orders) > 0
    on = run("whale_dump", rules, seed=7, report=False)
    rejects = on.accounts.groupby("group")["rejects"].sum()
    assert rejects["whale"] == r.accounts.groupby("group")["rejects"].sum()["whale"]
    unfilled = [u for u in on.summary["unfilled"] if u["group"] == "whale"]
    assert all("max_market_order_value" not in u["reason"] for u in unfilled)
    assert on.config["venue"]["rules"] == ["min_order_value", "max_market_order_value"]


def test_rules_that_never_bite_and_no_rules_change_nothing():
    base = fingerprint(run("baseline", {"run.duration_s": 60}, seed=3, report=False))
    empty = fingerprint(run("baseline", {"run.duration_s": 60, "venue.rules": []}, seed=3, report=False))
    loose = {"run.duration_s": 60, "venue.rules": ["open_interest_cap"],
             "venue.overrides": {"tiers.btc.max_open_interest": 10**12}}
    assert empty == base
    assert fingerprint(run("baseline", loose, seed=3, report=False)) == base


def test_a_run_folder_repeats_a_run_with_rules(tmp_path):
    ov = {**WHALE, "venue.rules": ["max_market_order_value"]}
    first = run("whale_dump", ov, seed=7, out=tmp_path / "run", report=False)
    venue_toml = (tmp_path / "run" / "venue.toml").read_text()
    assert 'rules = [\n    "max_market_order_value",\n]' in venue_toml or 'rules = ["max_market_order_value"]' in venue_toml
    again = run(tmp_path / "run" / "config.toml", report=False)
    assert fingerprint(again) == fingerprint(first)
