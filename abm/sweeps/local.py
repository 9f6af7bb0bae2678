"""Running a sweep on a local process pool, appending one summary row per run as runs finish.

Memory stays bounded: a worker returns only its run's flat summary row, never time series, and each
row is written at once to ``OUT/rows/<run_id>.parquet`` (written under a temporary name and renamed,
so a row file is either complete or absent). Re-running the same sweep skips the run ids whose row
exists, so an interrupted sweep resumes where it stopped. A run that raises is recorded with its
error and does not stop the others.
"""

from __future__ import annotations

import os
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Mapping, Optional

import pandas as pd

from abm.errors import InvalidInput
from abm.sweeps.plan import PlannedRun, flatten, parse_grid, parse_random, plan


def run_one(scenario: str, run: PlannedRun) -> dict[str, Any]:
    """One run in a worker: its parameters, seed, flat summary metrics, wall time and error (if any)."""
    from abm.scenarios import run as run_scenario

    row: dict[str, Any] = {"run_id": run.run_id, "replicate": run.replicate, "seed": run.seed}
    row.update({f"param.{k}": v for k, v in run.params})
    t0 = time.perf_counter()
    try:
        result = run_scenario(scenario, dict(run.params), run.seed)
        row.update(flatten(result.summary))
        row["error"] = ""
    except Exception as e:  # recorded, not raised: one bad run must not stop a sweep of thousands
        row["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:500]
        row["traceback"] = traceback.format_exc()[-2000:]
    row["wall_s"] = time.perf_counter() - t0
    return row


def _write_row(rows_dir: Path, row: dict[str, Any]) -> None:
    tmp = rows_dir / f".{row['run_id']}.parquet.tmp"
    pd.DataFrame([row]).to_parquet(tmp, index=False)
    os.replace(tmp, rows_dir / f"{row['run_id']}.parquet")


def read_rows(out: str | Path) -> pd.DataFrame:
    """All finished runs of a sweep folder as one DataFrame, ordered by run id (independent of finish order)."""
    rows_dir = Path(out) / "rows"
    files = sorted(rows_dir.glob("*.parquet")) if rows_dir.is_dir() else []
    if not files:
        return pd.DataFrame()
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return df.sort_values("run_id", kind="stable").reset_index(drop=True)


def sweep(
    scenario: str,
    grid: Optional[Mapping[str, list[Any]] | list[str]] = None,
    random: Optional[Mapping[str, tuple[float, float]] | list[str]] = None,
    samples: int = 1,
    seeds: int = 1,
    workers: int = 1,
    out: str | Path = "sweeps/sweep",
    base_seed: int = 0,
    progress: bool = False,
    scheduler: Optional[str] = None,
) -> pd.DataFrame:
    """Run every combination x seed (validated first); returns one summary row per run.

    ``scheduler``: None runs on a local process pool of ``workers``; a Dask scheduler address
    (``tcp://host:port``) runs on that cluster; ``"local"`` starts a Dask cluster of ``workers``
    processes on loopback for the sweep and stops it afterwards.
    """
    if isinstance(grid, list):
        grid = parse_grid(grid)
    if isinstance(random, list):
        random = parse_random(random)
    if type(workers) is not int or workers < 1:
        raise InvalidInput("--workers", workers, "must be an integer >= 1")
    runs = plan(scenario, grid or {}, random or {}, samples, seeds, base_seed)
    rows_dir = Path(out) / "rows"
    rows_dir.mkdir(parents=True, exist_ok=True)
    done = {p.stem for p in rows_dir.glob("*.parquet")}
    todo = [r for r in runs if r.run_id not in done]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc="sweep", unit="run")
    failures = 0

    def finish(row: dict[str, Any]) -> None:
        nonlocal failures
        failures += bool(row["error"])
        _write_row(rows_dir, row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(failures=failures)

    if scheduler is not None:
        from abm.sweeps.dask_runner import run_on_dask

        run_on_dask(scheduler, workers, scenario, todo, finish)
    elif workers == 1:
        for r in todo:
            finish(run_one(scenario, r))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pending = {pool.submit(run_one, scenario, r) for r in todo}
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    finish(f.result())
    if bar is not None:
        bar.close()
    df = read_rows(out)
    wanted = {r.run_id for r in runs}
    return df[df["run_id"].isin(wanted)].reset_index(drop=True)
