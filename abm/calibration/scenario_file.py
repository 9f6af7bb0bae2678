"""The fitted scenario as a TOML file ``abm run`` accepts: the original file with the fitted values set.

Why the original and not the resolved scenario: a user reads and edits their own file, with its
comments' structure and without every default spelled out. Paths the original gave relative to its
folder (a replay file, a venue profile beside it) are made absolute, since the fitted file lives in the
calibration folder. The written file is loaded back and must have the fitted scenario's content hash;
if it does not (or the scenario came from a script, which has no TOML), the resolved scenario is
written instead, which repeats the fit's runs exactly either way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional

from abm.errors import InvalidInput


def _original(scenario: str | Path) -> Optional[dict[str, Any]]:
    from abm.scenarios.catalogue import scenario_path, toml_loads

    try:
        path = scenario_path(scenario)
    except InvalidInput:  # a scenario script: no TOML of its own
        return None
    return toml_loads(path.read_text(encoding="utf-8"), str(path))


def _with_absolute_paths(raw: dict[str, Any], fitted_scn: Any) -> dict[str, Any]:
    venue = raw.get("venue")
    if isinstance(venue, dict) and isinstance(venue.get("profile"), str) and venue["profile"] != fitted_scn.venue.profile:
        venue["profile"] = fitted_scn.venue.profile  # made absolute when loaded (a file beside the scenario)
    for i, m in enumerate(raw.get("markets") or []):
        if isinstance(m, dict) and m.get("replay_file") is not None:
            m["replay_file"] = fitted_scn.markets[i].replay_file  # stored absolute when loaded
    return raw


def write_fitted(scenario: str | Path, base: Any, fitted: Mapping[str, Any], path: Path, objective: float) -> Path:
    from abm.config import apply_overrides, dump_toml
    from abm.model.scenario import InvalidScenario, Scenario
    from abm.scenarios import load_scenario, to_toml, with_overrides
    from abm.sweeps.identity import scenario_hash

    fitted_scn = with_overrides(base, dict(fitted))
    want = scenario_hash(fitted_scn)
    values = ", ".join(f"{k} = {json.dumps(v)}" for k, v in fitted.items())
    head = (f"# Calibrated by `abm calibrate` from {scenario}: {values} (objective {objective:.6g}).\n"
            "# The scenario with the fitted values: `abm run` of this file runs the fitted point.\n")
    raw = _original(scenario)
    if raw is not None:
        raw = _with_absolute_paths(apply_overrides(raw, dict(fitted), str(scenario), root=Scenario,
                                                   error=InvalidScenario), fitted_scn)
        path.write_text(head + dump_toml(raw), encoding="utf-8")
        try:
            if scenario_hash(load_scenario(path)) == want:
                return path
        except InvalidInput:
            pass
    path.write_text(head + "# (the resolved scenario: every field spelled out)\n" + to_toml(fitted_scn), encoding="utf-8")
    return path
