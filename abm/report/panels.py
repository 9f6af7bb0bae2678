"""The report's panels, one function each (prices, depth, spread and basis, liquidations, margin modes, funding,
insurance and open interest, the cascade), and the shading of shocks and oracle outages they share."""

from __future__ import annotations

import math
import warnings
from typing import Any, Optional

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from abm.analysis.liquidations import (
    MODE_NAMES,
    final_marks,
    liquidated_positions,
    liquidation_totals,
    mode_outcomes,
)
from abm.report.run_data import _MarketData, _Run
from abm.report.style import (
    BANDS,
    EVENT_STYLE,
    KIND_COLOURS,
    KIND_LABELS,
    LIQ_KINDS,
    MARKET_COLOURS,
    MARKET_MARKERS,
    MAX_BARS,
    MODE_COLOURS,
    OUTAGE_STYLE,
    ROOT_TYPES,
    SEVERAL_MARKETS_MARKER,
    _finite,
    _handles,
    _legend,
    _money,
    _none,
    _num,
    _pack,
    _pad_flat,
    _plain_y,
    _scale,
)
from abm.units import USDC


def _shock_label(s: dict[str, Any], symbol: Optional[str] = None) -> str:
    return (f"{symbol} " if symbol else "") + f"shock {float(s.get('pct', 0)):+g}% over {float(s.get('duration_s', 0)):g}s"


def _shade(ax: Any, shocks: list[tuple[Optional[str], dict[str, Any]]],
           outages: list[tuple[Optional[str], tuple[float, float]]], label: bool = True) -> None:
    """Shaded span per scheduled shock, hatched span per oracle outage, each labelled at the top."""
    for sym, s in shocks:
        a = float(s.get("start_s", 0)) / 60.0
        b = a + float(s.get("duration_s", 0)) / 60.0
        ax.axvspan(a, b, color="tab:red", alpha=0.15, lw=0, zorder=0)
        ax.axvline(a, color="tab:red", lw=1, ls="--", alpha=0.7, zorder=0.5)
        if label:
            ax.text(a, 0.98, " " + _shock_label(s, sym), transform=ax.get_xaxis_transform(), ha="left", va="top",
                    fontsize=8, color="darkred", clip_on=True, zorder=5,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.7))
    for sym, (a, b) in outages:
        ax.axvspan(a / 60.0, b / 60.0, **OUTAGE_STYLE)
        if label:  # below the shock labels, so an outage starting with a shock does not cover its label
            ax.text(a / 60.0, 0.84, " " + (f"{sym} " if sym else "") + f"oracle outage {b - a:g}s",
                    transform=ax.get_xaxis_transform(), ha="left", va="top", fontsize=8, color="0.25",
                    clip_on=True, zorder=5, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.7))


def _shade_events(ax: Any, run: _Run, label: bool = True) -> None:
    """A purple span per world event (a halt, makers withdrawing, a transfer freeze), labelled below the outages'."""
    for text, a, b in run.event_windows():
        ax.axvspan(a / 60.0, b / 60.0, **EVENT_STYLE)
        if label:
            ax.text(a / 60.0, 0.70, " " + text, transform=ax.get_xaxis_transform(), ha="left", va="top", fontsize=8,
                    color="indigo", clip_on=True, zorder=5,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.7))


def _shade_market(ax: Any, run: _Run, d: _MarketData, label: bool = True) -> None:
    _shade(ax, [(None, s) for s in d.shocks], [(None, w) for w in d.outages], label)
    _shade_events(ax, run, label)


def _shade_run(ax: Any, run: _Run, label: bool = True) -> None:
    _shade(ax, run.shocks(), run.outages(), label)
    _shade_events(ax, run, label)


def _outage_handle(run: _Run) -> list:
    return [Patch(**{k: v for k, v in OUTAGE_STYLE.items() if k != "zorder"}, label="oracle outage\n(no publication)")] \
        if run.outages() else []


