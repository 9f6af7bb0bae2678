"""The configuration machinery every configuration shares (venue profiles, scenarios): problems and the
one error type, exact numbers, dotted paths and overrides with closest-name hints, TOML writing."""

from abm.config.numbers import dump_number, exact, integer, number
from abm.config.paths import apply_overrides, format_path, parse_path, problem_of
from abm.config.problems import MAX_SHOWN, MISSING, InvalidConfig, Problem, show
from abm.config.toml import dump_toml

__all__ = ["MAX_SHOWN", "MISSING", "InvalidConfig", "Problem", "show", "exact", "dump_number", "number", "integer",
           "apply_overrides", "format_path", "parse_path", "problem_of", "dump_toml"]
