"""One-page picture of a finished run, readable without knowing the project.

``build_figure(result)`` returns a matplotlib ``Figure`` drawn on an Agg canvas without pyplot, so it
works headless and leaves the caller's pyplot backend alone;
``render_report(result, path)`` saves it as a PNG. Seven panels, the first six on a shared time axis
in minutes since the start of the run, each with the scheduled index shocks shaded:

1. prices: index, oracle, mark and order-book mid (quote currency; greyed where the book had no mid);
2. order-book depth: resting notional within 0.5 / 1 / 2 % of the mid, bids up and asks down (USDC);
3. bid-ask spread (bps, left) and basis = mark − index (bps of the index, right);
4. liquidated notional per time bin, stacked by kind (book / backstop / ADL), event counts annotated;
5. funding rate per payment in bps: predicted for the running interval, last paid, and the payments;
6. insurance fund (USDC, left) and open interest (base units, right);
7. the liquidation cascade: ``abm.analysis.cascade.cascade_graph`` drawn with time on x and its trees
   on y (node area by notional, colour by kind); without that module, a time/notional scatter.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, ScalarFormatter

from abm.errors import InvalidInput
from abm.results.run_result import RunResult

USDC = 10**6
FIGSIZE = (14.0, 18.0)
DPI = 100
BANDS = ("0.5", "1", "2")  # depth bands, % of the mid
LIQ_KINDS = ("book", "backstop", "adl")
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
PANELS = ("prices", "depth", "spread_basis", "liquidations", "funding", "insurance_oi", "cascade")
MAX_BARS = 150  # liquidation bars: steps are grouped into at most this many bins
NONE_STYLE = dict(ha="center", va="center", fontsize=12, color="0.35", style="italic",
                  bbox=dict(boxstyle="round", fc="white", ec="0.7"))


# ---------------------------------------------------------------------- public API


def build_figure(result: RunResult, market: int = 0) -> Figure:
    """The report figure of ``result`` for market number ``market`` (an index into ``result.markets``).

    The seven panel axes carry titles and labels named after ``PANELS`` (``ax.get_label()``); the
    spread/basis and insurance/open-interest panels add one untitled twin axis each (9 axes in all).
    """
    data = _MarketData(result, market)
    fig = Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(len(PANELS), 1, height_ratios=(1.2, 1.1, 1, 1, 1, 1, 1.7))
    first = fig.add_subplot(gs[0])
    axes = [first] + [fig.add_subplot(gs[i], sharex=first) for i in range(1, len(PANELS) - 1)]
    axes.append(fig.add_subplot(gs[len(PANELS) - 1]))  # the cascade picks its own (zoomed) time range
    for ax, name in zip(axes, PANELS):
        ax.set_label(name)
    _title(fig, data)
    _prices(axes[0], data)
    _depth(axes[1], data)
    _spread_basis(axes[2], data)
    _liquidations(axes[3], data)
    _funding(axes[4], data)
    _insurance_oi(axes[5], data)
    _cascade(axes[6], data)
    for ax in axes[:-1]:
        ax.set_xlim(0, data.t_end)
        ax.grid(True, alpha=0.3)
        if ax is not axes[-2]:
            ax.tick_params(labelbottom=False)
    axes[-2].set_xlabel("time since start of run (minutes)")
    return fig


def render_report(result: RunResult, path: str | Path, market: int = 0) -> Path:
    """Draw the report of ``result`` (market number ``market``) and save it as a PNG at ``path``."""
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise InvalidInput("path", str(path), "must be a .png file name")
    p.parent.mkdir(parents=True, exist_ok=True)
    fig = build_figure(result, market)
    fig.savefig(p, format="png", dpi=DPI)
    return p


# ---------------------------------------------------------------------- the data of one market


class _MarketData:
    """The columns and event rows of one market, in report units (minutes, USDC, bps)."""

    def __init__(self, result: RunResult, market: int) -> None:
        if not result.markets:
            raise InvalidInput("result.markets", result.markets, "must describe at least one market")
        if isinstance(market, bool) or not isinstance(market, int) or not 0 <= market < len(result.markets):
            raise InvalidInput("market", market, f"must be a market number from 0 to {len(result.markets) - 1}")
        steps = result.steps
        if steps is None or len(steps) == 0 or "time_s" not in steps:
            raise InvalidInput("result.steps", None if steps is None else len(steps),
                               "must hold at least one collected step with a time_s column")
        self.result = result
        self.market = market
        spec = result.markets[market]
        self.symbol = str(spec.get("symbol", f"market {market}"))
        self.base = self.symbol.split("-")[0] if "-" in self.symbol else "base units"
        self.multiplier = int(spec.get("multiplier", 1))
        self.steps = steps.reset_index(drop=True)
        self.time_s = self.steps["time_s"].to_numpy(dtype=float)
        self.t = self.time_s / 60.0
        self.t_end = max(float(self.t.max()), 1e-9)
        dt = np.diff(self.time_s)
        self.step_s = float(np.median(dt)) if len(dt) else max(float(self.time_s[0]), 1.0)
        self.shocks = [s for s in (result.shocks or []) if s.get("symbol", self.symbol) == self.symbol]
        liq = result.liquidations
        if liq is not None and len(liq):
            own = (liq["market"] == market) | ((liq["market"] == -1) & (market == 0))
            liq = liq[own].copy()
            liq["kind"] = liq["kind"].astype(str)
            liq["time_s"] = liq["time_us"].to_numpy(dtype=float) / 1e6
            liq["notional"] = (liq["size"].abs().to_numpy(dtype=float) * liq["price"].to_numpy(dtype=float)
                               * self.multiplier / USDC)
        self.liq = liq if liq is not None else pd.DataFrame()
        fund = result.funding
        if fund is not None and len(fund):
            fund = fund[fund["market"] == market].copy()
        self.funding = fund if fund is not None else pd.DataFrame()

    def col(self, name: str) -> np.ndarray:
        """The market's column ``name`` (unsuffixed for the first market), NaN if absent."""
        key = name if self.market == 0 else f"{name}[{self.symbol}]"
        if key in self.steps:
            return self.steps[key].to_numpy(dtype=float)
        return np.full(len(self.steps), np.nan)

    def glob(self, name: str) -> np.ndarray:
        return self.steps[name].to_numpy(dtype=float) if name in self.steps else np.full(len(self.steps), np.nan)


