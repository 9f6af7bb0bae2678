"""[randomize]: fields drawn per seed from their own streams, exact laws, overrides of drawn fields refused."""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest

import abm
from abm.errors import InvalidInput
from abm.model import MarketModel
from abm.model.randomize import Draw, draw, draws
from abm.scenarios import load_scenario
from abm.scenarios.catalogue import with_overrides
from abm.sweeps import sweep
from tests.support import ABM

BASE = """
name = "drawn"
[run]
duration_s = 30
[[markets]]
symbol = "BTC-PERP"
shocks = [{start_s = 10, duration_s = 5, pct = -5}]
[agents.noise]
count = 10
"""
RANDOMIZE = """
[randomize]
"markets[0].shocks[0].pct" = {dist = "uniform", low = -8, high = -2}
"agents.noise.count" = {dist = "normal", mean = 10, sd = 3, low = 1, round = true}
"""


@pytest.fixture
def scenario_file(tmp_path):
    p = tmp_path / "drawn.toml"
    p.write_text(BASE + RANDOMIZE)
    return p


def test_draws_are_per_seed_and_written_into_the_fields(scenario_file):
    one, again, other = (load_scenario(scenario_file, seed=s) for s in (1, 1, 2))
    assert one == again and one.markets[0].shocks[0].pct != other.markets[0].shocks[0].pct
    d = draws(one.randomize, 1)
    assert one.markets[0].shocks[0].pct == d["markets[0].shocks[0].pct"] and -8 <= d["markets[0].shocks[0].pct"] <= -2
    assert one.agents["noise"]["count"] == d["agents.noise.count"] and type(d["agents.noise.count"]) is int
    # parsing again (an override elsewhere, a saved config) draws the same values again
    assert with_overrides(one, {"run.duration_s": 20}).markets[0].shocks[0].pct == d["markets[0].shocks[0].pct"]


def test_each_path_has_its_own_stream(scenario_file, tmp_path):
    alone = tmp_path / "alone.toml"
    alone.write_text(BASE + '[randomize]\n"markets[0].shocks[0].pct" = {dist = "uniform", low = -8, high = -2}\n')
    for seed in range(5):
        assert (load_scenario(alone, seed=seed).markets[0].shocks[0].pct
                == load_scenario(scenario_file, seed=seed).markets[0].shocks[0].pct)


def test_truncated_normal_has_the_truncated_law():
    """Rejection gives the exact truncated law: its mean is mu + sd (phi(a) - phi(b)) / (Phi(b) - Phi(a))."""
    spec = Draw(dist="normal", mean=0.0, sd=1.0, low=-0.5, high=2.0)
    u = np.random.default_rng(0)
    x = np.array([draw(spec, u) for _ in range(20_000)])
    phi = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: (1 + math.erf(z / math.sqrt(2))) / 2  # noqa: E731
    mean = (phi(-0.5) - phi(2.0)) / (cdf(2.0) - cdf(-0.5))
    assert x.min() >= -0.5 and x.max() <= 2.0
    assert abs(x.mean() - mean) < 4 * x.std() / math.sqrt(len(x))
    logn = Draw(dist="lognormal", median=20.0, sigma=0.5)
    y = np.array([draw(logn, u) for _ in range(20_000)])
    assert abs(np.median(np.log(y)) - math.log(20.0)) < 4 * 0.5 * 1.2533 / math.sqrt(len(y))
    pick = Draw(dist="choice", values=[0.3, 0.6, 0.9])
    assert {draw(pick, u) for _ in range(200)} == {0.3, 0.6, 0.9}


@pytest.mark.parametrize("entry, message", [
    ('"run.duration_s" = {dist = "uniform", low = 10}', "needs low, high"),
    ('"run.duration_s" = {dist = "uniform", low = 10, high = 20, mean = 3}', "not mean"),
    ('"run.duration_s" = {dist = "uniform", low = 20, high = 10}', "low < high"),
    ('"run.duration_s" = {dist = "choice", values = [10, 20], round = true}', "round applies"),
    ('"run.duration_s" = {dist = "poisson", low = 1, high = 2}', "dist"),
    ('"run.seed" = {dist = "uniform", low = 1, high = 9}', "other than run.seed"),
    ('"run.durationn_s" = {dist = "uniform", low = 10, high = 20}', "durationn_s"),
    ('"agents.noise.count" = {dist = "uniform", low = 5, high = 9}', r"agents.noise.count: must be .*drawn by \[randomize\]"),
    ('"run.duration_s" = {dist = "normal", mean = 0, sd = 1, low = 50, high = 60}', "too unlikely"),
])
def test_bad_randomize_entries_are_named(tmp_path, entry, message):
    p = tmp_path / "bad.toml"
    p.write_text(BASE + "[randomize]\n" + entry + "\n")
    with pytest.raises(InvalidInput, match=message):
        load_scenario(p)


def test_an_override_of_a_drawn_field_is_refused_everywhere(scenario_file):
    path = "markets[0].shocks[0].pct"
    for call in (lambda: load_scenario(scenario_file, {path: -3}),
                 lambda: with_overrides(load_scenario(scenario_file), {path: -3}),
                 lambda: MarketModel(load_scenario(scenario_file), **{path: -3}),
                 lambda: sweep(scenario_file, [f"{path}=-3,-4"], out=scenario_file.parent / "s")):
        with pytest.raises(InvalidInput, match=r"is drawn by \[randomize\]"):
            call()


def test_runs_report_their_draws_and_sweep_rows_carry_them(scenario_file, tmp_path):
    r = abm.run(scenario_file, seed=3)
    assert r.summary["drawn"] == draws(load_scenario(scenario_file).randomize, 3)
    assert r.shocks[0]["pct"] == r.summary["drawn"]["markets[0].shocks[0].pct"]
    rows = sweep(scenario_file, seeds=3, out=tmp_path / "sw")
    drawn = rows["drawn.markets[0].shocks[0].pct"]
    assert drawn.nunique() == 3
    for _, row in rows.iterrows():
        assert row["drawn.agents.noise.count"] == load_scenario(scenario_file, seed=int(row["seed"])).agents["noise"]["count"]
    assert "drawn" not in abm.run("baseline", {"run.duration_s": 5}).summary


def test_show_prints_the_draws_of_a_seed(scenario_file):
    out = subprocess.run([ABM, "show", str(scenario_file), "--seed", "5"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    pct = draws(load_scenario(scenario_file).randomize, 5)["markets[0].shocks[0].pct"]
    assert "# [randomize] draws at seed 5" in out.stdout and f"markets[0].shocks[0].pct = {pct!r}" in out.stdout
