"""What a sweep run *is*: its scenario's content hash, the base seed, its parameters and its replicate.

The scenario's hash lives with the scenarios (``abm.scenarios.identity``: a run folder's provenance
names it too); it is re-exported here, where the sweeps use it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable

from abm.scenarios.identity import FORMAT, canonical, file_sha256, scenario_document, scenario_hash

__all__ = ["FORMAT", "canonical", "file_sha256", "scenario_document", "scenario_hash", "run_id"]


def run_id(scenario_sha: str, base_seed: int, params: Iterable[tuple[str, Any]], replicate: int) -> str:
    """A run's name in its sweep folder: the whole identity, so equal ids mean the same run anywhere."""
    text = json.dumps({"scenario": scenario_sha, "base_seed": base_seed, "params": sorted(params),
                       "replicate": replicate}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