# ---------------------------------------------------------------------- formatting helpers


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


def _finite(a: np.ndarray) -> np.ndarray:
    return a[np.isfinite(a)]


def _shock_label(s: dict[str, Any]) -> str:
    return f"shock {float(s.get('pct', 0)):+g}% over {float(s.get('duration_s', 0)):g}s"


def _shade_shocks(ax: Any, data: _MarketData, label: bool = True) -> None:
    """Shaded span per scheduled shock (at least visible on the axis) with a label at the top."""
    for i, s in enumerate(data.shocks):
        a = float(s.get("start_s", 0)) / 60.0
        b = a + float(s.get("duration_s", 0)) / 60.0
        ax.axvspan(a, b, color="tab:red", alpha=0.15, lw=0, zorder=0)
        ax.axvline(a, color="tab:red", lw=1, ls="--", alpha=0.7, zorder=0.5)
        if label:
            ax.text(a, 0.98, " " + _shock_label(s), transform=ax.get_xaxis_transform(), ha="left", va="top",
                    fontsize=8, color="darkred", clip_on=True, zorder=5,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.7))


def _none(ax: Any, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, **NONE_STYLE)


def _legend(ax: Any, handles: list | None = None, twin: bool = False) -> None:
    """The panel's legend, outside on the right (past the twin axis' labels when there is one)."""
    kw: dict[str, Any] = dict(loc="upper left", bbox_to_anchor=(1.075 if twin else 1.005, 1.0), fontsize=8,
                              framealpha=0.9, borderaxespad=0.0)
    if handles is None:
        ax.legend(**kw)
    else:
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


# ---------------------------------------------------------------------- title


