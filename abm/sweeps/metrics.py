"""Per-run metrics beyond the summary in sweep rows: a user's function and named groups' agent reports.

Why here and not in the summary: what a study measures about its own agent (the position it stress
tests, a strategy's slippage) is the study's, not the simulator's, and it needs the live model, which
exists only inside the worker. So the worker calls the function on the model it just ran and puts
the scalars it returns into the row, and the driver never sees a model.

The function travels as its ``module:function`` name, not as an object, so it reaches a Dask worker on
another machine the same way it reaches a local pool (the module must be importable there). Its name
and the groups are part of the sweep folder's identity: a folder's rows all carry the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Sequence

import numpy as np

from abm.errors import InvalidInput
from abm.registry import Registry

if TYPE_CHECKING:
    from abm.model.model import MarketModel
    from abm.model.scenario import Scenario
    from abm.results import RunResult

METRIC_PREFIX = "metric."
AGENT_PREFIX = "agent."
Scalar = (int, float, str, bool)

# The one way to name a user's function, with the same checks as every "module:Class" in a scenario.
METRIC_FUNCTIONS: Registry[Callable[..., Any]] = Registry("metrics function", "--metrics",
                                                         "a function f(result, model) returning a mapping of names "
                                                         "to numbers, strings or booleans", callable)


@dataclass(frozen=True, slots=True)
class RowMetrics:
    """What a sweep adds to each row: ``function`` (``module:function`` or None) and the groups to report."""

    function: Optional[str] = None
    agents: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.function is not None or bool(self.agents)

    def record(self) -> dict[str, Any]:
        """How the sweep folder's manifest records it (absent when empty, so older folders still match)."""
        return {"function": self.function, "agents": list(self.agents)}


def row_metrics(function: Optional[str], agents: Optional[Sequence[str]], scenario: Scenario) -> RowMetrics:
    """The checked spec: the function resolves here (so a typo fails before any run), each group exists and
    trades on the perp venue (``agent_report`` measures the perp tape)."""
    if function is not None:
        METRIC_FUNCTIONS.resolve(function)
    if agents is None:
        agents = ()
    if isinstance(agents, str) or not all(isinstance(g, str) for g in agents):
        raise InvalidInput("--agent-report", agents, "must be a list of agent group names")
    if len(set(agents)) != len(agents):
        raise InvalidInput("--agent-report", list(agents), "must name each group once")
    for g in agents:
        table = scenario.agents.get(g)
        if table is None:
            raise InvalidInput("--agent-report", g, f"must name an agent group of the scenario: {sorted(scenario.agents)}")
        if table.get("venue") is not None:
            raise InvalidInput("--agent-report", g, f"must name a group on the perp venue (this one trades on spot "
                                                    f"venue {table['venue']!r}, whose fills agent_report does not read)")
    return RowMetrics(function, tuple(agents))


def journal_overrides(spec: RowMetrics) -> dict[str, Any]:
    """The groups reported need their orders journalled (recording changes no decision, only what is kept)."""
    return {f"agents.{g}.journal": True for g in spec.agents}


def metric_columns(spec: RowMetrics, result: RunResult, model: MarketModel) -> dict[str, Any]:
    """The row's extra columns: ``metric.<name>`` from the function, ``agent.<group>.<field>`` (one agent) or
    ``agent.<group>.<i>.<field>`` (several) from ``agent_report``; an unusable value is an error naming it."""
    from abm.analysis import agent_report

    out: dict[str, Any] = {}
    if spec.function is not None:
        values = METRIC_FUNCTIONS.resolve(spec.function)(result, model)
        if not isinstance(values, Mapping):
            raise InvalidInput("--metrics", spec.function, f"must return a mapping of names to scalars (it returned "
                                                           f"{type(values).__name__})")
        for name, v in values.items():
            out[METRIC_PREFIX + name] = _scalar(spec.function, name, v)
    for g in spec.agents:
        group = model.agents_by_group[g]
        for i, agent in enumerate(group):
            head = f"{AGENT_PREFIX}{g}." if len(group) == 1 else f"{AGENT_PREFIX}{g}.{i}."
            out.update({head + k: v for k, v in agent_report(model, agent).items()})
    return out


def _scalar(function: str, name: object, v: object) -> Any:
    """``v`` as a plain Python scalar (a NumPy number is one); anything else is refused by name."""
    if not isinstance(name, str) or not name:
        raise InvalidInput("--metrics", function, f"must return non-empty string names (got {name!r})")
    if isinstance(v, np.generic):
        v = v.item()
    if v is not None and not isinstance(v, Scalar):
        raise InvalidInput("--metrics", function, f"must return scalars: {name!r} is a {type(v).__name__} "
                                                  "(a number, string, boolean or None)")
    return v