def _prices(ax: Any, run: _Run, d: _MarketData) -> None:
    mid = d.col("mid")
    no_mid = ~(mid > 0)  # NaN: the book had no mid
    mid = np.where(no_mid, np.nan, mid)
    ax.plot(run.t, d.col("index"), color="black", lw=1.6, label="index (spot reference)")
    ax.plot(run.t, np.where(d.col("oracle") > 0, d.col("oracle"), np.nan), color="tab:green", lw=1.1,
            label="oracle (published index, delayed)")
    ax.plot(run.t, np.where(d.col("mark") > 0, d.col("mark"), np.nan), color="tab:orange", lw=1.3,
            label="mark (used for margin)")
    ax.plot(run.t, mid, color="tab:blue", lw=0.9, alpha=0.85, label="order-book mid")
    control = d.control_col("mark")
    if control is not None:  # the same seed with liquidations closed off the book: what the feedback moved
        ax.plot(run.t, np.where(control > 0, control, np.nan), color="tab:orange", lw=1.1, ls="--", alpha=0.9,
                label="mark without feedback\n(no-feedback control)")
    if no_mid.any():
        ax.fill_between(run.t, 0, 1, where=no_mid, transform=ax.get_xaxis_transform(), step="mid",
                        color="0.6", alpha=0.25, lw=0, label="book one-sided or\nempty (no mid)")
    _plain_y(ax)
    _shade_market(ax, run, d)
    ax.set_title(f"Prices of {d.symbol}")
    ax.set_ylabel("price (USDC)")
    _legend(ax, _handles(ax) + (_outage_handle(run) if d.outages else []))


def _depth(ax: Any, run: _Run, d: _MarketData) -> None:
    bids = [d.col(f"depth_bid_{b}pct") for b in BANDS]
    asks = [d.col(f"depth_ask_{b}pct") for b in BANDS]
    top = max([float(np.nanmax(np.abs(a))) if np.isfinite(a).any() else 0.0 for a in bids + asks] + [0.0])
    div, word = _scale(top)
    alphas = {"2": 0.3, "1": 0.55, "0.5": 0.9}
    for b, bid, ask in sorted(zip(BANDS, bids, asks), key=lambda x: -float(x[0])):
        ax.fill_between(run.t, 0, bid / div, step="post", color="tab:green", alpha=alphas[b], lw=0,
                        label=f"bids within {b}% of mid")
        ax.fill_between(run.t, 0, -ask / div, step="post", color="tab:red", alpha=alphas[b], lw=0,
                        label=f"asks within {b}% of mid")
    ax.axhline(0, color="black", lw=0.6)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):g}"))
    if top > 0:
        ax.set_ylim(-top / div * 1.15, top / div * 1.15)
    ax.text(0.005, 0.96, "bids ↑", transform=ax.transAxes, va="top", fontsize=9, color="darkgreen", weight="bold")
    ax.text(0.005, 0.04, "asks ↓", transform=ax.transAxes, va="bottom", fontsize=9, color="darkred", weight="bold")
    _shade_market(ax, run, d)
    ax.set_title(f"Order-book depth of {d.symbol}: resting notional near the mid (bids above zero, asks below)")
    ax.set_ylabel(f"notional ({word}USDC)")
    if top == 0:
        _none(ax, "none — the book was empty throughout")
    _legend(ax)


def _spread_basis(ax: Any, run: _Run, d: _MarketData) -> None:
    spread = d.col("spread_bps")  # NaN while a side of the book is empty: a gap, not a zero
    index, mark = d.col("index"), d.col("mark")
    basis = np.where((index > 0) & (mark > 0), (mark - index) / np.where(index > 0, index, 1) * 1e4, np.nan)
    ax.plot(run.t, spread, color="tab:purple", lw=0.6, alpha=0.45, label="bid-ask spread (left, bps of mid)")
    win = max(1, round(60 / max(run.step_s, 1e-9)))
    if win > 2:
        med = pd.Series(spread).rolling(win, min_periods=1, center=True).median().to_numpy()
        ax.plot(run.t, med, color="indigo", lw=1.4, label="spread, 1-minute rolling median (left)")
    s = _finite(spread)
    s = s[s > 0]
    if len(s) and s.max() / s.min() > 100:
        ax.set_yscale("log")
        ax.set_ylabel("spread (bps, log scale)", color="tab:purple")
    else:
        ax.set_ylabel("spread (bps)", color="tab:purple")
    ax.tick_params(axis="y", colors="tab:purple")
    tw = ax.twinx()
    tw.set_label(d.label("basis"))
    tw.plot(run.t, basis, color="tab:brown", lw=1.2, label="basis = mark − index\n(right, bps of index)")
    tw.axhline(0, color="tab:brown", lw=0.6, ls=":")
    tw.set_ylabel("basis (bps)", color="tab:brown")
    tw.tick_params(axis="y", colors="tab:brown")
    _shade_market(ax, run, d)
    ax.set_title(f"Bid-ask spread and basis of {d.symbol} (how far the mark sits from the index)")
    if not len(s):
        _none(ax, "none — no two-sided book, no spread")
    _legend(tw, _handles(ax, tw), twin=True)


