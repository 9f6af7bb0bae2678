"""abm calibrate: a fit recovers a known parameter within its seed noise, a killed calibration resumes to the same
answer without rerunning what it recorded, and the same targets and seeds give the same fit table.

The scenario is a small calm market (20 noise traders, 3 market makers, 60 s), about 0.1 s a run. The
moment is the mark's annualised 1 s volatility (``abm.calibration.moments:price_moments``), which the
index's sigma drives through the book and the mark formula, so it is a property of the simulation, not
of the input alone (the mark's volatility is about 0.6 sigma here, not sigma).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import abm
from abm.calibration import calibrate
from abm.calibration.moments import price_moments
from abm.errors import InvalidInput
from abm.scenarios import load_scenario
from abm.sweeps import read_rows, sweep
from abm.sweeps.identity import scenario_hash
from abm.sweeps.plan import common_seed
from tests.support import ABM

TINY = """\
name = "tiny"
[run]
seed = 1
duration_s = 60
[venue]
profile = "hyperliquid"
[[markets]]
symbol = "BTC-PERP"
s0 = 60000
sigma = 0.3
[agents.noise]
count = 20
[agents.market_maker]
count = 3
reference = "oracle"
[agents.arbitrageur]
count = 1
"""
TRUE_SIGMA = 0.5
TARGET_SEEDS = 6  # the "data": the moment at the true sigma on seeds the fit never runs (base seed 100)
FIT_SEEDS = 3
START = 1.2
LO, HI = 0.1, 1.5
XTOL = 0.01
METRICS = "abm.calibration.moments:price_moments"


def _vol(path: Path, sigma: float, seed: int) -> float:
    return price_moments(abm.run(path, {"markets[0].sigma": sigma}, seed=seed))["mark_vol_1s"]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("calibrate")
    scn = folder / "tiny.toml"
    scn.write_text(TINY)
    data = np.array([_vol(scn, TRUE_SIGMA, common_seed(100, r)) for r in range(TARGET_SEEDS)])
    targets = f"""\
