"""``abm dashboard`` and ``abm explore`` as typed: bad input is one error line before any server starts, and the
dashboard command serves its page on 127.0.0.1 at the port asked for (the test stops the process it started)."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request

import pytest

from tests.support import ABM, REPO, cli, unused_port


def test_an_unknown_scenario_is_one_error_line():
    r = cli("dashboard", "no_such_scenario", "--port", str(unused_port()), timeout=120)
    assert r.returncode != 0
    assert "no_such_scenario" in r.stderr and "Traceback" not in r.stderr


def test_a_missing_run_folder_is_one_error_line(tmp_path):
    pytest.importorskip("panel", reason="the extra viz (panel) is not installed")
    r = cli("explore", str(tmp_path / "nothing"), timeout=120)
    assert r.returncode != 0
    assert "RUN_DIR" in r.stderr and "does not exist" in r.stderr and "Traceback" not in r.stderr


def test_abm_dashboard_serves_on_loopback(tmp_path):
    pytest.importorskip("panel", reason="the extra viz (panel) is not installed")
    port = unused_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([ABM, "dashboard", "baseline", "--set", "run.duration_s=60", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        page = None
        while page is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
                    page = resp.read().decode()
            except OSError:
                time.sleep(0.3)
        assert page is not None, f"no page on 127.0.0.1:{port}; exit {proc.poll()}"
        assert "abm dashboard" in page and "bokeh" in page.lower()
    finally:
        proc.terminate()  # the one process this test started
        proc.wait(timeout=30)