def _bin_width_us(run: _Run) -> int:
    """Liquidation bar width: whole steps, at most ``MAX_BARS`` bars over the run."""
    per = max(1, math.ceil(len(run.time_s) / MAX_BARS))
    return max(1, round(run.step_s * 1e6)) * per


def _bin_of(time_us: int, width_us: int) -> int:
    """The bar of an event: the one of the step that recorded it (a step ends at its ``time_s``, inclusive)."""
    return max(0, (int(time_us) - 1) // width_us)


def liquidation_bars(run_or_result: Any, market: int) -> dict[str, Any]:
    """What the liquidations panel of ``market`` draws: per bar, notional (USDC) by kind and events.

    Exact: notional is summed in quote units per bar and converted once. ``events`` counts the run's
    liquidation events that touched the market, each in the bar of its time; ``totals`` is
    ``liquidation_totals`` of the market.
    """
    run = run_or_result if isinstance(run_or_result, _Run) else _Run(run_or_result, None)
    width = _bin_width_us(run)
    units: dict[int, dict[str, int]] = {}
    events: dict[int, int] = {}
    for e in run.events.values():
        if market not in e["dirs"]:
            continue
        b = _bin_of(e["time_us"], width)
        events[b] = events.get(b, 0) + 1
        for _, m, k, t, v in e["rows"]:
            if m == market:
                per = units.setdefault(_bin_of(t, width), {k2: 0 for k2 in LIQ_KINDS})
                per[k] += v
    bins = sorted(set(units) | set(events))
    return {"width_s": width / 1e6, "bins": bins,
            "notional": {k: np.array([units.get(b, {}).get(k, 0) / USDC for b in bins]) for k in LIQ_KINDS},
            "events": np.array([events.get(b, 0) for b in bins], dtype=int),
            "totals": liquidation_totals(run.events, market)}


def _liquidations(ax: Any, run: _Run, d: _MarketData) -> None:
    bars = liquidation_bars(run, d.index)
    tot = bars["totals"]
    width = bars["width_s"]
    centers = (np.array(bars["bins"], dtype=float) + 0.5) * width / 60.0
    tot_n = sum(bars["notional"][k] for k in LIQ_KINDS) if bars["bins"] else np.zeros(0)
    div, word = _scale(float(np.max(tot_n)) if len(tot_n) else 0.0)
    bottom = np.zeros(len(centers))
    for k in LIQ_KINDS:
        vals = bars["notional"][k] / div
        ax.bar(centers, vals, width=width / 60.0 * 0.9, bottom=bottom, color=KIND_COLOURS[k],
               label=f"{KIND_LABELS[k]}:\n{_money(tot['notional_by_kind'][k])}")
        bottom += vals
    _shade_market(ax, run, d)
    bar_w = "one step" if abs(width - run.step_s) < 1e-9 else f"{width:g} s"
    ax.set_title(f"Liquidations in {d.symbol}: notional closed per {bar_w} bar, by kind "
                 f"(numbers: liquidation events in the bar)")
    ax.set_ylabel(f"notional ({word}USDC)")
    last = ", ".join(f"{k if k != 'adl' else 'ADL'} {tot['by_last_resort'][k]}" for k in LIQ_KINDS)
    note = f"{tot['events']} liquidation events\n({tot['accounts']} accounts;\nlast resort: {last})"
    if tot["shared"] and run.n_markets > 1:
        note += f"\n{tot['shared']} of them also in\nanother market"
    handles = _handles(ax) + [Line2D([], [], ls="", label=note)]
    if tot["events"] == 0:
        ax.set_ylim(0, 1)
        _none(ax, f"none — no liquidations in {d.symbol}")
    else:
        counts = bars["events"]
        nz = np.flatnonzero(counts)
        show = nz if len(nz) <= 30 else nz[np.argsort(tot_n[nz], kind="stable")[-15:]]
        for i in show:
            ax.annotate(str(counts[i]), (centers[i], tot_n[i] / div), xytext=(0, 2), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7)
        room = 1.45 if d.outages else 1.2  # the bars' numbers stay below the shock and outage labels
        ax.set_ylim(0, max(float(np.max(tot_n)) / div, 1e-12) * room)
    _legend(ax, handles)


# ---------------------------------------------------------------------- run-wide panels


def mode_split(run_or_result: Any) -> tuple[dict[int, dict[str, Any]], Any]:
    """What the margin-mode panel draws: ``mode_outcomes`` and the ``liquidated_positions`` behind it."""
    run = run_or_result if isinstance(run_or_result, _Run) else _Run(run_or_result, None)
    r = run.result
    ticks = {i: float(m.get("tick_size", 1.0)) for i, m in enumerate(r.markets)}
    marks = final_marks(run.steps, ticks, run.analysis.markets)
    positions = liquidated_positions(run.events, r.liquidations, r.trades, r.multipliers, marks)
    return mode_outcomes(run.events, positions), positions


def _margin_modes(ax: Any, run: _Run) -> None:
    outcomes, positions = mode_split(run)
    tw = ax.twinx()
    tw.set_label("losses")
    top_n = top_l = low_l = 0.0
    for mode in run.modes:
        o = outcomes.get(mode)
        c = MODE_COLOURS.get(mode, "tab:gray")
        name = MODE_NAMES.get(mode, str(mode))
        evs = sorted((e["time_us"], e["notional_units"]) for e in run.events.values() if e["mode"] == mode)
        t = np.array([0.0] + [a / 6e7 for a, _ in evs] + [run.t_end])
        cum = np.cumsum([0] + [u for _, u in evs]).tolist()  # integer units: exact running totals
        y = np.array(cum + [cum[-1]], dtype=float) / USDC
        top_n = max(top_n, float(y[-1]))
        label = (f"{name}: {o['events']} events ({o['accounts']} accounts),\n{_money(o['notional'])} liquidated"
                 if o else f"{name}: no liquidations")
        ax.plot(t, y, drawstyle="steps-post", color=c, lw=2, label=label)
        if o and "loss" in o:
            mine = positions[positions["mode"] == mode].sort_values(["last_us", "account", "market"], kind="stable")
            lt = np.array([0.0] + (mine["last_us"].to_numpy(float) / 6e7).tolist() + [run.t_end])
            lc = np.cumsum([0] + mine["loss_units"].tolist()).tolist()
            ly = np.array(lc + [lc[-1]], dtype=float) / USDC
            top_l = max(top_l, float(np.nanmax(np.abs(ly))))
            low_l = min(low_l, float(np.nanmin(ly)))
            per = o["loss"] / o["positions"] if o["positions"] else math.nan
            tw.plot(lt, ly, drawstyle="steps-post", color=c, lw=1.4, ls="--",
                    label=f"{name}: owners lost {_money(o['loss'])}\n({_money(per)} per position liquidated)")
    div, word = _scale(top_n)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / div:g}"))
    ax.set_ylabel(f"liquidated, cumulative\n({word}USDC)")
    ldiv, lword = _scale(top_l)
    tw.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v / ldiv:g}"))
    tw.set_ylabel(f"owners' losses ({lword}USDC)")
    ax.set_ylim(bottom=0)
    tw.set_ylim(bottom=low_l * 1.05)  # zero on both axes at the bottom, unless someone gained
    _shade_run(ax, run)
    ax.set_title("Liquidations and losses by margin mode (solid, left: notional liquidated; "
                 "dashed, right: owners' losses)")
    note = Line2D([], [], ls="", label="loss: trading result + equity the\nvault kept − bad debt covered\n"
                                        "(before fees and funding)")
    _legend(tw, _handles(ax, tw) + [note], twin=True)


