"""The notebooks in notebooks/ run top to bottom, and are committed without outputs, so they never go stale.

Each notebook is executed by nbclient in a fresh ipykernel that runs on this very interpreter
(``sys.executable``: ipykernel's own kernelspec, not whatever ``python3`` kernel is installed),
listens on loopback only, works in a temporary folder with the Agg backend (no display needed), and
is shut down at the end, even when a cell fails or times out. A failing cell fails its test with the
cell's source and traceback.
"""

from __future__ import annotations

import os
import re
import signal
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client import AsyncKernelManager
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

import abm
from tests.support import REPO

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
EXPECTED = {"01_quickstart.ipynb", "02_isolated_vs_cross.ipynb", "03_parameter_sweep.ipynb",
            "04_your_own_agent.ipynb"}
CELL_TIMEOUT_S = 180  # per cell; every notebook takes seconds in all
LOOPBACK = "127.0.0.1"
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colours in IPython tracebacks


def test_the_notebooks_are_there():
    assert EXPECTED <= {p.name for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernelspec must be python3"
    dirty = [i for i, c in enumerate(nb.cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before committing"
    assert not [i for i, c in enumerate(nb.cells) if c.get("attachments")], f"{path.name}: cells carry attachments"


def _kernel_manager(tmp_path: Path) -> AsyncKernelManager:
    """A kernel manager for ipykernel's native kernel on sys.executable, over TCP on loopback only."""
    specs = KernelSpecManager(kernel_dirs=[])  # ignore installed kernelspecs: only ipykernel's native one
    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=specs, transport="tcp", ip=LOOPBACK,
                            connection_file=str(tmp_path / "kernel.json"))
    argv = km.format_kernel_cmd()
    assert Path(argv[0]).resolve() == Path(sys.executable).resolve(), \
        f"the kernel would run on {argv[0]}, not on {sys.executable}"
    assert argv[1:3] == ["-m", "ipykernel_launcher"], argv
    assert km.ip == LOOPBACK
    return km


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - someone else's process reusing the pid
        return False
    return True


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path: Path, tmp_path: Path):
    work = tmp_path / "work"
    work.mkdir()
    km = _kernel_manager(tmp_path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, km=km, timeout=CELL_TIMEOUT_S, startup_timeout=120, allow_errors=False,
                            resources={"metadata": {"path": str(work)}})
    pids: list[int] = []

    def started(notebook: object) -> None:  # the kernel is up: check where it listens, remember its pid
        info = km.get_connection_info()
        assert info["transport"] == "tcp" and info["ip"] == LOOPBACK, info
        pids.append(km.provisioner.process.pid)  # type: ignore[union-attr]

    client.on_notebook_start = started
    env = dict(os.environ)
    env.update({
        "MPLBACKEND": "Agg",
        "IPYTHONDIR": str(tmp_path / "ipython"),  # the kernel's profile goes to the temporary folder too
        # the same abm this test imported, wherever it lives
        "PYTHONPATH": os.pathsep.join([str(Path(abm.__file__).resolve().parent.parent)]
                                      + [p for p in [os.environ.get("PYTHONPATH")] if p]),
    })
    failure = None
    try:
        client.execute(cleanup_kc=True, env=env)  # cleanup_kc: nbclient shuts the kernel down, also on failure
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
        failure = ANSI.sub("", str(e))  # the failing cell's source and traceback
    finally:
        if km.has_kernel:  # nbclient could not shut it down (e.g. it failed to start): do it here
            run_sync(km.shutdown_kernel)(now=True)
        leftover = [pid for pid in pids if _alive(pid)]
        for pid in leftover:
            os.kill(pid, signal.SIGKILL)
    if failure is not None:
        pytest.fail(f"{path.name} failed:\n{failure}", pytrace=False)
    assert pids, "the kernel never started"
    assert not leftover, f"kernel processes {leftover} were still running after the notebook"
    assert not any(o.output_type == "error" for c in nb.cells if c.cell_type == "code" for o in c.outputs)
