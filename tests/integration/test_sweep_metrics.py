"""Sweep rows with a user's metrics function and named groups' agent reports; a user's module in the current
folder found without PYTHONPATH, by the command line and by its worker processes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import abm
from abm.analysis import agent_report
from abm.errors import InvalidInput
from abm.scenarios import load_scenario
from abm.scenarios.runner import run_model
from abm.sweeps import read_rows, sweep
from tests.support import ABM, REPO, without_wall_time

SCENARIO = (REPO / "scenarios" / "baseline.toml").read_text().replace("duration_s = 900", "duration_s = 30") \
    + '\n[agents.mine]\nkind = "my_agent:Buyer"\n'
AGENT = """
from abm.agents import Trader

class Buyer(Trader):
    kind = "buyer"
    def start(self):
        self.wake_in(5_000_000)
    def on_wake(self, t):
        self.market(0, 2, slippage_bps=100)
"""
METRICS = """
import numpy as np

def measure(result, model):
    return {"trades": len(result.trades), "groups": np.int64(len(model.agents_by_group)),
            "first_mark": float(result.steps["mark"].iloc[0])}

def bad(result, model):
    return {"series": [1, 2]}
"""


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A user's folder with an agent module, a metrics module and a scenario naming them; the path restored."""
    (tmp_path / "my_agent.py").write_text(AGENT)
    (tmp_path / "my_metrics.py").write_text(METRICS)
    (tmp_path / "mine.toml").write_text(SCENARIO)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    for name in ("my_agent", "my_metrics"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return tmp_path


def test_command_line_sweep_finds_the_folders_modules_and_fills_the_columns(folder):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    cmd = [ABM, "sweep", "mine.toml", "--grid", "agents.noise.count=20,30", "--workers", "2", "--out", "s",
           "--metrics", "my_metrics:measure", "--agent-report", "mine", "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=folder, env=env)
    assert r.returncode == 0, r.stderr
    rows = read_rows(folder / "s")
    assert len(rows) == 2 and (rows["error"] == "").all()
    for _, row in rows.iterrows():  # each row against the same run made here, independently
        scn = load_scenario("mine.toml", {"agents.noise.count": int(row["param.agents.noise.count"]),
                                          "agents.mine.journal": True}, int(row["seed"]))
        result, model = run_model(scn)
        assert row["metric.trades"] == len(result.trades) and row["metric.groups"] == 5
        assert row["metric.first_mark"] == float(result.steps["mark"].iloc[0])
        report = agent_report(model, model.agents_by_group["mine"][0])
        assert row["agent.mine.orders"] == report["orders"] == 1
        assert row["agent.mine.filled_base"] == pytest.approx(report["filled_base"]) and report["filled_base"] > 0

    # the same folder with other metrics is another sweep: refused by name, nothing written
    other = [c for c in cmd if c not in ("--agent-report", "mine")]
    r = subprocess.run(other, capture_output=True, text=True, timeout=120, cwd=folder, env=env)
    assert r.returncode != 0 and "row metrics" in r.stderr and "Traceback" not in r.stderr


def test_a_module_found_nowhere_says_where_it_looked(folder):
    with pytest.raises(InvalidInput, match="nor in the current folder .*add that folder to PYTHONPATH"):
        abm.run(folder / "mine.toml", {"agents.mine.kind": "not_here:Buyer"})


def test_the_current_folder_never_shadows_an_installed_module(folder):
    (folder / "colorsys.py").write_text("raise SystemExit('shadowed')\n")
    with pytest.raises(InvalidInput, match="must name a class defined in colorsys .*colorsys.py"):
        abm.run(folder / "mine.toml", {"agents.mine.kind": "colorsys:Nope"})
    assert str(folder) not in sys.path


@pytest.mark.parametrize("kwargs, message", [
    ({"metrics": "my_metrics:nope"}, "defines no 'nope'"),
    ({"metrics": "not a name"}, "--metrics"),
    ({"agent_report": ["ghost"]}, "--agent-report: must name an agent group .*got 'ghost'"),
    ({"agent_report": ["mine", "mine"]}, "each group once"),
])
def test_bad_row_metrics_are_named_before_any_run(folder, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        sweep("mine.toml", ["agents.noise.count=20"], out=folder / "bad", **kwargs)
    assert not (folder / "bad").exists()


def test_a_metrics_function_returning_a_non_scalar_fails_its_row_by_name(folder):
    rows = sweep("mine.toml", ["agents.noise.count=20"], out=folder / "b", metrics="my_metrics:bad")
    assert len(rows) == 1 and "'series' is a list" in rows["error"].iloc[0]


def test_the_metrics_reach_dask_workers_by_name(folder):
    kw = dict(metrics="my_metrics:measure", agent_report=["mine"])
    on_dask = sweep("mine.toml", ["agents.noise.count=20"], out=folder / "d", scheduler="local", **kw)
    local = sweep("mine.toml", ["agents.noise.count=20"], out=folder / "l", **kw)
    assert (on_dask["error"] == "").all() and on_dask["metric.trades"].iloc[0] > 0
    assert without_wall_time(on_dask).equals(without_wall_time(local))
