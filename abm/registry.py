"""Named, swappable modelling assumptions: mark formulas, ADL rankings, index and liquidation processes, fee models.

Why one small mechanism: each assumption used to be an ``isinstance`` check or a string switch buried
in the code that uses it, so trying another one meant editing the engine. A ``Registry`` maps a name
(what configs and venue profiles say) to the piece that implements it, and resolves a name once, when
the object that uses it is built: the hot paths call the resolved piece and never look a name up.

A config may also name a piece of its own as ``"module:Class"`` (``"module:function"`` where the
registry holds functions). Naming a module runs it (that is what importing does), so before importing
we check, from the module's source alone, that it defines the name: ``"this:X"`` is refused without
running ``this``. A module whose source cannot be read (a compiled one) is imported to look.
"""

from __future__ import annotations

import ast
import difflib
import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
from typing import Any, Callable, Generic, Iterator, Optional, TypeVar

from abm.errors import InvalidInput

T = TypeVar("T")

IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
# ``package.module:Class``: dotted identifiers, a colon, an identifier (no relative or empty parts)
TARGET = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


class Registry(Generic[T]):
    """Names of one kind of piece, and the ``module:Class`` paths a user may give instead.

    ``field`` is the config field errors name (``"liquidation.adl_ranking"``); ``what`` says what a
    ``module:Class`` must name, and ``accept`` checks it (a subclass of the kind's base class, say).
    """

    def __init__(self, kind: str, field: str, what: str, accept: Optional[Callable[[object], bool]] = None) -> None:
        self.kind = kind
        self.field = field
        self.what = what
        self._accept = accept
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator: ``@REGISTRY.register("name")`` over a class or factory, which it returns unchanged."""
        if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
            raise InvalidInput(f"{self.kind} name", name, "must be an identifier (letters, digits, _)")
        if name in self._entries:
            raise InvalidInput(f"{self.kind} name", name, f"is already registered ({self._entries[name]!r})")

        def add(piece: T) -> T:
            if self._accept is not None and not self._accept(piece):
                raise InvalidInput(f"{self.kind} {name!r}", piece, f"must be {self.what}")
            self._entries[name] = piece
            return piece

        return add

    def names(self) -> tuple[str, ...]:
        """The registered names, sorted (what a config may say besides a ``module:Class`` path)."""
        return tuple(sorted(self._entries))

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def resolve(self, value: object, field: Optional[str] = None) -> T:
        """The piece a registered name or a ``module:Class`` path names; anything else is refused."""
        fld = field or self.field
        if isinstance(value, str) and value in self._entries:
            return self._entries[value]
        names = list(self.names())
        close = difflib.get_close_matches(value, names, n=1, cutoff=0.6) if isinstance(value, str) else []
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        if not isinstance(value, str) or not TARGET.fullmatch(value):
            listed = f"one of {names}{hint} or " if names else ""
            raise InvalidInput(fld, value, f"must be {listed}'module:Class' (a module path of identifiers, a colon, "
                                           "a name)")
        return import_target(fld, value, self.what, self._accept)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self.names())})"


def import_target(field: str, value: str, what: str, accept: Optional[Callable[[object], bool]] = None) -> Any:
    """What a ``module:name`` path names, checked from the source before the module runs; refused by ``field``."""
    module, _, name = value.partition(":")
    if module not in sys.modules:  # an imported module has run already
        check_source(field, value, module, name)
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise InvalidInput(field, value, f"could not be imported ({e})") from None
    if not hasattr(mod, name):  # the same words whether or not something imported the module before
        raise InvalidInput(field, value, f"must name a class defined in {module} ({getattr(mod, '__file__', None)}); "
                                         f"it defines no '{name}'")
    piece = getattr(mod, name)
    if accept is not None and not accept(piece):
        raise InvalidInput(field, value, f"must name {what}")
    return piece


def subclass_of(base: type) -> Callable[[object], bool]:
    """An ``accept`` check: the piece is a class derived from ``base``."""
    return lambda piece: isinstance(piece, type) and issubclass(piece, base)


def check_source(field: str, value: str, module: str, name: str) -> None:
    """Refuse a ``module:Class`` whose module is missing or does not define ``name``, without running it."""
    spec = _find(field, value, module)
    if spec is None and _in_current_folder(module):
        spec = _find(field, value, module)
    if spec is None:
        raise InvalidInput(field, value, f"could not be found: no module named '{module}' on the import path nor in "
                                         f"the current folder ({os.getcwd()}); run from the folder that holds "
                                         f"{module.split('.')[0]}.py (or its package), or add that folder to PYTHONPATH")
    if spec.origin is None or not spec.origin.endswith(".py"):
        return
    try:
        with open(spec.origin, encoding="utf-8") as f:
            tree = ast.parse(f.read(), spec.origin)
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError) as e:
        raise InvalidInput(field, value, f"could not be read ({type(e).__name__}: {e})") from None
    names = _top_level_names(tree)
    if name not in names and "*" not in names:  # a star import may define anything: the import decides
        raise InvalidInput(field, value, f"must name a class defined in {module} ({spec.origin}); "
                                         f"it defines no '{name}'")


def _find(field: str, value: str, module: str) -> Optional[importlib.machinery.ModuleSpec]:
    try:
        return importlib.util.find_spec(module)  # imports the parent packages of a dotted path, not the module
    except ModuleNotFoundError:
        return None  # a parent package is missing: perhaps in the current folder
    except (ImportError, ValueError) as e:
        raise InvalidInput(field, value, f"could not be found ({e})") from None


def _in_current_folder(module: str) -> bool:
    """Put the current folder on the import path when it holds ``module``'s top package and nothing else does.

    Why: ``python script.py`` and ``python -m`` put the working folder on the path, but the ``abm``
    command and the sweep's worker processes do not, so a user's ``my_agent.py`` beside their scenario
    was not found without PYTHONPATH. Only a module found nowhere else is taken from there, so the
    folder never shadows an installed one. Workers resolve names again in their own process, and a
    local pool or a local Dask cluster starts them in the same folder.
    """
    top = module.split(".")[0]
    here = os.getcwd()
    if here in sys.path or not (os.path.isfile(os.path.join(here, top + ".py"))
                                or os.path.isdir(os.path.join(here, top))):
        return False
    sys.path.append(here)
    importlib.invalidate_caches()
    return True


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


__all__ = ["Registry", "subclass_of", "check_source", "IDENTIFIER", "TARGET"]