def _title(fig: Figure, d: _MarketData) -> None:
    r = d.result
    index = d.col("index")
    idx = _finite(index)
    first_i, last_i = (float(idx[0]), float(idx[-1])) if len(idx) else (math.nan, math.nan)
    low_i = float(idx.min()) if len(idx) else math.nan
    counts = {k: int(np.nansum(d.col(f"liq_{k}_count"))) for k in LIQ_KINDS}
    notional = float(sum(np.nansum(d.col(f"liq_{k}_notional")) for k in LIQ_KINDS))
    bad_debt = float(np.nansum(d.col("bad_debt")))
    ins = _finite(d.glob("insurance_fund"))
    oi = _finite(d.col("open_interest"))
    spread = _finite(np.where(d.col("mid") > 0, d.col("spread_bps"), np.nan))
    spread = spread[spread > 0]
    depth2 = _finite(d.col("depth_bid_2pct") + d.col("depth_ask_2pct"))
    n_pay = len(d.funding)
    venue = r.config.get("venue") if isinstance(r.config, dict) else None
    if isinstance(venue, dict):  # the saved config's table: {"profile": ..., "overrides": {...}}
        venue = str(venue.get("profile", "")) + (" (with overrides)" if venue.get("overrides") else "")
    seed = r.config.get("seed") if isinstance(r.config, dict) else None
    head = f"Stress-test report: {r.scenario}  —  market {d.symbol}"
    extras = [f"venue {venue}" if venue else "", f"seed {seed}" if seed is not None else "",
              f"{d.time_s[-1] / 60:.1f} min simulated"]
    if d.shocks:
        extras.append("shocks: " + ", ".join(f"{_shock_label(s)} at {float(s.get('start_s', 0)) / 60:.1f} min"
                                             for s in d.shocks))
    move = (last_i / first_i - 1) * 100 if first_i else math.nan
    low = (low_i / first_i - 1) * 100 if first_i else math.nan
    lines = [
        [f"index {first_i:,.2f} → {last_i:,.2f} USDC ({move:+.1f}%, lowest {low:+.1f}%)",
         f"max spread {spread.max():,.1f} bps" if len(spread) else "",
         f"depth within 2% of mid (both sides) {_money(depth2[0])} at start, lowest {_money(depth2.min())}"
         if len(depth2) else ""],
        [(f"liquidations: {sum(counts.values())} events, {_money(notional)} "
          f"(book {counts['book']}, backstop {counts['backstop']}, ADL {counts['adl']})"),
         f"bad debt {_money(bad_debt)}",
         f"insurance fund {_money(ins[0])} → {_money(ins[-1])} ({ins[-1] - ins[0]:+,.0f} USDC)" if len(ins) else ""],
        [f"open interest {oi[0]:,.3f} → {oi[-1]:,.3f} {d.base} (peak {oi.max():,.3f})" if len(oi) else "",
         f"funding payments: {n_pay}"],
    ]
    summary = _summary_parts(r.summary)
    if summary:
        lines.append(summary)
    body = "\n".join(_pack([p for p in ps if p]) for ps in [extras, *lines])
    fig.suptitle(f"{head}\n{body}", fontsize=11, x=0.01, ha="left", linespacing=1.5)


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


def _summary_parts(summary: Any) -> list[str]:
    """A few figures of the run summary (``abm.analysis.summary.run_summary``; every market), if present."""
    if not isinstance(summary, dict) or not summary:
        return []
    g = {k: _num(summary.get(k)) for k in ("accounts_liquidated", "worst_depth_drop", "depth_recover_50_s",
                                          "max_abs_basis_bps", "longest_chain", "R_all")}
    parts = []
    if g["accounts_liquidated"] is not None:
        parts.append(f"accounts liquidated {g['accounts_liquidated']:.0f}")
    if g["worst_depth_drop"] is not None:
        where = summary.get("depth_drop_market")
        rec = g["depth_recover_50_s"]
        parts.append(f"worst depth drop {g['worst_depth_drop']:.0%}" + (f" ({where})" if where else "")
                     + (f", half back after {rec:.0f} s" if rec is not None else ""))
    if g["max_abs_basis_bps"] is not None:
        parts.append(f"max |basis| {g['max_abs_basis_bps']:.0f} bps")
    if g["longest_chain"] is not None:
        parts.append(f"longest liquidation chain {g['longest_chain']:.0f}")
    if g["R_all"] is not None:
        parts.append(f"cascade amplification R_all {g['R_all']:.2f}")
    return ["run summary (all markets): " + parts[0], *parts[1:]] if parts else []


# ---------------------------------------------------------------------- panels


