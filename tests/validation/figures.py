"""The one-page figure each validation test writes when asked: ``ABM_VALIDATION_FIGURES=DIR`` makes
``DIR/<name>.png``; unset, nothing is drawn (the suite stays fast and writes nothing)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

ENV = "ABM_VALIDATION_FIGURES"


def figure_dir() -> Optional[Path]:
    """The folder figures go to, or None when none was asked for."""
    d = os.environ.get(ENV)
    return Path(d) if d else None


def page(ncols: int = 2, nrows: int = 1) -> tuple[Figure, list]:
    """A one-page figure (A4 landscape-ish) and its axes, flat."""
    fig = Figure(figsize=(11, 4.2 * nrows), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [a for row in axes for a in row]


def save(fig: Figure, name: str) -> Optional[Path]:
    """Write ``fig`` as ``DIR/<name>.png`` when ``ABM_VALIDATION_FIGURES`` is set; return the path."""
    d = figure_dir()
    if d is None:
        return None
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{name}.png"
    fig.savefig(path, dpi=110)
    return path
