"""A run's summary.json is the same to the byte in any process: string hashing (PYTHONHASHSEED) must not
reach it. (Python 3.11 against 3.12, whose built-in sum() of floats is compensated, is covered by
exact integer sums, tests/unit/analysis/test_analysis.py::test_money_is_summed_exactly_whatever_the_order.)"""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support import REPO

# whale_dump through its shock and cascade; the hash seeds are two under which the old float sums over
# sets of node names gave different bytes
RUN = ("import abm, sys; abm.run('whale_dump', overrides={'run.duration_s': 420}, out=sys.argv[1], report=False)")
HASH_SEEDS = ("1", "3")


def test_summary_bytes_do_not_depend_on_the_hash_seed(tmp_path):
    procs = []
    for seed in HASH_SEEDS:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        procs.append(subprocess.Popen([sys.executable, "-c", RUN, str(tmp_path / f"run-{seed}")], cwd=REPO, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
    a, b = ((tmp_path / f"run-{seed}" / "summary.json").read_bytes() for seed in HASH_SEEDS)
    assert b'"liquidation_events"' in a and b'"longest_chain"' in a
    assert a == b
