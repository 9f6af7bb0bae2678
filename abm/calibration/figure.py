"""The calibration's one figure: each moment against its target over the evaluations, with the seeds' band, and
the objective trace.

Why over the evaluations: it shows at once whether the fit reached the target, how far seed noise
alone spreads a moment (the band: the seeds' range, and +-1 sd), and whether the optimiser was still
moving when it stopped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from abm.calibration.fit import Calibration


def draw_calibration(result: Calibration, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fit, moments = result.fit, result.moments
    names = list(moments["moment"])
    n = len(names) + 1
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    best = int(fit["objective"].to_numpy().argmin())
    fitted = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in result.parameters.items())
    fig.suptitle(f"{result.scenario}: {fitted} (objective {result.objective:.3g}, {len(fit)} evaluations, "
                 f"{int(moments['seeds'].iloc[0])} seeds each)", fontsize=10)
    x = fit["evaluation"].to_numpy()
    for i, name in enumerate(names):
        ax = axes[i // cols, i % cols]
        mean, sd = fit[f"{name}.mean"].to_numpy(float), fit[f"{name}.sd"].to_numpy(float)
        ax.fill_between(x, fit[f"{name}.min"].to_numpy(float), fit[f"{name}.max"].to_numpy(float), color="tab:blue",
                        alpha=0.15, label="seeds' range", step=None)
        ax.fill_between(x, mean - sd, mean + sd, color="tab:blue", alpha=0.25, label="mean +- 1 sd")
        ax.plot(x, mean, ".-", color="tab:blue", lw=0.8, ms=3, label="mean over seeds")
        row = moments[moments["moment"] == name].iloc[0]
        ax.axhline(row["target"], color="tab:red", lw=1.2, label=f"target {row['target']:.4g}")
        ax.errorbar([best], [row["mean"]], yerr=[[row["mean"] - row["min"]], [row["max"] - row["mean"]]], fmt="o",
                    color="black", ms=5, capsize=3, label=f"fitted {row['mean']:.4g} (t = {row['t']:.2f})")
        ax.set_title(f"{name} ({row['column']})", fontsize=9)
        ax.set_xlabel("evaluation")
        ax.legend(fontsize=7, loc="best")
    ax = axes[(n - 1) // cols, (n - 1) % cols]
    obj = fit["objective"].to_numpy(float)
    finite = np.isfinite(obj) & (obj > 0)
    ax.plot(x[finite], obj[finite], ".", color="tab:gray", ms=4, label="evaluation")
    ax.plot(x, fit["best_objective"].to_numpy(float), "-", color="black", lw=1.2, label="best so far")
    if finite.any():
        ax.set_yscale("log")
    ax.set_title(f"objective ({result.optimizer.get('method', '')})", fontsize=9)
    ax.set_xlabel("evaluation")
    ax.legend(fontsize=7)
    for j in range(n, rows * cols):
        axes[j // cols, j % cols].axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
