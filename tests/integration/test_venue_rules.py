"""Venue rules in whole runs: switched on, a catalogue scenario runs and records what they refused; rules that
never bite change nothing; none named is today's run."""

from __future__ import annotations

from abm.results.fingerprint import fingerprint
from abm.scenarios.runner import run

WHALE = {"run.duration_s": 320}  # the whale sells its 80 BTC block at t = 300 s


def test_a_catalogue_run_with_rules_records_the_refused_block():
    r = run("whale_dump", WHALE, seed=7, report=False)
    on = run("whale_dump", {**WHALE, "venue.rules": ["min_order_value", "max_market_order_value"]}, seed=7, report=False)
    whale = [u for u in on.summary["unfilled"] if u["group"] == "whale"]
    assert len(whale) == 1 and whale[0]["filled"] == 0 and whale[0]["requested"] == 80
    # the reason names the rule, the profile key with its value and the block's value
    reason = whale[0]["reason"]
    assert "max_market_order_value" in reason and "orders.max_market_value[1].value = 1,000,000 USDC" in reason
    assert "USDC" in reason.rsplit("got", 1)[1]
    rejects = on.accounts.groupby("group")["rejects"].sum()
    assert rejects["whale"] == r.accounts.groupby("group")["rejects"].sum()["whale"] + 1
    assert all(u["filled"] > 0 for u in r.summary["unfilled"] if u["group"] == "whale")  # without the rule it sold
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
