"""Stylized facts of a calibration scenario, each next to what the real cascade showed.

Why a registry: a calibration scenario is judged against the figures of one real event, and which
figures those are (and how each is measured from a run) is a modelling choice of its own. A scenario
names its report in ``[run] facts = "NAME"``; the runner calls it on the finished ``RunResult`` and puts
its rows in the summary under ``"facts"``. Scenarios that name none have no such key.

A report is a function ``RunResult -> list[dict]``; each row says the fact, the real value and its
source, the simulated value, the tolerance (``lo``..``hi``, in the fact's unit), whether the run is
inside it (``hit``) and by how much it is outside (``off_by``: 0 when hit, None when nothing was
measured). Everything is computed from the run's tables (steps, liquidations, accounts) only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np
import pandas as pd

from abm.registry import Registry

if TYPE_CHECKING:
    from abm.results.run_result import RunResult

FactReport = Callable[["RunResult"], list[dict[str, Any]]]

FACT_REPORTS: Registry[FactReport] = Registry("fact report", "run.facts",
                                              "a function RunResult -> list of fact rows", callable)

REF = "shared/reference/venue-mechanics.md, 'What real cascades looked like'"


def fact_row(fact: str, real: str, source: str, simulated: Optional[float], lo: float, hi: float,
             unit: str) -> dict[str, Any]:
    """One row: the simulated value against ``[lo, hi]`` (a value not measured is a miss, ``off_by`` None)."""
    sim = None if simulated is None or not math.isfinite(simulated) else float(simulated)
    hit = sim is not None and lo <= sim <= hi
    off = None if sim is None else (0.0 if hit else (lo - sim if sim < lo else sim - hi))
    return {"fact": fact, "real": real, "source": source, "simulated": sim, "lo": lo, "hi": hi, "unit": unit,
            "hit": bool(hit), "off_by": off}


def _col(name: str, symbol: Optional[str]) -> str:
    return name if symbol is None else f"{name}[{symbol}]"


def _liq_times(liq: pd.DataFrame, kinds: tuple[str, ...]) -> np.ndarray:
    if not len(liq):
        return np.empty(0)
    return np.sort(liq.loc[liq["kind"].astype(str).isin(kinds), "time_us"].to_numpy(np.int64) / 1e6)


def depth_facts(steps: pd.DataFrame, start_s: float, symbol: Optional[str] = None) -> dict[str, Optional[float]]:
    """The 1 % depth (both sides) against its median in the minute before ``start_s``: the deepest drop,
    when it came (s after start) and how long until it is back to half the baseline (s after the trough)."""
    t = steps["time_s"].to_numpy(float)
    d = (steps[_col("depth_bid_1pct", symbol)].to_numpy(float) + steps[_col("depth_ask_1pct", symbol)].to_numpy(float))
    before = (t >= start_s - 60) & (t < start_s)
    base = float(np.nanmedian(d[before])) if before.any() else float("nan")
    after = t >= start_s
    if not after.any() or not base > 0:
        return {"drop": None, "trough_after_s": None, "back_50_s": None}
    da, ta = d[after], t[after]
    k = int(np.nanargmin(da))
    back = np.nonzero(da[k:] >= 0.5 * base)[0]
    return {"drop": 1 - float(da[k]) / base, "trough_after_s": float(ta[k] - start_s),
            "back_50_s": float(ta[k + back[0]] - ta[k]) if len(back) else None}


def bid_gap(steps: pd.DataFrame, symbol: Optional[str] = None, gap: float = 0.04) -> dict[str, Optional[float]]:
    """How far the best bid stood below the mark (its worst, as a fraction) and the longest stretch (s) it
    stood at least ``gap`` below: the best bid is ``mid x (1 - spread / 2)``."""
    t = steps["time_s"].to_numpy(float)
    mid = steps[_col("mid", symbol)].to_numpy(float)
    spread = steps[_col("spread_bps", symbol)].to_numpy(float) / 1e4
    mark = steps[_col("mark", symbol)].to_numpy(float)
    g = 1 - mid * (1 - spread / 2) / mark
    g = np.where(np.isfinite(g), g, np.nan)
    if not np.isfinite(g).any():
        return {"worst": None, "longest_s": None}
    far = np.nan_to_num(g, nan=1.0) >= gap  # no bid at all counts as far
    longest, run_start = 0.0, None
    for i, f in enumerate(far):
        if f and run_start is None:
            run_start = t[i]
        if run_start is not None and (not f or i == len(far) - 1):
            longest = max(longest, (t[i] if f else t[i - 1]) - run_start + 1)
            run_start = None
    return {"worst": float(np.nanmax(g)), "longest_s": longest}


def adl_counterparties(liq: pd.DataFrame, accounts: pd.DataFrame) -> dict[str, Optional[float]]:
    """Who ADL closed against: the share of counterparty accounts in profit at their first ADL (equity above
    what they started with) and their median leverage then (position before ADL x mark / equity).

    The position before ADL is the account's final position less what ADL took from it: exact for holders
    that trade nothing else afterwards (the scenario's passive holders), an approximation for the rest."""
    cp = liq.loc[liq["kind"].astype(str) == "adl_counterparty"] if len(liq) else liq
    if not len(cp):
        return {"in_profit": None, "median_leverage": None, "accounts": 0}
    acc = accounts.set_index("account")
    profit, lev = [], []
    for aid, rows in cp.sort_values(["time_us", "event_id"]).groupby("account", sort=True):
        first = rows.iloc[0]
        eq = float(first["equity_before_usdc"])
        a = acc.loc[aid] if aid in acc.index else None
        if a is None or isinstance(a, pd.DataFrame):  # an account in several markets: one row per market
            a = acc.loc[[aid]].iloc[0] if aid in acc.index else None
        start = float(a["deposit_usdc"]) if a is not None else float("nan")
        profit.append(eq > start)
        sym_rows = rows.loc[rows["market"] == first["market"]]
        pos_end = 0.0
        if a is not None:
            sub = accounts.loc[(accounts["account"] == aid) & (accounts["symbol"] == first["symbol"])]
            pos_end = float(sub["position_base"].iloc[0]) if len(sub) else 0.0
        pos_before = pos_end - float(sym_rows["size_base"].sum())
        if eq > 0:
            lev.append(abs(pos_before) * float(first["mark_usdc"]) / eq)
    return {"in_profit": float(np.mean(profit)), "median_leverage": float(np.median(lev)) if lev else None,
            "accounts": len(profit)}


def waves(times_s: np.ndarray, within_s: float = 1.0) -> np.ndarray:
    """The start times of bursts: events closer than ``within_s`` to the previous one join its burst."""
    if not len(times_s):
        return times_s
    keep = np.r_[True, np.diff(times_s) > within_s]
    return times_s[keep]


def burstiness(times_s: np.ndarray) -> Optional[float]:
    """(sd - mean) / (sd + mean) of the gaps between events: 0 for a Poisson stream, towards 1 for bursts."""
    gaps = np.diff(np.unique(times_s))
    if len(gaps) < 3:
        return None
    m, s = float(gaps.mean()), float(gaps.std())
    return (s - m) / (s + m)


def price_path(steps: pd.DataFrame, start_s: float, col: str = "mark",
               symbol: Optional[str] = None, after_s: float = 1800) -> dict[str, Optional[float]]:
    """The fall from the price just before ``start_s`` to the trough, and the rise from the trough within
    ``after_s`` of it (fractions), with the trough's time."""
    t = steps["time_s"].to_numpy(float)
    p = steps[_col(col, symbol)].to_numpy(float)
    pre = p[(t < start_s) & (t >= start_s - 10)]
    if not len(pre):
        return {"drop": None, "rebound": None, "trough_s": None, "rebound_window_s": None}
    p0 = float(np.median(pre))
    after = t >= start_s
    k = int(np.nanargmin(np.where(after, p, np.inf)))
    win = (t >= t[k]) & (t <= t[k] + after_s)
    return {"drop": float(p[k]) / p0 - 1, "rebound": float(np.nanmax(p[win])) / float(p[k]) - 1,
            "trough_s": float(t[k]), "rebound_window_s": float(t[win][-1] - t[k])}


def funding_peak_lag(steps: pd.DataFrame, trough_s: float, symbol: Optional[str] = None) -> Optional[float]:
    """When the predicted funding rate was furthest from its pre-shock value, in s after the price trough
    (None if it never moved)."""
    f = steps[_col("funding_predicted", symbol)].to_numpy(float)
    t = steps["time_s"].to_numpy(float)
    base = f[t < 60]
    if not len(base) or not np.isfinite(f).any():
        return None
    dev = np.abs(f - float(np.nanmedian(base)))
    if not np.nanmax(dev) > 0:
        return None
    return float(t[int(np.nanargmax(dev))] - trough_s)


@FACT_REPORTS.register("oct10_2025")
def oct10_2025(result: "RunResult") -> list[dict[str, Any]]:
    """The 2025-10-10/11 Hyperliquid cascade (BTC and alts). Tolerances (derivations in tests/integration/
    test_oct10.py): a range the reference gives is kept as it is; a point figure gets a factor of 2 either
    way for times and leverages (one real event, a scaled-down venue), +-15 points for shares."""
    steps, liq, acc = result.steps, result.liquidations, result.accounts
    start = min((float(s["start_s"]) for s in result.shocks), default=0.0)
    rows: list[dict[str, Any]] = []
    d = depth_facts(steps, start)
    rows.append(fact_row("BTC 1% depth drop", "-90 to -98% within minutes", REF, d["drop"], 0.90, 0.98,
                         "fraction of the pre-shock depth"))
    rows.append(fact_row("BTC 1% depth trough comes within minutes", "minutes", REF, d["trough_after_s"],
                         0.0, 600.0, "s after the news"))
    rows.append(fact_row("BTC 1% depth back to half within tens of minutes", "tens of minutes", REF,
                         d["back_50_s"], 300.0, 3600.0, "s after the trough"))
    b = bid_gap(steps)
    rows.append(fact_row("BTC best bid below the mark, worst", "4-10% from mid", REF, b["worst"], 0.04, 0.10,
                         "fraction of the mark"))
    rows.append(fact_row("BTC bids >= 4% away for minutes", "minutes", REF, b["longest_s"], 60.0, 1800.0,
                         "s (longest stretch)"))
    spreads = [c for c in steps.columns if c.startswith("spread_bps")]
    peak = float(np.nanmax(steps[spreads].to_numpy(float))) if spreads else None
    rows.append(fact_row("spread peak (any market)", "1-22% on thin markets", REF, peak, 100.0, 2200.0, "bps"))
    liq_t = _liq_times(liq, ("book", "backstop"))
    adl_t = _liq_times(liq, ("adl",))
    first_adl = float(adl_t[0] - liq_t[0]) if len(adl_t) and len(liq_t) else None
    rows.append(fact_row("first ADL after the first liquidation", "~62 s", REF, first_adl, 31.0, 124.0, "s"))
    tot = {k: float(liq.loc[liq["kind"].astype(str) == k, "notional_usdc"].abs().sum()) if len(liq) else 0.0
           for k in ("book", "backstop", "adl")}
    forced = tot["book"] + tot["backstop"]
    share = tot["adl"] / forced if forced > 0 else None
    rows.append(fact_row("ADL notional / liquidated notional", "~38% (2.1 B / 5.5 B)", REF, share, 0.23, 0.53,
                         "fraction"))
    c = adl_counterparties(liq, acc)
    rows.append(fact_row("ADL counterparties in profit", "94.5%", REF, c["in_profit"], 0.795, 1.0,
                         "fraction of ADL'd accounts"))
    rows.append(fact_row("ADL counterparties' median leverage", "0.15-0.2x", REF, c["median_leverage"], 0.075,
                         0.4, "x"))
    w = waves(adl_t)
    gaps = np.diff(w)
    rows.append(fact_row("gap between the first two ADL waves", "52 s", REF,
                         float(gaps[0]) if len(gaps) else None, 26.0, 104.0, "s"))
    rows.append(fact_row("median gap between later ADL waves", "4 s", REF,
                         float(np.median(gaps[1:])) if len(gaps) > 1 else None, 2.0, 8.0, "s"))
    rows.append(fact_row("liquidations bursty (burstiness of gaps)", "bursty (waves)", REF,
                         burstiness(np.r_[liq_t, adl_t]), 0.0, 1.0, "(sd - mean) / (sd + mean)"))
    p = price_path(steps, start)
    rows.append(fact_row("BTC fall to the trough", "-13% (112 k -> 97 k)", REF, p["drop"], -0.26, -0.065,
                         "fraction"))
    rows.append(fact_row("BTC rebound within 30 min of the trough", "+12%", REF, p["rebound"], 0.06, 0.24,
                         "fraction"))
    lag = funding_peak_lag(steps, p["trough_s"]) if p["trough_s"] is not None else None
    rows.append(fact_row("funding most extreme after the price trough", "after the move", REF, lag, 0.0,
                         float(result.summary.get("duration_s", 0.0) or 0.0), "s after the trough"))
    return rows


def run_facts(name: str, result: "RunResult") -> list[dict[str, Any]]:
    """The rows of the report ``name`` (a registered name or ``module:function``) for ``result``."""
    return FACT_REPORTS.resolve(name)(result)


__all__ = ["FACT_REPORTS", "FactReport", "fact_row", "run_facts", "oct10_2025", "depth_facts", "bid_gap",
           "adl_counterparties", "waves", "burstiness", "price_path", "funding_peak_lag"]
