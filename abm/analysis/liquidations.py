"""Liquidation events: the one definition the summary, the cascade graph and the report all count.

Why: the liquidation log has one row per step of the liquidation process (a book slice, a backstop
takeover, an ADL close, a bad-debt charge), the per-step metrics count those rows, and a cross
account liquidated in two markets writes a row in each. Counting any of these as "liquidations" gives
a different number; this module fixes one.

A **liquidation event** is one liquidation of one margin unit at one mark update: every ``book``,
``backstop`` and ``adl`` row that one mark update (``trigger``) produced for one account (its isolated
position, or its whole cross account, in every market it held). ``adl_counterparty`` rows are not
events (the other side of an ADL, closed in profit) and ``bad_debt`` rows add their amount to the
event of the same account and trigger. An event's ``kind`` is the last resort it reached
(adl > backstop > book), its ``mode`` the margin mode of its first row.

Money stays in integer quote units (``*_units``) until the one division by ``USDC`` at the end, so
every total is exact and independent of summation order, process and Python version.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

import numpy as np
import pandas as pd

from abm.units import USDC

EVENT_KINDS = ("book", "backstop", "adl")
SEVERITY = {k: i for i, k in enumerate(EVENT_KINDS)}
MODE_NAMES = {0: "cross", 1: "isolated", 2: "strict isolated"}
EVENT_DEFINITION = ("a liquidation event is one margin unit (an isolated position or a whole cross account) "
                    "liquidated at one mark update: its book orders, backstop takeover and ADL together")


def _mult(multipliers: Optional[Mapping[int, int]]) -> Any:
    if multipliers is None:
        return lambda m: 1
    return lambda m: int(multipliers[m])


def event_records(liquidations: Optional[pd.DataFrame],
                  multipliers: Optional[Mapping[int, int]] = None) -> dict[tuple[int, int], dict[str, Any]]:
    """The events of a liquidation log, keyed ``(account, trigger)``, in log order.

    Each record: ``name`` (``"liq:<account>:<trigger>"``), ``account``, ``trigger``, ``time_us`` (first
    row), ``mode``, ``markets`` (in order of appearance), ``dirs`` (market -> side of the liquidation
    orders: 1 sell, a long closed; 0 buy), ``kinds``, ``kind`` (last resort), ``rows`` (one
    ``(log row, market, kind, time_us, units)`` per row), ``notional_units`` (quote units, ``sum |size|
    * price * multiplier``) and ``bad_debt_units``. ``multipliers`` maps a market index to
    ``spec.multiplier``; without it every market counts 1 (tick·lots).
    """
    out: dict[tuple[int, int], dict[str, Any]] = {}
    if liquidations is None or len(liquidations) == 0:
        return out
    mult = _mult(multipliers)
    liq = liquidations
    kinds = liq["kind"].astype(str).tolist()
    acc = liq["account"].to_numpy(np.int64).tolist()
    trig = liq["trigger"].to_numpy(np.int64).tolist()
    tus = liq["time_us"].to_numpy(np.int64).tolist()
    mkt = liq["market"].to_numpy(np.int64).tolist()
    size = liq["size"].to_numpy(np.int64).tolist()
    price = liq["price"].to_numpy(np.int64).tolist()
    mode = liq["mode"].to_numpy(np.int64).tolist() if "mode" in liq else [0] * len(liq)
    debt = liq["bad_debt"].to_numpy(np.int64).tolist() if "bad_debt" in liq else [0] * len(liq)
    for r, k in enumerate(kinds):
        if k not in SEVERITY:
            continue
        key = (acc[r], trig[r])
        ev = out.get(key)
        if ev is None:
            ev = out[key] = {"name": f"liq:{key[0]}:{key[1]}", "account": key[0], "trigger": key[1],
                             "time_us": tus[r], "mode": mode[r], "markets": [], "dirs": {}, "kinds": [], "kind": k,
                             "rows": [], "notional_units": 0, "bad_debt_units": 0}
        m = mkt[r]
        if m not in ev["dirs"]:
            ev["markets"].append(m)
            ev["dirs"][m] = 1 if size[r] < 0 else 0
        if k not in ev["kinds"]:
            ev["kinds"].append(k)
            if SEVERITY[k] > SEVERITY[ev["kind"]]:
                ev["kind"] = k
        v = abs(size[r]) * price[r] * mult(m)
        ev["rows"].append((r, m, k, tus[r], v))
        ev["notional_units"] += v
    for r, k in enumerate(kinds):
        if k == "bad_debt" and debt[r]:
            ev = out.get((acc[r], trig[r]))
            if ev is not None:
                ev["bad_debt_units"] += debt[r]
    return out


def units_by_kind(ev: Mapping[str, Any], market: Optional[int] = None) -> dict[str, int]:
    """An event's notional (quote units) per row kind, of all its rows or of those in ``market``."""
    out = {k: 0 for k in EVENT_KINDS}
    for _, m, k, _, v in ev["rows"]:
        if market is None or m == market:
            out[k] += v
    return out


