"""Analysis of finished runs (per-agent outcomes here; depth, cascades and stylized facts to come)."""

from abm.analysis.agents import agent_report

__all__ = ["agent_report"]

from abm.analysis.cascade import cascade_graph, cascade_metrics
from abm.analysis.depth import depth_metrics
from abm.analysis.stylized import stylized_facts
from abm.analysis.summary import config_shocks, market_multipliers, run_summary

__all__ += ["cascade_graph", "cascade_metrics", "depth_metrics", "stylized_facts", "run_summary",
            "market_multipliers", "config_shocks"]
