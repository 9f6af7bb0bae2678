"""Amplification: a run beside its no-feedback control (``run.amplification``), in the summary and the sweep rows.

The control is the same scenario and seed with ``liquidation.process = "no_feedback"``; amplification is
the run's liquidated notional over the control's. Checked here against the two liquidation logs summed
independently, on a small crash with a leveraged crowd, a thin book and no arbitrageurs, where the
feedback more than doubles what is liquidated.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import abm
from abm.errors import InvalidInput
from abm.model import MarketModel
from abm.model.scenario import Scenario, parse_scenario
from abm.report import build_figure
from abm.results import load_run, save_run
from abm.scenarios import load_scenario
from abm.scenarios.identity import scenario_hash
from abm.scenarios.runner import control_scenario
from abm.sweeps import sweep
from tests.support import cli, crash_config

FEEDBACK_KINDS = ("book", "backstop", "adl")  # a liquidation's own rows; adl_counterparty and bad_debt are not


def _thin_crash(amplification: bool) -> Scenario:
    """The support models' -9% crash without the whale and the arbitrageurs, two market makers quoting small."""
    cfg = crash_config(duration_s=300, whale=False)
    cfg["agents"]["arbitrageur"]["count"] = 0
    cfg["agents"]["market_maker"].update(count=2, level_size=0.2)
    cfg["run"]["amplification"] = amplification
    return parse_scenario(cfg, "thin_crash")


def _units(liq, mult: int) -> int:
    """Liquidated notional of a log in quote units, summed here row by row."""
    rows = liq[liq["kind"].astype(str).isin(FEEDBACK_KINDS)]
    return sum(abs(int(s)) * int(p) * mult for s, p in zip(rows["size"], rows["price"]))


@pytest.fixture(scope="module")
def runs():
    amp = abm.run(_thin_crash(True))
    plain = abm.run(_thin_crash(False))
    control = MarketModel(control_scenario(_thin_crash(True))).run()
    return amp, plain, control


def test_the_field_is_left_out_of_the_dump_at_its_default():
    scn = load_scenario("whale_dump")
    assert "amplification" not in scn.model_dump(mode="json")["run"]
    on = load_scenario("whale_dump", {"run.amplification": True})
    assert on.model_dump(mode="json")["run"]["amplification"] is True
    assert scenario_hash(load_scenario("whale_dump", {"run.amplification": False})) == scenario_hash(scn)
    assert scenario_hash(on) != scenario_hash(scn)  # it changes what a run reports


def test_the_control_names_no_feedback_and_runs_no_control_of_its_own():
    ctl = control_scenario(_thin_crash(True))
    assert ctl.venue.overrides["liquidation.process"] == "no_feedback" and not ctl.run.amplification
    assert ctl.run.seed == _thin_crash(True).run.seed


def test_amplification_is_the_liquidated_notional_with_feedback_over_without(runs):
    amp, plain, control = runs
    s = amp.summary
    mult = amp.markets[0]["multiplier"]
    fb_units = _units(amp.liquidations, mult)
    ct_units = _units(control.tables()["liquidations"], mult)
    assert fb_units > 0 and ct_units > 0
    assert s["amplification"] == fb_units / ct_units
    assert s["control"]["liquidated_notional"]["total"] == ct_units / 10**6
    assert s["control"]["liquidated_notional"]["book"] == 0.0  # nothing of the control goes into a book
    assert s["amplification"] > 2  # a leveraged crowd, a thin book, no arbitrage: the feedback more than doubles it
    assert json.loads(json.dumps(s, allow_nan=False)) == s


def test_the_run_itself_is_the_run_without_the_control(runs):
    amp, plain, _ = runs
    extra = {k: v for k, v in amp.summary.items() if k not in plain.summary}
    assert set(extra) == {"control", "amplification"}
    assert {k: v for k, v in amp.summary.items() if k in plain.summary} == plain.summary
    assert amp.trades.equals(plain.trades) and amp.liquidations.equals(plain.liquidations)


def test_the_controls_steps_and_liquidations_are_kept_saved_and_drawn(runs, tmp_path):
    """The control's own tables, not only its totals: equal to running the control alone, written beside the run's
    and read back, and its mark drawn on the price panel; a run without the control has none."""
    amp, plain, control = runs
    alone = abm.run(control_scenario(_thin_crash(True)), report=False)
    assert amp.control_liquidations.equals(alone.liquidations) and amp.control_steps.equals(alone.steps)
    assert len(amp.control_liquidations) > 0 and set(amp.control_liquidations["kind"].astype(str)) <= {"backstop", "adl",
                                                                                                          "adl_counterparty", "bad_debt"}
    assert plain.control_steps.empty and plain.control_liquidations.empty
    folder = save_run(amp, tmp_path / "amp", "seed = 1\n")
    assert (folder / "control_steps.parquet").is_file() and (folder / "control_liquidations.parquet").is_file()
    back = load_run(folder)
    assert back.control_steps.equals(amp.control_steps) and back.control_liquidations.equals(amp.control_liquidations)
    assert not (save_run(plain, tmp_path / "plain", "seed = 1\n") / "control_steps.parquet").exists()
    (folder / "control_liquidations.parquet").unlink()
    with pytest.raises(InvalidInput, match="control_liquidations.parquet is missing"):
        load_run(folder)
    fig = build_figure(back)
    (prices,) = [a for a in fig.axes if a.get_label() == "prices"]
    (dashed,) = [ln for ln in prices.lines if ln.get_label().startswith("mark without feedback")]
    np.testing.assert_array_equal(dashed.get_ydata(), np.where(amp.control_steps["mark"] > 0, amp.control_steps["mark"],
                                                               np.nan))
    assert not any(ln.get_label().startswith("mark without") for ln in
                   [a for a in build_figure(plain).axes if a.get_label() == "prices"][0].lines)


def test_a_calm_run_has_no_amplification_when_its_control_liquidates_nothing(tmp_path):
    r = cli("run", "baseline", "--set", "run.duration_s=10", "--amplification", "--no-progress", "--out", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    assert "amplification (with / without feedback)" in r.stdout
    s = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert s["amplification"] is None and s["control"]["liquidated_notional"]["total"] == 0.0
    assert "amplification" in (tmp_path / "b" / "config.toml").read_text()  # the run folder repeats it


def test_sweep_rows_carry_the_control_and_the_amplification(tmp_path):
    grid = ["run.duration_s=450", "agents.long_crowd.count=60"]  # the slide is 300-420 s
    with_control = sweep("thin_market", grid, amplification=True, out=tmp_path / "a")
    without = sweep("thin_market", grid, out=tmp_path / "b")
    assert (with_control["error"] == "").all() and len(with_control) == 1
    assert with_control["seed"].tolist() == without["seed"].tolist()  # same runs, the control beside them
    row = with_control.iloc[0]
    assert row["liquidated_notional.total"] == without.iloc[0]["liquidated_notional.total"]
    ctl = row["control.liquidated_notional.total"]
    amp = row["amplification"]
    assert ctl > 0 and np.isclose(amp, row["liquidated_notional.total"] / ctl)
    assert "amplification" not in without.columns
    assert with_control["scenario_hash"].iloc[0] != without["scenario_hash"].iloc[0]


def test_a_sweep_that_fixes_the_control_cannot_also_vary_it(tmp_path):
    with pytest.raises(InvalidInput, match="--grid.*fixes for every run"):
        sweep("baseline", ["run.amplification=true,false"], amplification=True, out=tmp_path / "x")
    with pytest.raises(InvalidInput, match="amplification: must be True or False"):
        sweep("baseline", [], amplification="yes", out=tmp_path / "y")  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())