EVENT_COLUMNS = ("event", "account", "trigger", "time_us", "time_s", "mode", "markets", "kind", "rows",
                 "notional_units", "book_units", "backstop_units", "adl_units", "bad_debt_units", "notional")


def liquidation_events(liquidations: Optional[pd.DataFrame],
                       multipliers: Optional[Mapping[int, int]] = None) -> pd.DataFrame:
    """One row per liquidation event (see the module docstring), in log order.

    Columns: ``event`` (the cascade graph's node name), ``account``, ``trigger``, ``time_us``,
    ``time_s``, ``mode`` (0 cross, 1 isolated, 2 strict isolated), ``markets`` (tuple of market
    indices), ``kind`` (last resort), ``rows`` (log rows), ``notional_units`` and its split
    ``book_units`` / ``backstop_units`` / ``adl_units``, ``bad_debt_units`` (quote units, exact
    integers) and ``notional`` (USDC).
    """
    data = []
    for e in event_records(liquidations, multipliers).values():
        data.append({"event": e["name"], "account": e["account"], "trigger": e["trigger"], "time_us": e["time_us"],
                     "time_s": e["time_us"] / 1e6, "mode": e["mode"], "markets": tuple(e["markets"]),
                     "kind": e["kind"], "rows": len(e["rows"]), "notional_units": e["notional_units"],
                     **{f"{k}_units": v for k, v in units_by_kind(e).items()},
                     "bad_debt_units": e["bad_debt_units"], "notional": e["notional_units"] / USDC})
    return pd.DataFrame(data, columns=list(EVENT_COLUMNS))


def liquidation_totals(records: Mapping[tuple[int, int], Mapping[str, Any]],
                       market: Optional[int] = None) -> dict[str, Any]:
    """Counts and exact notional of ``event_records``: all events, or those that touched ``market``.

    ``events``, ``accounts``, ``rows`` (log rows), ``by_last_resort`` (events per kind reached last),
    ``shared`` (events that also touched another market), ``notional_units`` and ``units_by_kind``
    (with a ``market``, only its rows), and the same in USDC as ``notional`` / ``notional_by_kind``.
    """
    evs = [e for e in records.values() if market is None or market in e["dirs"]]
    units = {k: 0 for k in EVENT_KINDS}
    rows = 0
    for e in evs:
        for _, m, k, _, v in e["rows"]:
            if market is None or m == market:
                units[k] += v
                rows += 1
    total = sum(units.values())
    return {"events": len(evs), "accounts": len({e["account"] for e in evs}), "rows": rows,
            "by_last_resort": {k: sum(1 for e in evs if e["kind"] == k) for k in EVENT_KINDS},
            "shared": sum(1 for e in evs if len(e["markets"]) > 1),
            "notional_units": total, "units_by_kind": units, "notional": total / USDC,
            "notional_by_kind": {k: v / USDC for k, v in units.items()}}


def final_marks(steps: pd.DataFrame, tick_sizes: Mapping[int, float], symbols: list[Optional[str]]) -> dict[int, int]:
    """The last recorded mark of each market in ticks (``symbols`` as ``summary.steps_markets`` gives them)."""
    out: dict[int, int] = {}
    for i, sym in enumerate(symbols):
        col = "mark" if sym is None else f"mark[{sym}]"
        if col in steps and len(steps):
            v = float(steps[col].iloc[-1])
            if np.isfinite(v) and v > 0:
                out[i] = int(round(v / float(tick_sizes[i])))
    return out


POSITION_COLUMNS = ("account", "market", "mode", "first_us", "last_us", "pnl_units", "forfeited_units",
                    "bad_debt_units", "loss_units")