def _prices(ax: Any, d: _MarketData) -> None:
    mid = d.col("mid")
    no_mid = ~(mid > 0)
    mid = np.where(no_mid, np.nan, mid)
    ax.plot(d.t, d.col("index"), color="black", lw=1.6, label="index (spot reference)")
    ax.plot(d.t, np.where(d.col("oracle") > 0, d.col("oracle"), np.nan), color="tab:green", lw=1.1,
            label="oracle (published index, delayed)")
    ax.plot(d.t, np.where(d.col("mark") > 0, d.col("mark"), np.nan), color="tab:orange", lw=1.3,
            label="mark (used for margin)")
    ax.plot(d.t, mid, color="tab:blue", lw=0.9, alpha=0.85, label="order-book mid")
    if no_mid.any():
        ax.fill_between(d.t, 0, 1, where=no_mid, transform=ax.get_xaxis_transform(), step="mid",
                        color="0.6", alpha=0.25, lw=0, label="book one-sided or\nempty (no mid)")
    _plain_y(ax)
    _shade_shocks(ax, d)
    ax.set_title(f"Prices of {d.symbol}")
    ax.set_ylabel("price (USDC)")
    _legend(ax)


def _depth(ax: Any, d: _MarketData) -> None:
    bids = [d.col(f"depth_bid_{b}pct") for b in BANDS]
    asks = [d.col(f"depth_ask_{b}pct") for b in BANDS]
    top = max([float(np.nanmax(np.abs(a))) if np.isfinite(a).any() else 0.0 for a in bids + asks] + [0.0])
    div, word = _scale(top)
    alphas = {"2": 0.3, "1": 0.55, "0.5": 0.9}
    for b, bid, ask in sorted(zip(BANDS, bids, asks), key=lambda x: -float(x[0])):
        ax.fill_between(d.t, 0, bid / div, step="post", color="tab:green", alpha=alphas[b], lw=0,
                        label=f"bids within {b}% of mid")
        ax.fill_between(d.t, 0, -ask / div, step="post", color="tab:red", alpha=alphas[b], lw=0,
                        label=f"asks within {b}% of mid")
    ax.axhline(0, color="black", lw=0.6)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):g}"))
    if top > 0:
        ax.set_ylim(-top / div * 1.15, top / div * 1.15)
    ax.text(0.005, 0.96, "bids ↑", transform=ax.transAxes, va="top", fontsize=9, color="darkgreen", weight="bold")
    ax.text(0.005, 0.04, "asks ↓", transform=ax.transAxes, va="bottom", fontsize=9, color="darkred", weight="bold")
    _shade_shocks(ax, d)
    ax.set_title("Order-book depth: resting notional near the mid (bids above zero, asks below)")
    ax.set_ylabel(f"notional ({word}USDC)")
    if top == 0:
        _none(ax, "none — the book was empty throughout")
    _legend(ax)


def _spread_basis(ax: Any, d: _MarketData) -> None:
    spread = d.col("spread_bps")
    spread = np.where((spread > 0) & (d.col("mid") > 0), spread, np.nan)
    index, mark = d.col("index"), d.col("mark")
    basis = np.where((index > 0) & (mark > 0), (mark - index) / np.where(index > 0, index, 1) * 1e4, np.nan)
    ax.plot(d.t, spread, color="tab:purple", lw=0.6, alpha=0.45, label="bid-ask spread (left, bps of mid)")
    win = max(1, round(60 / max(d.step_s, 1e-9)))
    if win > 2:
        med = pd.Series(spread).rolling(win, min_periods=1, center=True).median().to_numpy()
        ax.plot(d.t, med, color="indigo", lw=1.4, label="spread, 1-minute rolling median (left)")
    s = _finite(spread)
    if len(s) and s.max() / max(s.min(), 1e-12) > 100:
        ax.set_yscale("log")
        ax.set_ylabel("spread (bps, log scale)", color="tab:purple")
    else:
        ax.set_ylabel("spread (bps)", color="tab:purple")
    ax.tick_params(axis="y", colors="tab:purple")
    tw = ax.twinx()
    tw.set_label("basis")
    tw.plot(d.t, basis, color="tab:brown", lw=1.2, label="basis = mark − index\n(right, bps of index)")
    tw.axhline(0, color="tab:brown", lw=0.6, ls=":")
    tw.set_ylabel("basis (bps)", color="tab:brown")
    tw.tick_params(axis="y", colors="tab:brown")
    _shade_shocks(ax, d)
    ax.set_title("Bid-ask spread and basis (how far the mark sits from the index)")
    if not len(s):
        _none(ax, "none — no two-sided book, no spread")
    _legend(tw, _handles(ax, tw), twin=True)


