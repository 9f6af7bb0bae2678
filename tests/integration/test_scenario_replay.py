"""The replay catalogue scenario (index from a shipped price file) and scenario scripts (.py)."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import abm
from abm.errors import InvalidInput
from abm.model import MarketModel
from abm.model.scenario import parse_scenario
from abm.scenarios import InvalidScenario, catalogue, load_scenario, scripts, to_toml
from tests.support import ABM, REPO, market, scenario

DATA = REPO / "scenarios" / "data" / "btc_1s_sample.csv"
SCRIPT = REPO / "scenarios" / "staircase_shock.py"


def _replay_data(**market) -> dict:
    return {"name": "x", "run": {"duration_s": 60}, "markets": [{"process": "replay", **market}]}


# ------------------------------------------------------------------------------------------ replay


def test_shipped_price_file_is_one_second_and_has_its_drop():
    df = pd.read_csv(DATA)
    assert list(df.columns) == ["time", "price"]
    assert 1200 <= df["time"].iloc[-1] <= 1800 and (np.diff(df["time"]) == 1).all()
    p = df["price"].to_numpy()
    assert p.min() < 0.95 * p[:900].min()  # the sharp drop after t = 900 s
    assert "synthetic" in (DATA.parent / "README.md").read_text().lower()
    assert "SYNTHETIC" in load_scenario("replay").description


def test_replay_scenario_index_is_the_file(tmp_path):
    res = abm.run("replay", {"run.duration_s": 240}, out=tmp_path / "r")
    df = pd.read_csv(DATA).set_index("time")["price"]
    steps = res.steps
    assert len(steps) == 240
    expected = df.loc[steps["time_s"].astype(int)].to_numpy()
    np.testing.assert_allclose(steps["index"].to_numpy(), expected, rtol=1e-12)
    # s0 is derived from the file; the saved config points at the file absolutely and repeats the run
    cfg = tomllib.loads((tmp_path / "r" / "config.toml").read_text())
    assert cfg["markets"][0]["s0"] == df.iloc[0]
    assert Path(cfg["markets"][0]["replay_file"]) == DATA.resolve()
    again = abm.run(tmp_path / "r" / "config.toml")
    assert again.steps["index"].equals(res.steps["index"]) and again.trades.equals(res.trades)


def test_replay_rescale_starts_at_s0_and_keeps_the_shape():
    scn = load_scenario("replay", {"run.duration_s": 30, "markets[0].replay_rescale": True, "markets[0].s0": 30000})
    m = MarketModel(scn)
    p = pd.read_csv(DATA)["price"].to_numpy()
    path = m.paths["BTC-PERP"]
    assert path.value_at(0) == pytest.approx(30000)
    assert path.value_at(20_000_000) == pytest.approx(p[20] * 30000 / p[0])


def test_replay_file_relative_to_the_scenario_folder(tmp_path):
    (tmp_path / "prices").mkdir()
    (tmp_path / "prices" / "p.csv").write_text("time,price\n" + "".join(f"{t},{100 + t}\n" for t in range(120)))
    (tmp_path / "s.toml").write_text('name = "s"\n[run]\nduration_s = 60\n'
                                     '[[markets]]\nprocess = "replay"\nreplay_file = "prices/p.csv"\n')
    scn = load_scenario(tmp_path / "s.toml")
    assert scn.markets[0].replay_file == str((tmp_path / "prices" / "p.csv").resolve()) and scn.markets[0].s0 == 100
    res = abm.run(scn)
    assert res.steps["index"].tolist() == [100.0 + t for t in range(1, 61)]


@pytest.mark.parametrize("market, message", [
    ({}, 'markets[0].replay_file: is required when process = "replay"'),
    ({"replay_file": "no/such.csv"}, "markets[0].replay_file: must be an existing .csv or .parquet file"),
])
def test_missing_replay_file_is_one_clear_error(market, message, tmp_path):
    with pytest.raises(InvalidScenario) as e:
        parse_scenario(_replay_data(**market), "t", base_dir=tmp_path)
    assert message in str(e.value) and len(e.value.problems) == 1
    if "replay_file" in market:
        assert str(tmp_path / "no" / "such.csv") in str(e.value)


def test_bad_csv_names_the_field_and_the_row(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,price\n0,100\n1,101\n2,102\n1.5,103\n3,104\n")
    with pytest.raises(InvalidScenario) as e:
        parse_scenario(_replay_data(replay_file=str(bad)), "t")
    (line,) = e.value.lines
    assert line.startswith("markets[0].replay_file: must be a valid price file: column 'time' row 3 (line 5 of the file)")
    assert "strictly increasing" in line and str(bad) in line


def test_replay_run_longer_than_the_file_and_explicit_s0_are_refused(tmp_path):
    short = tmp_path / "short.csv"
    short.write_text("time,price\n" + "".join(f"{t},100\n" for t in range(31)))
    with pytest.raises(InvalidScenario, match=r"run.duration_s: must be <= 30 s, the span of markets\[0\].replay_file"):
        parse_scenario(_replay_data(replay_file=str(short)), "t")
    with pytest.raises(InvalidScenario, match=r"markets\[0\].s0: is taken from markets\[0\].replay_file \(64250\)"):
        load_scenario("replay", {"markets[0].s0": 50000})


def test_market_config_checks_the_replay_file_too():
    with pytest.raises(InvalidInput, match=r"markets\[0\]\.replay_file: is required"):
        MarketModel(scenario(duration_s=10, markets=(market(process="replay"),)))
    with pytest.raises(InvalidInput, match=r"markets\[0\]\.replay_file: must be an existing"):
        MarketModel(scenario(duration_s=10, markets=(market(process="replay", replay_file="/no/such.csv"),)))
    cfg = scenario(duration_s=10, markets=(market(process="replay", replay_file=str(DATA)),))
    m = MarketModel(cfg)
    assert m.paths["BTC-PERP"].value_at(5_000_000) == pd.read_csv(DATA)["price"].iloc[5]


# ------------------------------------------------------------------------------------------ scripts

SUMMARY_LINES = ("staircase_shock: summary", "liquidation events", "bad debt (USDC)", "results: ")
RUN_FILES = ("steps.parquet", "trades.parquet", "liquidations.parquet", "funding.parquet", "config.toml",
             "summary.json", "meta.json", "report.png")


def _assert_complete(r: subprocess.CompletedProcess, out: Path) -> None:
    assert r.returncode == 0, r.stderr
    for text in SUMMARY_LINES:
        assert text in r.stdout, text
    for name in RUN_FILES:
        assert (out / name).is_file(), name
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["run"]["duration_s"] == 700 and len(cfg["markets"][0]["shocks"]) == 4


def test_script_runs_directly_with_the_command_line_options(tmp_path):
    out = tmp_path / "direct"
    r = subprocess.run([sys.executable, str(SCRIPT), "--set", "run.duration_s=700", "--out", str(out), "--no-progress"],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    _assert_complete(r, out)


def test_abm_run_accepts_a_script(tmp_path):
    out = tmp_path / "cli"
    r = subprocess.run([ABM, "run", str(SCRIPT), "--set", "run.duration_s=700", "--seed", "3",
                        "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    _assert_complete(r, out)
    assert tomllib.loads((out / "config.toml").read_text())["run"]["seed"] == 3


def test_script_schedule_is_the_formula():
    import runpy

    ns = runpy.run_path(str(SCRIPT))  # not __main__: defines, does not run
    scn = ns["scenario"]()
    shocks = scn.markets[0].shocks
    assert len(shocks) == 4 and "whale" not in scn.agents
    total = np.prod([1 + s.pct / 100 for s in shocks])
    assert total == pytest.approx(0.92)
    assert [s.start_s for s in shocks] == [300, 410, 520, 630]


def test_script_without_scenario_is_a_one_line_error(tmp_path):
    bad = tmp_path / "nothing.py"
    bad.write_text("x = 1\n")
    r = subprocess.run([ABM, "run", str(bad), "--no-progress"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("abm: error: scenario(): the script must define a function scenario()")
    r = subprocess.run([ABM, "run", str(tmp_path / "absent.py")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("abm: error: scenario:")


def test_script_returning_a_bad_scenario_is_validated(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from abm.scenarios import load_scenario\n"
                   "def scenario():\n"
                   "    return load_scenario('baseline').model_copy(update={'agents': {'noise': {'count': -1}}})\n")
    r = subprocess.run([ABM, "run", str(bad), "--no-progress"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "agents.noise.count: must be a non-negative integer" in r.stderr


def test_list_shows_replay_and_marks_scripts():
    assert "replay" in catalogue() and "staircase_shock" in scripts()
    r = subprocess.run([ABM, "list"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    assert "\nreplay\n" in r.stdout
    assert "staircase_shock  [script: abm run scenarios/staircase_shock.py]" in r.stdout


def test_replay_round_trips_through_toml():
    scn = load_scenario("replay")
    assert parse_scenario(tomllib.loads(to_toml(scn)), "round trip") == scn


def test_scripts_load_show_and_sweep_like_scenario_files():
    by_path = load_scenario(SCRIPT, {"run.duration_s": 700}, seed=9)
    by_name = load_scenario("staircase_shock", {"run.duration_s": 700}, seed=9)
    assert by_path == by_name and by_path.run.duration_s == 700 and by_path.run.seed == 9
    assert len(by_path.markets[0].shocks) == 4  # the script's computed staircase, not a file's
    r = subprocess.run([ABM, "show", str(SCRIPT), "--set", "run.duration_s=700"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and tomllib.loads(r.stdout)["run"]["duration_s"] == 700
    from abm.sweeps import plan

    assert len(plan("staircase_shock", {"run.duration_s": [700, 800]}, {}, samples=1, seeds=1, base_seed=0)) == 2
    with pytest.raises(InvalidInput, match="run.duration_z"):
        load_scenario(SCRIPT, {"run.duration_z": 1})
