"""Seeing runs live and after: the dashboard of a running model and the explorer of a saved run.

Both are Panel apps on Bokeh (the extra ``viz``), served on 127.0.0.1 only (``abm dashboard``, ``abm explore``)
or shown in a notebook cell (``show``, ``explore``). Nothing here imports Panel until it is called, so
``import abm`` works without the extra, and a call without it says which extra to install.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

DEFAULT_PORT = 5006


def show(scenario: Optional[str] = None, overrides: Optional[dict[str, Any]] = None) -> Any:
    """The live dashboard as a notebook cell's output (the same panels and controls as ``abm dashboard``)."""
    from abm.dashboard.app import Dashboard

    return Dashboard(scenario, overrides).start()


def explore(run_dir: str | Path) -> Any:
    """The explorer of a saved run folder as a notebook cell's output (the same as ``abm explore RUN_DIR``)."""
    from abm.dashboard.explorer import Explorer

    return Explorer(run_dir).layout


def serve(scenario: Optional[str] = None, port: int = DEFAULT_PORT, overrides: Optional[dict[str, Any]] = None) -> Any:
    """The dashboard on http://127.0.0.1:``port``/ in a background thread; the returned server's ``stop()`` ends it."""
    from abm.dashboard.app import dashboard_app
    from abm.dashboard.viz import Server

    return Server(lambda: dashboard_app(scenario, overrides), port, "abm dashboard")


def serve_explorer(run_dir: str | Path, port: int = DEFAULT_PORT) -> Any:
    """The explorer of ``run_dir`` on http://127.0.0.1:``port``/ in a background thread (``stop()`` ends it)."""
    from abm.dashboard.explorer import Explorer, load_explored
    from abm.dashboard.viz import Server

    result = load_explored(run_dir)  # read once, before the server: a bad folder fails here, not in a browser tab
    return Server(lambda: Explorer(result).layout, port, f"abm explore {Path(run_dir).name}")


__all__ = ["show", "explore", "serve", "serve_explorer", "DEFAULT_PORT"]
