"""The report's look: page sizes, colours, labels and the small helpers every panel uses to format numbers and axes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.ticker import ScalarFormatter

from abm.analysis.liquidations import (
    EVENT_KINDS,
)

WIDTH_IN = 14.0
HEADER_IN = 2.0  # plus one inch per two header lines beyond the first six
INCH_PER_RATIO = 2.0
DPI = 100
BANDS = ("0.5", "1", "2")  # depth bands, % of the mid
LIQ_KINDS = EVENT_KINDS
KIND_COLOURS = {
    "book": "tab:blue",
    "backstop": "tab:orange",
    "adl": "tab:red",
    "adl_counterparty": "tab:purple",
    "bad_debt": "black",
}
KIND_LABELS = {
    "book": "book (order sent to the book)",
    "backstop": "backstop (taken over by the vault)",
    "adl": "ADL (auto-deleveraged)",
    "adl_counterparty": "ADL counterparty (closed in profit)",
    "bad_debt": "bad debt (covered by the fund)",
}
MODE_COLOURS = {0: "tab:orange", 1: "tab:blue", 2: "tab:cyan"}
MARKET_COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:brown", "tab:olive")
MARKET_MARKERS = ("o", "s", "^", "v", "P", "X")
SEVERAL_MARKETS_MARKER = "h"
PER_MARKET = ("prices", "depth", "spread_basis", "liquidations")
SHARED = ("funding", "insurance_oi", "cascade")
MODES_PANEL = "margin_modes"
GATEWAY_PANEL = "gateway"  # runs with a venue gateway: its latency against time, next to the price
# (a simulated spot venue's gateway: "gateway@NAME", its step columns' suffix)


def panel_kind(name: str) -> str:
    """A panel's kind: ``depth[ETH-PERP]`` and ``gateway@binance`` are a ``depth`` and a ``gateway`` panel."""
    return name.split("[")[0].split("@")[0]


PANELS = PER_MARKET + SHARED  # the panels of a one-market run with one margin mode
RATIOS = {"prices": 1.2, "depth": 1.1, "spread_basis": 1.0, "liquidations": 1.0, MODES_PANEL: 1.0, GATEWAY_PANEL: 1.0,
          "funding": 1.0, "insurance_oi": 1.0, "cascade": 1.7}
MAX_BARS = 150  # liquidation bars: steps are grouped into at most this many bins
MAX_SHORTFALLS = 3  # of summary["unfilled"] in the header
NONE_STYLE = dict(ha="center", va="center", fontsize=12, color="0.35", style="italic",
                  bbox=dict(boxstyle="round", fc="white", ec="0.7"))
OUTAGE_STYLE: dict[str, Any] = dict(facecolor="none", edgecolor="0.45", hatch="///", lw=0, alpha=0.6, zorder=0)
# a world event ([[events]]: a halt, makers withdrawing, a transfer freeze): a light purple span
EVENT_STYLE: dict[str, Any] = dict(facecolor="tab:purple", alpha=0.10, lw=0, zorder=0)


# ---------------------------------------------------------------------- public API


def _scale(max_abs: float) -> tuple[float, str]:
    """A divisor and its word for a quantity whose largest size is ``max_abs``."""
    if max_abs >= 1e6:
        return 1e6, "million "
    if max_abs >= 1e4:
        return 1e3, "thousand "
    return 1.0, ""


def _money(x: float) -> str:
    a = abs(x)
    if not math.isfinite(x):
        return "n/a"
    if a >= 1e9:
        return f"{x / 1e9:,.2f}B USDC"
    if a >= 1e6:
        return f"{x / 1e6:.2f}M USDC"
    if a >= 1e4:
        return f"{x / 1e3:.1f}k USDC"
    return f"{x:,.0f} USDC"


def _qty(x: Any) -> str:
    return f"{float(x):,.9g}" if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x)


def _finite(a: np.ndarray) -> np.ndarray:
    return a[np.isfinite(a)]


def _none(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, **NONE_STYLE)


def _legend(ax: Any, handles: list | None = None, twin: bool = False) -> None:
    """The panel's legend, outside on the right (past the twin axis' labels when there is one)."""
    kw: dict[str, Any] = dict(loc="upper left", bbox_to_anchor=(1.075 if twin else 1.005, 1.0), fontsize=8,
                              framealpha=0.9, borderaxespad=0.0)
    if handles is None:
        handles = ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, **kw)


def _handles(*axes: Any) -> list:
    out: list = []
    for ax in axes:
        out += ax.get_legend_handles_labels()[0]
    return out


def _plain_y(ax: Any) -> None:
    fmt = ScalarFormatter(useOffset=False)
    fmt.set_scientific(False)
    ax.yaxis.set_major_formatter(fmt)


def _pad_flat(ax: Any, values: np.ndarray, rel: float = 0.05) -> None:
    """A readable y range for a (nearly) constant series instead of a hair-thin one."""
    v = _finite(values)
    if not len(v):
        return
    lo, hi = float(v.min()), float(v.max())
    if hi - lo <= 1e-9 * max(abs(hi), 1.0):
        pad = abs(hi) * rel or 1.0
        ax.set_ylim(lo - pad, hi + pad)


def _pack(parts: list[str], width: int = 170) -> str:
    """``parts`` joined by " · " on as few lines of at most ``width`` characters as they fit."""
    lines: list[str] = []
    for p in parts:
        if lines and len(lines[-1]) + 5 + len(p) <= width:
            lines[-1] += "  ·  " + p
        else:
            lines.append(p)
    return "\n".join(lines)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


# ---------------------------------------------------------------------- header


ROOT_TYPES = ("shock", "whale", "market")


