"""What a scenario *is*: its content hash, the identity of a sweep's runs and of a run folder (provenance.json).

The hash is sha256 over canonical JSON (the standard library's, key order as the schema defines it)
of the resolved scenario with the resolved venue profile in place of the venue's name, so it is the
same in any process, Python version or machine, and it changes exactly when something a run reads
changes. Left out: the free-text ``description`` and the file's ``run.seed`` (each run's seed
replaces it), since neither reaches a sweep's runs. A replay market's price file enters by the
sha256 of its bytes, not its path, so a checkout moved to another folder or machine keeps its hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from abm.model.scenario import Scenario, scenario_venue

FORMAT = "abm-scenario-identity/1"  # bump when the canonical document changes: old hashes then differ on purpose


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def scenario_document(scn: Scenario) -> dict[str, Any]:
    """The resolved content a sweep's runs read, as plain JSON data."""
    data = scn.model_dump(mode="json")
    data.pop("description", None)
    data["run"].pop("seed", None)
    for m in data["markets"]:
        if m.get("replay_file") is not None:
            m["replay_file"] = {"sha256": file_sha256(m["replay_file"])}
    data["venue"] = scenario_venue(scn).to_dict()
    return data


def canonical(data: Any) -> str:
    return json.dumps(data, ensure_ascii=True, separators=(",", ":"))


def scenario_hash(scn: Scenario) -> str:
    """sha256 (hex) of the scenario's canonical content, venue profile included."""
    return hashlib.sha256(f"{FORMAT}\n{canonical(scenario_document(scn))}".encode()).hexdigest()
