"""One-page picture of a finished run, readable without knowing the project.

``build_figure(result)`` returns a matplotlib ``Figure`` drawn on an Agg canvas without pyplot, so it
works headless and leaves the caller's pyplot backend alone; ``render_report(result, path)`` saves it
as a PNG. Every market of the run is drawn (or one, with ``market=i``). The panels share one time
axis in minutes since the start of the run (except the cascade, which zooms), with the scheduled
index shocks shaded red and the oracle's outages hatched grey:

1. per market: prices (index, oracle, mark and book mid; greyed where the book had no mid);
2. per market: order-book depth within 0.5 / 1 / 2 % of the mid, bids up and asks down (USDC);
3. per market: bid-ask spread (bps, left) and basis = mark − index (bps of the index, right);
4. per market: liquidated notional per time bin, stacked by kind, liquidation events annotated;
   (with a venue gateway, right below the prices: the gateway's latency per step, p50, p99 and max, against
   time next to the first drawn market's mark, with the steps in which it refused actions shaded);
5. when the run has positions in more than one margin mode: liquidated notional and the owners'
   losses per mode (``abm.analysis.liquidations.liquidated_positions``);
6. funding rate per payment in bps, every market;
7. insurance fund (USDC, left) and open interest (right);
8. the liquidation cascade of the run (``abm.analysis.cascade.cascade_graph``) with time on x and
   its trees on y (node area by notional, colour by kind, shape by market).

Every count and amount in the header and the panels comes from ``abm.analysis.summary.analyse_run``
with the inputs the scenario runner gives ``run_summary``: they are the run summary's numbers, and a
"liquidation event" is ``abm.analysis.liquidations``' one definition (said in the header).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from abm.errors import InvalidInput
from abm.report.header import _header
from abm.report.panels import (
    _cascade,
    _depth,
    _funding,
    _gateway,
    _insurance_oi,
    _liquidations,
    _margin_modes,
    _prices,
    _spread_basis,
)
from abm.report.run_data import _Run
from abm.report.style import (
    DPI,
    GATEWAY_PANEL,
    HEADER_IN,
    INCH_PER_RATIO,
    MODES_PANEL,
    RATIOS,
    WIDTH_IN,
    panel_kind,
)
from abm.results.run_result import RunResult


def build_figure(result: RunResult, market: Optional[int] = None) -> Figure:
    """The report figure of ``result``: every market (``market=None``) or market number ``market``.

    Panel axes are labelled (``ax.get_label()``) after ``PER_MARKET``, ``MODES_PANEL`` and ``SHARED``;
    the first market drawn has the plain names, the others ``name[SYMBOL]`` (as in the steps table).
    The spread/basis, margin-mode and insurance/open-interest panels add an untitled twin axis each
    (``basis``, ``losses``, ``open_interest``, suffixed the same way).
    """
    run = _Run(result, market)
    names = run.panel_names()
    ratios = [RATIOS[panel_kind(n)] for n in names]
    header = _header(run)
    height = HEADER_IN + 0.5 * max(0, header.count("\n") + 1 - 6) + INCH_PER_RATIO * sum(ratios)
    fig = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(len(names), 1, height_ratios=ratios)
    first = fig.add_subplot(gs[0])
    axes = {names[0]: first}
    for i, name in enumerate(names[1:], start=1):  # the cascade picks its own (zoomed) time range
        axes[name] = fig.add_subplot(gs[i], sharex=None if name == "cascade" else first)
    for name, ax in axes.items():
        ax.set_label(name)
    fig.suptitle(header, fontsize=11, x=0.01, ha="left", linespacing=1.5)
    for d in run.drawn:
        _prices(axes[d.label("prices")], run, d)
        _depth(axes[d.label("depth")], run, d)
        _spread_basis(axes[d.label("spread_basis")], run, d)
        _liquidations(axes[d.label("liquidations")], run, d)
    for suffix in run.gateways:  # the perp venue's gateway, then each spot venue's
        _gateway(axes[GATEWAY_PANEL + suffix], run, suffix)
    if MODES_PANEL in axes:
        _margin_modes(axes[MODES_PANEL], run)
    _funding(axes["funding"], run)
    _insurance_oi(axes["insurance_oi"], run)
    _cascade(axes["cascade"], run)
    timed = [a for n, a in axes.items() if n != "cascade"]
    for ax in timed:
        ax.set_xlim(0, run.t_end)
        ax.grid(True, alpha=0.3)
        if ax is not timed[-1]:
            ax.tick_params(labelbottom=False)
    timed[-1].set_xlabel("time since start of run (minutes)")
    return fig


def render_report(result: RunResult, path: str | Path, market: Optional[int] = None) -> Path:
    """Draw the report of ``result`` (every market, or market number ``market``) as a PNG at ``path``."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise InvalidInput("path", str(path), "must be a .png file name")
    p.parent.mkdir(parents=True, exist_ok=True)
    fig = build_figure(result, market)
    fig.savefig(p, format="png", dpi=DPI)
    return p


