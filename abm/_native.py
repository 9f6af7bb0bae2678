"""The compiled hot modules (setup.py): a switch back to their Python sources, and a guard against stale builds.

The build compiles some modules with mypyc into extension modules next to their ``.py`` sources;
Python then imports the compiled one. Two things follow, handled here at ``import abm``:

- ``ABM_PURE_PYTHON=1`` in the environment imports every ``abm`` module from its ``.py`` source
  even when a compiled one exists: for a debugger, for profiling the Python code, and for the test
  that compiled and pure Python give byte-identical runs.
- A source edited after it was compiled would silently not run (the stale extension wins). That is
  refused with an error that says how to rebuild, rather than producing results from old code.
"""

from __future__ import annotations

import importlib.machinery
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

_PACKAGE = Path(__file__).resolve().parent
_SLACK_S = 2.0  # an install writes a module's files within milliseconds; an edit comes later


def pure_python_requested() -> bool:
    return os.environ.get("ABM_PURE_PYTHON", "") not in ("", "0")


class _SourcesOnly:
    """A meta-path finder that resolves ``abm.*`` to ``.py`` files only (never to extension modules)."""

    @staticmethod
    def find_spec(name: str, path: Optional[Sequence[str]], target: Any = None) -> Any:
        if not name.startswith("abm.") or not path:
            return None
        for entry in path:
            spec = importlib.machinery.FileFinder(
                entry, (importlib.machinery.SourceFileLoader, importlib.machinery.SOURCE_SUFFIXES)).find_spec(name, target)
            if spec is not None:
                return spec
        return None


def compiled_modules() -> list[str]:
    """Dotted names of the ``abm`` modules imported from extension modules (empty when running pure Python)."""
    suffixes = tuple(importlib.machinery.EXTENSION_SUFFIXES)
    return sorted(name for name, mod in sys.modules.items()
                  if name.startswith("abm.") and "__mypyc" not in name and str(getattr(mod, "__file__", "")).endswith(suffixes))


def _stale_builds() -> list[str]:
    """Sources newer than this interpreter's build of them (builds for other Pythons may sit beside them)."""
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so
    stale = []
    for ext in _PACKAGE.rglob("*" + suffix):
        source = ext.with_name(ext.name[: -len(suffix)] + ".py")
        if source.exists() and source.stat().st_mtime > ext.stat().st_mtime + _SLACK_S:
            stale.append(str(source.relative_to(_PACKAGE.parent)))
        elif not source.exists() and "__mypyc" not in ext.name:  # a module that moved away: its build would still import
            stale.append(f"{source.relative_to(_PACKAGE.parent)} (removed)")
    return stale


def install() -> None:
    if pure_python_requested():
        if not any(isinstance(f, _SourcesOnly) for f in sys.meta_path):
            sys.meta_path.insert(0, _SourcesOnly())
        return
    stale = _stale_builds()
    if stale:
        raise ImportError(
            f"{', '.join(stale)} changed after it was compiled, so the compiled copy would run old code. "
            "Rebuild with `make venv` (or `pip install -e .`), or set ABM_PURE_PYTHON=1 to run the Python sources.")
