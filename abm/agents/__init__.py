"""Agent kinds. ``AGENT_KINDS`` maps a kind name to its class; a scenario may also name its own
class as ``"module:Class"`` (a subclass of ``Trader``)."""

from __future__ import annotations

import importlib

from abm.agents.base import Trader, TraderParams, Wake
from abm.agents.context import AgentContext
from abm.agents.latency import LATENCY_MODELS, Latency, LatencyModel
from abm.agents.params import InvalidParams, number
from abm.errors import InvalidInput
from abm.registry import TARGET as _TARGET
from abm.registry import import_target, subclass_of

_BUILTIN = {
    "noise": "abm.agents.noise:NoiseTrader",
    "market_maker": "abm.agents.market_maker:MarketMaker",
    "leveraged": "abm.agents.leveraged:LeveragedTrader",
    "whale": "abm.agents.whale:Whale",
    "arbitrageur": "abm.agents.arbitrageur:Arbitrageur",
    "basket": "abm.agents.basket:BasketTrader",
    "value": "abm.agents.value:ValueTrader",
    "spot_arbitrageur": "abm.agents.spot_arbitrageur:SpotArbitrageur",
    "position": "abm.agents.position:PositionHolder",
}


def resolve(kind: str) -> type[Trader]:
    """The class for a built-in kind name or an explicit ``module:Class`` path.

    Naming a module runs it (that is what importing does), so before importing we check, from the
    module's source alone, that it defines the name: ``kind = "this:X"`` is refused without running
    ``this``. A module whose source cannot be read (a compiled one) is imported to look.
    """
    target = _BUILTIN.get(kind, kind) if isinstance(kind, str) else kind
    if not isinstance(target, str) or not _TARGET.fullmatch(target):
        raise InvalidInput("agents.kind", kind, f"must be one of {sorted(_BUILTIN)} or 'module:Class' (a module path "
                                                "of identifiers, a colon, a class name)")
    if kind in _BUILTIN:  # ours: no need to read its source first
        module, _, name = target.partition(":")
        return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]
    cls = import_target("agents.kind", target, "a subclass of abm.agents.Trader", subclass_of(Trader))
    return cls  # type: ignore[no-any-return]


BUILTIN_KINDS = tuple(sorted(_BUILTIN))

__all__ = ["Trader", "TraderParams", "InvalidParams", "number", "Latency", "LatencyModel", "LATENCY_MODELS", "Wake",
           "AgentContext", "resolve", "BUILTIN_KINDS"]
