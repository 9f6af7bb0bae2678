"""Scenarios: validated TOML files (the catalogue in the project's scenarios/ folder) and running them."""

from abm.scenarios.catalogue import catalogue, load_scenario, model_config, parse_set, to_toml, with_overrides
from abm.scenarios.runner import run
from abm.scenarios.schema import InvalidScenario, Scenario
from abm.scenarios.scripts import scripts

__all__ = ["run", "load_scenario", "with_overrides", "catalogue", "model_config", "parse_set", "to_toml", "Scenario", "InvalidScenario",
           "scripts"]