def _funding(ax: Any, run: _Run) -> None:
    f = run.result.funding
    paid_total = 0
    for j, d in enumerate(run.drawn):
        c = MARKET_COLOURS[j % len(MARKET_COLOURS)] if run.multi else None
        who = f"{d.symbol}: " if run.multi else ""
        pred = d.col("funding_predicted") * 1e4
        last = d.col("funding_last") * 1e4
        ax.plot(run.t, pred, color=c or "tab:cyan", lw=1.2, alpha=0.7 if run.multi else 1.0,
                label=f"{who}predicted rate for the\ncurrent interval")
        ax.plot(run.t, last, color=c or "tab:blue", lw=1.2, ls="--" if run.multi else "-", drawstyle="steps-post",
                label=f"{who}last rate paid")
        mine = f[f["market"] == d.index] if f is not None and len(f) else None
        if mine is not None and len(mine):
            paid_total += len(mine)
            tp = mine["time_us"].to_numpy(dtype=float) / 6e7
            rp = mine["rate"].to_numpy(dtype=float) * 1e4
            ax.scatter(tp, rp, marker="D", s=40, color=c or "navy", edgecolors="black" if run.multi else "none",
                       zorder=4, label=f"{who}payments made ({len(mine)})")
            if not run.multi:  # one market: the rates are written on the points
                for x, y in list(zip(tp, rp))[:20]:
                    right = x > 0.85 * run.t_end
                    ax.annotate(f"{y:+.2f} bps", (x, y), xytext=(-5 if right else 5, 5), textcoords="offset points",
                                ha="right" if right else "left", fontsize=8, color="navy")
        _pad_flat(ax, np.concatenate([pred, last]), rel=0.0)
    if not paid_total:  # the rates are still drawn, so the note goes in the legend rather than over the lines
        ax.scatter([], [], marker="D", s=40, color="navy", label="payments made: none\n(no payment time fell\ninside the run)")
    ax.axhline(0, color="black", lw=0.6)
    _shade_run(ax, run)
    ax.set_title("Funding rate per payment (positive: longs pay shorts)" + (", every market" if run.multi else ""))
    ax.set_ylabel("rate (bps per payment)")
    _legend(ax)


