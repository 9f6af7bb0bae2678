"""Parameter sweeps: a validated plan of runs with derived seeds, run on a local process pool, resumable."""

from abm.sweeps.local import read_rows, sweep
from abm.sweeps.plan import parse_grid, parse_random, plan
from abm.sweeps.report import sweep_report

__all__ = ["sweep", "read_rows", "plan", "parse_grid", "parse_random", "sweep_report"]
