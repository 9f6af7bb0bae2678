"""One run in a few numbers: what was liquidated, how it cascaded, what the book and funding did.

Why: sweeps over scenarios and seeds need one flat, comparable record per run, written as JSON next to
the Parquet tables and aggregated across runs. Everything here is computed from the DataFrames alone
(the same tables a finished run saves), and every value is a plain ``int``, ``float``, ``str``,
``None``, list or dict (NaN becomes ``None``), so ``json.dumps(summary, allow_nan=False)`` works.

Markets: the per-step table names the first market's columns without a suffix and the others'
``name[SYMBOL]``; market index i is the i-th market in that order, which is also the ``market``
column of the event tables and the key of ``multipliers`` and of per-market ``shocks``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import networkx as nx
import numpy as np
import pandas as pd

from abm.analysis.cascade import Shocks, cascade_graph, cascade_metrics, normalize_shocks
from abm.analysis.depth import depth_metrics
from abm.analysis.liquidations import event_records, liquidation_totals
from abm.units import USDC


def plain(x: Any) -> Any:
    """``x`` with numpy scalars turned into Python ones, NaN/inf into None, tuples into lists."""
    if isinstance(x, Mapping):
        return {str(k): plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [plain(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


def market_multipliers(model: Any) -> dict[int, int]:
    """``{market index: spec.multiplier}`` of a ``MarketModel`` (quote units per tick·lot)."""
    return {i: int(m.spec.multiplier) for i, m in enumerate(model.exchange.markets)}


def config_shocks(config: Any) -> dict[int, tuple]:
    """``{market index: shocks}`` of a ``Scenario`` (a model's ``config``), the per-market form ``run_summary`` accepts."""
    return {i: tuple(mc.shocks) for i, mc in enumerate(config.markets)}


def steps_markets(steps: pd.DataFrame) -> list[Optional[str]]:
    """The markets of a per-step table in index order: None for the first (unsuffixed), then symbols."""
    out: list[Optional[str]] = [None] if "mark" in steps else []
    for c in steps.columns:
        mm = re.fullmatch(r"mark\[(.+)\]", str(c))
        if mm:
            out.append(mm.group(1))
    return out


def _col(name: str, sym: Optional[str]) -> str:
    return name if sym is None else f"{name}[{sym}]"


def _extreme(steps: pd.DataFrame, cols: list[str], fn: str) -> Optional[float]:
    vals = [pd.to_numeric(steps[c], errors="coerce").to_numpy(float) for c in cols if c in steps]
    vals = [v[np.isfinite(v)] for v in vals]
    vals = [v for v in vals if v.size]
    if not vals:
        return None
    allv = np.concatenate(vals)
    return float(allv.min() if fn == "min" else allv.max())


@dataclass(slots=True)
class RunAnalysis:
    """A run's summary with what it was computed from, so a report can draw exactly what it counts."""

    summary: dict[str, Any]
    graph: nx.DiGraph  # the cascade graph the summary measures
    events: dict[tuple[int, int], dict[str, Any]]  # abm.analysis.liquidations.event_records
    shocks: list[dict[str, Any]]  # normalize_shocks, resolved against the steps' markets
    markets: list[Optional[str]]  # steps_markets


def run_summary(steps: pd.DataFrame, liquidations: pd.DataFrame, funding: pd.DataFrame,
                multipliers: Mapping[int, int], shocks: Optional[Shocks] = (),
                trades: Optional[pd.DataFrame] = None, whale_orders: Any = None, lookback_s: float = 30,
                band: str = "1pct") -> dict[str, Any]:
    """A flat, JSON-serialisable summary of one run.

    ``steps``/``liquidations``/``funding``/``trades`` are ``steps_frame()`` and ``tables()``;
    ``multipliers`` maps market index -> ``spec.multiplier`` (see ``market_multipliers``); ``shocks``
    is ``{market index: shocks}`` (see ``config_shocks``) or a sequence whose items apply to every
    market unless they name one (``market`` index or ``symbol``; a symbol without a ``[SYMBOL]``
    column is the first market's). ``trades`` (the tape) lets the cascade attribution also credit the
    vault's unwind fills and ``whale_orders``; without it those two rules are skipped. Keys:

    - ``liquidated_notional``: USDC by kind (book, backstop, adl) and total; ``liquidation_rows``
      (log rows of those kinds), ``liquidation_events`` (liquidation events as
      ``abm.analysis.liquidations`` defines them: one margin unit at one mark update; the cascade
      graph's nodes), ``accounts_liquidated``;
    - ``cascades``, ``largest_cascade_events``, ``largest_cascade_notional``, ``longest_chain``, ``R``,
      ``R_all`` and the whole ``cascade`` metrics dict (``abm.analysis.cascade``);
    - ``worst_depth_drop`` (total depth within ``band``, the worst market; ``depth_drop_market`` says
      which, None = the first) with its ``depth_recover_50_s`` / ``depth_recover_90_s`` (measured from
      the market's first shock, or from the first minute without one);
    - ``max_abs_basis_bps`` (mark vs index) and ``max_abs_mid_basis_bps``, ``max_spread_bps`` (all
      markets; a missing mid or spread, NaN, is left out);
    - ``funding_min`` / ``_max`` (rates paid, from the funding table; None if none was paid yet),
      ``funding_predicted_min`` / ``_max`` (from the steps);
    - ``insurance_fund_end``, ``vault_equity_end`` (USDC), ``bad_debt_total`` (USDC, every bad debt
      the insurance fund was charged), ``duration_s``.

    Money is summed in integer quote units and divided once, so the summary is the same to the bit
    in any process, worker and Python version.
    """
    return analyse_run(steps, liquidations, funding, multipliers, shocks, trades, whale_orders, lookback_s,
                       band).summary


def analyse_run(steps: pd.DataFrame, liquidations: pd.DataFrame, funding: pd.DataFrame,
                multipliers: Mapping[int, int], shocks: Optional[Shocks] = (),
                trades: Optional[pd.DataFrame] = None, whale_orders: Any = None, lookback_s: float = 30,
                band: str = "1pct") -> RunAnalysis:
    """``run_summary`` (same arguments) together with its cascade graph and liquidation events."""
    out: dict[str, Any] = {}
    out["duration_s"] = float(steps["time_s"].iloc[-1]) if len(steps) and "time_s" in steps else 0.0

    # ---- liquidations (abm.analysis.liquidations: exact integer quote units)
    liq = liquidations if liquidations is not None else pd.DataFrame()
    events = event_records(liq, multipliers)
    tot = liquidation_totals(events)
    out["liquidated_notional"] = {**tot["notional_by_kind"], "total": tot["notional"]}
    out["liquidation_rows"] = tot["rows"]
    out["accounts_liquidated"] = tot["accounts"]
    bad_debt = sum(liq["bad_debt"].to_numpy(np.int64).tolist()) if len(liq) and "bad_debt" in liq else 0
    out["bad_debt_total"] = bad_debt / USDC

    # ---- cascades
    markets = steps_markets(steps)
    # a shock naming its symbol: the suffixed markets are known from the columns, the first one is not
    symbol_index = {s: i for i, s in enumerate(markets) if s is not None}
    shock_list = normalize_shocks(shocks, symbol_index, default_index=0)
    G = cascade_graph(liq, trades, shock_list, whale_orders=whale_orders, lookback_s=lookback_s,
                      multiplier=multipliers)
    cm = cascade_metrics(G)
    out["liquidation_events"] = cm["liquidations"]
    for k in ("cascades", "largest_cascade_events", "largest_cascade_notional", "longest_chain", "R", "R_all"):
        out[k] = cm[k]
    out["cascade"] = cm

    # ---- depth, spread, basis (every market)
    worst: Optional[tuple[float, Optional[str], dict]] = None
    basis_mark: list[float] = []
    basis_mid: list[float] = []
    for i, sym in enumerate(markets):
        starts = [s["start_s"] for s in shock_list if s["market"] is None or s["market"] == i]
        if _col(f"depth_bid_{band}", sym) not in steps:
            continue
        d = depth_metrics(steps, min(starts) if starts else None, band=band, market=sym)
        drop = d["total"]["drop"]
        if drop is not None and (worst is None or drop > worst[0]):
            worst = (drop, sym, d)
        if d["basis_mark"]["max_abs_bps"] is not None:
            basis_mark.append(d["basis_mark"]["max_abs_bps"])
        if d["basis_mid"]["max_abs_bps"] is not None:
            basis_mid.append(d["basis_mid"]["max_abs_bps"])
    out["worst_depth_drop"] = worst[0] if worst else None
    out["depth_drop_market"] = worst[1] if worst else None
    out["depth_recover_50_s"] = worst[2]["total"]["recover_50_s"] if worst else None
    out["depth_recover_90_s"] = worst[2]["total"]["recover_90_s"] if worst else None
    out["max_abs_basis_bps"] = max(basis_mark) if basis_mark else None
    out["max_abs_mid_basis_bps"] = max(basis_mid) if basis_mid else None
    out["max_spread_bps"] = _extreme(steps, [_col("spread_bps", s) for s in markets], "max")

    # ---- funding
    if funding is not None and len(funding) and "rate" in funding:
        rates = pd.to_numeric(funding["rate"], errors="coerce").dropna()
        out["funding_min"] = float(rates.min()) if len(rates) else None
        out["funding_max"] = float(rates.max()) if len(rates) else None
    else:
        out["funding_min"] = out["funding_max"] = None
    pred = [_col("funding_predicted", s) for s in markets]
    out["funding_predicted_min"] = _extreme(steps, pred, "min")
    out["funding_predicted_max"] = _extreme(steps, pred, "max")

    # ---- fund and vault
    out["insurance_fund_end"] = float(steps["insurance_fund"].iloc[-1]) if len(steps) and "insurance_fund" in steps else None
    out["vault_equity_end"] = float(steps["vault_equity"].iloc[-1]) if len(steps) and "vault_equity" in steps else None
    if "gateway_served" in steps:  # a run with a venue gateway (abm.model.gateway); without one the key is absent
        out["gateway"] = gateway_summary(steps)
    spot = [c.split("@", 1)[1] for c in steps.columns if c.startswith("gateway_served@")]
    if spot:  # simulated spot venues with gateways
        out["spot_gateways"] = {name: gateway_summary(steps, f"@{name}") for name in spot}
    return RunAnalysis(plain(out), G, events, shock_list, markets)


def gateway_summary(steps: pd.DataFrame, suffix: str = "") -> dict[str, Any]:
    """A venue gateway over the run, from its step columns (a spot venue's: ``suffix`` ``@NAME``): actions
    ``served``, ``refused`` by reason (the queue limit's ``overload`` and each rate limit by name), the worst step's
    latency (``max_latency_ms``, the largest per-step maximum, and ``max_p99_latency_ms``), the ``peak_queue``, and
    ``saturated_s``: the time in steps whose latency p99 exceeded one second."""
    dt = steps["time_s"].diff().fillna(steps["time_s"].iloc[0] if len(steps) else 0.0)
    p99 = steps[f"gateway_latency_p99_ms{suffix}"]
    refused = {c[len("gateway_rejects_"):len(c) - len(suffix)]: int(steps[c].sum()) for c in steps.columns
               if c.startswith("gateway_rejects_") and (c.endswith(suffix) if suffix else "@" not in c)}
    return {"served": int(steps[f"gateway_served{suffix}"].sum()), "refused": refused,
            "max_latency_ms": _finite_max(steps[f"gateway_latency_max_ms{suffix}"]),
            "max_p99_latency_ms": _finite_max(p99),
            "peak_queue": int(steps[f"gateway_queue_peak{suffix}"].max()) if len(steps) else 0,
            "saturated_s": math.fsum(dt[p99 > 1000.0].tolist())}


def _finite_max(col: pd.Series) -> Optional[float]:
    v = col.dropna()
    return float(v.max()) if len(v) else None


def amplification_summary(feedback: Optional[pd.DataFrame], control: Optional[pd.DataFrame],
                          multipliers: Mapping[int, int]) -> dict[str, Any]:
    """What the no-feedback control adds to a run's summary: ``control`` and ``amplification``.

    ``feedback`` and ``control`` are the liquidation logs of the run and of its control (the same scenario
    and seed with ``liquidation.process = "no_feedback"``: every liquidated unit closed off the book at the
    mark). ``control`` holds the control's ``liquidated_notional`` (USDC by kind and total, as the run's own),
    ``liquidation_events``, ``accounts_liquidated`` and ``bad_debt_total``; ``amplification`` is the run's
    liquidated notional over the control's, both summed in integer quote units and divided once (an exact
    int / int, correctly rounded). It is None when the control liquidated nothing: 0 / 0 in a calm run, and in
    a run whose every liquidation the feedback made the ratio has no finite value (``control`` and the run's
    own ``liquidated_notional`` then say which).
    """
    fb = liquidation_totals(event_records(feedback, multipliers))
    ct = liquidation_totals(event_records(control, multipliers))
    debt = control["bad_debt"].to_numpy(np.int64).tolist() if control is not None and len(control) else []
    out = {"control": {"liquidated_notional": {**ct["notional_by_kind"], "total": ct["notional"]},
                       "liquidation_events": ct["events"], "accounts_liquidated": ct["accounts"],
                       "bad_debt_total": sum(debt) / USDC},
           "amplification": fb["notional_units"] / ct["notional_units"] if ct["notional_units"] else None}
    return plain(out)


__all__ = ["run_summary", "amplification_summary", "analyse_run", "RunAnalysis", "market_multipliers", "config_shocks", "steps_markets",
           "plain"]