def gateway_reject_columns(steps: Any, suffix: str) -> list[str]:
    """The refusal columns of one venue's gateway: the perp venue's have no ``@``, spot venue NAME's end in it."""
    return [str(c) for c in steps.columns if str(c).startswith("gateway_rejects_")
            and (str(c).endswith(suffix) if suffix else "@" not in str(c))]


def gateway_summary_of(summary: dict[str, Any], suffix: str) -> dict[str, Any]:
    """The summary's entry of one venue's gateway (``gateway``, or ``spot_gateways[NAME]``)."""
    if not suffix:
        return summary.get("gateway") or {}
    return (summary.get("spot_gateways") or {}).get(suffix[1:]) or {}


def gateway_title(suffix: str) -> str:
    return "Venue gateway" if not suffix else f"Spot venue {suffix[1:]}'s gateway"


def _gateway(ax: Any, run: _Run, suffix: str = "") -> None:
    """A venue gateway's latency per step (reaching the gateway to execution) against the mark, refusals shaded;
    ``suffix`` "@NAME" draws spot venue NAME's (its columns' suffix), against the perp's mark on the underlying."""
    steps = run.steps

    def col(name: str) -> np.ndarray:
        name += suffix
        return steps[name].to_numpy(float) if name in steps else np.full(len(run.t), np.nan)

    top = col("gateway_latency_max_ms")
    ax.fill_between(run.t, 0, np.nan_to_num(top), step="mid", color="tab:purple", alpha=0.15, lw=0,
                    label="latency, slowest action of the step")
    ax.plot(run.t, col("gateway_latency_p99_ms"), color="tab:purple", lw=1.3, label="latency p99")
    ax.plot(run.t, col("gateway_latency_p50_ms"), color="tab:purple", lw=0.9, ls="--", label="latency p50")
    refused = sum((col(c[:len(c) - len(suffix)]) for c in gateway_reject_columns(steps, suffix)), np.zeros(len(run.t)))
    if np.nansum(refused) > 0:
        ax.fill_between(run.t, 0, 1, where=refused > 0, transform=ax.get_xaxis_transform(), step="mid",
                        color="tab:red", alpha=0.12, lw=0,
                        label=f"steps with refused actions\n({int(np.nansum(refused)):,} in the run)")
    ax.set_ylim(bottom=0)
    ax.set_ylabel("gateway latency (ms)", color="tab:purple")
    ax.tick_params(axis="y", colors="tab:purple")
    tw = ax.twinx()
    tw.set_label("gateway_price" + suffix)
    d = run.drawn[0]
    tw.plot(run.t, np.where(d.col("mark") > 0, d.col("mark"), np.nan), color="tab:orange", lw=1.1,
            label=f"mark of {d.symbol} (right)")
    _plain_y(tw)
    tw.set_ylabel("price (USDC)", color="tab:orange")
    _shade_run(ax, run, label=False)
    g = gateway_summary_of(run.summary, suffix)
    peak = g.get("peak_queue")
    ax.set_title(gateway_title(suffix) + ": time from reaching the gateway to execution, per step"
                 + (f" (peak queue {peak} actions)" if peak is not None else ""))
    if not np.isfinite(top).any():
        _none(ax, "none — the gateway served no action")
    _legend(tw, _handles(ax, tw), twin=True)


