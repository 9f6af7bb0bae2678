"""Scenario scripts: a Python file in scenarios/ that builds a Scenario in code and runs it.

A script defines ``scenario() -> abm.scenarios.Scenario`` (typically a catalogue scenario with changes
computed in code, e.g. a shock schedule from a formula) and ends with::

    if __name__ == "__main__":
        abm.scenarios.script_main(scenario)

so ``python scenarios/NAME.py [--set ...] [--seed N] [--out DIR] [--no-progress]`` runs it with the
command line's options, progress bar, outputs and summary, and ``abm run scenarios/NAME.py`` does the
same. Running a script runs its code: only files the user names (or the project's own scenarios/
folder) are ever imported.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from abm.errors import InvalidInput
from abm.scenarios.schema import Scenario, parse_scenario


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
    return _call_scenario(getattr(module, "scenario", None), str(p))


def _call_scenario(fn: Any, where: str) -> Scenario:
    if not callable(fn):
        raise InvalidInput("scenario()", where, "the script must define a function scenario() returning an "
                                                 "abm.scenarios.Scenario")
    scn = fn()
    if not isinstance(scn, Scenario):
        raise InvalidInput("scenario()", type(scn).__name__, f"must return an abm.scenarios.Scenario (in {where})")
    # model_copy(update=...) skips validation: check the result exactly like a scenario file
    return parse_scenario(scn.model_dump(mode="json"), where)


def script_main(scenario: Callable[[], Scenario], argv: Optional[Sequence[str]] = None) -> None:
    """The ``if __name__ == "__main__"`` entry of a scenario script: ``abm run``'s options and output."""
    import click

    from abm.cli import run_options, run_and_report

    @click.command(name=Path(sys.argv[0]).name, help=(scenario.__doc__ or "Run this scenario script."))
    @run_options
    def cmd(sets: tuple[str, ...], seed: Optional[int], out: Optional[Path], no_progress: bool) -> None:
        run_and_report(_call_scenario(scenario, Path(sys.argv[0]).name), sets, seed, out, no_progress)

    from abm.errors import AbmError

    try:
        cmd.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except click.exceptions.Exit as e:  # --help
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except AbmError as e:
        click.echo(f"{Path(sys.argv[0]).name}: error: {e}", err=True)
        sys.exit(2)


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