def _bins(d: _MarketData) -> tuple[np.ndarray, float]:
    """Bin number of each step and the bin width (s): at most ``MAX_BARS`` bins over the run."""
    per = max(1, math.ceil(len(d.time_s) / MAX_BARS))
    width = d.step_s * per
    return np.floor((d.time_s - 1e-9) / width).astype(int), width


def _liquidations(ax: Any, d: _MarketData) -> None:
    b, width = _bins(d)
    frame = pd.DataFrame({"bin": b})
    for k in LIQ_KINDS:
        frame[f"{k}_n"] = np.nan_to_num(d.col(f"liq_{k}_notional"))
        frame[f"{k}_c"] = np.nan_to_num(d.col(f"liq_{k}_count"))
    g = frame.groupby("bin").sum()
    centers = (g.index.to_numpy() + 0.5) * width / 60.0
    tot_n = sum(g[f"{k}_n"] for k in LIQ_KINDS).to_numpy()
    tot_c = sum(g[f"{k}_c"] for k in LIQ_KINDS).to_numpy().astype(int)
    div, word = _scale(float(tot_n.max()) if len(tot_n) else 0.0)
    bottom = np.zeros(len(g))
    for k in LIQ_KINDS:
        vals = g[f"{k}_n"].to_numpy() / div
        n, c = float(g[f"{k}_n"].sum()), int(g[f"{k}_c"].sum())
        ax.bar(centers, vals, width=width / 60.0 * 0.9, bottom=bottom, color=KIND_COLOURS[k],
               label=f"{KIND_LABELS[k]}:\n{c} events, {_money(n)}")
        bottom += vals
    _shade_shocks(ax, d)
    bar_w = "one step" if width == d.step_s else f"{width:g} s"
    ax.set_title(f"Liquidations: notional closed per {bar_w} bar, by kind (numbers: events in the bar)")
    ax.set_ylabel(f"notional ({word}USDC)")
    if tot_c.sum() == 0:
        ax.set_ylim(0, 1)
        _none(ax, "none — no liquidations in this run")
    else:
        nz = np.flatnonzero(tot_c)
        show = nz if len(nz) <= 30 else nz[np.argsort(tot_n[nz])[-15:]]
        for i in show:
            ax.annotate(str(tot_c[i]), (centers[i], tot_n[i] / div), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7)
        ax.set_ylim(0, float(tot_n.max()) / div * 1.2)
    _legend(ax)


def _funding(ax: Any, d: _MarketData) -> None:
    pred = d.col("funding_predicted") * 1e4
    last = d.col("funding_last") * 1e4
    ax.plot(d.t, pred, color="tab:cyan", lw=1.2, label="predicted rate for the\ncurrent interval")
    ax.plot(d.t, last, color="tab:blue", lw=1.2, drawstyle="steps-post", label="last rate paid")
    ax.axhline(0, color="black", lw=0.6)
    f = d.funding
    if len(f):
        tp = f["time_us"].to_numpy(dtype=float) / 6e7
        rp = f["rate"].to_numpy(dtype=float) * 1e4
        ax.scatter(tp, rp, marker="D", s=40, color="navy", zorder=4, label=f"payments made ({len(f)})")
        for x, y in list(zip(tp, rp))[:20]:
            right = x > 0.85 * d.t_end
            ax.annotate(f"{y:+.2f} bps", (x, y), xytext=(-5 if right else 5, 5), textcoords="offset points",
                        ha="right" if right else "left", fontsize=8, color="navy")
    else:  # the rates are still drawn, so the note goes in the legend rather than over the lines
        ax.scatter([], [], marker="D", s=40, color="navy", label="payments made: none\n(no payment time fell\ninside the run)")
    _shade_shocks(ax, d)
    ax.set_title("Funding rate per payment (positive: longs pay shorts)")
    ax.set_ylabel("rate (bps per payment)")
    _pad_flat(ax, np.concatenate([pred, last]), rel=0.0)
    _legend(ax)


