"""The run report as one self-contained interactive HTML page (``report.html`` beside ``report.png``).

The same panels as the PNG (``abm.report.figure``), drawn with plotly as zoomable charts whose time
axes are linked: zooming or panning one moves every timed panel (the cascade keeps its own axis, as in
the PNG). plotly.js is embedded in the file, so it opens from disk in any browser, offline, with no
server. plotly is the optional extra ``viz`` (``pip install -e '.[viz]'``); without it ``html_available()``
is false and ``render_run_reports`` writes the PNG alone with a one-line note (``render_html`` raises
``VizMissing``). The data are the report's own (``abm.report.run_data._Run``): every number drawn is the
one the PNG draws.
"""

from __future__ import annotations

import html
import math
import sys
import warnings
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from abm.errors import AbmError, InvalidInput
from abm.report.panels import gateway_reject_columns, gateway_title, liquidation_bars, mode_split
from abm.report.run_data import _MarketData, _Run
from abm.report.style import BANDS, KIND_LABELS, LIQ_KINDS, MODES_PANEL, panel_kind
from abm.results.run_result import RunResult
from abm.units import USDC

HTML_NAME = "report.html"
INSTALL_HINT = "pip install -e '.[viz]'"
ROW_PX = 330  # height of one panel
# plotly's names for the matplotlib colours the PNG uses (tab10), so both reports read alike
TAB = {"tab:blue": "#1f77b4", "tab:orange": "#ff7f0e", "tab:green": "#2ca02c", "tab:red": "#d62728",
       "tab:purple": "#9467bd", "tab:brown": "#8c564b", "tab:pink": "#e377c2", "tab:gray": "#7f7f7f",
       "tab:olive": "#bcbd22", "tab:cyan": "#17becf", "black": "#000000", "navy": "#000080", "indigo": "#4b0082"}
KIND_HEX = {"book": TAB["tab:blue"], "backstop": TAB["tab:orange"], "adl": TAB["tab:red"],
            "adl_counterparty": TAB["tab:purple"], "bad_debt": "#000000"}
MODE_HEX = {0: TAB["tab:orange"], 1: TAB["tab:blue"], 2: TAB["tab:cyan"]}
RUN_HEX = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
TWIN = ("spread_basis", "insurance_oi", MODES_PANEL, "gateway")  # panels with a right-hand axis
TITLES = {"prices": "Prices of {sym}: index, oracle, mark, book mid",
          "depth": "Order-book depth of {sym} near the mid (bids above zero, asks below; USDC)",
          "spread_basis": "Bid-ask spread (left, bps) and basis = mark − index (right, bps) of {sym}",
          "liquidations": "Liquidations in {sym}: notional per bar, by kind (hover: events in the bar)",
          MODES_PANEL: "Liquidated notional (solid, left) and owners' losses (dashed, right) by margin mode",
          "funding": "Funding rate per payment (bps; positive: longs pay shorts)",
          "insurance_oi": "Insurance fund and vault equity (left, USDC) and open interest (right)",
          "gateway": "Venue gateway: time from reaching the gateway to execution per step (left, ms), mark (right)",
          "cascade": "Liquidation events of the cascade: notional per event (log) over time; lines join a "
                     "liquidation to those it set off"}
_noted = False


class VizMissing(AbmError):
    """The interactive report needs the optional extra ``viz`` (plotly)."""


def html_available() -> bool:
    """Whether plotly (the extra ``viz``) can be imported."""
    try:
        import plotly.graph_objects  # noqa: F401
        from plotly.subplots import make_subplots  # noqa: F401
    except ImportError:
        return False
    return True


def _plotly() -> Any:
    if not html_available():
        raise VizMissing(f"the interactive report needs plotly, which is not installed: {INSTALL_HINT}")
    import plotly.graph_objects as go

    return go


