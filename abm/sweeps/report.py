"""Pictures of a sweep: each metric against the swept parameters.

One varying parameter: a line of the mean over seeds with a band from the lowest to the highest seed.
Two: a heatmap of the mean. More than two: lines against the first, the others averaged over (the
figure says so). Failed runs are left out and counted in the title. Means over seeds are exactly
rounded sums (``math.fsum``), so the picture does not depend on the order rows finished in.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from abm.errors import InvalidInput
from abm.sweeps.local import read_rows

DEFAULT_METRICS = ("liquidated_notional.total", "liquidation_events", "worst_depth_drop", "max_abs_basis_bps",
                   "largest_cascade_notional", "bad_debt_total", "amplification")  # the last with --amplification only


def _mean(v: pd.Series) -> float:
    """The mean of the values present (NaN: the metric was undefined in that run), exactly rounded."""
    x = v.dropna().tolist()
    return math.fsum(x) / len(x) if x else math.nan


def sweep_report(folder: str | Path, metrics: Optional[Sequence[str]] = None, path: Optional[str | Path] = None) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = Path(folder)
    df = read_rows(folder)
    if df.empty:
        raise InvalidInput("sweep_dir", str(folder), "must hold finished runs (a rows/ folder with .parquet files)")
    failed = int((df["error"] != "").sum())
    ok = df[df["error"] == ""]
    params = [c for c in df.columns if c.startswith("param.") and df[c].nunique() > 1]
    if not params:
        raise InvalidInput("sweep_dir", str(folder), "must vary at least one parameter")
    wanted = [m for m in (metrics or DEFAULT_METRICS) if m in ok.columns]
    if not wanted:
        some = sorted(c for c in ok.columns if not c.startswith("param."))[:8]
        raise InvalidInput("metrics", list(metrics or DEFAULT_METRICS), f"must name columns of the sweep, e.g. {some}")
    n = len(wanted)
    fig = Figure(figsize=(6 * min(n, 3), 4.2 * ((n + 2) // 3)), dpi=100)
    FigureCanvasAgg(fig)
    p0 = params[0]
    for k, metric in enumerate(wanted):
        ax = fig.add_subplot((n + 2) // 3, min(n, 3), k + 1)
        values = pd.to_numeric(ok[metric], errors="coerce")
        if not values.notna().any():
            ax.text(0.5, 0.5, "no data (metric undefined in every run)", ha="center", va="center", transform=ax.transAxes)
        elif len(params) == 2:
            table = ok.assign(_v=values).pivot_table(index=params[1], columns=p0, values="_v", aggfunc=_mean)
            im = ax.imshow(table.to_numpy(float), aspect="auto", origin="lower", cmap="viridis")
            ax.set_xticks(range(len(table.columns)), [str(c) for c in table.columns])
            ax.set_yticks(range(len(table.index)), [str(i) for i in table.index])
            ax.set_xlabel(p0.removeprefix("param."))
            ax.set_ylabel(params[1].removeprefix("param."))
            fig.colorbar(im, ax=ax, label=f"mean {metric}")
        else:
            g = ok.assign(_v=values).groupby(p0)["_v"]
            mean = g.agg(_mean)
            x = np.arange(len(mean)) if mean.index.dtype == object else mean.index.to_numpy(float)
            ax.plot(x, mean.to_numpy(float), marker="o", label="mean over seeds")
            ax.fill_between(x, g.min().to_numpy(float), g.max().to_numpy(float), alpha=0.25, label="seed range")
            if mean.index.dtype == object:
                ax.set_xticks(x, [str(i) for i in mean.index])
            ax.set_xlabel(p0.removeprefix("param.") + (" (other parameters averaged)" if len(params) > 2 else ""))
            ax.set_ylabel(metric)
            ax.legend(fontsize=8)
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    fig.suptitle(f"sweep {folder.name}: {len(ok)} runs" + (f", {failed} failed (left out)" if failed else ""))
    fig.tight_layout()
    out = Path(path) if path is not None else folder / "sweep_report.png"
    fig.savefig(out)
    return out
