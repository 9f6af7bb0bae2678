"""A sweep folder: ``manifest.json`` (which sweep this is) and ``rows/`` (one file per finished run).

The manifest names the scenario (name and content hash) and the base seed: together they say what a
row's run id means, so a folder holds one sweep and a different one is refused with what differs.
The same scenario and base seed with more seeds, grid values or draws *extends* the sweep (a run's
id and seed do not depend on the plan around it, so the finished runs are exactly the ones the new
plan would make): each distinct plan is appended to ``plans``. A calibration's runs folder says
``common_seeds`` (replicate r runs the same seed whatever its parameters), which a plain sweep's rule
contradicts, so either is refused in the other's folder. Every check runs before anything is created;
the manifest is replaced atomically (a temporary file, fsync, rename).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Optional

from abm.errors import InvalidInput
from abm.sweeps.plan import SweepPlan

FORMAT = "abm-sweep/1"
MANIFEST = "manifest.json"
ROWS = "rows"


def _abm_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("abm")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "unknown"


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def check_writable(out: Path) -> None:
    """``out`` is (or can become) a folder we can write, and its rows/ a folder: checked before creating anything."""
    for p in (out, out / ROWS):
        if p.exists() and not p.is_dir():
            raise InvalidInput("--out", str(out), f"must be a folder; {p} is a file")
    base = _nearest_existing(out)
    if not base.is_dir():
        raise InvalidInput("--out", str(out), f"must be a folder that can be created; {base} is a file")
    if not os.access(base, os.W_OK | os.X_OK):
        raise InvalidInput("--out", str(out), f"must be writable; {base} is not")
    rows = out / ROWS
    if rows.is_dir() and not os.access(rows, os.W_OK | os.X_OK):
        raise InvalidInput("--out", str(out), f"must be writable; {rows} is not")


def read_manifest(out: Path) -> Optional[dict[str, Any]]:
    path = out / MANIFEST
    if not path.exists():
        if (out / ROWS).is_dir() and any((out / ROWS).glob("*.parquet")):
            raise InvalidInput("--out", str(out), "holds sweep rows but no manifest.json (a sweep from before "
                                                  "sweep identities, or not a sweep folder): use another --out")
        return None
    return read_versioned(out, MANIFEST, FORMAT)


def read_versioned(out: Path, name: str, fmt: str) -> dict[str, Any]:
    """``out/name``, a JSON object whose ``format`` is ``fmt`` (a folder's manifest): anything else is refused by name."""
    try:
        data = json.loads((out / name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInput("--out", str(out), f"must hold a readable {name} ({e})") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise InvalidInput("--out", str(out), f"{name} must be of format {fmt!r} (found {found!r})")
    return data


def _differences(there: Mapping[str, Any], here: SweepPlan, row_metrics: Optional[dict[str, Any]]) -> list[str]:
    diffs = []
    if there.get("row_metrics") != row_metrics:  # rows of one folder carry the same columns
        diffs.append(f"row metrics: {there.get('row_metrics')} there, {row_metrics} here")
    if there.get("scenario_hash") != here.scenario_hash:
        what = "content changed" if there.get("scenario") == here.scenario else "another scenario"
        diffs.append(f"scenario ({what}): {there.get('scenario')!r} sha256 {str(there.get('scenario_hash'))[:12]} "
                     f"there, {here.scenario!r} sha256 {here.scenario_hash[:12]} here")
    if there.get("base_seed") != here.base_seed:
        diffs.append(f"base seed: {there.get('base_seed')} there, {here.base_seed} here")
    if bool(there.get("common_seeds", False)) != here.common_seeds:  # the same run id would mean another seed
        rule = {True: "common seeds (a calibration's)", False: "seeds derived from each run's parameters"}
        diffs.append(f"seeds: {rule[bool(there.get('common_seeds', False))]} there, {rule[here.common_seeds]} here")
    return diffs


def _plain(v: Any) -> Any:
    return v if isinstance(v, (int, float, str, bool)) or v is None else str(v)


def plan_record(grid: Mapping[str, list[Any]], random: Mapping[str, tuple[float, float]], samples: int,
                seeds: int) -> dict[str, Any]:
    return {"grid": {k: [_plain(v) for v in vs] for k, vs in grid.items()},
            "random": {k: [float(lo), float(hi)] for k, (lo, hi) in random.items()},
            "samples": samples, "seeds": seeds}


def check_folder(out: Path, sweep: SweepPlan, row_metrics: Optional[dict[str, Any]] = None) -> Optional[dict[str, Any]]:
    """The folder's manifest if it holds this sweep (None if it holds none); another sweep is refused.

    ``row_metrics`` (``RowMetrics.record()``, None for none) is part of what the folder holds."""
    check_writable(out)
    there = read_manifest(out)
    if there is not None:
        diffs = _differences(there, sweep, row_metrics)
        if diffs:
            raise InvalidInput("--out", str(out), "holds another sweep, which differs in " + "; ".join(diffs)
                               + ": use another --out (the same scenario and base seed resume or extend it)")
    return there


def write_manifest(out: Path, there: Optional[dict[str, Any]], sweep: SweepPlan, record: dict[str, Any],
                   source: str, row_metrics: Optional[dict[str, Any]] = None) -> None:
    """Create the folder and record this sweep (and this plan, if new) in its manifest, atomically."""
    try:
        (out / ROWS).mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InvalidInput("--out", str(out), f"must be a folder that can be created ({e})") from None
    data = there or {"format": FORMAT, "scenario": sweep.scenario, "scenario_source": source,
                     "scenario_hash": sweep.scenario_hash, "base_seed": sweep.base_seed, "abm_version": _abm_version(),
                     **({"row_metrics": row_metrics} if row_metrics is not None else {}),
                     **({"common_seeds": True} if sweep.common_seeds else {}), "plans": []}
    record = json.loads(json.dumps(record))  # as it reads back, so a repeated plan compares equal
    if record in data["plans"]:
        return
    data = {**data, "plans": [*data["plans"], record]}
    tmp = out / f".{MANIFEST}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, out / MANIFEST)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InvalidInput("--out", str(out), f"must be writable ({e})") from None
