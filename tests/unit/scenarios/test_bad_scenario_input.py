"""Bad scenario input through the command line: one clean error naming the scenario's own field, before anything runs.

Each case is what a user could type (``--set`` on a catalogue scenario). ``abm show`` validates without
running, so a case that passes ``show`` but would fail (or hang, or do something else) in the run is
a defect: every one of these must be refused by ``show`` already, with exit code 2, no traceback, and
a message that names the field as the scenario file spells it. The cases are the ones a harness of
196 bad inputs found to end in a traceback, a run that never ends, or a silent coercion (issue 12).
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest
from click.testing import CliRunner

from abm.cli import main

CASES = [
    # (id, --set, the field the message must name, words it must contain)
    ("duration-bool", "run.duration_s=true", "run.duration_s", "must be a number, got true"),
    ("sigma-string", 'markets[0].sigma="0.5"', "markets[0].sigma", "must be a number"),
    ("seed-float", "run.seed=3.0", "run.seed", "must be an integer"),
    ("seed-negative", "run.seed=-1", "run.seed", "greater than or equal to 0"),
    ("step-rounds-to-zero", "run.step_s=1e-7", "run.step_s", "at least 1 µs"),
    ("step-too-many", "run.step_s=0.00001", "run.step_s", "at most 10,000,000"),
    ("duration-inf", "run.duration_s=inf", "run.duration_s", "finite"),
    ("duration-beyond-grid", "run.duration_s=6e6", "run.duration_s", "must be <= 4,999,939 s"),
    ("sigma-inf", "markets[0].sigma=inf", "markets[0].sigma", "finite"),
    ("sigma-nan", "markets[0].sigma=nan", "markets[0].sigma", "finite"),
    ("sigma-huge", "markets[0].sigma=1e300", "markets[0].sigma", "must be <= 100"),
    ("s0-inf", "markets[0].s0=inf", "markets[0].s0", "finite"),
    ("s0-huge", "markets[0].s0=1e300", "markets[0].s0", "64-bit money ceiling"),
    ("s0-below-tick", "markets[0].s0=0.01", "markets[0].s0", "at least one tick (0.1)"),
    ("oracle-delay-beyond-run", "markets[0].oracle_delay_s=1e7", "markets[0].oracle_delay_s", "run.duration_s"),
    ("oracle-interval-inf", "markets[0].oracle_interval_s=inf", "markets[0].oracle_interval_s", "finite"),
    ("oracle-interval-zero-us", "markets[0].oracle_interval_s=1e-9", "markets[0].oracle_interval_s", "1 µs"),
    ("insurance-inf", "funds.insurance_usdc=inf", "funds.insurance_usdc", "finite"),
    ("insurance-huge", "funds.insurance_usdc=1e30", "funds.insurance_usdc", "64-bit ceiling"),
    ("vault-inf", "funds.vault_usdc=inf", "funds.vault_usdc", "finite"),
    ("impact-inf", "markets[0].impact_notional_usdc=inf", "markets[0].impact_notional_usdc", "finite"),
    ("shock-pct-inf", "markets[0].shocks=[{start_s=10, duration_s=5, pct=inf}]", "markets[0].shocks[0].pct", "finite"),
    ("shock-after-end", "markets[0].shocks=[{start_s=1e5, duration_s=5, pct=-5}]", "markets[0].shocks[0].start_s",
     "never happens"),
    ("jump-mean-inf", "markets[0].jump_mean=inf", "markets[0].jump_mean", "finite"),
    ("outage-inf", "markets[0].oracle_outages_s=[[10, inf]]", "markets[0].oracle_outages_s[0][1]", "finite"),
    ("outage-after-end", "markets[0].oracle_outages_s=[[1e5, 2e5]]", "markets[0].oracle_outages_s[0]", "start before"),
    ("outage-not-a-pair", "markets[0].oracle_outages_s=[[10]]", "markets[0].oracle_outages_s[0]", "at least 2"),
    ("correlation-inf", "correlation=[[1, inf],[inf,1]]", "correlation[1][0]", "finite"),
    ("tick-not-a-number", 'markets[0].tick_size="abc"', "markets[0].tick_size", "must be a number"),
    ("tick-zero", 'markets[0].tick_size="0"', "markets[0].tick_size", "must be > 0"),
    ("lot-negative", 'markets[0].lot_size="-1"', "markets[0].lot_size", "must be > 0"),
    ("tier-class-unknown", 'markets[0].tier_class="nope"', "markets[0].tier_class", "must be one of"),
    ("mark-cadence-zero-us", "run.mark_cadence_s=1e-9", "run.mark_cadence_s", "1 µs"),
    ("kind-empty-module", 'agents.noise.kind=":X"', "agents.noise.kind", "module:Class"),
    ("kind-relative-module", 'agents.noise.kind=".x:Y"', "agents.noise.kind", "module:Class"),
    ("kind-list", 'agents.noise.kind=["a"]', "agents.noise.kind", "must be a string"),
    ("kind-table", "agents.noise.kind={a=1}", "agents.noise.kind", "must be a string"),
    ("kind-missing-module", 'agents.noise.kind="no_such_module_x:Y"', "agents.noise.kind", "no module named"),
    ("kind-module-without-class", 'agents.noise.kind="this:X"', "agents.noise.kind", "defines no 'X'"),
    ("name-nul", 'name="a\\u0000b"', "name", "it names the output folder"),
    ("name-absolute", 'name="/tmp/x"', "name", "it names the output folder"),
    ("name-parent", 'name="../../x"', "name", "it names the output folder"),
    ("venue-override-unknown", 'venue.overrides={"nope"=1}', "venue.overrides: nope", "unknown key"),
    ("venue-override-bad-value", 'venue.overrides={"fees.taker_bps"=-1}', "venue.overrides: fees.taker_bps", ""),
    ("venue-unknown", 'venue.profile="nowhere"', "venue.profile", "hyperliquid"),
    ("leverage-above-venue-max", "agents.long_crowd.leverage=100", "agents.long_crowd.leverage",
     "must be <= 40"),
    ("leverage-max-above-venue-max", "agents.long_crowd.leverage_max=60", "agents.long_crowd.leverage_max",
     "must be <= 40"),
    ("deposit-inf", "agents.noise.deposit_usdc=inf", "agents.noise.deposit_usdc", "finite"),
    ("deposits-beyond-ceiling", "agents.noise.deposit_usdc=1e30", "agents", "64-bit ceiling"),
    ("latency-inf", "agents.noise.entry_latency_ms=inf", "agents.noise.entry_latency_ms", "finite"),
    ("whale-after-end", "agents.whale.start_s=1e6", "agents.whale.start_s", "never act"),
    ("whale-size-inf", "agents.whale.size=inf", "agents.whale.size", "finite"),
    ("agents-too-many", "agents.noise.count=10000000000", "agents", "at most 1,000,000"),
    ("deep-toml", "run.seed=" + "[" * 60 + "]" * 60, "--set", "nest"),
]


@pytest.mark.parametrize("sets,field,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_refused_by_show_naming_the_field(sets, field, words):
    r = CliRunner().invoke(main, ["show", "whale_dump", "--set", sets])
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    out = r.output
    assert out.startswith("abm: error:") and "Traceback" not in out
    assert f"{field}:" in out and words in out, out


def test_a_module_is_not_run_to_find_out_it_has_no_such_class(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    (tmp_path / "sneaky_mod.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    r = CliRunner().invoke(main, ["show", "whale_dump", "--set", 'agents.noise.kind="sneaky_mod:Agent"'])
    assert r.exit_code == 2 and "defines no 'Agent'" in r.output
    assert not marker.exists()


def test_a_missing_scenario_file_says_so():
    for arg in ("missing.toml", "nowhere/missing.toml", "missing.py"):
        r = CliRunner().invoke(main, ["show", arg])
        assert r.exit_code == 2 and "file does not exist" in r.output, r.output


def test_a_nested_override_merges_instead_of_replacing_the_table():
    from abm.scenarios import load_scenario

    base = load_scenario("whale_dump")
    scn = load_scenario("whale_dump", {"run": {"seed": 3}})
    assert scn.run.seed == 3 and scn.run.duration_s == base.run.duration_s and scn.run.step_s == base.run.step_s
    whale = load_scenario("whale_dump", {"agents.whale": {"size": 7}}).agents["whale"]
    assert whale["size"] == 7 and {k: v for k, v in whale.items() if k != "size"} == \
        {k: v for k, v in base.agents["whale"].items() if k != "size"}


def test_an_absurd_but_legal_value_is_accepted_with_one_warning():
    from abm.model.checks import AbsurdValue
    from abm.scenarios import load_scenario

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):
            assert load_scenario("whale_dump", {"markets[0].sigma": 31}).markets[0].sigma == 31
    ours = [w for w in seen if issubclass(w.category, AbsurdValue)]
    assert len(ours) == 1 and "3,100 %/yr" in str(ours[0].message)
    r = subprocess.run([sys.executable, "-m", "abm.cli", "show", "whale_dump", "--set", "markets[0].sigma=32"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr.strip().splitlines() == [
        "abm: warning: markets[0].sigma = 32 is 3,200 %/yr annualised volatility (crypto crashes are 100-500 %/yr); "
        "accepted"]


def test_an_unusable_out_folder_is_refused_before_the_run(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out, words in ((blocker / "run", "is a file"), (tmp_path, "must not exist yet")):
        r = CliRunner().invoke(main, ["run", "baseline", "--no-progress", "--out", str(out)])
        assert r.exit_code == 2 and "out:" in r.output and words in r.output, r.output
        assert "summary" not in r.output  # nothing ran


def test_a_scenario_built_in_python_is_checked_like_a_file():
    import abm
    from abm.errors import InvalidInput
    from abm.scenarios import load_scenario

    scn = load_scenario("whale_dump")
    bad = scn.model_copy(update={"run": scn.run.model_copy(update={"step_s": 1e-9})})
    with pytest.raises(InvalidInput, match=r"run\.step_s: must be at least 1 µs"):
        abm.run(bad)


@pytest.mark.parametrize("content", [
    "time,price\n" + "".join(f"{t},{'SECRET' * 50 if t == 5 else 100}\n" for t in range(100)),  # one bad cell
    "SECRETHEADER" * 40 + ",x\n1,2\n",  # a header that is not ours
    "SECRET" * 10_000,  # not a table at all
])
def test_a_replay_file_is_not_echoed_beyond_the_offending_value(tmp_path, content):
    (tmp_path / "p.csv").write_text(content)
    scn = tmp_path / "s.toml"
    scn.write_text('name = "r"\n[run]\nduration_s = 60\n[[markets]]\nprocess = "replay"\nreplay_file = "p.csv"\n')
    r = CliRunner().invoke(main, ["show", str(scn)])
    assert r.exit_code == 2 and "markets[0].replay_file: must be a valid price file" in r.output
    assert r.output.count("SECRET") <= 13 and len(r.output) < 600, r.output  # at most one shortened value


def test_the_money_ceiling_counts_each_kinds_own_default_deposit():
    """100,000 whales at their default 50M USDC each pass the 64-bit ceiling (4.6e12 USDC): refused at load,
    named, though no table says deposit_usdc (it used to be counted at 10,000 USDC each)."""
    from abm.errors import InvalidInput
    from abm.scenarios import load_scenario

    with pytest.raises(InvalidInput, match=r"agents: funds and all agents' deposits .* must total <="):
        load_scenario("whale_dump", {"agents.whale.count": 100_000})
    load_scenario("whale_dump", {"agents.whale.count": 90_000})  # 4.5e12 USDC: within it
