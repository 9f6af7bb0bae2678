"""Pictures of a sweep: each metric against the swept parameters.

One varying parameter: a line of the mean over seeds with a band from the lowest to the highest seed.
Two: a heatmap of the mean, each cell written with its mean and, over more than one seed, the seed
spread (lowest–highest, and the number of seeds with a value). More than two: lines against the first, the others averaged over (the
figure says so). Failed runs are left out and counted in the title. Means over seeds are exactly
rounded sums (``math.fsum``), so the picture does not depend on the order rows finished in.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional, Sequence

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


def short(v: float) -> str:
    """A cell's number in at most about five characters: 3 significant digits, k / M / B for thousands up."""
    if not math.isfinite(v):
        return "n/a"
    for div, word in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{word}"
    return f"{v:.3g}"


def cell_text(mean: float, lo: float, hi: float, n: float) -> str:
    """What a heatmap cell says: the mean over seeds, then with several seeds their range and count."""
    if not n or not math.isfinite(mean):
        return "no data"
    if n < 2:
        return short(mean)
    return f"{short(mean)}\n{short(lo)}–{short(hi)}\n(n={int(n)})"


def _annotate(ax: Any, im: Any, means: pd.DataFrame, lows: pd.DataFrame, highs: pd.DataFrame, counts: pd.DataFrame) -> None:
    """Each cell's ``cell_text``, dark on the light half of the colour map and light on the dark half."""
    m = means.to_numpy(float)
    lo, hi, n = lows.to_numpy(float), highs.to_numpy(float), counts.to_numpy(float)
    small = 8 if m.size <= 36 else 6
    for (i, j), v in np.ndenumerate(m):
        shade = im.norm(v) if math.isfinite(v) else 0.0
        ax.text(j, i, cell_text(v, lo[i, j], hi[i, j], n[i, j] if math.isfinite(n[i, j]) else 0), ha="center",
                va="center", fontsize=small, color="black" if shade > 0.5 else "white")


def sweep_report(folder: str | Path, metrics: Optional[Sequence[str]] = None, path: Optional[str | Path] = None) -> Path:
    """Draw ``sweep_figure`` of ``folder`` into ``path`` (default ``folder/sweep_report.png``)."""
    fig = sweep_figure(folder, metrics)
    out = Path(path) if path is not None else Path(folder) / "sweep_report.png"
    fig.savefig(out)
    return out


def sweep_figure(folder: str | Path, metrics: Optional[Sequence[str]] = None) -> Any:
    """The sweep's figure (a matplotlib Figure on an Agg canvas): one panel per metric, titled by it."""
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
            cells = ok.assign(_v=values)
            table = cells.pivot_table(index=params[1], columns=p0, values="_v", aggfunc=_mean, dropna=False)
            im = ax.imshow(table.to_numpy(float), aspect="auto", origin="lower", cmap="viridis")
            _annotate(ax, im, table, *(cells.pivot_table(index=params[1], columns=p0, values="_v", aggfunc=f, dropna=False)
                                       .reindex(index=table.index, columns=table.columns) for f in ("min", "max", "count")))
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
    fig.suptitle(f"sweep {folder.name}: {len(ok)} runs" + (f", {failed} failed (left out)" if failed else "")
                 + ("; heatmap cells: mean over seeds, lowest–highest seed, seeds with a value" if len(params) == 2 else ""))
    fig.tight_layout()
    return fig