def _insurance_oi(ax: Any, d: _MarketData) -> None:
    ins = d.glob("insurance_fund")
    ax.plot(d.t, ins, color="tab:green", lw=1.6, label="insurance fund (left)")
    ax.set_ylabel("insurance fund (USDC)", color="tab:green")
    ax.tick_params(axis="y", colors="tab:green")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    _pad_flat(ax, ins)
    tw = ax.twinx()
    tw.set_label("open_interest")
    oi = d.col("open_interest")
    tw.plot(d.t, oi, color="tab:gray", lw=1.3, label=f"open interest\n(right, {d.base}, one side)")
    lev = d.col("lev_long_cross") + d.col("lev_long_isolated")
    levs = d.col("lev_short_cross") + d.col("lev_short_isolated")
    if np.nansum(lev) > 0:
        tw.plot(d.t, lev, color="tab:olive", lw=1, ls="--", label=f"of which leveraged\nlongs (right, {d.base})")
    if np.nansum(levs) > 0:
        tw.plot(d.t, levs, color="tab:pink", lw=1, ls="--", label=f"of which leveraged\nshorts (right, {d.base})")
    tw.set_ylabel(f"open interest ({d.base})", color="tab:gray")
    tw.set_ylim(bottom=0)
    _shade_shocks(ax, d)
    ax.set_title("Insurance fund and open interest")
    _legend(tw, _handles(ax, tw), twin=True)


# ---------------------------------------------------------------------- cascade


def _cascade(ax: Any, d: _MarketData) -> None:
    liq = d.liq
    if not len(liq):
        ax.set_xlim(0, d.t_end)
        _shade_shocks(ax, d)
        ax.set_title("Liquidation cascade")
        ax.set_xlabel("time since start of run (minutes)")
        ax.set_yticks([])
        _none(ax, "none — no liquidation events, so no cascade")
        return
    graph, why = _cascade_graph(d)
    if graph is not None:
        try:
            _draw_graph(ax, d, graph)
            return
        except Exception as e:  # noqa: BLE001 - a graph of an unexpected shape must not cost the whole report
            warnings.warn(f"cascade graph could not be drawn, showing the event scatter: {e!r}", stacklevel=2)
            why = f"graph not drawable: {type(e).__name__}"
            ax.cla()
    _draw_scatter(ax, d, why)


def _cascade_graph(d: _MarketData) -> tuple[Any, str]:
    """``cascade_graph`` of this market's liquidations, or None and why not."""
    try:
        from abm.analysis.cascade import cascade_graph
    except ImportError:
        return None, "cascade analysis not available"
    import inspect

    kw: dict[str, Any] = {"shocks": d.shocks, "whale_orders": None}
    params = inspect.signature(cascade_graph).parameters
    for name in ("multiplier", "multipliers"):
        if name in params:
            kw[name] = d.result.multipliers
    try:
        return cascade_graph(d.liq.drop(columns=["time_s", "notional"]), d.result.trades, **kw), ""
    except Exception as e:  # noqa: BLE001 - reported on the panel and as a warning
        warnings.warn(f"cascade_graph failed, showing the event scatter: {e!r}", stacklevel=2)
        return None, f"cascade graph failed: {type(e).__name__}"


def _cascade_stats(graph: Any) -> str:
    """A few numbers of ``cascade_metrics`` for the panel title, if that function is there."""
    try:
        from abm.analysis.cascade import cascade_metrics

        m = cascade_metrics(graph)
    except Exception:  # noqa: BLE001 - the numbers are optional
        return ""
    parts = []
    if m.get("longest_chain") is not None:
        parts.append(f"longest chain {m['longest_chain']}")
    if m.get("largest_cascade_events"):
        parts.append(f"largest cascade {m['largest_cascade_events']} events, "
                     f"{_money(float(m.get('largest_cascade_notional') or 0))}")
    if m.get("R_all") is not None:
        parts.append(f"amplification R_all {float(m['R_all']):.2f} (notional a liquidation set off per unit liquidated)")
    return "  ·  ".join(parts)


def _zoom(ax: Any, d: _MarketData, times_min: np.ndarray) -> None:
    starts = [float(s.get("start_s", 0)) / 60 for s in d.shocks]
    lo = min([float(times_min.min())] + [s for s in starts if s <= times_min.min()])
    hi = float(times_min.max())
    pad = max((hi - lo) * 0.05, 0.25)
    ax.set_xlim(max(lo - pad, 0.0), min(hi + pad, d.t_end + pad))


def _kind_handles(kinds: list[str], biggest: float) -> list:
    hs = [Line2D([], [], ls="", marker="o", ms=8, color=KIND_COLOURS.get(k, "tab:gray"), label=KIND_LABELS.get(k, k))
          for k in kinds]
    hs.append(Line2D([], [], ls="", marker="o", ms=12, mfc="none", mec="0.4",
                     label=f"marker area ∝ notional\n(largest {_money(biggest)})"))
    return hs