def new_figure(names: list[str], titles: list[str], twins: set[str], timed_height: int = ROW_PX) -> Any:
    """A column of panels named ``names``: the timed ones share the first one's x axis (zoom one, all follow),
    ``cascade`` keeps its own; each panel gets its own legend at its right, named ``legend_of(fig, name)``."""
    go = _plotly()
    from plotly.subplots import make_subplots

    n = len(names)
    height = timed_height * n
    fig = make_subplots(rows=n, cols=1, subplot_titles=titles, vertical_spacing=min(0.3 / max(n - 1, 1), 90 / height),
                        specs=[[{"secondary_y": panel_kind(name) in twins}] for name in names])
    assert isinstance(fig, go.Figure)
    legends: dict[str, str] = {}
    for i, name in enumerate(names, start=1):
        sub = fig.get_subplot(i, 1)
        if i > 1 and name != "cascade":
            fig.update_xaxes(matches="x", row=i, col=1)
        fig.update_xaxes(showticklabels=True, row=i, col=1)
        key = "legend" if i == 1 else f"legend{i}"
        fig.update_layout({key: dict(x=1.06, xanchor="left", y=sub.yaxis.domain[1], yanchor="top", font=dict(size=10),
                                     bgcolor="rgba(255,255,255,0.8)", groupclick="toggleitem")})
        legends[name] = key
    fig.update_layout(height=height, margin=dict(l=70, r=330, t=60, b=50), hovermode="x unified", barmode="stack",
                      template="plotly_white", bargap=0.1)
    fig.update_xaxes(title_text="time since start of run (minutes)", row=n, col=1)
    fig._abm_rows = {name: i for i, name in enumerate(names, start=1)}  # type: ignore[attr-defined]
    fig._abm_legends = legends  # type: ignore[attr-defined]
    return fig


def add(fig: Any, panel: str, trace: Any, right: bool = False) -> None:
    """``trace`` into panel ``panel`` (on its right-hand axis with ``right``), listed in the panel's legend."""
    trace.update(legend=fig._abm_legends[panel])
    row = fig._abm_rows[panel]
    if right or panel_kind(panel) in TWIN:
        fig.add_trace(trace, row=row, col=1, secondary_y=right)
    else:
        fig.add_trace(trace, row=row, col=1)


def line(x: Any, y: Any, name: str, colour: str, **kw: Any) -> Any:
    go = _plotly()
    style = {"color": colour, "width": kw.pop("width", 1.4)}
    if "dash" in kw:
        style["dash"] = kw.pop("dash")
    if "shape" in kw:
        style["shape"] = kw.pop("shape")
    return go.Scatter(x=np.asarray(x, dtype=float), y=np.asarray(y, dtype=float), name=name, mode="lines",
                      line=style, **kw)


def _spans(fig: Any, row: int, run: _Run, d: Optional[_MarketData], label: bool) -> None:
    """Each scheduled shock shaded red, each oracle outage grey, each world event purple (labelled in the first
    panel they appear)."""
    shocks = [(None, s) for s in d.shocks] if d is not None else run.shocks()
    outages = [(None, w) for w in d.outages] if d is not None else run.outages()
    from abm.report.panels import _shock_label

    for sym, s in shocks:
        a = float(s.get("start_s", 0)) / 60.0
        b = a + float(s.get("duration_s", 0)) / 60.0
        text = dict(annotation_text=_shock_label(s, sym), annotation_position="top left",
                    annotation_font=dict(size=10, color="darkred")) if label else {}
        fig.add_vrect(x0=a, x1=b, fillcolor="red", opacity=0.12, line_width=0, layer="below", row=row, col=1, **text)
    for sym, (a, b) in outages:
        text = dict(annotation_text=(f"{sym} " if sym else "") + f"oracle outage {b - a:g}s",
                    annotation_position="bottom left", annotation_font=dict(size=10, color="#404040")) if label else {}
        fig.add_vrect(x0=a / 60.0, x1=b / 60.0, fillcolor="grey", opacity=0.18, line_width=0, layer="below", row=row,
                      col=1, **text)
    for name, a, b in run.event_windows():  # world events: a halt, makers withdrawing, a transfer freeze
        text = dict(annotation_text=name, annotation_position="top right",
                    annotation_font=dict(size=10, color="indigo")) if label else {}
        fig.add_vrect(x0=a / 60.0, x1=b / 60.0, fillcolor="purple", opacity=0.10, line_width=0, layer="below", row=row,
                      col=1, **text)


