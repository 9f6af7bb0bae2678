"""The dashboard's model side (no plotting library): the controls a scenario offers, the overrides they make,
and the points a live run hands the panels; and that ``import abm`` needs no extra viz."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

from abm.dashboard.live import LiveRun, changed, controls
from abm.errors import InvalidInput
from abm.scenarios.catalogue import load_scenario
from tests.support import REPO


def test_the_controls_are_the_scenarios_main_parameters_with_its_values():
    scn = load_scenario("whale_dump")
    got = {c.path: c for c in controls(scn)}
    assert got["run.seed"].value == 7 and got["run.duration_s"].value == 900
    assert got["agents.whale.size"].value == 80
    assert got["agents.long_crowd.leverage_max"].value == 40
    assert got["agents.long_crowd.margin_mode"].choices == ("cross", "isolated", "mixed")
    assert "markets[0].oracle_delay_s" in got
    assert not any(p.startswith("agents.noise.") for p in got)  # only the kinds with main knobs


def test_the_positions_terms_are_controls_where_the_scenario_has_one():
    scn = load_scenario("baseline", {"agents.mine": {"kind": "position", "side": "short", "notional_usdc": 20000,
                                                     "leverage": 5, "deposit_usdc": 5000}})
    got = {c.path: c.value for c in controls(scn)}
    assert got["agents.mine.side"] == "short" and got["agents.mine.leverage"] == 5
    assert got["agents.mine.margin_mode"] == "isolated"  # the kind's default, shown as such


def test_only_changed_controls_become_overrides_and_unknown_ones_are_refused():
    scn = load_scenario("whale_dump")
    values = {c.path: c.value for c in controls(scn)}
    assert changed(scn, values) == {}
    values["agents.whale.size"] = 120
    assert changed(scn, values) == {"agents.whale.size": 120}
    with pytest.raises(InvalidInput, match="dashboard control"):
        changed(scn, {"agents.whale.colour": "red"})


def test_a_live_run_hands_over_each_step_once():
    run = LiveRun("baseline", {"run.duration_s": 5})
    assert run.step(3) == 3
    pts = run.take()
    assert pts["t"] == pytest.approx([1 / 60, 2 / 60, 3 / 60])
    assert all(len(v) == 3 for v in pts.values())
    assert math.isclose(pts["index"][0], 60000, rel_tol=0.01)
    assert run.take()["t"] == []  # taken already
    assert run.step(10) == 2 and not run.running  # the run ends at its duration
    assert len(run.take()["mark"]) == 2
    lad = run.ladder(5)
    assert lad["side"].count("bid") <= 5 and all(s < 0 for s, side in zip(lad["size"], lad["side"]) if side == "bid")
    assert all(b > 0 for b, side in zip(lad["bps"], lad["side"]) if side == "ask")


def test_a_live_run_is_the_run_abm_run_makes():
    """Stepping by hand changes nothing: the same scenario and seed give the same step table."""
    import abm

    run = LiveRun("baseline", {"run.duration_s": 20})
    while run.running:
        run.step(7)
    pts = run.take()
    ref = abm.run("baseline", {"run.duration_s": 20}).steps
    assert pts["mark"] == pytest.approx(ref["mark"].tolist(), rel=0, abs=0)
    assert pts["open_interest"] == ref["open_interest"].tolist()


def test_the_market_must_be_one_of_the_scenarios():
    with pytest.raises(InvalidInput, match="market"):
        LiveRun("baseline", market=3)


def test_switching_market_mid_run_gives_what_a_run_drawing_that_market_from_the_start_gives():
    over = {"run.duration_s": 400}
    switched = LiveRun("multi_market_contagion", over)
    assert switched.symbols == ["BTC-PERP", "ETH-PERP"]
    switched.step(25)
    switched.take()
    switched.set_market(1)
    assert switched.symbol == "ETH-PERP"
    switched.step(15)
    ref = LiveRun("multi_market_contagion", over, market=1)
    ref.step(40)
    got, want = switched.take(), ref.take()
    assert len(got["t"]) == 40 and got.keys() == want.keys()
    for k in want:  # the whole run of ETH so far, then its new steps; cumulative liquidations included
        assert got[k] == pytest.approx(want[k], nan_ok=True, rel=0, abs=0), k
    assert got["mark"][0] != pytest.approx(60_000, rel=0.5)  # ETH's prices, not BTC's
    with pytest.raises(InvalidInput, match="market: must be a market number from 0 to 1"):
        switched.set_market(2)


def test_abm_imports_without_the_extra_and_the_dashboard_names_it():
    code = ("import sys; sys.modules['panel'] = None; sys.modules['bokeh'] = None\n"
            "import abm, abm.dashboard, abm.cli\n"
            "from abm.dashboard.viz import VizMissing\n"
            "try:\n    abm.dashboard.show('baseline')\nexcept VizMissing as e:\n    print('MISSING', e)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "MISSING" in r.stdout and "pip install -e '.[viz]'" in r.stdout
