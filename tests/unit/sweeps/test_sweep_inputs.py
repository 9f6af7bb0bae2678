"""Bad sweep inputs: one line naming the option and what is allowed, exit 2, checked before anything runs or is written."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from abm.cli import main
from abm.errors import InvalidInput
from abm.sweeps import sweep
from tests.support import ABM, unused_port


@pytest.mark.parametrize("args, message", [
    (["--seeds", "0"], "--seeds: must be an integer >= 1"),
    (["--seeds", "-3"], "--seeds: must be an integer >= 1"),
    (["--seeds", "two"], "--seeds: 'two' is not a valid integer"),
    (["--samples", "0", "--random", "markets[0].sigma=0.2:0.9"], "--samples: must be an integer >= 1"),
    (["--samples", "-1", "--random", "markets[0].sigma=0.2:0.9"], "--samples: must be an integer >= 1"),
    (["--samples", "3"], "--samples: needs --random"),
    (["--workers", "0"], "--workers: must be an integer >= 1"),
    (["--workers", "-2"], "--workers: must be an integer >= 1"),
    (["--base-seed", "-1"], "--base-seed: must be an integer >= 0"),
    (["--grid", "agents.noise.count"], "--grid: must look like path=v1,v2"),
    (["--grid", "=1,2"], "--grid: must look like path=v1,v2"),
    (["--grid", "agents.noise.count="], "--grid: must look like path=v1,v2"),
    (["--grid", "agents.noise.count=1,,2"], "--grid: must not have empty values"),
    (["--grid", "agents.noise.count=1,2,"], "--grid: must not have empty values"),
    (["--grid", "agents.noise.count=1,1"], "--grid: values must be distinct"),
    (["--grid", "agents.noise.count=1", "--grid", "agents.noise.count=2"], "--grid: must name each path once"),
    (["--random", "markets[0].sigma=0.9"], "--random: must look like path=lo:hi"),
    (["--random", "markets[0].sigma=0.9:0.2"], "--random: must look like path=lo:hi"),
    (["--random", "markets[0].sigma=a:b"], "--random: must look like path=lo:hi"),
    (["--random", "markets[0].sigma=0:inf"], "--random: must look like path=lo:hi with finite numbers"),
    (["--random", "markets[0].sigma=:1"], "--random: must look like path=lo:hi"),
    (["--grid", "markets[0].sigma=0.2", "--random", "markets[0].sigma=0.2:0.9"], "--random: must not name a path"),
    (["--scheduler", "nowhere"], "--scheduler: must be 'local' or a Dask address"),
    (["--scheduler", "tcp://"], "--scheduler: must be 'local' or a Dask address"),
    (["--scheduler", "tcp://127.0.0.1:8786", "--workers", "2"], "--workers: sizes the local pool"),
])
def test_bad_sweep_options_are_one_line_errors_before_anything_runs(tmp_path, args, message):
    out = tmp_path / "s"
    r = CliRunner().invoke(main, ["sweep", "baseline", "--grid", "run.duration_s=20", *args, "--out", str(out),
                                  "--no-progress"])
    assert r.exit_code == 2, r.output
    assert r.stdout == "" and r.stderr.startswith(f"abm: error: {message}"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not out.exists()


def test_an_out_that_is_a_file_or_below_one_is_refused(tmp_path):
    f = tmp_path / "file"
    f.write_text("mine")
    for out, message in ((f, "--out: must be a folder; "), (f / "sub", "--out: must be a folder that can be created")):
        r = CliRunner().invoke(main, ["sweep", "baseline", "--grid", "run.duration_s=20", "--out", str(out),
                                      "--no-progress"])
        assert r.exit_code == 2 and r.stderr.startswith(f"abm: error: {message}"), r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert f.read_text() == "mine"
    rows_file = tmp_path / "d"
    rows_file.mkdir()
    (rows_file / "rows").write_text("")
    with pytest.raises(InvalidInput, match="--out: must be a folder; .*rows is a file"):
        sweep("baseline", ["run.duration_s=20"], out=rows_file)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_an_unwritable_out_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(InvalidInput, match="--out: must be writable"):
            sweep("baseline", ["run.duration_s=20"], out=ro / "s")
    finally:
        ro.chmod(0o700)


def test_an_out_the_user_cannot_write_is_refused_before_anything_runs(tmp_path, monkeypatch):
    import abm.sweeps.folder as folder

    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(folder.os, "access", lambda p, mode: False if Path(p) == ro else real(p, mode))
    r = CliRunner().invoke(main, ["sweep", "baseline", "--grid", "run.duration_s=20", "--out", str(ro / "s"),
                                  "--no-progress"])
    assert r.exit_code == 2 and r.stderr.startswith(f"abm: error: --out: must be writable; {ro} is not"), r.stderr
    assert list(ro.iterdir()) == []


def test_an_unreachable_scheduler_is_one_error_and_runs_nothing(tmp_path):
    out = tmp_path / "s"
    address = f"tcp://127.0.0.1:{unused_port()}"
    r = subprocess.run([ABM, "sweep", "baseline", "--grid", "run.duration_s=20", "--scheduler", address,
                        "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("abm: error: --scheduler: must be a running Dask scheduler; none answered within 5 s")
    assert address in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("kwargs, message", [
    ({"grid": "agents.noise.count=1,2"}, "--grid: must be a list of 'path=...' strings or a mapping"),
    ({"grid": {"agents.noise.count": []}}, "--grid: each path needs a non-empty list"),
    ({"grid": {"agents.noise.count": 5}}, "--grid: each path needs a non-empty list"),
    ({"grid": {"": [1]}}, "--grid: paths must be non-empty"),
    ({"random": {"markets[0].sigma": (0.5,)}}, r"--random: each path needs \(lo, hi\)"),
    ({"random": {"markets[0].sigma": (0.5, float("nan"))}}, r"--random: each path needs \(lo, hi\)"),
    ({"seeds": 1.0}, "--seeds: must be an integer"),
    ({"seeds": True}, "--seeds: must be an integer"),
    ({"workers": 2.0}, "--workers: must be an integer"),
    ({"base_seed": "1"}, "--base-seed: must be an integer"),
    ({"retry_failed": "yes"}, "retry_failed: must be True or False"),
])
def test_bad_api_arguments_are_named(tmp_path, kwargs, message):
    args = {"grid": {"run.duration_s": [20]}, **kwargs}
    with pytest.raises(InvalidInput, match=message):
        sweep("baseline", out=tmp_path / "s", **args)
    assert not (tmp_path / "s").exists()