def _positive(a: np.ndarray) -> np.ndarray:
    return np.where(a > 0, a, np.nan)


def price_traces(fig: Any, panel: str, run: _Run, d: _MarketData) -> None:
    add(fig, panel, line(run.t, d.col("index"), "index (spot reference)", "#000000", width=1.8))
    add(fig, panel, line(run.t, _positive(d.col("oracle")), "oracle (published index, delayed)", TAB["tab:green"]))
    add(fig, panel, line(run.t, _positive(d.col("mark")), "mark (used for margin)", TAB["tab:orange"]))
    add(fig, panel, line(run.t, _positive(d.col("mid")), "order-book mid (gap: no mid)", TAB["tab:blue"], width=1.0))
    control = d.control_col("mark")
    if control is not None:  # run.amplification: the same seed with liquidations closed off the book
        add(fig, panel, line(run.t, _positive(control), "mark without feedback (no-feedback control)", TAB["tab:orange"],
                             dash="dash"))
    fig.update_yaxes(title_text="price (USDC)", row=fig._abm_rows[panel], col=1)


def depth_traces(fig: Any, panel: str, run: _Run, d: _MarketData) -> None:
    alphas = {"2": 0.3, "1": 0.55, "0.5": 0.9}
    for b in sorted(BANDS, key=lambda x: -float(x)):
        for side, sign, rgb in (("bid", 1.0, "44,160,44"), ("ask", -1.0, "214,39,40")):
            y = sign * d.col(f"depth_{side}_{b}pct")
            add(fig, panel, line(run.t, y, f"{side}s within {b}% of mid", f"rgb({rgb})", width=0.5, shape="hv",
                                 fill="tozeroy", fillcolor=f"rgba({rgb},{alphas[b]})"))
    fig.update_yaxes(title_text="notional (USDC; asks negative)", row=fig._abm_rows[panel], col=1)


def spread_basis_traces(fig: Any, panel: str, run: _Run, d: _MarketData) -> None:
    spread = d.col("spread_bps")
    index, mark = d.col("index"), d.col("mark")
    basis = np.where((index > 0) & (mark > 0), (mark - index) / np.where(index > 0, index, 1) * 1e4, np.nan)
    add(fig, panel, line(run.t, spread, "bid-ask spread (left, bps of mid)", TAB["tab:purple"], width=0.8, opacity=0.6))
    win = max(1, round(60 / max(run.step_s, 1e-9)))
    if win > 2:
        med = pd.Series(spread).rolling(win, min_periods=1, center=True).median().to_numpy()
        add(fig, panel, line(run.t, med, "spread, 1-minute rolling median (left)", TAB["indigo"]))
    add(fig, panel, line(run.t, basis, "basis = mark − index (right, bps of index)", TAB["tab:brown"]), right=True)
    row = fig._abm_rows[panel]
    fig.update_yaxes(title_text="spread (bps)", row=row, col=1, secondary_y=False)
    fig.update_yaxes(title_text="basis (bps)", row=row, col=1, secondary_y=True)


def liquidation_traces(fig: Any, panel: str, run: _Run, d: _MarketData) -> None:
    go = _plotly()
    bars = liquidation_bars(run, d.index)
    width = bars["width_s"] / 60.0
    centers = (np.array(bars["bins"], dtype=float) + 0.5) * width
    tot = bars["totals"]
    for k in LIQ_KINDS:
        add(fig, panel, go.Bar(x=centers, y=bars["notional"][k], width=width * 0.9, marker_color=KIND_HEX[k],
                               name=f"{KIND_LABELS[k]}: {tot['notional_by_kind'][k]:,.0f} USDC",
                               customdata=bars["events"], hovertemplate="%{y:,.0f} USDC (%{customdata} events)"))
    row = fig._abm_rows[panel]
    fig.update_yaxes(title_text=f"notional (USDC); {tot['events']} events", row=row, col=1)
    if tot["events"] == 0:
        fig.add_annotation(text=f"none — no liquidations in {d.symbol}", showarrow=False, xref="x domain",
                           yref="y domain", x=0.5, y=0.5, row=row, col=1)