def liquidated_positions(records: Mapping[tuple[int, int], Mapping[str, Any]], liquidations: pd.DataFrame,
                         trades: Optional[pd.DataFrame], multipliers: Mapping[int, int],
                         marks: Mapping[int, int]) -> pd.DataFrame:
    """What the owners of liquidated positions lost, one row per ``(account, market)`` liquidated.

    ``pnl_units``: the position's trading result over the whole run at its fill prices (the tape, both
    as maker and taker) and off-book transfer prices (backstop and ADL rows of the log), what is still
    open valued at ``marks`` (market -> last mark in ticks). ``forfeited_units``: the equity the unit
    still had when the backstop vault took it over (the vault keeps it; booked on the market of the
    event's first backstop row). ``bad_debt_units``: the negative equity the insurance fund covered
    (booked on the event's first market). ``loss_units = forfeited - pnl - bad_debt``: the owner's
    loss before trading fees, liquidation fees and funding (which the tables do not split by account).
    ``mode`` is the position's first event's; times are its first and last event's. Needs the tape:
    without it (``trades`` None) the frame is empty.
    """
    pos: dict[tuple[int, int], dict[str, int]] = {}
    for e in records.values():
        for m in e["markets"]:
            p = pos.setdefault((e["account"], m), {"mode": e["mode"], "first_us": e["time_us"], "last_us": 0,
                                                   "forfeited_units": 0, "bad_debt_units": 0})
            p["last_us"] = max(p["last_us"], e["time_us"])
    if not pos or trades is None:
        return pd.DataFrame([], columns=list(POSITION_COLUMNS))
    liq = liquidations
    eq_before = liq["equity_before"].to_numpy(np.int64).tolist()
    for e in records.values():
        first_backstop = next(((r, m) for r, m, k, _, _ in e["rows"] if k == "backstop"), None)
        if first_backstop is not None:
            pos[(e["account"], first_backstop[1])]["forfeited_units"] += max(0, eq_before[first_backstop[0]])
        pos[(e["account"], e["markets"][0])]["bad_debt_units"] += e["bad_debt_units"]
    cash = {k: 0 for k in pos}
    size = {k: 0 for k in pos}
    accounts = np.fromiter(sorted({a for a, _ in pos}), np.int64)
    if len(trades):
        maker = trades["maker_account"].to_numpy(np.int64)
        taker = trades["taker_account"].to_numpy(np.int64)
        sel = np.flatnonzero(np.isin(maker, accounts) | np.isin(taker, accounts))
        cols = [trades[c].to_numpy(np.int64)[sel].tolist() for c in ("market", "price", "qty", "taker_side")]
        for mk, tk, m, px, q, side in zip(maker[sel].tolist(), taker[sel].tolist(), *cols):
            signed = q if side == 0 else -q  # the taker's position change
            for a, d in ((tk, signed), (mk, -signed)):
                key = (a, m)
                if key in pos:
                    size[key] += d
                    cash[key] -= d * px * int(multipliers[m])
    kinds = liq["kind"].astype(str).tolist()
    for _r, (a, m, k, s, px) in enumerate(zip(liq["account"].tolist(), liq["market"].tolist(), kinds,
                                             liq["size"].tolist(), liq["price"].tolist())):
        key = (int(a), int(m))
        if k in ("backstop", "adl", "adl_counterparty") and key in pos:  # off the book: not on the tape
            size[key] += int(s)
            cash[key] -= int(s) * int(px) * int(multipliers[int(m)])
    rows = []
    for (a, m), p in pos.items():
        open_value = size[(a, m)] * marks[m] * int(multipliers[m]) if size[(a, m)] else 0
        pnl = cash[(a, m)] + open_value
        rows.append({"account": a, "market": m, **p, "pnl_units": pnl,
                     "loss_units": p["forfeited_units"] - pnl - p["bad_debt_units"]})
    return pd.DataFrame(rows, columns=list(POSITION_COLUMNS))


def mode_outcomes(records: Mapping[tuple[int, int], Mapping[str, Any]],
                  positions: Optional[pd.DataFrame] = None) -> dict[int, dict[str, Any]]:
    """Per margin mode (0 cross, 1 isolated, 2 strict isolated) present among the events: ``events``,
    ``accounts``, ``notional_units`` / ``notional``, ``bad_debt_units``, and with ``positions``
    (``liquidated_positions``) ``loss_units`` / ``loss`` (USDC) and ``positions``."""
    out: dict[int, dict[str, Any]] = {}
    for e in records.values():
        o = out.setdefault(int(e["mode"]), {"events": 0, "accounts": set(), "notional_units": 0, "bad_debt_units": 0})
        o["events"] += 1
        o["accounts"].add(e["account"])
        o["notional_units"] += e["notional_units"]
        o["bad_debt_units"] += e["bad_debt_units"]
    for mode, o in out.items():
        o["accounts"] = len(o["accounts"])
        o["notional"] = o["notional_units"] / USDC
        if positions is not None and len(positions):
            mine = positions[positions["mode"] == mode]
            o["positions"] = len(mine)
            o["loss_units"] = sum(mine["loss_units"].tolist())
            o["loss"] = o["loss_units"] / USDC
    return dict(sorted(out.items()))
