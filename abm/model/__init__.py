"""The Mesa model: wires the exchange, price feeds, agents, time and data collection together.

Its configuration is the scenario (``Scenario``, the schema of a scenario file): ``MarketModel(scn)``.
"""

from abm.model.model import MarketModel, role_of, stream
from abm.model.reporters import Metric, register_metric, registered_metrics, unregister_metric
from abm.model.scenario import InvalidScenario, MarketSection, Scenario, ShockSection, parse_scenario

__all__ = ["MarketModel", "Scenario", "MarketSection", "ShockSection", "InvalidScenario", "parse_scenario", "stream",
           "role_of", "Metric", "register_metric", "unregister_metric", "registered_metrics"]