def margin_mode_traces(fig: Any, panel: str, run: _Run) -> None:
    from abm.analysis.liquidations import MODE_NAMES

    outcomes, positions = mode_split(run)
    for mode in run.modes:
        o = outcomes.get(mode)
        c = MODE_HEX.get(mode, TAB["tab:gray"])
        name = MODE_NAMES.get(mode, str(mode))
        evs = sorted((e["time_us"], e["notional_units"]) for e in run.events.values() if e["mode"] == mode)
        t = [0.0] + [a / 6e7 for a, _ in evs] + [run.t_end]
        cum = np.cumsum([0] + [u for _, u in evs]).tolist()
        add(fig, panel, line(t, np.array(cum + [cum[-1]], dtype=float) / USDC, f"{name}: liquidated (left)", c,
                             width=2, shape="hv"))
        if o and "loss" in o:
            mine = positions[positions["mode"] == mode].sort_values(["last_us", "account", "market"], kind="stable")
            lt = [0.0] + (mine["last_us"].to_numpy(float) / 6e7).tolist() + [run.t_end]
            lc = np.cumsum([0] + mine["loss_units"].tolist()).tolist()
            add(fig, panel, line(lt, np.array(lc + [lc[-1]], dtype=float) / USDC, f"{name}: owners' losses (right)", c,
                                 dash="dash", shape="hv"), right=True)
    row = fig._abm_rows[panel]
    fig.update_yaxes(title_text="liquidated, cumulative (USDC)", row=row, col=1, secondary_y=False)
    fig.update_yaxes(title_text="owners' losses (USDC)", row=row, col=1, secondary_y=True)


def funding_traces(fig: Any, panel: str, run: _Run) -> None:
    go = _plotly()
    f = run.result.funding
    for j, d in enumerate(run.drawn):
        c = RUN_HEX[j % len(RUN_HEX)] if run.multi else None
        who = f"{d.symbol}: " if run.multi else ""
        add(fig, panel, line(run.t, d.col("funding_predicted") * 1e4, f"{who}predicted rate, current interval",
                             c or TAB["tab:cyan"]))
        add(fig, panel, line(run.t, d.col("funding_last") * 1e4, f"{who}last rate paid", c or TAB["tab:blue"],
                             shape="hv", dash="dash" if run.multi else "solid"))
        mine = f[f["market"] == d.index] if f is not None and len(f) else None
        if mine is not None and len(mine):
            add(fig, panel, go.Scatter(x=mine["time_us"].to_numpy(float) / 6e7, y=mine["rate"].to_numpy(float) * 1e4,
                                       mode="markers", marker=dict(symbol="diamond", size=9, color=c or "navy"),
                                       name=f"{who}payments made ({len(mine)})"))
    fig.update_yaxes(title_text="rate (bps per payment)", row=fig._abm_rows[panel], col=1)


