"""Finding, loading and overriding scenarios (the scenario is the model's configuration: ``MarketModel(scn)``).

A scenario is named by its catalogue name (a TOML file in the project's ``scenarios/`` folder) or by a
path. ``--set path=value`` overrides any field by dotted path (``agents.whale.size=500``,
``markets[0].sigma=0.8``, ``run.seed=3``); values are read as TOML (``5``, ``0.5``, ``true``,
``"text"``) and fall back to a plain string.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import Any, Mapping, Optional

from abm.config import apply_overrides
from abm.errors import InvalidInput
from abm.model.scenario import InvalidScenario, Scenario, parse_scenario, refuse_drawn_overrides


def _scenario_dir() -> Path:
    """The checkout's scenarios/ folder when running from one, else the copy an install puts in <prefix>/share."""
    checkout = Path(__file__).resolve().parent.parent.parent / "scenarios"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "abm" / "scenarios"


SCENARIO_DIR = _scenario_dir()


def catalogue() -> dict[str, Path]:
    """Catalogue name -> file, from the project's scenarios/ folder."""
    if not SCENARIO_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(SCENARIO_DIR.glob("*.toml"))}


def scenario_path(name: str | Path) -> Path:
    p = Path(name)
    if p.suffix == ".toml" and p.is_file():
        return p
    if p.suffix in (".toml", ".py") or len(p.parts) > 1:
        raise InvalidInput("scenario", str(name), "file does not exist" if not p.exists() else
                           "must be a .toml scenario file or a .py scenario script")
    cat = catalogue()
    if str(name) in cat:
        return cat[str(name)]
    import difflib

    close = difflib.get_close_matches(str(name), list(cat), n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"must be one of {sorted(cat)} or a .toml file"
    raise InvalidInput("scenario", str(name), hint)


MAX_TOML_DEPTH = 20  # tables and lists inside each other; deeper is never a scenario (and overflows the parser)


def toml_loads(text: str, source: str) -> dict[str, Any]:
    """TOML text as data, or InvalidInput naming ``source``: invalid, or nested deeper than MAX_TOML_DEPTH."""
    field = "--set" if source == "--set" else "scenario"
    try:
        data = tomllib.loads(text)
        depth = _depth(data)
    except tomllib.TOMLDecodeError as e:
        raise InvalidInput(field, source, f"is not valid TOML ({e})") from None
    except RecursionError:
        raise InvalidInput(field, source, f"nests tables and lists too deep; at most {MAX_TOML_DEPTH}") from None
    if depth > MAX_TOML_DEPTH:
        raise InvalidInput(field, source, f"nests tables and lists {depth} deep; at most {MAX_TOML_DEPTH}")
    return data


def _depth(v: Any) -> int:
    if isinstance(v, dict):
        return 1 + max((_depth(x) for x in v.values()), default=0)
    if isinstance(v, list):
        return 1 + max((_depth(x) for x in v), default=0)
    return 0


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}`` with TOML values."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise InvalidInput("--set", item, "must look like path=value, e.g. agents.whale.size=500")
        path, _, text = item.partition("=")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        except RecursionError:
            value = None
        if value is None or _depth(value) > MAX_TOML_DEPTH:
            raise InvalidInput("--set", item if len(item) <= 80 else item[:77] + "...",
                               f"nests tables and lists deeper than {MAX_TOML_DEPTH}")
        out[path.strip()] = value
    return out


def load_scenario(name: str | Path, overrides: Optional[Mapping[str, Any]] = None, seed: Optional[int] = None) -> Scenario:
    """A catalogue scenario, a scenario file (.toml) or a scenario script (.py, or a script's name in scenarios/).

    Overrides and the seed apply the same way to all three, validated like a scenario file.
    """
    from abm.scenarios.scripts import scenario_from_script, scripts

    if str(name).endswith(".py") or (isinstance(name, str) and name in scripts() and name not in catalogue()):
        path_py = Path(name) if str(name).endswith(".py") else scripts()[str(name)]
        return with_overrides(scenario_from_script(path_py), overrides, seed)
    path = scenario_path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidInput("scenario", str(path), f"must be a readable UTF-8 file ({type(e).__name__})") from None
    raw = toml_loads(text, str(path))
    overrides = dict(overrides or {})
    if seed is not None:
        overrides["run.seed"] = seed
    if overrides:
        refuse_drawn_overrides(raw, overrides, str(path))
        raw = apply_overrides(raw, overrides, str(path), root=Scenario, error=InvalidScenario)
    return parse_scenario(raw, str(path), base_dir=path.resolve().parent)


def with_overrides(scn: Scenario, overrides: Optional[Mapping[str, Any]] = None, seed: Optional[int] = None) -> Scenario:
    """``scn`` with ``--set``-style overrides and a seed applied, validated again as a whole."""
    if not overrides and seed is None:
        return scn
    ov = dict(overrides or {})
    if seed is not None:
        ov["run.seed"] = seed
    raw = scn.model_dump(mode="json")
    refuse_drawn_overrides(raw, ov, scn.name)
    raw = apply_overrides(raw, ov, scn.name, root=Scenario, error=InvalidScenario)
    return parse_scenario(raw, scn.name)


def to_toml(scn: Scenario) -> str:
    """The resolved scenario as TOML: running this file again repeats the run exactly."""
    from abm.config import dump_toml

    return dump_toml(scn.model_dump(mode="json"))