def _insurance_oi(ax: Any, run: _Run) -> None:
    ins = run.steps["insurance_fund"].to_numpy(float) if "insurance_fund" in run.steps else np.full(len(run.t), np.nan)
    ax.plot(run.t, ins, color="tab:green", lw=1.6, label="insurance fund (left)")
    ax.set_ylabel("insurance fund (USDC)", color="tab:green")
    ax.tick_params(axis="y", colors="tab:green")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    _pad_flat(ax, ins)
    tw = ax.twinx()
    tw.set_label("open_interest")
    if run.multi:  # base units differ between markets: open interest as notional at the mark
        series = [(d, d.col("open_interest") * d.col("mark"),
                   (d.col("lev_long_cross") + d.col("lev_long_isolated")) * d.col("mark")) for d in run.drawn]
        top = max([float(np.nanmax(s)) for _, s, _ in series if np.isfinite(s).any()] + [0.0])
        div, word = _scale(top)
        for j, (d, s, lev) in enumerate(series):
            c = MARKET_COLOURS[j % len(MARKET_COLOURS)]
            tw.plot(run.t, s / div, color=c, lw=1.3, label=f"open interest {d.symbol}\n(right, at the mark)")
            if np.nansum(lev) > 0:
                tw.plot(run.t, lev / div, color=c, lw=1, ls="--", label=f"of which leveraged\nlongs {d.symbol}")
        tw.set_ylabel(f"open interest, one side\n({word}USDC at the mark)", color="tab:gray")
    else:
        d = run.drawn[0]
        tw.plot(run.t, d.col("open_interest"), color="tab:gray", lw=1.3, label=f"open interest\n(right, {d.base}, one side)")
        lev = d.col("lev_long_cross") + d.col("lev_long_isolated")
        levs = d.col("lev_short_cross") + d.col("lev_short_isolated")
        if np.nansum(lev) > 0:
            tw.plot(run.t, lev, color="tab:olive", lw=1, ls="--", label=f"of which leveraged\nlongs (right, {d.base})")
        if np.nansum(levs) > 0:
            tw.plot(run.t, levs, color="tab:pink", lw=1, ls="--", label=f"of which leveraged\nshorts (right, {d.base})")
        tw.set_ylabel(f"open interest ({d.base})", color="tab:gray")
    tw.set_ylim(bottom=0)
    _shade_run(ax, run)
    ax.set_title("Insurance fund and open interest")
    _legend(tw, _handles(ax, tw), twin=True)


# ---------------------------------------------------------------------- cascade


def _cascade(ax: Any, run: _Run) -> None:
    if not run.events:
        ax.set_xlim(0, run.t_end)
        _shade_run(ax, run)
        ax.set_title("Liquidation cascade")
        ax.set_xlabel("time since start of run (minutes)")
        ax.set_yticks([])
        _none(ax, "none — no liquidation events, so no cascade")
        return
    try:
        _draw_graph(ax, run, run.analysis.graph)
    except Exception as e:  # noqa: BLE001 - a drawing failure must not cost the whole report
        warnings.warn(f"cascade graph could not be drawn, showing the event scatter: {e!r}", stacklevel=2)
        ax.cla()
        _draw_scatter(ax, run, f"graph not drawable: {type(e).__name__}")


