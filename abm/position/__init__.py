"""Stress-testing a user's own position: one agent placed in a scenario, run over seeds, margin modes side by side."""

from abm.position.risk import PositionRisk, position_risk

__all__ = ["PositionRisk", "position_risk"]
