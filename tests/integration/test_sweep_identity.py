"""Sweep identity: the scenario's content hash, the base seed, the folder's manifest, resume and extension."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from abm.errors import InvalidInput
from abm.scenarios import load_scenario
from abm.sweeps import read_rows, sweep
from abm.sweeps.identity import scenario_hash
from abm.venues import read_profile
from tests.support import ABM, REPO, without_wall_time

SCENARIOS = REPO / "scenarios"
SHORT = ["run.duration_s=20", "agents.noise.count=10,20"]


def files_state(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_scenario_hash_is_the_same_in_other_processes():
    here = scenario_hash(load_scenario("whale_dump"))
    code = "from abm.scenarios import load_scenario; from abm.sweeps.identity import scenario_hash; " \
           "print(scenario_hash(load_scenario('whale_dump')))"
    for hash_seed in ("1", "2"):  # Python's own str hashing differs between these: ours must not
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == here
    assert len(here) == 64 and int(here, 16) >= 0


def test_scenario_hash_follows_what_runs_read_and_nothing_else():
    base = load_scenario("baseline")
    h = scenario_hash(base)
    assert scenario_hash(load_scenario("baseline", {"run.seed": 77})) == h  # every run's seed replaces it
    assert scenario_hash(load_scenario("baseline", {"description": "other words"})) == h
    for change in ({"agents.noise.count": 101}, {"run.duration_s": 901}, {"markets[0].sigma": 0.31},
                   {"venue.overrides": {"fees.taker_bps": 5}}, {"funds.insurance_usdc": 1.0}):
        assert scenario_hash(load_scenario("baseline", change)) != h, change


def test_scenario_hash_covers_the_venue_profile_by_content(tmp_path):
    raw, _ = read_profile("hyperliquid")
    text = (REPO / "abm" / "venues" / "profiles" / "hyperliquid.toml").read_text()
    same = tmp_path / "copy.toml"
    same.write_text(text)
    assert scenario_hash(load_scenario("baseline", {"venue.profile": str(same)})) == scenario_hash(
        load_scenario("baseline"))  # the same numbers under another name: the same runs
    fee = raw["fees"]["taker_bps"]
    changed = tmp_path / "changed.toml"
    changed.write_text(text.replace(f"taker_bps = {fee}", f"taker_bps = {fee + 1}", 1))
    assert changed.read_text() != text
    assert scenario_hash(load_scenario("baseline", {"venue.profile": str(changed)})) != scenario_hash(
        load_scenario("baseline"))


def test_replay_file_enters_by_content_not_by_path(tmp_path):
    h = scenario_hash(load_scenario("replay"))
    moved = tmp_path / "elsewhere"  # as on another machine or checkout: other absolute paths, same bytes
    (moved / "data").mkdir(parents=True)
    shutil.copy(SCENARIOS / "replay.toml", moved / "replay.toml")
    shutil.copy(SCENARIOS / "data" / "btc_1s_sample.csv", moved / "data" / "btc_1s_sample.csv")
    assert load_scenario(moved / "replay.toml").markets[0].replay_file != load_scenario("replay").markets[0].replay_file
    assert scenario_hash(load_scenario(moved / "replay.toml")) == h
    csv = moved / "data" / "btc_1s_sample.csv"
    lines = csv.read_text().splitlines()
    head, first = lines[0], lines[1].split(",")
    first[-1] = str(float(first[-1]) + 1.0)  # one price a dollar higher
    csv.write_text("\n".join([head, ",".join(first), *lines[2:]]) + "\n")
    assert scenario_hash(load_scenario(moved / "replay.toml")) != h


def test_rows_and_manifest_carry_the_sweep_identity(tmp_path):
    out = tmp_path / "s"
    df = sweep("baseline", SHORT, seeds=1, out=out, base_seed=5)
    sha = scenario_hash(load_scenario("baseline"))
    assert (df["scenario"] == "baseline").all() and (df["scenario_hash"] == sha).all() and (df["base_seed"] == 5).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenario"] == "baseline" and manifest["scenario_hash"] == sha and manifest["base_seed"] == 5
    assert manifest["plans"] == [{"grid": {"run.duration_s": [20], "agents.noise.count": [10, 20]}, "random": {},
                                  "samples": 1, "seeds": 1}]
    assert not list(out.glob(".*tmp"))


def test_another_sweep_into_the_folder_is_refused_naming_what_differs(tmp_path):
    out = tmp_path / "whale"
    # whale_dump's whale and shock start at 300 s: a shorter run would be refused (they would never happen)
    r = subprocess.run([ABM, "sweep", "whale_dump", "--grid", "run.duration_s=320", "--seeds", "2", "--out", str(out),
                        "--no-progress"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    before = files_state(out)
    r = subprocess.run([ABM, "sweep", "oracle_lag", "--grid", "run.duration_s=320", "--seeds", "2", "--base-seed", "99",
                        "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stdout == ""
    msg = r.stderr.strip()
    assert len(msg.splitlines()) == 1 and msg.startswith("abm: error: --out: holds another sweep")
    assert "'whale_dump'" in msg and "'oracle_lag'" in msg and "base seed: 0 there, 99 here" in msg
    assert files_state(out) == before  # nothing ran, nothing was rewritten
    # Only the base seed differs: named alone.
    with pytest.raises(InvalidInput, match=r"differs in base seed: 0 there, 1 here: use another --out") as e:
        sweep("whale_dump", ["run.duration_s=320"], seeds=2, out=out, base_seed=1)
    assert "sha256" not in str(e.value)
    assert files_state(out) == before


def test_a_changed_scenario_file_is_another_sweep(tmp_path):
    scn = tmp_path / "mine.toml"
    scn.write_text((SCENARIOS / "baseline.toml").read_text())
    out = tmp_path / "s"
    sweep(str(scn), ["run.duration_s=20"], out=out)
    scn.write_text(scn.read_text().replace("sigma = 0.3", "sigma = 0.4"))
    with pytest.raises(InvalidInput, match=r"scenario \(content changed\): 'baseline' sha256 \w{12} there, "
                                           r"'baseline' sha256 \w{12} here"):
        sweep(str(scn), ["run.duration_s=20"], out=out)
    scn.write_text(scn.read_text().replace("seed = 1", "seed = 2"))  # the file's seed is not what runs use
    scn.write_text(scn.read_text().replace("sigma = 0.4", "sigma = 0.3"))
    assert sweep(str(scn), ["run.duration_s=20"], out=out).attrs == {"ran": 0, "already_done": 1}


def test_resume_runs_only_what_is_missing(tmp_path):
    out = tmp_path / "s"
    full = sweep("baseline", SHORT, seeds=2, out=out)
    files = sorted((out / "rows").glob("*.parquet"))
    files[0].unlink()
    kept = files_state(out / "rows")
    again = sweep("baseline", SHORT, seeds=2, out=out)
    assert again.attrs == {"ran": 1, "already_done": 3}
    assert without_wall_time(again).equals(without_wall_time(full))
    assert all(files_state(out / "rows")[k] == v for k, v in kept.items())  # finished rows untouched


def test_more_seeds_and_values_extend_the_sweep(tmp_path):
    out = tmp_path / "s"
    small = sweep("baseline", ["run.duration_s=20", "agents.noise.count=10"], seeds=1, out=out)
    kept = files_state(out / "rows")
    big = sweep("baseline", SHORT, seeds=2, out=out)
    assert big.attrs == {"ran": 3, "already_done": 1}
    assert all(files_state(out / "rows")[k] == v for k, v in kept.items())
    fresh = sweep("baseline", SHORT, seeds=2, out=tmp_path / "fresh")
    assert without_wall_time(big).equals(without_wall_time(fresh))
    assert without_wall_time(small).equals(without_wall_time(big[big["run_id"].isin(small["run_id"])]))
    assert len(read_rows(out)) == 4
    plans = json.loads((out / "manifest.json").read_text())["plans"]
    assert [p["seeds"] for p in plans] == [1, 2] and plans[1]["grid"]["agents.noise.count"] == [10, 20]
    sweep("baseline", SHORT, seeds=2, out=out)  # a plan already recorded is not recorded twice
    assert len(json.loads((out / "manifest.json").read_text())["plans"]) == 2


def test_the_manifest_is_replaced_atomically(tmp_path, monkeypatch):
    out = tmp_path / "s"
    sweep("baseline", ["run.duration_s=20"], out=out)
    before = (out / "manifest.json").read_bytes()
    import abm.sweeps.folder as folder

    def no_rename(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(folder.os, "replace", no_rename)
    with pytest.raises(InvalidInput, match="--out: must be writable"):
        sweep("baseline", ["run.duration_s=20"], seeds=2, out=out)  # a new plan: the manifest would change
    assert (out / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "rows"]  # no temporary left behind
    assert len(read_rows(out)) == 1  # refused before any run


def test_folders_that_are_not_this_kind_of_sweep_are_refused(tmp_path):
    legacy = tmp_path / "legacy"
    sweep("baseline", ["run.duration_s=20"], out=legacy)
    (legacy / "manifest.json").unlink()
    with pytest.raises(InvalidInput, match="holds sweep rows but no manifest.json"):
        sweep("baseline", ["run.duration_s=20"], out=legacy)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    with pytest.raises(InvalidInput, match="must hold a readable manifest.json"):
        sweep("baseline", ["run.duration_s=20"], out=broken)
    (broken / "manifest.json").write_text(json.dumps({"format": "abm-sweep/999"}))
    with pytest.raises(InvalidInput, match="format 'abm-sweep/1'"):
        sweep("baseline", ["run.duration_s=20"], out=broken)


def test_run_ids_cover_the_whole_identity():
    from abm.sweeps.identity import run_id

    sha = hashlib.sha256(b"x").hexdigest()
    ids = {run_id(sha, 0, [("a", 1)], 0), run_id(sha, 1, [("a", 1)], 0), run_id(sha, 0, [("a", 2)], 0),
           run_id(sha, 0, [("a", 1)], 1), run_id(hashlib.sha256(b"y").hexdigest(), 0, [("a", 1)], 0),
           run_id(sha, 0, [("a", 1.0)], 0)}
    assert len(ids) == 6
    assert run_id(sha, 0, [("b", 2), ("a", 1)], 0) == run_id(sha, 0, [("a", 1), ("b", 2)], 0)
