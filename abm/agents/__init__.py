"""Agent kinds. ``AGENT_KINDS`` maps a kind name to its class; a scenario may also name its own
class as ``"module:Class"`` (a subclass of ``Trader``)."""

from __future__ import annotations

import ast
import importlib
import re
import sys

from abm.agents.base import Latency, Trader, TraderParams, Wake
from abm.agents.context import AgentContext
from abm.errors import InvalidInput

_BUILTIN = {
    "noise": "abm.agents.noise:NoiseTrader",
    "market_maker": "abm.agents.market_maker:MarketMaker",
    "leveraged": "abm.agents.leveraged:LeveragedTrader",
    "whale": "abm.agents.whale:Whale",
    "arbitrageur": "abm.agents.arbitrageur:Arbitrageur",
    "basket": "abm.agents.basket:BasketTrader",
}


# ``package.module:Class``: dotted identifiers, a colon, an identifier (no relative or empty parts)
_TARGET = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


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
    module, _, name = target.partition(":")
    if kind not in _BUILTIN and module not in sys.modules:  # an imported module has run already
        _check_source(kind, module, name)
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise InvalidInput("agents.kind", kind, f"could not be imported ({e})") from None
    if not (isinstance(cls, type) and issubclass(cls, Trader)):
        raise InvalidInput("agents.kind", kind, "must name a subclass of abm.agents.Trader")
    return cls


def _check_source(kind: str, module: str, name: str) -> None:
    """Refuse a ``module:Class`` whose module is missing or does not define ``name``, without running it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)  # imports the parent packages of a dotted path, not the module
    except (ImportError, ValueError) as e:
        raise InvalidInput("agents.kind", kind, f"could not be found ({e})") from None
    if spec is None:
        raise InvalidInput("agents.kind", kind, f"could not be found: no module named '{module}'")
    if spec.origin is None or not spec.origin.endswith(".py"):
        return
    try:
        tree = ast.parse(open(spec.origin, encoding="utf-8").read(), spec.origin)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError) as e:
        raise InvalidInput("agents.kind", kind, f"could not be read ({type(e).__name__}: {e})") from None
    names = _top_level_names(tree)
    if name not in names and "*" not in names:  # a star import may define anything: the import decides
        raise InvalidInput("agents.kind", kind, f"must name a class defined in {module} ({spec.origin}); "
                                                f"it defines no '{name}'")


def _top_level_names(tree: ast.Module) -> set[str]:
    """Names a module's top level binds (classes, functions, imports, assignments; one level into if/try)."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, (ast.If, ast.Try)):  # conditional definitions: look one level in
            sub = ast.Module(body=[*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", []),
                                   *[s for h in getattr(node, "handlers", []) for s in h.body]], type_ignores=[])
            names |= _top_level_names(sub)
    return names


BUILTIN_KINDS = tuple(sorted(_BUILTIN))

__all__ = ["Trader", "TraderParams", "Latency", "Wake", "AgentContext", "resolve", "BUILTIN_KINDS"]
