"""A calibration folder: what it holds and the rules for writing into one again.

- ``calibration.json``: which calibration this is (scenario, hash, seeds, the targets as checked), its
  status (``running`` until it finishes) and, when done, the fitted values;
- ``runs/``: a sweep folder (``abm.sweeps.folder``: manifest.json with ``common_seeds``, rows/ one
  parquet per run) holding every run of every evaluation, so ``abm sweep-report`` and ``read_rows``
  read it as any sweep;
- ``evaluations/<id>.json``: each evaluation's parameters, seeds, run ids, per-seed moment columns,
  errors and objective, keyed by ``objective.evaluation_id``;
- the outputs: ``fitted.toml``, ``fit.parquet``/``fit.csv``, ``moments.parquet``/``moments.csv`` and
  ``calibration.png``.

A folder holding a calibration is refused without ``resume`` (a second fit would silently reuse the
first one's evaluations); with it, the recorded evaluations are reused. Every file is written under
a temporary name and renamed, so a killed calibration leaves complete records or none.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Optional

from abm.errors import InvalidInput
from abm.sweeps.folder import check_writable, read_versioned

FORMAT = "abm-calibrate/1"
MANIFEST = "calibration.json"
RUNS = "runs"
EVALUATIONS = "evaluations"


def check_out(out: Path, resume: bool) -> Optional[dict[str, Any]]:
    """The folder's calibration record if it holds one (and ``resume`` is set); refused otherwise. Nothing is written."""
    check_writable(out)
    check_writable(out / RUNS)
    path = out / MANIFEST
    if not path.exists():
        if out.is_dir() and any(out.iterdir()):
            raise InvalidInput("--out", str(out), "must be a new or empty folder, or a calibration folder (it holds "
                                                  f"files but no {MANIFEST})")
        return None
    if not resume:
        raise InvalidInput("--out", str(out), f"holds a calibration already ({MANIFEST}): pass --resume to continue it "
                                              "(its recorded evaluations are reused), or use another --out")
    return read_versioned(out, MANIFEST, FORMAT)


def write_json(path: Path, data: Any) -> None:
    """``data`` as JSON at ``path``, complete or absent (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InvalidInput("--out", str(path.parent), f"must be writable ({e})") from None


def read_evaluation(out: Path, eval_id: str) -> Optional[dict[str, Any]]:
    path = out / EVALUATIONS / f"{eval_id}.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # unreadable: evaluated again (its runs' rows are reused)
    return data if isinstance(data, dict) and data.get("id") == eval_id else None


def write_evaluation(out: Path, record: dict[str, Any]) -> None:
    write_json(out / EVALUATIONS / f"{record['id']}.json", record)