def cascade_title(run_or_result: Any) -> str:
    """The cascade panel's title: its counts are the run summary's."""
    run = run_or_result if isinstance(run_or_result, _Run) else _Run(run_or_result, None)
    s = run.summary
    g = run.analysis.graph
    roots = sum(1 for n, a in g.nodes(data=True) if a.get("type") in ROOT_TYPES and g.out_degree(n) > 0)
    every = ", all markets" if run.n_markets > 1 else ""
    head = (f"Liquidation cascade: who set off whom ({s['liquidation_events']} liquidation events{every} "
            f"under {roots} root{'s' if roots != 1 else ''})")
    parts = [f"longest chain {s['longest_chain']}"]
    if s["largest_cascade_events"]:
        parts.append(f"largest cascade {s['largest_cascade_events']} events, {_money(s['largest_cascade_notional'])}")
    r, r_all = _num(s.get("R")), _num(s.get("R_all"))
    amp = ", ".join(p for p in (f"R {r:.2f}" if r is not None else "", f"R_all {r_all:.2f}" if r_all is not None else "")
                    if p)
    if amp:
        parts.append(f"amplification {amp} (notional a liquidation set off per unit of the liquidations that set "
                     f"some off / of all)")
    return head + "\n" + _pack(parts, width=150)


def _zoom(ax: Any, run: _Run, times_min: np.ndarray) -> None:
    starts = [float(s.get("start_s", 0)) / 60 for _, s in run.shocks()]
    lo = min([float(times_min.min())] + [s for s in starts if s <= times_min.min()])
    hi = float(times_min.max())
    pad = max((hi - lo) * 0.05, 0.25)
    ax.set_xlim(max(lo - pad, 0.0), min(hi + pad, run.t_end + pad))


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


def _draw_scatter(ax: Any, run: _Run, why: str) -> None:
    evs = list(run.events.values())
    x = np.array([e["time_us"] / 6e7 for e in evs])
    kinds = np.array([e["kind"] for e in evs])
    y = np.array([e["notional_units"] / USDC for e in evs])
    s, top = _sizes(y)
    y_plot = np.where(y > 0, y, np.nan)
    for k in LIQ_KINDS:
        m = kinds == k
        if m.any():
            ax.scatter(x[m], y_plot[m], s=s[m], color=KIND_COLOURS[k], alpha=0.7, edgecolors="white", lw=0.5)
    if np.isfinite(y_plot).any():
        ax.set_yscale("log")
        ax.set_ylim(np.nanmin(y_plot) / 2, np.nanmax(y_plot) * 3)  # room for the largest markers
    _zoom(ax, run, x)
    _shade_run(ax, run)
    ax.set_title(f"Liquidation events over time, zoomed to the cascade ({why}; showing each event's notional)")
    ax.set_ylabel("notional per event\n(USDC, log scale)")
    ax.set_xlabel("time since start of run (minutes, zoomed)")
    ax.grid(True, alpha=0.3)
    _legend(ax, _kind_handles([k for k in LIQ_KINDS if k in set(kinds.tolist())], top))


def _root_label(g: Any, n: Any, run: _Run) -> str:
    a = g.nodes[n]
    if a.get("type") == "shock":
        m = a.get("market")
        sym = run.symbols[m] if run.n_markets > 1 and m is not None and m < run.n_markets else None
        return _shock_label(a, sym)
    if a.get("type") == "market":
        return "market (no single cause)"
    if a.get("type") == "whale":
        return f"whale order {a.get('order_id', str(n).split(':', 1)[-1])}"
    return str(n)


