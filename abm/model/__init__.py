"""The Mesa model: wires the exchange, price feeds, agents, time and data collection together."""

from abm.model.config import AgentGroup, MarketConfig, ModelConfig, Shock
from abm.model.model import MarketModel, stream

__all__ = ["MarketModel", "ModelConfig", "MarketConfig", "AgentGroup", "Shock", "stream"]
