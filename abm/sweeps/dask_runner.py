"""Running sweep runs on a Dask cluster: the real ``distributed`` client, no scheduler of our own.

Each run is one task returning one summary row; rows are handed back as tasks complete, so the
driver holds at most the rows in flight. ``"local"`` starts a ``LocalCluster`` on 127.0.0.1 without a
dashboard and closes it when the sweep ends.
"""

from __future__ import annotations

from typing import Any, Callable

from abm.errors import InvalidInput
from abm.sweeps.plan import PlannedRun


def run_on_dask(scheduler: str, workers: int, scenario: str, runs: list[PlannedRun],
                finish: Callable[[dict[str, Any]], None]) -> None:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise InvalidInput("--scheduler", scheduler, "needs the 'distributed' package") from None
    from abm.sweeps.local import run_one

    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None)
        address: Any = cluster
    elif isinstance(scheduler, str) and scheduler.startswith(("tcp://", "tls://", "inproc://")):
        address = scheduler
    else:
        raise InvalidInput("--scheduler", scheduler, "must be 'local' or a Dask address such as tcp://127.0.0.1:8786")
    try:
        with Client(address, timeout="30s") as client:
            futures = [client.submit(run_one, scenario, r, pure=False, key=f"abm-run-{r.run_id}") for r in runs]
            for fut in as_completed(futures):
                finish(fut.result())
                fut.release()
    finally:
        if cluster is not None:
            cluster.close()
