"""A finished run: its tables, resolved configuration and summary, in memory and on disk."""

from abm.results.run_result import RunResult, load_run, save_run

__all__ = ["RunResult", "load_run", "save_run"]
