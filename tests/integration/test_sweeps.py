"""Sweeps: deterministic per-run seeds, same results with 1 or 2 workers, resumable, failures recorded, bad specs named."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from abm.errors import InvalidInput
from abm.sweeps import parse_grid, parse_random, plan, read_rows, sweep
from tests.support import ABM, REPO, unused_port, without_wall_time

GRID = ["run.duration_s=40", "agents.noise.count=20,40"]


def test_one_and_two_workers_give_identical_rows(tmp_path):
    a = sweep("baseline", GRID, seeds=2, workers=1, out=tmp_path / "a")
    b = sweep("baseline", GRID, seeds=2, workers=2, out=tmp_path / "b")
    assert len(a) == 4 and (a["error"] == "").all()
    assert without_wall_time(a).equals(without_wall_time(b))
    assert a["seed"].nunique() == 4


def test_seeds_depend_on_parameters_not_on_order():
    p1 = plan("baseline", parse_grid(["agents.noise.count=20,40"]), {}, 1, 2)
    p2 = plan("baseline", parse_grid(["agents.noise.count=40,20"]), {}, 1, 2)
    assert {(r.params, r.replicate, r.seed) for r in p1} == {(r.params, r.replicate, r.seed) for r in p2}


def test_resumed_sweep_equals_uninterrupted(tmp_path):
    full = sweep("baseline", GRID, seeds=2, out=tmp_path / "full")
    part = tmp_path / "part"
    sweep("baseline", GRID, seeds=2, out=part)
    files = sorted((part / "rows").glob("*.parquet"))
    for f in files[:2]:  # as if interrupted before these finished
        f.unlink()
    resumed = sweep("baseline", GRID, seeds=2, out=part)
    assert without_wall_time(resumed).equals(without_wall_time(full))
    assert without_wall_time(read_rows(part)).equals(without_wall_time(full))


def test_a_failing_run_keeps_its_whole_error_and_retry_failed_runs_it_again(tmp_path, monkeypatch):
    mod = tmp_path / "boom_agent.py"
    mod.write_text(
        "import os\n"
        "from abm.agents import Trader\n"
        "class Boom(Trader):\n"
        "    kind = 'boom'\n"
        "    def start(self):\n"
        "        if self.model.config.run.seed % 2 and os.environ.get('BOOM') == '1':\n"
        "            self.wake_in(1_000_000, self.explode)\n"
        "    def explode(self, t):\n"
        "        raise RuntimeError('strategy bug\\n' + 'detail ' * 120 + '\\nlast line')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("BOOM", "1")
    base = REPO / "scenarios" / "baseline.toml"
    scn = tmp_path / "boom.toml"
    scn.write_text(base.read_text() + '\n[agents.b]\nkind = "boom_agent:Boom"\n')
    grid = ["--grid", "run.duration_s=20", "--grid", "agents.noise.count=5,6,7,8"]
    out = tmp_path / "s"
    cmd = [ABM, "sweep", str(scn), *grid, "--workers", "2", "--out", str(out), "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    df = read_rows(out)
    failed = df[df["error"] != ""]
    assert len(df) == 4 and 1 <= len(failed) < 4
    whole = "RuntimeError: strategy bug\n" + "detail " * 120 + "\nlast line"
    assert (failed["error"] == whole).all()
    assert failed["traceback"].str.contains("in explode").all() and failed["traceback"].str.endswith("last line\n").all()
    assert (df.loc[df["error"] == "", "traceback"] == "").all()
    assert (df.loc[df["error"] == "", "liquidation_events"] >= 0).all()
    assert f"4 runs ({len(failed)} failed (--retry-failed runs them again); 4 run now, 0 already" in r.stdout
    ok_files = {f: f.read_bytes() for f in (out / "rows").glob("*.parquet") if f.stem not in set(failed["run_id"])}

    monkeypatch.setenv("BOOM", "0")  # the bug fixed
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "4 runs (" + str(len(failed)) + " failed" in r.stdout  # resuming keeps failures
    r = subprocess.run([*cmd, "--retry-failed"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"4 runs (0 failed; {len(failed)} run now, {4 - len(failed)} already in the folder)" in r.stdout
    again = read_rows(out)
    assert (again["error"] == "").all() and set(again["run_id"]) == set(df["run_id"])
    assert all(f.read_bytes() == b for f, b in ok_files.items())  # finished runs were not run again


@pytest.mark.parametrize("call, message", [
    (lambda: parse_grid(["agents.whale.size"]), "--grid"),
    (lambda: parse_grid(["=1,2"]), "--grid"),
    (lambda: parse_random(["markets[0].sigma=0.9:0.2"]), "--random"),
    (lambda: plan("baseline", {"agents.noise.countt": [1]}, {}, 1, 1), "agents.noise.countt: unknown parameter"),
    (lambda: plan("baseline", {"run.seeed": [1]}, {}, 1, 1), "did you mean"),
    (lambda: plan("baseline", {"run.duration_s": ["long"]}, {}, 1, 1), "run.duration_s"),
    (lambda: plan("baseline", {}, {}, 1, 0), "--seeds"),
])
def test_bad_sweep_specs_are_named_before_any_run(call, message):
    with pytest.raises(InvalidInput, match=message):
        call()


def test_command_line_sweep(tmp_path):
    r = subprocess.run([ABM, "sweep", "baseline", "--grid", "run.duration_s=20", "--grid", "agents.noise.count=5,10",
                        "--seeds", "1", "--workers", "2", "--out", str(tmp_path / "cli"), "--no-progress"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "2 runs (0 failed; 2 run now, 0 already in the folder)" in r.stdout and len(read_rows(tmp_path / "cli")) == 2
    r = subprocess.run([ABM, "sweep", "baseline", "--grid", "nope=1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("abm: error:") and "Traceback" not in r.stderr


def test_real_dask_scheduler_and_worker_on_loopback_give_the_same_rows(tmp_path, monkeypatch):
    from distributed import Client

    # A scenario named by a relative path, and a worker in another folder: the worker must not need the file.
    (tmp_path / "mine").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "mine" / "calm.toml").write_text((REPO / "scenarios" /
                                                  "baseline.toml").read_text())
    monkeypatch.chdir(tmp_path / "mine")
    bindir = Path(sys.executable).parent
    port = unused_port()
    address = f"tcp://127.0.0.1:{port}"
    procs = [subprocess.Popen([str(bindir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        procs.append(subprocess.Popen([str(bindir / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1",
                                       "--host", "127.0.0.1", "--no-dashboard"], cwd=tmp_path / "elsewhere",
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.time() + 60
        while True:
            try:
                with Client(address, timeout="5s") as c:
                    if c.scheduler_info()["workers"]:
                        break
            except OSError:
                pass
            assert time.time() < deadline, "dask scheduler/worker did not come up"
            time.sleep(0.5)
        on_dask = sweep("calm.toml", GRID, seeds=1, out=tmp_path / "dask", scheduler=address)
        local = sweep("calm.toml", GRID, seeds=1, out=tmp_path / "local")
        assert (on_dask["error"] == "").all()
        assert without_wall_time(on_dask).equals(without_wall_time(local))
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_bad_scheduler_is_named(tmp_path):
    with pytest.raises(InvalidInput, match="--scheduler"):
        sweep("baseline", GRID, out=tmp_path / "x", scheduler="nowhere")


def test_local_dask_cluster_is_started_and_stopped(tmp_path):
    df = sweep("baseline", GRID, seeds=1, workers=2, out=tmp_path / "ld", scheduler="local")
    ref = sweep("baseline", GRID, seeds=1, out=tmp_path / "ref")
    assert without_wall_time(df).equals(without_wall_time(ref))


def test_sweep_report_lines_and_heatmap(tmp_path):
    import matplotlib.image as mpimg

    one = tmp_path / "one"
    sweep("baseline", ["run.duration_s=20", "agents.noise.count=5,10"], seeds=2, out=one)
    r = subprocess.run([ABM, "sweep-report", str(one)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    img = mpimg.imread(one / "sweep_report.png")
    assert img.shape[0] > 300 and img.std() > 0.01
    two = tmp_path / "two"
    sweep("baseline", ["run.duration_s=20", "agents.noise.count=5,10", "agents.market_maker.count=2,4"], out=two)
    from abm.sweeps.report import sweep_report

    assert sweep_report(two).is_file()
    r = subprocess.run([ABM, "sweep-report", str(tmp_path / "empty")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "sweep_dir" in r.stderr


def test_top_level_api_names_the_sweep_and_run_loader():
    import abm
    import abm.results
    import abm.sweeps

    assert abm.sweep is abm.sweeps.sweep and abm.load_run is abm.results.load_run
    with pytest.raises(AttributeError, match="no attribute 'sweeps_'"):
        abm.sweeps_  # noqa: B018


DRIVER = """
import sys
from abm.sweeps import sweep

