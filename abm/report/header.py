"""The report's header: the scenario, venue, markets and the run summary's numbers in a few packed lines."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Optional

import numpy as np

from abm.analysis.liquidations import (
    EVENT_DEFINITION,
    liquidation_totals,
)
from abm.report.panels import _shock_label
from abm.report.run_data import _MarketData, _Run
from abm.report.style import (
    LIQ_KINDS,
    MAX_SHORTFALLS,
    _finite,
    _money,
    _num,
    _pack,
    _qty,
)
from abm.results.run_result import RunResult


def _header(run: _Run) -> str:
    r = run.result
    venue = r.config.get("venue") if isinstance(r.config, dict) else None
    if isinstance(venue, dict):  # the saved config's table: {"profile": ..., "overrides": {...}}
        venue = _profile_label(r, str(venue.get("profile", ""))) + (" (with overrides)" if venue.get("overrides") else "")
    seed = r.config.get("seed") if isinstance(r.config, dict) else None
    if seed is None and isinstance(r.config, dict) and isinstance(r.config.get("run"), dict):
        seed = r.config["run"].get("seed")
    what = "market" if len(run.drawn) == 1 else "markets"
    head = f"Stress-test report: {r.scenario}  —  {what} " + ", ".join(d.symbol for d in run.drawn)
    if len(run.drawn) < run.n_markets:
        head += f" (of {run.n_markets}: " + ", ".join(run.symbols) + ")"
    extras = [f"venue {venue}" if venue else "", f"seed {seed}" if seed is not None else "",
              f"{run.time_s[-1] / 60:.1f} min simulated"]
    if run.shocks():
        extras.append("shocks: " + ", ".join(f"{_shock_label(s, sym)} at {float(s.get('start_s', 0)) / 60:.1f} min"
                                             for sym, s in run.shocks()))
    if run.outages():
        extras.append("oracle outages: " + ", ".join((f"{sym} " if sym else "") + f"{a / 60:.2f}–{b / 60:.2f} min"
                                                     for sym, (a, b) in run.outages()))
    events = r.config.get("events") if isinstance(r.config, dict) else None
    if isinstance(events, list) and events:
        extras.append("world events: " + ", ".join(_event_label(ev) for ev in events if isinstance(ev, dict)))
    lines = [extras] + [_market_line(run, d) for d in run.drawn] + _run_lines(run)
    return f"{head}\n" + "\n".join(_pack([p for p in ps if p]) for ps in lines if any(ps))


def _event_label(ev: dict[str, Any]) -> str:
    """One scenario event as the header shows it: what, and its window in minutes."""
    a = float(ev.get("start_s", 0))
    span = f"{a / 60:.1f}–{(a + float(ev.get('duration_s', 0))) / 60:.1f} min"
    if ev.get("kind") == "mm_withdrawal":
        share = float(ev.get("fraction", 1.0))
        return f"{ev.get('group')} makers{f' ({share:.0%})' if share < 1 else ''} away {span}"
    if ev.get("kind") == "transfer_freeze":
        blocks = {"both": "deposits and withdrawals"}.get(str(ev.get("blocks", "both")), str(ev.get("blocks")))
        return f"{ev.get('venue') or 'venue'} {blocks} frozen {span}"
    when = ev.get("when")
    if isinstance(when, dict):  # a triggered state: its window is known only in the run
        cond = ("on an oracle outage" if when.get("oracle_outage") else
                f"on a {float(when.get('move_pct', 0)):g}% move within {float(when.get('within_s', 0)):g} s")
        span = f"{cond} from {a / 60:.1f} min, for {float(ev.get('duration_s', 0)) / 60:.1f} min"
    where = ", ".join(ev.get("markets") or []) or (ev.get("venue") or "venue")
    if ev.get("venue") and ev.get("markets"):
        where = f"{ev['venue']} {where}"
    state = str(ev.get("state", "")).replace("_", "-")
    paused = ev.get("state") == "halted" and not ev.get("venue") and ev.get("liquidations") == "continue"
    return f"{where} {state}{' (liquidations on)' if paused else ''} {span}"


def _profile_label(r: RunResult, profile: str) -> str:
    """A profile file by the venue name inside it (a run folder's frozen ``venue.toml``), else as written."""
    if not profile.endswith(".toml"):
        return profile
    path = Path(profile)
    if not path.is_absolute() and r.path is not None:
        path = Path(r.path) / path
    try:
        import tomllib

        name = tomllib.loads(path.read_text(encoding="utf-8")).get("name")
    except (OSError, UnicodeDecodeError, ValueError):
        name = None
    return f"{name} ({path.name})" if isinstance(name, str) and name else path.name


def _market_line(run: _Run, d: _MarketData) -> list[str]:
    idx = _finite(d.col("index"))
    first_i, last_i = (float(idx[0]), float(idx[-1])) if len(idx) else (math.nan, math.nan)
    low_i = float(idx.min()) if len(idx) else math.nan
    move = (last_i / first_i - 1) * 100 if first_i else math.nan
    low = (low_i / first_i - 1) * 100 if first_i else math.nan
    spread = _finite(d.col("spread_bps"))
    depth2 = _finite(d.col("depth_bid_2pct") + d.col("depth_ask_2pct"))
    oi = _finite(d.col("open_interest"))
    who = f"{d.symbol}: " if run.multi else ""
    return [f"{who}index {first_i:,.2f} → {last_i:,.2f} USDC ({move:+.1f}%, lowest {low:+.1f}%)",
            f"max spread {spread.max():,.1f} bps" if len(spread) else "",
            f"depth within 2% of mid (both sides) {_money(depth2[0])} at start, lowest {_money(depth2.min())}"
            if len(depth2) else "",
            f"open interest {oi[0]:,.3f} → {oi[-1]:,.3f} {d.base} (peak {oi.max():,.3f})" if len(oi) else ""]


def _run_lines(run: _Run) -> list[list[str]]:
    """The run summary's figures (every market): liquidations, cascade, book, fund, shortfalls."""
    s = run.summary
    tot = liquidation_totals(run.events)
    ln = s["liquidated_notional"]
    every = " (all markets)" if run.n_markets > 1 else ""
    liq = [f"liquidation events{every}: {s['liquidation_events']}, {_money(ln['total'])} "
           f"(book {_money(ln['book'])}, backstop {_money(ln['backstop'])}, ADL {_money(ln['adl'])})",
           "last resort reached: " + ", ".join(f"{k if k != 'adl' else 'ADL'} {tot['by_last_resort'][k]}"
                                               for k in LIQ_KINDS),
           f"accounts liquidated {s['accounts_liquidated']}", f"bad debt {_money(s['bad_debt_total'])}"]
    ins = _finite(run.steps["insurance_fund"].to_numpy(float)) if "insurance_fund" in run.steps else np.zeros(0)
    if len(ins):
        liq.append(f"insurance fund {_money(ins[0])} → {_money(ins[-1])} ({ins[-1] - ins[0]:+,.0f} USDC)")
    lines = [liq, [f"({EVENT_DEFINITION})"]]
    cascade = []
    if s["liquidation_events"]:
        cascade.append(f"longest liquidation chain {s['longest_chain']}")
        cascade.append(f"largest cascade {s['largest_cascade_events']} events, {_money(s['largest_cascade_notional'])}")
        r, r_all = _num(s.get("R")), _num(s.get("R_all"))
        cascade.append("amplification " + (f"R {r:.2f}" if r is not None else "R n/a (no liquidation set off another)")
                       + (f", R_all {r_all:.2f}" if r_all is not None else ""))
    g = {k: _num(s.get(k)) for k in ("worst_depth_drop", "depth_recover_50_s", "max_abs_basis_bps")}
    if g["worst_depth_drop"] is not None:
        where = s.get("depth_drop_market")
        rec = g["depth_recover_50_s"]
        cascade.append(f"worst depth drop {g['worst_depth_drop']:.0%}" + (f" ({where})" if where else "")
                       + (f", half back after {rec:.0f} s" if rec is not None else ""))
    if g["max_abs_basis_bps"] is not None:
        cascade.append(f"max |basis| {g['max_abs_basis_bps']:.0f} bps")
    cascade.append(f"funding payments: {len(run.result.funding) if run.result.funding is not None else 0}")
    lines.append(cascade)
    gw = s.get("gateway")
    if gw:  # a run with a venue gateway
        refused = ", ".join(f"{k} {v:,}" for k, v in gw["refused"].items() if v)
        worst = _num(gw.get("max_p99_latency_ms"))
        lines.append([f"gateway: {gw['served']:,} actions served, {sum(gw['refused'].values()):,} refused"
                      + (f" ({refused})" if refused else ""),
                      f"worst step p99 latency {worst:,.0f} ms" if worst is not None else "no action served",
                      f"peak queue {gw['peak_queue']}", f"{gw['saturated_s']:,.0f} s with p99 above 1 s"])
    short = shortfall_parts(run.result.summary, run.drawn[0].base if run.n_markets == 1 else None)
    if short:
        lines.append(short)
    return lines


def shortfall_parts(summary: Any, unit: Optional[str] = None) -> list[str]:
    """Up to ``MAX_SHORTFALLS`` of ``summary["unfilled"]`` as "group what: filled X of Y unit"; [] without any.

    Sizes are in base units: ``unit`` names them (a one-market run's base), or an entry's ``symbol``.
    """
    unfilled = summary.get("unfilled") if isinstance(summary, dict) else None
    if not isinstance(unfilled, list) or not unfilled:
        return []
    parts = []
    for u in unfilled[:MAX_SHORTFALLS]:
        if not isinstance(u, dict):
            continue
        who = " ".join(str(u[k]) for k in ("group", "what") if u.get(k) not in (None, ""))
        sym = u.get("symbol")
        base = str(sym).split("-")[0] if sym else unit
        when = f" at {float(u['time_s']) / 60:.1f} min" if _num(u.get("time_s")) is not None else ""
        parts.append(f"{who or 'an agent'}: filled {_qty(u.get('filled'))} of {_qty(u.get('requested'))}"
                     + (f" {base}" if base else " (base units)") + when)
    if len(unfilled) > MAX_SHORTFALLS:
        parts.append(f"and {len(unfilled) - MAX_SHORTFALLS} more")
    return [f"could not fill: {parts[0]}", *parts[1:]] if parts else []


# ---------------------------------------------------------------------- per-market panels


