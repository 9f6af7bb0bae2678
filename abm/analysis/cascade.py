"""Liquidation cascades as a graph: which liquidation (or shock, or whale order) set off which.

Why: a cascade runs away when each unit of liquidated notional pushes the price far enough to force
more than one further unit (R > 1). To measure that from a finished run we need, for every
liquidation, a best guess of what caused it. Without counterfactual reruns (rerun without that order
and see whether the next liquidation still happens) causality cannot be proven; this module uses a
documented heuristic over the event tables instead, which is the best available from one run. The
functions take plain DataFrames (``model.tables()`` or the same tables loaded from Parquet).

Nodes
-----
- One **liquidation node** per liquidation event (``abm.analysis.liquidations``): all ``book``,
  ``backstop`` and ``adl`` rows that one mark update (``trigger``) produced for one account, i.e. one
  liquidation step of a margin unit (a book slice followed by a backstop takeover in the same step is
  one node). Name ``"liq:<account>:<trigger>"``. Attributes: ``type="liquidation"``, ``account``,
  ``trigger``, ``time_us`` / ``time_s`` (first row), ``markets``, ``mode``, ``kinds``, ``kind`` (the
  last resort reached: adl > backstop > book), ``notional_units`` (exact, quote units: ``sum |size| *
  price * multiplier[market]``) and ``notional`` (the same in USDC), ``notional_by_kind``,
  ``bad_debt_units`` / ``bad_debt`` (from ``bad_debt`` rows of the same account and trigger).
  ``adl_counterparty`` rows are not nodes (they are the other side of an ADL, not a liquidation) and
  ``bad_debt`` rows only add to their node's ``bad_debt``.
- Root nodes: ``"shock:<i>"`` per exogenous shock (numbered in the order given), ``"whale:<oid>"``
  per whale order if given, and ``"market"`` (everything the other rules do not explain: ordinary
  order flow and index moves).

Attribution rule (one parent per liquidation node, so the graph is a forest under the roots)
---------------------------------------------------------------------------------------------
A liquidation node E in market m whose liquidated position was long (its rows sell, ``size < 0``) can
only have been pushed there by selling, a short one only by buying. The *price movers* of m are:

1. the liquidation orders' fills, credited to their node. They are read from the ``book`` rows of the
   log (one row per liquidation order: filled size, average price, time, trigger; the same fills
   appear on the tape with ``taker_oid == order_id`` and the liquidation flag), so this rule needs no
   tape;
2. the backstop vault's unwind fills (liquidation-flagged fills whose ``taker_oid`` is no liquidation
   row's ``order_id``), credited to the latest earlier ``backstop`` node in the same market and
   direction: the vault sells what it took over, so its unwinding is a consequence of the takeovers
   (its inventory is a pool; crediting the most recent contributor is part of the heuristic);
3. the fills of the whale orders given (as taker; a resting whale order that gets hit is not the
   aggressor), credited to ``"whale:<oid>"``.

Rules 2 and 3 need the trade tape; without it they are skipped.

E's parent is the owner of the most recent price-moving fill in m, in E's direction (a taker sell
for a long, a taker buy for a short), within ``lookback_s`` before E: for liquidation fills
"before" means from an earlier mark update (``trigger`` smaller than E's, which also orders events
stamped with the same microsecond); for unwind and whale fills, which carry no trigger, a strictly
earlier ``time_us`` (agents act after the mark updates of the same microsecond; among movers at one
time, liquidations come first in trigger order, then tape fills in tape order). A node's own fills
never count for itself. A node in several markets (a cross account) takes the most recent such fill
over all its markets. If there is none, the parent is the
shock whose window ``[start, start + duration + lookback_s]`` contains E's time (the latest-starting
one if several; shocks given per market only apply to their market); otherwise ``"market"``.

Edges carry ``rule`` (``liquidation``, ``unwind``, ``whale``, ``shock``, ``market``), ``lag_s`` (from
the parent's fill, or the shock's start, to E) and ``weight`` (E's notional).

Known limits: an aggressor that is not a liquidation, shock or whale (a noise trader dumping, an
arbitrageur) is invisible, so liquidations it caused are credited to whatever liquidation or shock came
before; price moves through the oracle in another market are not traced; "most recent" ignores how
large each fill was.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Optional, Union

import networkx as nx
import numpy as np
import pandas as pd

from abm.analysis.liquidations import EVENT_KINDS, event_records, units_by_kind
from abm.units import USDC

NODE_KINDS = EVENT_KINDS

ShockLike = Any  # abm.model.Shock, a (start_s, duration_s[, pct]) tuple or a mapping with those keys
Shocks = Union[Sequence[ShockLike], Mapping[int, Sequence[ShockLike]]]


def _get(s: ShockLike, key: str) -> Any:
    return s.get(key) if isinstance(s, Mapping) else getattr(s, key, None)


def _shock_fields(s: ShockLike) -> tuple[float, float, Optional[float]]:
    if isinstance(s, Mapping) or hasattr(s, "start_s"):
        pct = _get(s, "pct")
        return float(_get(s, "start_s")), float(_get(s, "duration_s")), (None if pct is None else float(pct))
    seq = tuple(s)
    return float(seq[0]), float(seq[1]), (float(seq[2]) if len(seq) > 2 else None)


def normalize_shocks(shocks: Optional[Shocks], symbol_index: Optional[Mapping[str, int]] = None,
                     default_index: Optional[int] = None) -> list[dict[str, Any]]:
    """Shocks as ``[{"start_s", "duration_s", "pct", "market"}]``; ``market`` None means every market.

    Accepts a sequence or a mapping market index -> sequence (the shocks of
    ``Scenario.markets[i].shocks``), of ``ShockSection`` objects, ``(start_s, duration_s[, pct])`` tuples
    or dicts. In a sequence, an item that names its market (a ``market`` index, or a ``symbol``
    resolved through ``symbol_index``; a symbol not found there goes to ``default_index``, and with
    neither it applies to every market) applies to that market only, the others to every market.
    """
    if not shocks:
        return []
    out: list[dict[str, Any]] = []
    items: Iterable[tuple[Optional[int], ShockLike]]
    if isinstance(shocks, Mapping):
        items = [(int(m), s) for m, seq in shocks.items() for s in seq]
    else:
        items = []
        for s in shocks:
            market = _get(s, "market") if not isinstance(s, (tuple, list)) else None
            sym = _get(s, "symbol") if not isinstance(s, (tuple, list)) else None
            if market is None and sym is not None:
                market = (symbol_index or {}).get(sym, default_index)
            items.append((None if market is None else int(market), s))
    for market, s in items:
        start, dur, pct = _shock_fields(s)
        out.append({"start_s": start, "duration_s": dur, "pct": pct, "market": market})
    return out


def _whale_oids(whale_orders: Any) -> list[int]:
    if whale_orders is None:
        return []
    if isinstance(whale_orders, pd.DataFrame):
        for c in ("order_id", "oid", "taker_oid"):
            if c in whale_orders:
                return sorted({int(x) for x in whale_orders[c].dropna()})
        raise KeyError("whale_orders needs an 'order_id' column")
    return sorted({int(x) for x in whale_orders})


def cascade_graph(liquidations: pd.DataFrame, trades: Optional[pd.DataFrame] = None, shocks: Optional[Shocks] = (),
                  whale_orders: Any = None, lookback_s: float = 30,
                  multiplier: Optional[Mapping[int, int]] = None,
                  symbols: Optional[Sequence[str]] = None) -> nx.DiGraph:
    """The cascade forest of a run (see the module docstring for nodes and the attribution rule).

    ``liquidations`` and ``trades`` are the tables of ``model.tables()``. The liquidation orders' own
    price moves are read from the ``book`` rows of the log (one row per liquidation order: its fills'
    size, average price, time and trigger), so the tape is needed only for the vault's unwind fills and
    the whale's fills; with ``trades=None`` those two rules are skipped. ``shocks``: the scripted
    index moves (a sequence, or ``{market index: shocks}``; items may name a ``symbol``, resolved with
    ``symbols``, the market symbols in index order). ``whale_orders``: the whale's order ids (an
    iterable, or a DataFrame with an ``order_id`` column; e.g. the unique ``taker_oid`` of the tape
    rows whose ``taker_account`` is the whale's). ``multiplier`` maps a market index to its
    ``spec.multiplier`` (quote units per tick·lot), so notionals are in USDC; without it every market
    counts 1 (notional in tick·lots / 1e6: fine for ratios within one market only).
    """
    lookback_us = int(round(lookback_s * 1e6))
    G = nx.DiGraph()
    G.add_node("market", type="market")
    shock_list = normalize_shocks(shocks, {s: i for i, s in enumerate(symbols)} if symbols is not None else None)
    for i, s in enumerate(shock_list):
        G.add_node(f"shock:{i}", type="shock", **s)
    whale_set = _whale_oids(whale_orders)
    for oid in whale_set:
        G.add_node(f"whale:{oid}", type="whale", order_id=oid)

    # ---- liquidation nodes: the events of abm.analysis.liquidations, in log order
    liq = liquidations
    if liq is None or len(liq) == 0:
        return G
    nodes = event_records(liq, multiplier)
    oid_col = liq["order_id"].to_numpy(np.int64) if "order_id" in liq else np.full(len(liq), -1, np.int64)
    liq_orders: set[int] = set()
    # price movers per (market, taker side): (time_us, order key, owner, trigger or None)
    moves: dict[tuple[int, int], list[tuple[int, tuple, str, Optional[int]]]] = defaultdict(list)
    backstops: dict[tuple[int, int], list[tuple[int, int, str]]] = defaultdict(list)  # (market, side) -> [(t, row, node)]
    for nd in nodes.values():
        name, trig_e = nd["name"], nd["trigger"]
        seen_backstop: set[int] = set()
        for r, m, k, t, _ in nd["rows"]:
            side = nd["dirs"][m]  # every row of a unit's close in one market goes the same way
            if k == "book":
                liq_orders.add(int(oid_col[r]))
                moves[(m, side)].append((t, (0, trig_e, r), name, trig_e))
            elif k == "backstop" and m not in seen_backstop:
                seen_backstop.add(m)
                backstops[(m, side)].append((t, r, name))
        units = units_by_kind(nd)
        G.add_node(name, type="liquidation", account=nd["account"], trigger=trig_e, time_us=nd["time_us"],
                   time_s=nd["time_us"] / 1e6, markets=tuple(nd["markets"]), mode=nd["mode"], kinds=tuple(nd["kinds"]),
                   kind=nd["kind"], notional_units=nd["notional_units"], notional=nd["notional_units"] / USDC,
                   notional_by_kind={k: units[k] / USDC for k in nd["kinds"]},
                   bad_debt_units=nd["bad_debt_units"], bad_debt=nd["bad_debt_units"] / USDC)
    for lst in backstops.values():
        lst.sort(key=lambda e: (e[0], e[1]))

    # ---- the tape: the vault's unwind fills and the whale's fills (ordered after same-time liquidations)
    if trades is not None and len(trades):
        t_time = trades["time_us"].to_numpy(np.int64)
        t_mkt = trades["market"].to_numpy(np.int64)
        t_oid = trades["taker_oid"].to_numpy(np.int64)
        t_side = trades["taker_side"].to_numpy(np.int64)
        t_liq = trades["liquidation"].to_numpy().astype(bool)
        whale_names = {oid: f"whale:{oid}" for oid in whale_set}
        bs_times = {k: [e[0] for e in v] for k, v in backstops.items()}
        for j in np.flatnonzero(t_liq | np.isin(t_oid, np.fromiter(whale_names, np.int64, len(whale_names)))):
            oid = int(t_oid[j])
            m, sd, t = int(t_mkt[j]), int(t_side[j]), int(t_time[j])
            owner: Optional[str] = None
            if t_liq[j]:
                if oid in liq_orders:
                    continue  # a liquidation order's fill: already counted from its log row
                ts = bs_times.get((m, sd))
                if ts:  # the vault unwinding: credit the latest earlier takeover in this market and direction
                    p = bisect_left(ts, t) - 1
                    if p >= 0:
                        owner = backstops[(m, sd)][p][2]
            elif oid in whale_names:
                owner = whale_names[oid]
            if owner is not None:
                moves[(m, sd)].append((t, (1, int(j)), owner, None))
    movers = {}
    for k, entries_k in moves.items():
        entries_k.sort(key=lambda e: (e[0], e[1]))
        movers[k] = ([e[0] for e in entries_k], entries_k)

    # ---- one parent per liquidation node
    for nd in sorted(nodes.values(), key=lambda d: (d["trigger"], d["time_us"], d["name"])):
        te, trig_e, name = nd["time_us"], nd["trigger"], nd["name"]
        best: Optional[tuple[int, tuple, str, Optional[int]]] = None
        for m in nd["markets"]:
            mv = movers.get((m, nd["dirs"][m]))
            if mv is None:
                continue
            times, entries = mv
            p = bisect_right(times, te) - 1
            while p >= 0 and times[p] >= te - lookback_us:
                e = entries[p]
                ok = (e[3] < trig_e) if e[3] is not None else (e[0] < te)
                if ok and e[2] != name:
                    if best is None or e[:2] > best[:2]:
                        best = e
                    break
                p -= 1
        if best is not None:
            rule = "liquidation" if best[3] is not None else ("whale" if best[2].startswith("whale:") else "unwind")
            G.add_edge(best[2], name, rule=rule, lag_s=(te - best[0]) / 1e6, weight=G.nodes[name]["notional"])
            continue
        t_s = te / 1e6
        chosen: Optional[int] = None
        for i, s in enumerate(shock_list):
            if s["market"] is not None and s["market"] not in nd["markets"]:
                continue
            in_window = s["start_s"] <= t_s <= s["start_s"] + s["duration_s"] + lookback_s
            if in_window and (chosen is None or s["start_s"] > shock_list[chosen]["start_s"]):
                chosen = i
        if chosen is not None:
            G.add_edge(f"shock:{chosen}", name, rule="shock", lag_s=t_s - shock_list[chosen]["start_s"],
                       weight=G.nodes[name]["notional"])
        else:
            G.add_edge("market", name, rule="market", lag_s=None, weight=G.nodes[name]["notional"])
    return G


def _is_liq(G: nx.DiGraph, n: Any) -> bool:
    return G.nodes[n].get("type") == "liquidation"


def cascade_metrics(G: nx.DiGraph) -> dict[str, Any]:
    """Size, depth, branching and amplification of the cascades in a ``cascade_graph``.

    Definitions:

    - a **cascade** is the set of liquidations descending from one initiating cause: everything under
      one shock or whale root is one cascade; under ``"market"`` (no single cause) each child
      liquidation with its descendants is a cascade of its own. Only cascades with at least one
      liquidation count.
    - **largest cascade**: the one with the most liquidated notional (ties: more events); its number
      of events, notional and root.
    - **longest chain**: the most liquidation nodes on one root-to-leaf path (a liquidation caused
      directly by a shock has depth 1).
    - **mean branching**: liquidation children per liquidation node that has any.
    - **R** (amplification ratio) = sum over liquidation->liquidation edges of the child's notional /
      sum of the notional of the distinct liquidations that have at least one liquidation child. It
      answers "per unit of notional of the liquidations that did trigger others, how much did they
      trigger"; None when no liquidation triggered another.
    - **R_all** = the same numerator / the notional of all liquidations: the notional-weighted mean
      offspring over every liquidation, the branching ratio of a branching process (a self-sustaining
      cascade needs R_all > 1); 0 when no liquidation triggered another, None with no liquidations.

    Also: totals, and the notional hanging directly off shocks, whales and the market root.
    """
    # every sum is over exact integer quote units (node order is the graph's insertion order, but
    # integers make it irrelevant); the only rounding is the final division
    liq_nodes = [n for n in G.nodes if _is_liq(G, n)]
    units = {n: int(G.nodes[n]["notional_units"]) for n in liq_nodes}
    total = sum(units.values())
    liq_children = {n: [c for c in G.successors(n) if _is_liq(G, c)] for n in liq_nodes}
    parents = [n for n in liq_nodes if liq_children[n]]
    triggered = sum(units[c] for n in parents for c in liq_children[n])
    parent_units = sum(units[n] for n in parents)

    # cascades (member sets: their order does not matter to integer sums)
    cascades: list[tuple[Any, set]] = []
    for r in G.nodes:
        typ = G.nodes[r].get("type")
        if typ in ("shock", "whale"):
            members = {d for d in nx.descendants(G, r) if _is_liq(G, d)}
            if members:
                cascades.append((r, members))
        elif typ == "market":
            for c in G.successors(r):
                if _is_liq(G, c):
                    cascades.append((c, {c} | {d for d in nx.descendants(G, c) if _is_liq(G, d)}))
    largest = None
    for root, members in cascades:
        key = (sum(units[m] for m in members), len(members))
        if largest is None or key > largest[0]:
            largest = (key, root, members)

    # depth: liquidation nodes on the longest path (each liquidation has one parent, so BFS from roots)
    depth: dict[Any, int] = {}
    longest = 0
    for n in nx.topological_sort(G):
        if _is_liq(G, n):
            preds = [p for p in G.predecessors(n) if _is_liq(G, p)]
            depth[n] = 1 + max((depth[p] for p in preds), default=0)
            longest = max(longest, depth[n])

    by_root: dict[str, int] = {"shock": 0, "whale": 0, "market": 0}
    for u, v in G.edges:
        typ = G.nodes[u].get("type")
        if typ in by_root and _is_liq(G, v):
            by_root[typ] += units[v]

    edges = sum(len(liq_children[n]) for n in parents)
    return {
        "liquidations": len(liq_nodes),
        "notional": total / USDC,
        "cascades": len(cascades),
        "largest_cascade_events": len(largest[2]) if largest else 0,
        "largest_cascade_notional": largest[0][0] / USDC if largest else 0.0,
        "largest_cascade_root": str(largest[1]) if largest else None,
        "longest_chain": longest,
        "mean_branching": (edges / len(parents)) if parents else None,
        "liq_edges": edges,
        "triggered_notional": triggered / USDC,
        "parent_notional": parent_units / USDC,
        "R": (triggered / parent_units) if parent_units > 0 else None,
        "R_all": (triggered / total) if total > 0 else None,
        "notional_from_shocks": by_root["shock"] / USDC,
        "notional_from_whales": by_root["whale"] / USDC,
        "notional_from_market": by_root["market"] / USDC,
    }


__all__ = ["cascade_graph", "cascade_metrics", "normalize_shocks"]
