"""The position report's one figure: losses per mode, survival, exit slippage against the trigger, equity paths."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from abm.position import stats

if TYPE_CHECKING:
    from abm.position.risk import PositionRisk

M = "metric."
SHOCK_BINS = 8


def _drawn_column(runs: pd.DataFrame) -> str | None:
    """The drawn field that varies most across seeds (a shock size, typically), if any."""
    cols = [c for c in runs.columns if c.startswith("drawn.") and pd.api.types.is_numeric_dtype(runs[c])]
    cols = [c for c in cols if runs[c].nunique() >= 5]
    return max(cols, key=lambda c: runs[c].nunique()) if cols else None


def draw_position_report(result: PositionRisk, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = result.runs[result.runs["error"] == ""]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    p = result.position
    n_modes = max(runs["mode"].nunique(), 1)
    fig.suptitle(f"{p['side']} {p['notional_usdc']:,.0f} USDC at {p['leverage']}x on {p['symbol']}: "
                 f"{len(runs) // n_modes} seeds x {n_modes} margin modes", fontsize=11)
    ax = axes[0, 0]
    losses = [stats.finite(g[M + "loss_usdc"]) for _, g in runs.groupby("mode", sort=False)]
    bins = np.histogram_bin_edges(np.concatenate(losses) if losses else np.zeros(1), bins=30)
    for (mode, _), x in zip(runs.groupby("mode", sort=False), losses):
        ax.hist(x, bins=bins, histtype="step", linewidth=1.5, label=str(mode))
    ax.set(title="loss per run", xlabel="loss (USDC, positive = lost)", ylabel="runs")
    ax.legend()

    ax = axes[0, 1]
    shock = _drawn_column(runs)
    for mode, g in runs.groupby("mode", sort=False):
        liq = g[M + "liquidated"].astype(bool)
        if shock is not None:
            edges = np.unique(np.quantile(g[shock], np.linspace(0, 1, SHOCK_BINS + 1)))
            which = np.clip(np.searchsorted(edges, g[shock], side="right") - 1, 0, len(edges) - 2)
            xs, ys, lo, hi = [], [], [], []
            for b in range(len(edges) - 1):
                sel = which == b
                n, k = int(sel.sum()), int((~liq[sel]).sum())
                if n:
                    xs.append(float(g[shock][sel].mean()))
                    ys.append(k / n)
                    w = stats.wilson(k, n)
                    lo.append(k / n - w[0])
                    hi.append(w[1] - k / n)
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=str(mode))
        else:
            t = np.sort(stats.finite(g[M + "first_liquidation_s"]))
            horizon = float(result.equity["time_s"].max()) if len(result.equity) else 1.0
            times = np.r_[0.0, t, horizon]
            alive = 1 - np.r_[0, np.arange(1, len(t) + 1), len(t)] / max(len(g), 1)
            ax.step(times, alive, where="post", label=str(mode))
    if shock is not None:
        ax.set(title=f"survival against {shock.removeprefix('drawn.')}", xlabel=shock.removeprefix("drawn."),
               ylabel="P(not liquidated)", ylim=(-0.05, 1.05))
    else:
        ax.set(title="survival over the run", xlabel="time (s)", ylabel="share not liquidated", ylim=(-0.05, 1.05))
    ax.legend()

    ax = axes[1, 0]
    for mode, g in runs.groupby("mode", sort=False):
        if M + "exit_slippage_bps" in g:
            ax.scatter(g[M + "exit_trigger_s"], g[M + "exit_slippage_bps"], s=12, label=str(mode), alpha=0.7)
    ax.set(title="exit fill against its trigger", xlabel="trigger time (s)", ylabel="slippage vs trigger mark (bps)")
    if ax.has_data():
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no exit triggered", ha="center", va="center", transform=ax.transAxes)

    ax = axes[1, 1]
    for mode, g in result.equity.groupby("mode", sort=False):
        line, = ax.plot(g["time_s"], g["q50"], label=f"{mode} median")
        ax.fill_between(g["time_s"], g["q05"], g["q95"], color=line.get_color(), alpha=0.2)
    ax.set(title="equity (median, 5-95 %)", xlabel="time (s)", ylabel="equity (USDC)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
