"""How one agent fared: fills, slippage, time to fill (or to hedge), survival.

Meant for users' own strategies: give the agent ``journal: true`` and every order it sends is
recorded with the mid it saw when it decided, so slippage is measured against what the strategy
knew, including its latency. Time to fill runs from the decision to the order's last fill (a taker
fills on arrival; a resting order when its last lot trades), so for a hedge it is the time to hedge.
Averages are exactly rounded sums (``math.fsum``) in journal order, the same in every build.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from abm.errors import InvalidInput
from abm.units import USDC

if TYPE_CHECKING:
    from abm.agents.base import Trader
    from abm.model.model import MarketModel



def agent_report(model: MarketModel, agent: Trader) -> dict[str, Any]:
    """Fills, slippage (bps, positive = cost), time to fill (s), liquidations and survival of one agent."""
    if agent.journal is None:
        raise InvalidInput(f"agents.{agent.kind}.journal", False, "must be true to measure an agent's orders")
    if not getattr(agent.ctx, "margined", True):
        raise InvalidInput(f"agents.{agent.kind}.venue", getattr(agent.ctx, "venue", None),
                           "agent_report measures agents on the perp venue (spot venues' fills are not on its tape yet)")
    ex = model.exchange
    tape = model.tape
    maker = np.frombuffer(tape.column("maker_account"), dtype=np.int64) if len(tape) else np.zeros(0, np.int64)
    taker = np.frombuffer(tape.column("taker_account"), dtype=np.int64) if len(tape) else np.zeros(0, np.int64)
    mine = (maker == agent.account) | (taker == agent.account)
    qty = np.frombuffer(tape.column("qty"), dtype=np.int64)[mine] if len(tape) else np.zeros(0, np.int64)
    price = np.frombuffer(tape.column("price"), dtype=np.int64)[mine] if len(tape) else np.zeros(0, np.int64)
    times = np.frombuffer(tape.column("time_us"), dtype=np.int64) if len(tape) else np.zeros(0, np.int64)
    maker_oid = np.frombuffer(tape.column("maker_oid"), dtype=np.int64) if len(tape) else np.zeros(0, np.int64)
    last_maker_fill: dict[int, int] = {}
    for oid, t in zip(maker_oid[maker == agent.account].tolist(), times[maker == agent.account].tolist()):
        last_maker_fill[oid] = t
    slips: list[float] = []
    weights: list[int] = []
    to_fill: list[float] = []
    orders = rejected = 0
    for decided, arrived, _sym, side, _q, mid, oid, filled, notional, resting, rej in agent.journal:
        orders += 1
        if rej:
            rejected += 1
            continue
        if filled and mid:
            avg = notional / filled
            sign = 1 if side == 0 else -1
            slips.append(sign * (avg - mid) / mid * 1e4)  # mid and avg in ticks
            weights.append(filled)
        done = last_maker_fill.get(oid)
        if filled and not resting and done is None:
            to_fill.append((arrived - decided) / 1e6)
        elif done is not None and oid not in ex.accounts[agent.account].open_orders:
            to_fill.append((done - decided) / 1e6)
    liq = ex.liquidations
    accounts = np.frombuffer(liq.column("account"), dtype=np.int64) if len(liq) else np.zeros(0, np.int64)
    liq_times = np.frombuffer(liq.column("time_us"), dtype=np.int64)[accounts == agent.account] if len(liq) else []
    spec = ex.market(agent.symbol).spec
    return {
        "orders": orders,
        "rejected": rejected,
        "fills": int(mine.sum()),
        "filled_base": int(qty.sum()) * float(spec.lot_size),
        "vwap": int((price * qty).sum()) / int(qty.sum()) * float(spec.tick_size) if qty.sum() else None,
        "slippage_bps": math.fsum(s * w for s, w in zip(slips, weights)) / sum(weights) if slips else None,
        "time_to_fill_s_mean": math.fsum(to_fill) / len(to_fill) if to_fill else None,
        "time_to_fill_s_max": max(to_fill) if to_fill else None,
        "liquidation_steps": int(len(liq_times)),
        "first_liquidation_s": float(min(liq_times)) / 1e6 if len(liq_times) else None,
        "survived": len(liq_times) == 0,
        "final_equity_usdc": agent.equity() / USDC,
    }
