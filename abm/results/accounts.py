"""The accounts table: every account of a run, who owned it and how it ended, so users find their own agent.

One row per account of the perp exchange (spot venues' accounts are ``abm.results.spot``'s), in account-id order:
its owner (agent group, kind, index in the group, or the venue's own ``vault`` or ``insurance_fund``), its market and margin
mode there, the money it brought (deposits less withdrawals), its equity at the final marks and so its
profit, realised PnL, fees and funding over all its positions, its open position, whether and when it
was liquidated and for how much, and the actions (orders, cancels, modifies) that reached the exchange
and were refused (on this venue: an agent with a second account on a spot venue, the arbitrageur, has
that venue's in the spot accounts table). Money is in quote currency from exact integers (each value divided once);
``account`` joins this table to the trades (``maker_account``, ``taker_account``) and liquidations. A run with
``[[initial_positions]]`` adds ``opening_base``: the position the opening settlement booked for the account.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from abm.accounts import MODE_NAMES
from abm.results.spot import spot_links
from abm.units import USDC

LIQUIDATED_KINDS = (0, 1, 2)  # book, backstop, adl: the account's own positions were closed


def accounts_table(model: Any) -> pd.DataFrame:
    """Build the table from a finished ``MarketModel``."""
    ex = model.exchange
    owner: dict[int, tuple[str, str, int, Any]] = {}
    for group, agents in model.agents_by_group.items():
        for i, a in enumerate(agents):
            if getattr(a.ctx, "margined", True):  # spot venues' accounts are numbered on their own venue
                owner[a.account] = (group, a.kind, i, a)
    log = ex.liquidations
    kinds = np.frombuffer(log.column("kind"), dtype=np.int64) if len(log) else np.zeros(0, np.int64)
    accts = np.frombuffer(log.column("account"), dtype=np.int64) if len(log) else np.zeros(0, np.int64)
    rows = []
    for aid in sorted(ex.accounts):
        a = ex.accounts[aid]
        house = "vault" if aid == ex.risk.vault else "insurance_fund" if aid == ex.risk.fund_account else ""
        group, kind, index, agent = owner.get(aid, (house, "", -1, None))
        symbol = getattr(agent, "symbol", None) or (ex.markets[0].spec.symbol if ex.markets else "")
        mi = ex.market(symbol).index if symbol else 0
        pos = a.positions.get(mi)
        mult = ex.markets[mi].spec.multiplier if ex.markets else 1
        sel = np.flatnonzero((accts == aid) & np.isin(kinds, LIQUIDATED_KINDS))
        notional = 0
        for j in sel:
            m = ex.markets[int(log.column("market")[j])]
            notional += abs(log.column("size")[j]) * log.column("price")[j] * m.spec.multiplier
        equity = ex.equity(aid)
        rows.append({
            "account": aid, "group": group, "kind": kind, "index": index, "symbol": symbol,
            "margin_mode": MODE_NAMES[pos.mode] if pos is not None else "cross",
            "deposit_usdc": a.external / USDC, "equity_usdc": equity / USDC, "pnl_usdc": (equity - a.external) / USDC,
            "realized_usdc": sum(p.realized for p in a.positions.values()) / USDC,
            "fees_usdc": sum(p.fees for p in a.positions.values()) / USDC,
            "funding_usdc": sum(p.funding for p in a.positions.values()) / USDC,
            "position_base": float(ex.markets[mi].spec.size(pos.size)) if pos is not None and ex.markets else 0.0,
            "entry_price_usdc": (float(ex.markets[mi].spec.price(1)) * pos.cost / (pos.size * mult)
                                 if pos is not None and pos.size else np.nan),
            "liquidated": bool(sel.size),
            "liquidation_events": len({int(log.column("trigger")[j]) for j in sel}),
            "first_liquidation": pd.Timedelta(microseconds=int(log.column("time_us")[sel[0]])) if sel.size else pd.NaT,
            "liquidated_notional_usdc": notional / USDC,
            # the agent's, less what its spot venue's link counted (the whole count for a perp-only agent)
            "actions": agent.actions - sum(c.actions for c in spot_links(agent)) if agent is not None else 0,
            "rejects": agent.rejects - sum(c.rejects for c in spot_links(agent)) if agent is not None else 0,
        })
    df = pd.DataFrame(rows)
    # a timedelta even when nobody was liquidated (a column of NaT alone would be read as datetimes)
    df["first_liquidation"] = pd.Series(list(df["first_liquidation"]), dtype="timedelta64[us]")
    for c in ("group", "kind", "symbol", "margin_mode"):
        df[c] = df[c].astype("category")
    if model.config.initial_positions:
        df["opening_base"] = _opening_base(model, df)
    return df


def _opening_base(model: Any, df: pd.DataFrame) -> Any:
    """Each account's position booked by the opening settlement in its market (base units; the tape's rows with
    order ids 0): a run with ``[[initial_positions]]`` only, so other runs' tables keep their columns."""
    tape = model.tape
    lots: dict[tuple[int, int], int] = {}
    if len(tape):
        col = {c: np.frombuffer(tape.column(c), dtype=np.int64) for c in ("maker_oid", "market", "maker_account",
                                                                        "taker_account", "qty")}
        for j in np.flatnonzero(col["maker_oid"] == 0).tolist():
            mi, q = int(col["market"][j]), int(col["qty"][j])
            long_key, short_key = (int(col["taker_account"][j]), mi), (int(col["maker_account"][j]), mi)
            lots[long_key] = lots.get(long_key, 0) + q
            lots[short_key] = lots.get(short_key, 0) - q
    ex = model.exchange
    out = []
    for aid, symbol in zip(df["account"].tolist(), df["symbol"].astype(str).tolist()):
        m = ex.market(symbol) if symbol else None
        out.append(float(m.spec.size(lots.get((aid, m.index), 0))) if m is not None else 0.0)
    return out
