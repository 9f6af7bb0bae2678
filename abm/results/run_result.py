"""What a run produces, and how it is written so an interrupted run never looks complete.

On disk a run is a folder: ``steps.parquet``, ``trades.parquet``, ``liquidations.parquet``,
``funding.parquet``, ``config.toml`` (the resolved configuration: running it again repeats the run
exactly), ``meta.json`` (markets' units and the shock schedule, for analysis) and ``summary.json``;
``report.png`` is added by the report. Everything is written into a temporary sibling folder that is
renamed into place only when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from abm.errors import InvalidInput

TABLES = ("steps", "trades", "liquidations", "funding")


@dataclass
class RunResult:
    scenario: str
    config: dict[str, Any]  # resolved scenario configuration (TOML-serialisable)
    steps: pd.DataFrame
    trades: pd.DataFrame
    liquidations: pd.DataFrame
    funding: pd.DataFrame
    markets: list[dict[str, Any]]  # per market: symbol, tick_size (float), lot_size (float), multiplier (int)
    shocks: list[dict[str, Any]]  # per shock: symbol, start_s, duration_s, pct
    summary: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def multipliers(self) -> dict[int, int]:
        return {i: int(m["multiplier"]) for i, m in enumerate(self.markets)}


def save_run(result: RunResult, out: str | Path, config_toml: str) -> Path:
    """Write the run atomically into ``out`` (which must not exist yet) and return the folder."""
    out = Path(out)
    if out.exists():
        raise InvalidInput("out", str(out), "must not exist yet (runs are never overwritten)")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        for name in TABLES:
            getattr(result, name).to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "config.toml").write_text(config_toml)
        meta = {"scenario": result.scenario, "markets": result.markets, "shocks": result.shocks}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        (tmp / "summary.json").write_text(json.dumps(result.summary, indent=2, default=float))
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.path = out
    return out


def load_run(path: str | Path) -> RunResult:
    """Read a run folder written by ``save_run``; a missing file is named in the error."""
    import tomllib

    p = Path(path)
    needed = [f"{t}.parquet" for t in TABLES] + ["config.toml", "meta.json", "summary.json"]
    for name in needed:
        if not (p / name).is_file():
            raise InvalidInput("run_dir", str(p), f"must be a complete run folder; {name} is missing")
    meta = json.loads((p / "meta.json").read_text())
    tables = {t: pd.read_parquet(p / f"{t}.parquet") for t in TABLES}
    return RunResult(scenario=meta["scenario"], config=tomllib.loads((p / "config.toml").read_text()),
                     markets=meta["markets"], shocks=meta["shocks"],
                     summary=json.loads((p / "summary.json").read_text()), path=p, **tables)