def _sizes(notional: np.ndarray, largest: float = 360.0) -> tuple[np.ndarray, float]:
    """Marker areas (pt²) proportional to notional, from 12 up to ``largest``; and the largest notional."""
    n = np.nan_to_num(np.abs(notional))
    top = float(n.max()) if len(n) else 0.0
    return 12 + (largest - 12) * (n / top if top > 0 else n), top


def _draw_scatter(ax: Any, d: _MarketData, why: str) -> None:
    liq = d.liq
    x = liq["time_s"].to_numpy() / 60
    kinds = liq["kind"].to_numpy()
    y = liq["notional"].to_numpy()
    if "bad_debt" in liq:  # a bad-debt row has no size: show the debt the fund covered instead
        y = np.where(kinds == "bad_debt", liq["bad_debt"].to_numpy(dtype=float) / USDC, y)
    s, top = _sizes(y)
    y_plot = np.where(y > 0, y, np.nan)
    for k in sorted(set(kinds), key=lambda k: list(KIND_COLOURS).index(k) if k in KIND_COLOURS else 99):
        m = kinds == k
        ax.scatter(x[m], y_plot[m], s=s[m], color=KIND_COLOURS.get(k, "tab:gray"), alpha=0.7, edgecolors="white",
                   lw=0.5)
    if np.isfinite(y_plot).any():
        ax.set_yscale("log")
        ax.set_ylim(np.nanmin(y_plot) / 2, np.nanmax(y_plot) * 3)  # room for the largest markers
    _zoom(ax, d, x)
    _shade_shocks(ax, d)
    ax.set_title(f"Liquidation events over time, zoomed to the cascade ({why}; showing each event's notional)")
    ax.set_ylabel("notional per event\n(bad debt: amount covered)\n(USDC, log scale)")
    ax.set_xlabel("time since start of run (minutes, zoomed)")
    ax.grid(True, alpha=0.3)
    present = [k for k in KIND_COLOURS if k in set(kinds)] + sorted(set(kinds) - set(KIND_COLOURS))
    _legend(ax, _kind_handles(present, top))


ROOT_TYPES = ("shock", "whale", "market")


def _node_time_s(graph: Any, d: _MarketData) -> dict[Any, float]:
    """Each timed node's time in seconds: ``time_s``, ``time_us``, or ``time`` (seconds, or µs if too large)."""
    raw: dict[Any, float] = {}
    for n, a in graph.nodes(data=True):
        if a.get("time_s") is not None:
            raw[n] = float(a["time_s"])
        elif a.get("time_us") is not None:
            raw[n] = float(a["time_us"]) / 1e6
        elif a.get("time") is not None:
            raw[n] = float(a["time"])
    end = float(d.time_s[-1])
    if raw and max(raw.values()) > 10 * end + 10:  # microseconds after all
        raw = {n: v / 1e6 for n, v in raw.items()}
    return raw


def _is_root(g: Any, n: Any) -> bool:
    typ = g.nodes[n].get("type")
    if typ is not None:
        return typ in ROOT_TYPES
    s = str(n)
    return s == "market" or s.startswith(("shock:", "whale:")) or (g.in_degree(n) == 0 and "kind" not in g.nodes[n])


def _root_label(g: Any, n: Any, d: _MarketData) -> str:
    a = g.nodes[n]
    s = str(n)
    if a.get("type") == "shock" or s.startswith("shock:"):
        if a.get("start_s") is not None:
            return _shock_label(a)
        i = s.split(":", 1)[-1]
        return _shock_label(d.shocks[int(i)]) if i.isdigit() and int(i) < len(d.shocks) else s
    if a.get("type") == "market" or s == "market":
        return "market (no single cause)"
    if a.get("type") == "whale" or s.startswith("whale:"):
        return f"whale order {s.split(':', 1)[-1]}"
    return s