if __name__ == "__main__":  # the pool's workers are spawned: they import this file
    sweep("baseline", ["run.duration_s=3600", "agents.noise.count=5,6,7,8"], workers=2, out=sys.argv[1],
          scheduler=sys.argv[2] or None)
"""


def _running(p) -> bool:
    import psutil

    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _spawned_children(pid: int) -> list:
    """The driver's worker processes, however started: spawned (``spawn_main``) or forked (the driver's
    own command line; Python 3.12 forks here). The resource tracker is not a worker: it exits by itself."""
    import psutil

    found = []
    for c in psutil.Process(pid).children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(c.cmdline()):
                found.append(c)
        except psutil.Error:
            pass
    return found


@pytest.mark.parametrize("scheduler", ["", "local"], ids=["process-pool", "dask-local"])
def test_a_sigkilled_driver_leaves_no_workers_running(tmp_path, scheduler):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    driver = subprocess.Popen([sys.executable, str(script), str(tmp_path / "s"), scheduler],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list = []
    try:
        deadline = time.time() + 120
        while len(workers) < 2:  # both workers up (their runs last an hour of market time)
            assert driver.poll() is None, "the sweep driver ended early"
            assert time.time() < deadline, "the sweep's workers did not start"
            time.sleep(0.2)
            workers = _spawned_children(driver.pid)
        time.sleep(1.0)  # let them take their runs
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
        deadline = time.time() + 30
        while any(_running(w) for w in workers) and time.time() < deadline:
            time.sleep(0.2)
        assert not [w.pid for w in workers if _running(w)], "workers outlived their driver"
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=30)
        for w in workers:
            if _running(w):
                w.kill()
