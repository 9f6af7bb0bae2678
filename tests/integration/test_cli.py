"""The console command as a user runs it, and the core's independence from Mesa."""

from __future__ import annotations

import subprocess
import sys

from tests.support import cli


def test_demo_runs_and_explains_itself_deterministically():
    first = cli("demo")
    assert first.returncode == 0, first.stderr
    assert "Conservation check passed" in first.stdout
    assert "depth within 1% of mid" in first.stdout
    assert cli("demo").stdout == first.stdout
    assert cli("demo", "--seed", "8").stdout != first.stdout


def test_bad_option_is_one_line_and_nonzero():
    r = cli("demo", "--seed", "x")
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "seed" in r.stderr


def test_exchange_core_does_not_import_mesa():
    code = "import sys, abm.market, abm.exchange, abm.market.replay; sys.exit('mesa' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
