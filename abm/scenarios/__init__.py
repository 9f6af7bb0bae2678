"""Scenarios: validated TOML files (the catalogue in the project's scenarios/ folder) and running them."""

from abm.model.scenario import InvalidScenario, Scenario, parse_scenario
from abm.scenarios.catalogue import catalogue, load_scenario, parse_set, to_toml, with_overrides
from abm.scenarios.runner import run
from abm.scenarios.scripts import scripts

__all__ = ["run", "load_scenario", "with_overrides", "catalogue", "parse_set", "to_toml", "Scenario", "InvalidScenario", "parse_scenario",
           "scripts"]