def _draw_graph(ax: Any, d: _MarketData, g: Any) -> None:
    from matplotlib.collections import LineCollection

    times = _node_time_s(g, d)
    roots = [n for n in g.nodes if _is_root(g, n) and g.out_degree(n) > 0]
    events = [n for n in g.nodes if not _is_root(g, n)]
    if not events:
        raise ValueError("the cascade graph has no liquidation node")

    def first_desc_time(n: Any) -> float:
        ts = [times[c] for c in g.successors(n) if c in times]
        return min(ts) if ts else 0.0

    for n in roots:  # shocks at their start, other roots at their first consequence
        a = g.nodes[n]
        if a.get("start_s") is not None:
            times[n] = float(a["start_s"])
        elif n not in times:
            times[n] = first_desc_time(n)
    order = {"shock": 0, "whale": 1, "market": 2}
    roots.sort(key=lambda n: (order.get(g.nodes[n].get("type"), 3), times.get(n, 0.0), str(n)))
    row: dict[Any, int] = {}
    trees: list[tuple[Any, int, int]] = []  # (root, first row, last row)
    for r in roots:  # pre-order walk, children by time: each tree is a contiguous band of rows
        first = len(row)
        stack = [r]
        while stack:
            n = stack.pop()
            if n in row:
                continue
            row[n] = len(row)
            kids = sorted((c for c in g.successors(n) if c not in row), key=lambda c: (times.get(c, math.inf), str(c)))
            stack.extend(reversed(kids))
        trees.append((r, first, len(row) - 1))
    for n in sorted((n for n in events if n not in row), key=lambda n: times.get(n, 0.0)):  # not under a root
        row[n] = len(row)
    for n in g.nodes:
        times.setdefault(n, 0.0)
    drawn = [n for n in g.nodes if n in row]
    segs = [((times[u] / 60, row[u]), (times[v] / 60, row[v])) for u, v in g.edges if u in row and v in row]
    if segs:
        ax.add_collection(LineCollection(segs, colors="0.4", linewidths=0.8, alpha=0.6, zorder=1))
    notional = np.array([float(g.nodes[n].get("notional", 0.0) or 0.0) for n in events])
    row_pt = ax.get_position().height * ax.figure.get_figheight() * 72 / max(len(row), 1)
    sizes, top = _sizes(notional, float(np.clip(3 * row_pt, 8, 19)) ** 2)  # big nodes without burying the rows
    kinds = [str(g.nodes[n].get("kind", "?")) for n in events]
    ax.scatter([times[n] / 60 for n in events], [row[n] for n in events], s=sizes,
               c=[KIND_COLOURS.get(k, "tab:gray") for k in kinds], alpha=0.85, edgecolors="white", linewidths=0.5,
               zorder=3)
    if roots:
        ax.scatter([times[n] / 60 for n in roots], [row[n] for n in roots], marker="D", s=60, color="tab:red",
                   edgecolors="black", zorder=4)
    for i, (r, a, b) in enumerate(trees):
        ax.annotate(f"{_root_label(g, r, d)} → {b - a} liquidation(s)", (times[r] / 60, row[r]), xytext=(8, 0),
                    textcoords="offset points", ha="left", va="center", fontsize=8, color="darkred", zorder=5,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
        if i % 2 == 0:
            ax.axhspan(a - 0.5, b + 0.5, color="0.5", alpha=0.07, lw=0, zorder=0)
    ax.set_ylim(len(row) - 0.5, -0.5 - max(1.0, len(row) * 0.03))  # first tree at the top
    ax.set_yticks([])
    _zoom(ax, d, np.array([times[n] / 60 for n in drawn]))
    _shade_shocks(ax, d, label=False)
    stats = _cascade_stats(g)
    ax.set_title(f"Liquidation cascade: who set off whom ({len(events)} liquidation steps under {len(trees)} "
                 f"root{'s' if len(trees) != 1 else ''})" + (f"\n{stats}" if stats else ""))
    ax.set_ylabel("cascade trees\n(one row per liquidation)")
    ax.set_xlabel("time since start of run (minutes, zoomed to the cascade)")
    ax.grid(True, axis="x", alpha=0.3)
    present = [k for k in KIND_COLOURS if k in set(kinds)] + sorted(set(kinds) - set(KIND_COLOURS))
    hs = _kind_handles(present, top)
    hs.insert(0, Line2D([], [], ls="", marker="D", ms=7, color="tab:red", mec="black",
                        label="root: shock / whale /\nmarket"))
    hs.append(Line2D([], [], color="0.4", lw=1, label="edge: parent's price impact\n→ liquidation"))
    _legend(ax, hs)