def gateway_traces(fig: Any, panel: str, run: _Run, suffix: str = "") -> None:
    """A venue gateway's latency per step (max, p99, p50) and the steps it refused actions, against the mark;
    ``suffix`` "@NAME": spot venue NAME's gateway."""
    steps = run.steps

    def col(name: str) -> np.ndarray:
        name += suffix
        return steps[name].to_numpy(float) if name in steps else np.full(len(run.t), np.nan)

    add(fig, panel, line(run.t, col("gateway_latency_max_ms"), "latency, slowest action of the step", TAB["tab:purple"],
                         width=0.6, fill="tozeroy", fillcolor="rgba(148,103,189,0.15)"))
    add(fig, panel, line(run.t, col("gateway_latency_p99_ms"), "latency p99", TAB["tab:purple"]))
    add(fig, panel, line(run.t, col("gateway_latency_p50_ms"), "latency p50", TAB["tab:purple"], width=0.9, dash="dash"))
    refused = sum((col(c[:len(c) - len(suffix)]) for c in gateway_reject_columns(steps, suffix)), np.zeros(len(run.t)))
    if np.nansum(refused) > 0:
        add(fig, panel, line(run.t, refused, f"actions refused in the step ({int(np.nansum(refused)):,} in the run)",
                             TAB["tab:red"], width=0.8, shape="hv"))
    d = run.drawn[0]
    add(fig, panel, line(run.t, _positive(d.col("mark")), f"mark of {d.symbol} (right)", TAB["tab:orange"]), right=True)
    row = fig._abm_rows[panel]
    fig.update_yaxes(title_text="gateway latency (ms)", row=row, col=1, secondary_y=False)
    fig.update_yaxes(title_text="price (USDC)", row=row, col=1, secondary_y=True)


def insurance_traces(fig: Any, panel: str, run: _Run) -> None:
    for col, name, c in (("insurance_fund", "insurance fund (left)", TAB["tab:green"]),
                         ("vault_equity", "vault equity (left)", TAB["tab:olive"])):
        if col in run.steps:
            add(fig, panel, line(run.t, run.steps[col].to_numpy(float), name, c, width=1.8))
    for j, d in enumerate(run.drawn):
        oi = d.col("open_interest")
        if run.multi:  # base units differ between markets: notional at the mark
            add(fig, panel, line(run.t, oi * d.col("mark"), f"open interest {d.symbol} (right, USDC at the mark)",
                                 RUN_HEX[j % len(RUN_HEX)]), right=True)
        else:
            add(fig, panel, line(run.t, oi, f"open interest (right, {d.base}, one side)", TAB["tab:gray"]), right=True)
            for side, c in (("long", TAB["tab:olive"]), ("short", TAB["tab:pink"])):
                lev = d.col(f"lev_{side}_cross") + d.col(f"lev_{side}_isolated")
                if np.nansum(lev) > 0:
                    add(fig, panel, line(run.t, lev, f"of which leveraged {side}s (right, {d.base})", c, dash="dash",
                                         width=1.0), right=True)
    row = fig._abm_rows[panel]
    fig.update_yaxes(title_text="USDC", row=row, col=1, secondary_y=False)
    fig.update_yaxes(title_text="open interest" + (" (USDC)" if run.multi else f" ({run.drawn[0].base})"), row=row,
                     col=1, secondary_y=True)


