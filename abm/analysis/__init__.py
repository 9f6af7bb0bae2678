"""Analysis of finished runs (per-agent outcomes here; depth, cascades and stylized facts to come)."""

from abm.analysis.agents import agent_report

__all__ = ["agent_report"]
