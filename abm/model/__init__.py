"""The Mesa model: wires the exchange, price feeds, agents, time and data collection together."""

from abm.model.config import AgentGroup, MarketConfig, ModelConfig, Shock
from abm.model.model import MarketModel, role_of, stream
from abm.model.reporters import Metric, register_metric, registered_metrics, unregister_metric

__all__ = ["MarketModel", "ModelConfig", "MarketConfig", "AgentGroup", "Shock", "stream", "role_of", "Metric",
           "register_metric", "unregister_metric", "registered_metrics"]