def cascade_traces(fig: Any, panel: str, run: _Run) -> None:
    """Events at (time, notional), coloured by kind; each edge of the cascade graph between two liquidations
    a grey line (roots, shocks and whales, are the red spans and the hover's text)."""
    go = _plotly()
    row = fig._abm_rows[panel]
    if not run.events:  # an empty trace, so plotly.js draws the panel that says so
        add(fig, panel, go.Scatter(x=[0.0, run.t_end], y=[None, None], mode="lines", showlegend=False, hoverinfo="skip"))
        fig.add_annotation(text="none — no liquidation events, so no cascade", showarrow=False, xref="x domain",
                           yref="y domain", x=0.5, y=0.5, row=row, col=1)
        return
    g = run.analysis.graph
    nodes = {n: a for n, a in g.nodes(data=True) if a.get("type") == "liquidation"}
    xs: list[Optional[float]] = []
    ys: list[Optional[float]] = []
    for u, v in g.edges:
        if u in nodes and v in nodes:
            xs += [nodes[u]["time_s"] / 60, nodes[v]["time_s"] / 60, None]
            ys += [max(nodes[u]["notional"], 1e-6), max(nodes[v]["notional"], 1e-6), None]
    if xs:
        add(fig, panel, go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="rgba(100,100,100,0.4)", width=0.8),
                                   name="set off (parent → child)", hoverinfo="skip"))
    parent = {v: u for u, v in g.edges}
    top = max(float(a["notional"]) for a in nodes.values()) or 1.0
    for k in LIQ_KINDS:
        mine = [(n, a) for n, a in nodes.items() if a.get("kind") == k]
        if not mine:
            continue
        text = [f"{n}: account {a['account']}, {a['notional']:,.0f} USDC, set off by {parent.get(n, 'none')}"
                for n, a in mine]
        add(fig, panel, go.Scatter(x=[a["time_s"] / 60 for _, a in mine], y=[max(a["notional"], 1e-6) for _, a in mine],
                                   mode="markers", name=KIND_LABELS.get(k, k), text=text, hoverinfo="text",
                                   marker=dict(color=KIND_HEX[k], opacity=0.8, line=dict(color="white", width=0.5),
                                               size=[6 + 18 * math.sqrt(a["notional"] / top) for _, a in mine])))
    times = [a["time_s"] / 60 for a in nodes.values()]
    starts = [float(s.get("start_s", 0)) / 60 for _, s in run.shocks()]
    lo = min([min(times)] + [s for s in starts if s <= min(times)])
    pad = max((max(times) - lo) * 0.05, 0.25)
    fig.update_xaxes(range=[max(lo - pad, 0.0), max(times) + pad], row=row, col=1,
                     title_text="time since start of run (minutes, zoomed to the cascade)")
    fig.update_yaxes(type="log", title_text="notional per event (USDC, log)", row=row, col=1)


def build_html_figure(result: RunResult, market: Optional[int] = None) -> tuple[Any, _Run]:
    """The interactive figure of ``result`` (every market, or number ``market``) and the report data behind it."""
    _plotly()
    run = _Run(result, market)
    names = run.panel_names()
    sym = {d.label(p): d.symbol for d in run.drawn for p in ("prices", "depth", "spread_basis", "liquidations")}
    titles = [TITLES.get(n.split("[")[0], n).format(sym=sym.get(n, "")) for n in names]  # a panel new to this page: its name
    titles = [TITLES["gateway"].replace("Venue gateway", gateway_title(n[len("gateway"):]))
              if panel_kind(n) == "gateway" else t for n, t in zip(names, titles)]
    fig = new_figure(names, titles, set(TWIN))
    for d in run.drawn:
        price_traces(fig, d.label("prices"), run, d)
        depth_traces(fig, d.label("depth"), run, d)
        spread_basis_traces(fig, d.label("spread_basis"), run, d)
        liquidation_traces(fig, d.label("liquidations"), run, d)
    for suffix in run.gateways:  # venues with a gateway: the perp venue's, then each spot venue's (as the PNG)
        gateway_traces(fig, "gateway" + suffix, run, suffix)
    if MODES_PANEL in names:
        margin_mode_traces(fig, MODES_PANEL, run)
    funding_traces(fig, "funding", run)
    insurance_traces(fig, "insurance_oi", run)
    cascade_traces(fig, "cascade", run)
    first = True
    for name in names:
        base = name.split("[")[0]
        mine = next((m for m in run.drawn if m.label(base) == name), None)
        _spans(fig, fig._abm_rows[name], run, mine if base in ("prices", "depth", "spread_basis", "liquidations") else None,
               label=first or (mine is not None and not mine.first_drawn and base == "prices"))
        first = False
    fig.update_xaxes(range=[0, run.t_end], row=1, col=1)
    return fig, run


SUMMARY_ROWS = (("liquidation events", "liquidation_events"), ("liquidated notional (USDC)", "liquidated_notional.total"),
                ("  book", "liquidated_notional.book"), ("  backstop", "liquidated_notional.backstop"),
                ("  ADL", "liquidated_notional.adl"), ("accounts liquidated", "accounts_liquidated"),
                ("bad debt (USDC)", "bad_debt_total"), ("largest cascade (events)", "largest_cascade_events"),
                ("largest cascade (USDC)", "largest_cascade_notional"), ("longest chain", "longest_chain"),
                ("amplification R", "R"), ("worst 1% depth drop", "worst_depth_drop"),
                ("max |basis| (bps)", "max_abs_basis_bps"), ("max spread (bps)", "max_spread_bps"),
                ("insurance fund at end (USDC)", "insurance_fund_end"), ("vault equity at end (USDC)", "vault_equity_end"))