seeds = {FIT_SEEDS}
[[parameters]]
path = "markets[0].sigma"
lo = {LO}
hi = {HI}
start = {START}
[moments.vol]
metric = "{METRICS}"
key = "mark_vol_1s"
target = {float(data.mean())!r}
[optimizer]
max_evaluations = 40
xtol = {XTOL}
ftol = 0.01
"""
    (folder / "targets.toml").write_text(targets)
    fit = calibrate(scn, folder / "targets.toml", out=folder / "fit")
    return {"folder": folder, "scenario": scn, "targets": folder / "targets.toml", "data": data, "fit": fit}


def test_the_fit_recovers_the_true_sigma_within_the_seed_noise(case):
    fit, data = case["fit"], case["data"]
    sigma = fit.parameters["markets[0].sigma"]
    # the tolerance from the noise: the target's standard error (6 seeds) and the fit's (3 seeds, the spread at the
    # fitted point), carried to sigma by the moment's slope, measured on the fit's own evaluations (common seeds
    # make the moment a smooth function of sigma); plus the optimiser's own tolerance
    m = fit.moments.iloc[0]
    se_m = math.sqrt(data.var(ddof=1) / TARGET_SEEDS + m["sd"] ** 2 / FIT_SEEDS)
    near = fit.fit[(fit.fit["param.markets[0].sigma"] > 0.2) & (fit.fit["param.markets[0].sigma"] < 1.0)]
    slope = np.polyfit(near["param.markets[0].sigma"], near["vol.mean"], 1)[0]
    tol = 3 * se_m / abs(slope) + XTOL * (HI - LO)
    assert 0.3 < slope < 1.0  # the mark is smoother than the index, yet follows it
    assert tol < 0.5 * abs(START - TRUE_SIGMA)  # a tolerance that can fail: the start is far outside it
    assert abs(sigma - TRUE_SIGMA) < tol, (sigma, tol)
    # the answer is the best evaluation, and its moments are what the moments table says
    best = fit.fit.loc[fit.fit["objective"].idxmin()]
    assert best["param.markets[0].sigma"] == sigma and best["objective"] == fit.objective
    assert m["target"] == pytest.approx(data.mean()) and m["mean"] == pytest.approx(best["vol.mean"])
    assert abs(m["t"]) < 3
    assert fit.evaluations_run == len(fit.fit) and fit.evaluations_reused == 0


def test_the_moments_are_the_runs_moments_on_the_common_seeds(case):
    """Recomputed here at the fitted point with abm.run on the seeds the calibration says it ran."""
    fit, scn = case["fit"], case["scenario"]
    sigma = fit.parameters["markets[0].sigma"]
    seeds = [common_seed(0, r) for r in range(FIT_SEEDS)]
    again = [_vol(scn, sigma, s) for s in seeds]
    m = fit.moments.iloc[0]
    assert [m[f"seed.{s}"] for s in seeds] == again
    rows = read_rows(case["folder"] / "fit" / "runs")
    assert set(rows["seed"]) == set(seeds)  # every evaluation ran the same seeds
    assert len(rows) == FIT_SEEDS * len(fit.fit)


def test_the_fitted_scenario_runs_the_fitted_point(case):
    fit, scn = case["fit"], case["scenario"]
    path = fit.files["fitted"]
    text = path.read_text()
    assert text.startswith("# Calibrated by `abm calibrate`") and "count = 20" in text
    loaded = load_scenario(path)
    assert loaded.markets[0].sigma == fit.parameters["markets[0].sigma"]
    assert scenario_hash(loaded) == scenario_hash(load_scenario(scn, fit.parameters))
    assert fit.files["figure"].stat().st_size > 10_000
    assert pd.read_parquet(fit.files["fit"]).equals(fit.fit)
    assert pd.read_parquet(fit.files["moments"]).equals(fit.moments)


def test_same_targets_and_seeds_give_an_identical_fit_table_with_one_or_two_workers(case, tmp_path):
    again = calibrate(case["scenario"], case["targets"], out=tmp_path / "again", workers=2)
    assert again.fit.equals(case["fit"].fit)
    assert again.moments.equals(case["fit"].moments)
    assert again.files["fitted"].read_bytes() == case["fit"].files["fitted"].read_bytes()


def test_a_killed_calibration_resumes_without_rerunning_and_reaches_the_same_result(case, tmp_path):
    out = tmp_path / "killed"
    cmd = [ABM, "calibrate", str(case["scenario"]), "--targets", str(case["targets"]), "--out", str(out),
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    evaluations = out / "evaluations"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if evaluations.is_dir() and len(list(evaluations.glob("*.json"))) >= 3:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the calibration finished before it could be killed"
    recorded = {p.name for p in evaluations.glob("*.json")}
    rows = {p: p.stat().st_mtime_ns for p in (out / "runs" / "rows").glob("*.parquet")}
    assert not (out / "fit.parquet").exists()
    r = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    total = len(case["fit"].fit)
    assert f"({total} evaluations: {total - len(recorded)} run now, {len(recorded)} recorded" in r.stdout
    for p, mtime in rows.items():  # the runs finished before the kill were read, not run again
        assert p.stat().st_mtime_ns == mtime
    assert pd.read_parquet(out / "fit.parquet").equals(case["fit"].fit)
    assert (out / "fitted.toml").read_bytes() == case["fit"].files["fitted"].read_bytes()


def test_a_folder_holding_a_calibration_needs_resume_and_its_runs_are_no_plain_sweep(case):
    out = case["folder"] / "fit"
    with pytest.raises(InvalidInput, match="holds a calibration already .*pass --resume"):
        calibrate(case["scenario"], case["targets"], out=out)
    with pytest.raises(InvalidInput, match="seeds: common seeds .* there, seeds derived from each run's parameters here"):
        sweep(case["scenario"], ["markets[0].sigma=0.3"], seeds=1, out=out / "runs", metrics=METRICS)
    again = calibrate(case["scenario"], case["targets"], out=out, resume=True, figure=False)
    assert again.evaluations_run == 0 and again.fit.equals(case["fit"].fit)


def test_an_integer_parameter_is_fitted_by_differential_evolution(tmp_path):
    scn = tmp_path / "short.toml"
    scn.write_text(TINY.replace("duration_s = 60", "duration_s = 30"))
    data = [price_moments(abm.run(scn, {"agents.noise.count": 20}, seed=common_seed(100, r)))["taker_volume_per_s"]
            for r in range(4)]
    (tmp_path / "t.toml").write_text(f"""\
seeds = 3
[[parameters]]
path = "agents.noise.count"
lo = 4
hi = 40
integer = true
start = 8
[moments.volume]
metric = "{METRICS}"
key = "taker_volume_per_s"
target = {float(np.mean(data))!r}
[optimizer]
method = "differential_evolution"
generations = 2
popsize = 5
seed = 3
""")
    fit = calibrate(scn, tmp_path / "t.toml", out=tmp_path / "de", figure=False)
    count = fit.parameters["agents.noise.count"]
    assert type(count) is int and (fit.fit["param.agents.noise.count"] % 1 == 0).all()
    # volume is about proportional to the crowd; the tolerance from both means' standard errors over the slope
    per_agent = np.mean(data) / 20
    se = math.sqrt(np.var(data, ddof=1) / 4 + fit.moments.iloc[0]["sd"] ** 2 / 3)
    assert abs(count - 20) <= 3 * se / per_agent + 1, (count, se / per_agent)
    assert load_scenario(fit.files["fitted"]).agents["noise"]["count"] == count


def test_a_summary_key_that_no_run_has_is_named_with_the_closest_one(case, tmp_path):
    (tmp_path / "t.toml").write_text("""\
seeds = 2
[[parameters]]
path = "markets[0].sigma"
lo = 0.1
hi = 1.0
start = 0.3
[moments.spread]
summary = "max_sprad_bps"
target = 3.0
""")
    with pytest.raises(InvalidInput, match="moments.spread.summary: must be a key of the run's flat summary; did you "
                                           "mean 'max_spread_bps'"):
        calibrate(case["scenario"], tmp_path / "t.toml", out=tmp_path / "o")
