"""Scenario scripts: a Python file in scenarios/ that builds a Scenario in code and runs it.

A script defines ``scenario() -> abm.scenarios.Scenario`` (typically a catalogue scenario with changes
computed in code, e.g. a shock schedule from a formula) and ends with::

    if __name__ == "__main__":
        from abm.cli import script_main

        script_main(scenario)

so ``python scenarios/NAME.py [--set ...] [--seed N] [--out DIR] [--no-progress]`` runs it with the
command line's options, progress bar, outputs and summary, and ``abm run scenarios/NAME.py`` does the
same. Running a script runs its code: only files the user names (or the project's own scenarios/
folder) are ever imported.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

from abm.errors import InvalidInput
from abm.model.scenario import Scenario, parse_scenario


def is_script(name: str | Path) -> bool:
    return str(name).endswith(".py")


def scenario_from_script(path: str | Path) -> Scenario:
    """Import the script at ``path`` (not as __main__, so its run block stays quiet) and call its scenario()."""
    p = Path(path)
    if not p.is_file():
        raise InvalidInput("scenario", str(p), "file does not exist" if not p.exists() else "must be a scenario script file (.py)")
    module_name = f"abm_scenario_script_{p.stem}"
    spec = importlib.util.spec_from_file_location(module_name, p)
    if spec is None or spec.loader is None:  # pragma: no cover - only for unloadable paths
        raise InvalidInput("scenario", str(p), "must be a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        sys.modules.pop(module_name, None)
    return call_scenario(getattr(module, "scenario", None), str(p))


def call_scenario(fn: Any, where: str) -> Scenario:
    """``fn()``, refused unless it returns a Scenario, validated like a scenario file (``where`` names it)."""
    if not callable(fn):
        raise InvalidInput("scenario()", where, "the script must define a function scenario() returning an "
                                                 "abm.scenarios.Scenario")
    scn = fn()
    if not isinstance(scn, Scenario):
        raise InvalidInput("scenario()", type(scn).__name__, f"must return an abm.scenarios.Scenario (in {where})")
    # model_copy(update=...) skips validation: check the result exactly like a scenario file
    return parse_scenario(scn.model_dump(mode="json"), where)


def scripts() -> dict[str, Path]:
    """Script name -> file, from the project's scenarios/ folder (scenario scripts, not helpers in subfolders)."""
    from abm.scenarios.catalogue import SCENARIO_DIR

    if not SCENARIO_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.py")) if not p.name.startswith("_")}


def script_description(path: Path) -> str:
    """The script's module docstring, read without running it."""
    import ast

    try:
        return ast.get_docstring(ast.parse(path.read_text())) or ""
    except SyntaxError as e:
        return f"(cannot be parsed: {e})"