def _draw_graph(ax: Any, run: _Run, g: Any) -> None:
    from matplotlib.collections import LineCollection

    times = {n: float(a["time_s"]) for n, a in g.nodes(data=True) if a.get("type") == "liquidation"}
    roots = [n for n in g.nodes if g.nodes[n].get("type") in ROOT_TYPES and g.out_degree(n) > 0]
    events = [n for n in g.nodes if g.nodes[n].get("type") == "liquidation"]
    if not events:
        raise ValueError("the cascade graph has no liquidation node")
    for n in roots:  # shocks at their start, other roots at their first consequence
        a = g.nodes[n]
        kids = [times[c] for c in g.successors(n) if c in times]
        times[n] = float(a["start_s"]) if a.get("start_s") is not None else (min(kids) if kids else 0.0)
    order = {"shock": 0, "whale": 1, "market": 2}
    roots.sort(key=lambda n: (order[g.nodes[n]["type"]], times[n], str(n)))
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
    for n in sorted((n for n in events if n not in row), key=lambda n: (times[n], str(n))):  # not under a root
        row[n] = len(row)
    segs = [((times[u] / 60, row[u]), (times[v] / 60, row[v])) for u, v in g.edges if u in row and v in row]
    if segs:
        ax.add_collection(LineCollection(segs, colors="0.4", linewidths=0.8, alpha=0.6, zorder=1))
    notional = np.array([float(g.nodes[n].get("notional", 0.0) or 0.0) for n in events])
    row_pt = ax.get_position().height * ax.figure.get_figheight() * 72 / max(len(row), 1)
    sizes, top = _sizes(notional, float(np.clip(3 * row_pt, 8, 19)) ** 2)  # big nodes without burying the rows
    kinds = [str(g.nodes[n].get("kind", "?")) for n in events]
    shapes = [_marker(run, g.nodes[n].get("markets", ())) for n in events]
    for shape in dict.fromkeys(shapes):
        sel = [i for i, s in enumerate(shapes) if s == shape]
        ax.scatter([times[events[i]] / 60 for i in sel], [row[events[i]] for i in sel], s=sizes[sel], marker=shape,
                   c=[KIND_COLOURS.get(kinds[i], "tab:gray") for i in sel], alpha=0.85, edgecolors="white",
                   linewidths=0.5, zorder=3)
    if roots:
        ax.scatter([times[n] / 60 for n in roots], [row[n] for n in roots], marker="D", s=60, color="tab:red",
                   edgecolors="black", zorder=4)
    _zoom(ax, run, np.array([times[n] / 60 for n in row]))
    lo, hi = ax.get_xlim()
    label_pt = -math.inf
    for i, (r, a, b) in enumerate(trees):
        # a root drawn at its first consequence has its tree to the right: label on the left, if it fits
        left = g.nodes[r]["type"] != "shock" and times[r] / 60 - lo > 0.3 * (hi - lo)
        at_pt = row[r] * row_pt
        label_pt = max(at_pt, label_pt + 11)  # one text line below the previous root's label at least
        ax.annotate(f"{_root_label(g, r, run)} → {b - a} liquidation event(s)", (times[r] / 60, row[r]),
                    xytext=(-8 if left else 8, at_pt - label_pt), textcoords="offset points",
                    ha="right" if left else "left", va="center", fontsize=8, color="darkred", zorder=5,
                    bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8),
                    arrowprops=dict(arrowstyle="-", color="darkred", lw=0.6) if label_pt > at_pt + 1 else None)
        if i % 2 == 0:
            ax.axhspan(a - 0.5, b + 0.5, color="0.5", alpha=0.07, lw=0, zorder=0)
    ax.set_ylim(len(row) - 0.5, -0.5 - max(1.0, len(row) * 0.03))  # first tree at the top
    ax.set_yticks([])
    _shade_run(ax, run, label=False)
    ax.set_title(cascade_title(run))
    ax.set_ylabel("cascade trees\n(one row per\nliquidation event)")
    ax.set_xlabel("time since start of run (minutes, zoomed to the cascade)")
    ax.grid(True, axis="x", alpha=0.3)
    present = [k for k in KIND_COLOURS if k in set(kinds)]
    hs = _kind_handles(present, top)
    hs.insert(0, Line2D([], [], ls="", marker="D", ms=7, color="tab:red", mec="black",
                        label="root: shock / whale /\nmarket"))
    if run.n_markets > 1:
        used = dict.fromkeys(shapes)
        for i, sym in enumerate(run.symbols):
            mk = MARKET_MARKERS[i % len(MARKET_MARKERS)]
            if mk in used:
                hs.append(Line2D([], [], ls="", marker=mk, ms=8, color="0.5", label=f"in {sym} only"))
        if SEVERAL_MARKETS_MARKER in used:
            hs.append(Line2D([], [], ls="", marker=SEVERAL_MARKETS_MARKER, ms=9, color="0.5",
                             label="in several markets\n(a cross account)"))
    hs.append(Line2D([], [], color="0.4", lw=1, label="edge: parent's price impact\n→ liquidation"))
    _legend(ax, hs)


def _marker(run: _Run, markets: Any) -> str:
    ms = tuple(markets)
    if run.n_markets <= 1 or not ms:
        return "o"
    return MARKET_MARKERS[ms[0] % len(MARKET_MARKERS)] if len(ms) == 1 else SEVERAL_MARKETS_MARKER
