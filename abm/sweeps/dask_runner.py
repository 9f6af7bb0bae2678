"""Running sweep runs on a Dask cluster: the real ``distributed`` client, no scheduler of our own.

Each run is one task returning one summary row; rows are handed back as tasks complete, so the
driver holds at most the rows in flight. A task carries its resolved scenario, so workers need no
scenario files. ``"local"`` starts a ``LocalCluster`` on 127.0.0.1 without a dashboard and closes it
when the sweep ends (its worker processes exit with the driver: distributed watches their parent).
An address is connected to before anything is written, with a short timeout, so a wrong or dead
address is one error at once, not a hang or a traceback.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional

from abm.errors import InvalidInput
from abm.sweeps.metrics import RowMetrics
from abm.sweeps.plan import PlannedRun

CONNECT_TIMEOUT_S = 5
PROTOCOLS = ("tcp://", "tls://", "inproc://")


def check_scheduler(scheduler: Optional[str], workers: int) -> None:
    """The address's form, and that ``workers`` means something with it (checked before any run)."""
    if scheduler is None or scheduler == "local":
        return
    if not isinstance(scheduler, str) or not scheduler.startswith(PROTOCOLS) or scheduler.endswith("://"):
        raise InvalidInput("--scheduler", scheduler, "must be 'local' or a Dask address such as tcp://127.0.0.1:8786")
    if workers != 1:
        raise InvalidInput("--workers", workers, "sizes the local pool or --scheduler local; a cluster at an address "
                                                 "has its own workers (leave --workers out)")


@contextmanager
def dask_client(scheduler: str, workers: int) -> Iterator[Any]:
    """A connected client (and for ``"local"`` its cluster), closed on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - distributed is a dependency
        raise InvalidInput("--scheduler", scheduler, "needs the 'distributed' package") from None
    if scheduler == "local":
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as cluster, Client(cluster) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError) as e:
        raise InvalidInput("--scheduler", scheduler, f"must be a running Dask scheduler; none answered within "
                                                     f"{CONNECT_TIMEOUT_S} s ({_reason(e)})") from None
    with client:
        yield client


def _reason(e: BaseException) -> str:
    """The cause under distributed's "Timed out trying to connect" (e.g. connection refused), on one line."""
    text = str(e.__cause__).split(">: ", 1)[-1] if e.__cause__ is not None else ""
    return " ".join((text or str(e) or type(e).__name__).split())


def run_on_dask(client: Any, runs: list[PlannedRun], finish: Callable[[dict[str, Any]], None],
                metrics: RowMetrics) -> None:
    from distributed import as_completed

    from abm.sweeps.local import failed_row, run_one

    futures = {client.submit(run_one, r, metrics, pure=False, key=f"abm-run-{r.run_id}"): r for r in runs}
    for fut in as_completed(futures):
        try:
            row = fut.result()
        except Exception as e:  # the task itself failed (e.g. KilledWorker: the run kept killing its worker)
            row = failed_row(futures[fut], e)
        finish(row)
        fut.release()