def dotted(summary: Any, key: str) -> Any:
    """``summary["a"]["b"]`` for key ``"a.b"``; None where absent."""
    v: Any = summary
    for part in key.split("."):
        v = v.get(part) if isinstance(v, dict) else None
    return v


def summary_table(summary: dict[str, Any]) -> str:
    """The run summary's main numbers as an HTML table, written in full (``repr``) so they can be read back exactly."""
    rows = []
    for label, key in SUMMARY_ROWS:
        v = dotted(summary, key)
        if v is None:
            continue
        shown = f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else repr(v)
        rows.append(f"<tr><td>{html.escape(label)}</td><td class='num' data-key='{key}'>{html.escape(shown)}</td></tr>")
    return "<table class='summary'>" + "".join(rows) + "</table>"


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:16px}} pre{{font-size:12px;line-height:1.4;white-space:pre-wrap}}
table{{border-collapse:collapse;font-size:13px}} td,th{{border:1px solid #ccc;padding:2px 8px}}
td.num{{text-align:right;font-family:monospace}} .note{{color:#555;font-size:12px}}</style></head>
<body><h2>{title}</h2><pre>{header}</pre>{table}
<p class="note">Drag to zoom (every timed panel follows), double-click to reset, click a legend entry to hide it.
Made by abm; opens offline (plotly.js is embedded).</p>
{body}</body></html>
"""


def page(title: str, header: str, table: str, figures: list[Any]) -> str:
    """A whole HTML page: the title, the header text, a table and the figures, plotly.js embedded once."""
    divs = [f.to_html(full_html=False, include_plotlyjs=(i == 0), div_id=f"abm-figure-{i}",  # fixed: same run, same page
                      config={"displaylogo": False, "responsive": True})
            for i, f in enumerate(figures)]
    return PAGE.format(title=html.escape(title), header=html.escape(header), table=table, body="\n".join(divs))


def render_html(result: RunResult, path: str | Path, market: Optional[int] = None) -> Path:
    """Write the interactive report of ``result`` at ``path`` (an .html file); ``VizMissing`` without plotly."""
    from abm.report.header import _header

    p = Path(path)
    if p.suffix.lower() not in (".html", ".htm"):
        raise InvalidInput("path", str(path), "must be an .html file name")
    fig, run = build_html_figure(result, market)
    text = page(f"Stress-test report: {result.scenario}", _header(run), summary_table(run.summary), [fig])
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding="utf-8")
    return p


def render_run_reports(result: RunResult, png: str | Path) -> Path:
    """What a saved run gets: ``report.png`` at ``png`` and, with the extra ``viz``, ``report.html`` beside it.

    Without plotly the PNG is written and a one-line note says once per process how to get the HTML; should
    drawing the HTML fail, a warning says why and the run is saved with its PNG (a bug in the optional page
    does not lose a finished run; the PNG's own failure still does, as before)."""
    from abm.report.figure import render_report

    out = render_report(result, png)
    if not html_available():
        note_missing()
        return out
    page_path = Path(png).with_name(HTML_NAME)
    try:
        render_html(result, page_path)
    except Exception as e:  # noqa: BLE001 - the extra page must not cost a finished run its folder
        page_path.unlink(missing_ok=True)
        warnings.warn(f"{HTML_NAME} could not be written, the run is saved without it: {e!r}", stacklevel=2)
    return out


def note_missing(what: str = HTML_NAME) -> None:
    """One line on stderr, once per process: ``what`` was not written for want of plotly."""
    global _noted
    if not _noted:
        _noted = True
        print(f"abm: note: {what} skipped (plotly is not installed: {INSTALL_HINT})", file=sys.stderr)
