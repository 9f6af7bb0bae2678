"""Running a sweep: every check first, then the runs on a local process pool (or Dask), one row per run.

Memory stays bounded: a worker returns only its run's flat summary row, never time series, and each
row is written at once to ``OUT/rows/<run_id>.parquet`` (written under a temporary name and renamed,
so a row file is either complete or absent). Re-running the same sweep skips the run ids whose row
exists, so an interrupted sweep resumes where it stopped; ``retry_failed`` runs the failed ones
again. A run that raises is recorded with its whole error and traceback and does not stop the others.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence

import pandas as pd

from abm.errors import InvalidInput
from abm.scenarios import load_scenario
from abm.sweeps.folder import ROWS, check_folder, check_writable, plan_record, write_manifest
from abm.sweeps.metrics import RowMetrics, journal_overrides, metric_columns, row_metrics
from abm.sweeps.plan import PlannedRun, SweepPlan, flatten, parse_grid, parse_random, plan_sweep

NO_METRICS = RowMetrics()
PARENT_POLL_S = 0.2  # how soon an orphaned pool worker notices
ORPHAN_EXIT = 3


def _row_head(run: PlannedRun) -> dict[str, Any]:
    row: dict[str, Any] = {"run_id": run.run_id, "replicate": run.replicate, "seed": run.seed}
    row.update({f"param.{k}": v for k, v in run.params})
    return row


def failed_row(run: PlannedRun, e: BaseException, wall_s: float = float("nan")) -> dict[str, Any]:
    """The row of a run that raised: the whole message and traceback, so the cause is in the folder."""
    return {**_row_head(run), "error": f"{type(e).__name__}: {e}",
            "traceback": "".join(traceback.format_exception(e)), "wall_s": wall_s}


def run_one(run: PlannedRun, metrics: RowMetrics = NO_METRICS) -> dict[str, Any]:
    """One run in a worker: its parameters, seed, flat summary metrics (and ``metrics``' columns), wall time and
    error (if any)."""
    from abm.scenarios.catalogue import with_overrides
    from abm.scenarios.runner import run_model

    t0 = time.perf_counter()
    try:
        result, model = run_model(with_overrides(run.scenario, None, run.seed))
        extra = metric_columns(metrics, result, model) if metrics else {}
    except Exception as e:  # recorded, not raised: one bad run must not stop a sweep of thousands
        return failed_row(run, e, time.perf_counter() - t0)
    return {**_row_head(run), **flatten(result.summary), **extra, "error": "", "traceback": "",
            "wall_s": time.perf_counter() - t0}


def _exit_with_driver(driver_pid: int) -> None:
    """Pool worker initializer: exit when the driver is gone.

    A SIGKILLed driver cannot stop its pool, and an idle worker blocks reading a task pipe that its
    siblings keep open, so it would live on. A thread watches the parent instead: reparenting means
    the parent died. Where the start method puts a process between (forkserver), the driver's pid is
    watched as well.
    """
    parent = os.getppid()

    def driver_alive() -> bool:
        try:
            os.kill(driver_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def watch() -> None:
        while os.getppid() == parent and (parent == driver_pid or driver_alive()):
            time.sleep(PARENT_POLL_S)
        os._exit(ORPHAN_EXIT)

    threading.Thread(target=watch, name="abm-exit-with-driver", daemon=True).start()


class Backend:
    """Where runs execute, kept open across batches: in this process (one worker), on a local process pool
    (started at the first batch, so a plan with nothing to run starts no processes) or on a Dask client.

    Why one object: a sweep runs one batch, a calibration many (one per evaluation or generation), and
    starting a pool per batch would cost more than the runs of a small one.
    """

    __slots__ = ("workers", "client", "_pool")

    def __init__(self, workers: int, client: Any = None) -> None:
        self.workers = workers
        self.client = client
        self._pool: Optional[ProcessPoolExecutor] = None

    def run(self, runs: Sequence[PlannedRun], finish: Callable[[dict[str, Any]], None],
            metrics: RowMetrics = NO_METRICS) -> None:
        """Every run of ``runs``, each row handed to ``finish`` as it completes (in completion order)."""
        from abm.sweeps.dask_runner import run_on_dask

        if not runs:
            return
        if self.client is not None:
            run_on_dask(self.client, list(runs), finish, metrics)
        elif self.workers == 1:
            for r in runs:
                finish(run_one(r, metrics))
        else:
            if self._pool is None:
                # forkserver, not fork: the driver may hold threads (a notebook's, Dask's, the pool's own), and forking
                # a threaded process can deadlock the child; a worker gets what it runs by pickle and resolves names itself
                self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                                 mp_context=multiprocessing.get_context("forkserver"),
                                                 initializer=_exit_with_driver, initargs=(os.getpid(),))
            pending = {self._pool.submit(run_one, r, metrics) for r in runs}
            try:
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        finish(f.result())
            except BaseException:  # on an interrupt, queued runs are dropped instead of run to the end
                for f in pending:
                    f.cancel()
                raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@contextmanager
def open_backend(workers: int, scheduler: Optional[str], needed: bool = True,
                 max_runs: Optional[int] = None) -> Iterator[Backend]:
    """A ``Backend`` for ``workers`` local processes or the Dask ``scheduler`` (``sweep``'s meaning), closed on exit.

    The Dask address is connected to now (when ``needed``), so a dead one fails before anything is written;
    ``max_runs`` (the most runs it will be given) caps the local pool's size."""
    from abm.sweeps.dask_runner import dask_client

    client_cm: Any = dask_client(scheduler, workers) if needed and scheduler is not None else nullcontext()
    with client_cm as client:
        backend = Backend(min(workers, max_runs) if max_runs else workers, client)
        try:
            yield backend
        finally:
            backend.close()


def write_row(rows_dir: Path, row: dict[str, Any]) -> None:
    """One run's row as ``rows_dir/<run_id>.parquet``, complete or absent (written under a temporary name, renamed)."""
    tmp = rows_dir / f".{row['run_id']}.parquet.tmp"
    pd.DataFrame([row]).to_parquet(tmp, index=False)
    os.replace(tmp, rows_dir / f"{row['run_id']}.parquet")


def read_rows(out: str | Path) -> pd.DataFrame:
    """All finished runs of a sweep folder as one DataFrame, ordered by run id (independent of finish order)."""
    rows_dir = Path(out) / ROWS
    files = sorted(rows_dir.glob("*.parquet")) if rows_dir.is_dir() else []
    if not files:
        return pd.DataFrame()
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    return df.sort_values("run_id", kind="stable").reset_index(drop=True)


def _failed(path: Path) -> bool:
    return bool((pd.read_parquet(path, columns=["error"])["error"] != "").any())


def source_name(scenario: str | Path) -> str:
    """How a manifest names the scenario's source: a file's absolute path, else the name given."""
    p = Path(scenario)
    return str(p.resolve()) if p.suffix in (".toml", ".py") and p.is_file() else str(scenario)


def sweep(
    scenario: str | Path,
    grid: Optional[Mapping[str, list[Any]] | list[str]] = None,
    random: Optional[Mapping[str, tuple[float, float]] | list[str]] = None,
    samples: int = 1,
    seeds: int = 1,
    workers: int = 1,
    out: str | Path = "sweeps/sweep",
    base_seed: int = 0,
    progress: bool = False,
    scheduler: Optional[str] = None,
    retry_failed: bool = False,
    amplification: bool = False,
    metrics: Optional[str] = None,
    agent_report: Optional[Sequence[str]] = None,
    overrides: Optional[Mapping[str, Any]] = None,
) -> pd.DataFrame:
    """Run every combination x seed (validated first); returns this plan's rows, one per run.

    ``scheduler``: None runs on a local process pool of ``workers``; a Dask scheduler address
    (``tcp://host:port``) runs on that cluster; ``"local"`` starts a Dask cluster of ``workers``
    processes on loopback for the sweep and stops it afterwards. ``out`` holds one sweep (its
    ``manifest.json`` names the scenario hash and base seed); the same sweep resumes there, more
    seeds or values extend it, another one is refused. ``retry_failed`` runs failed rows again.
    ``amplification`` sets ``run.amplification`` in every run (each also runs its no-feedback control, and its
    row gains ``control.*`` and ``amplification``); the runs keep their seeds, the scenario hash is the
    amplified scenario's, so such a sweep goes into a folder of its own.
    ``metrics`` (``"module:function"``, called as ``f(result, model)`` in the worker) adds the scalars it returns
    as ``metric.*`` columns; ``agent_report`` (group names) adds each agent's ``abm.analysis.agent_report`` as
    ``agent.<group>.*`` (``agent.<group>.<i>.*`` for a group of several) and journals those groups' orders (an
    override, so in the scenario hash). Both are part of the folder's identity (``abm.sweeps.metrics``).
    ``overrides`` (dotted paths, as ``--set``) change the base scenario for every run: they are in its hash,
    not in the runs' parameters or seeds, so the same seeds run with and without them.
    The frame's ``attrs`` say how many runs ran now (``"ran"``) and how many were already there.
    """
    from abm.sweeps.dask_runner import check_scheduler

    for name, spec in (("--grid", grid), ("--random", random)):
        if spec is not None and not isinstance(spec, (list, Mapping)):
            raise InvalidInput(name, spec, "must be a list of 'path=...' strings or a mapping of paths")
    grid = parse_grid(grid) if isinstance(grid, list) else dict(grid or {})
    random = parse_random(random) if isinstance(random, list) else dict(random or {})
    if type(workers) is not int or workers < 1:
        raise InvalidInput("--workers", workers, "must be an integer >= 1")
    check_scheduler(scheduler, workers)
    if type(retry_failed) is not bool:
        raise InvalidInput("retry_failed", retry_failed, "must be True or False")
    if type(amplification) is not bool:
        raise InvalidInput("amplification", amplification, "must be True or False")
    out = Path(out)
    check_writable(out)  # before the plan, which may take a while to validate
    if overrides is not None and not isinstance(overrides, Mapping):
        raise InvalidInput("overrides", overrides, "must be a mapping of dotted paths to values (as --set)")
    base = dict(overrides or {})
    extra = (row_metrics(metrics, agent_report, load_scenario(scenario, base or None)) if metrics or agent_report
             else NO_METRICS)
    fixed = {**base, **({"run.amplification": True} if amplification else {}), **journal_overrides(extra)}
    sp = plan_sweep(scenario, grid, random, samples, seeds, base_seed, fixed or None)
    record = extra.record() if extra else None
    there = check_folder(out, sp, record)
    rows_dir = out / ROWS
    wanted = {r.run_id for r in sp.runs}
    done = {p.stem for p in rows_dir.glob("*.parquet")} & wanted if rows_dir.is_dir() else set()
    if retry_failed:
        done = {rid for rid in done if not _failed(rows_dir / f"{rid}.parquet")}
    todo = [r for r in sp.runs if r.run_id not in done]
    # connects now (when there is something to run): a dead address fails before anything is written
    with open_backend(workers, scheduler, needed=bool(todo), max_runs=len(todo)) as backend:
        write_manifest(out, there, sp, plan_record(grid, random, samples, seeds), source_name(scenario), record)
        execute(sp, todo, rows_dir, backend, progress, extra)
    df = read_rows(out)
    df = df[df["run_id"].isin(wanted)].reset_index(drop=True)
    df.attrs.update(ran=len(todo), already_done=len(sp.runs) - len(todo))
    return df


def execute(sp: SweepPlan, todo: Sequence[PlannedRun], rows_dir: Path, backend: Backend, progress: bool,
            metrics: RowMetrics = NO_METRICS, desc: str = "sweep") -> None:
    """Run ``todo`` (runs of ``sp``) on ``backend``, each row written to ``rows_dir`` as it finishes."""
    bar = None
    if progress:
        from tqdm import tqdm

        total = len(sp.runs)
        bar = tqdm(total=total, initial=total - len(todo), desc=desc, unit="run")
    failures = 0
    identity = {"scenario": sp.scenario, "scenario_hash": sp.scenario_hash, "base_seed": sp.base_seed}

    def finish(row: dict[str, Any]) -> None:
        nonlocal failures
        failures += bool(row["error"])
        run_id = row.pop("run_id")
        write_row(rows_dir, {"run_id": run_id, **identity, **row})
        if bar is not None:
            bar.update(1)
            bar.set_postfix(failures=failures)

    try:
        backend.run(todo, finish, metrics)
    finally:
        if bar is not None:
            bar.close()
