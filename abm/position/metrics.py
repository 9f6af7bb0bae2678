"""The sweep-row metrics of a position run: the position's outcome, from its agent and the accounts table.

Called in each sweep worker (``abm.sweeps.metrics``) on the finished run: money comes from the exchange's
accounts table (the position's equity, PnL, fees and funding, its liquidation), exits from the agent's own
records (what set them off, the fills the book gave), so each column has one source.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from abm.model.model import MarketModel
    from abm.results import RunResult

GROUP = "position"  # the group abm.position.risk adds to the scenario
PATH_POINTS = 50  # the equity path kept per run: its value at this many evenly spaced times


def position_metrics(result: RunResult, model: MarketModel) -> dict[str, Any]:
    from abm.agents.position import PositionHolder, fills_by_order

    agent = model.agents_by_group[GROUP][0]
    assert isinstance(agent, PositionHolder)
    acc = result.accounts
    row = acc[(acc["group"] == GROUP)].iloc[0]
    deposit = float(row["deposit_usdc"])
    equity = float(row["equity_usdc"])
    out: dict[str, Any] = {
        "liquidated": bool(row["liquidated"]),
        "first_liquidation_s": (row["first_liquidation"].total_seconds() if bool(row["liquidated"]) else None),
        "liquidated_notional_usdc": float(row["liquidated_notional_usdc"]),
        "deposit_usdc": deposit,
        "equity_usdc": equity,
        "loss_usdc": deposit - equity,  # positive = lost
        "fees_usdc": float(row["fees_usdc"]),
        "funding_usdc": float(row["funding_usdc"]),
        **agent.outcome(fills_by_order(model.tape, agent.account), bool(row["liquidated"]), _spot_fills(model, agent)),
    }
    out.update(_path(agent.path, model.config.run.duration_s))
    return out


def _spot_fills(model: MarketModel, agent: Any) -> Optional[dict[int, Any]]:
    """The agent's spot account's fills (where a spot hedge trades), or None when it has none."""
    from abm.agents.leashed import fills_by_order

    spot = getattr(agent, "spot", None)
    if spot is None:
        return None
    return fills_by_order(model.spot_tape, spot.account, list(model.spot_venues).index(spot.venue))


def _path(path: list[tuple[int, int]], duration_s: float) -> dict[str, float]:
    """The equity (USDC) at PATH_POINTS + 1 evenly spaced times: the last sample at or before each."""
    from abm.units import USDC

    out: dict[str, float] = {}
    j = 0
    for k in range(PATH_POINTS + 1):
        t_us = round(duration_s * 1_000_000 * k / PATH_POINTS)
        while j + 1 < len(path) and path[j + 1][0] <= t_us:
            j += 1
        out[f"equity.{k}"] = path[j][1] / USDC if path else float("nan")
    return out
