"""What a run produces, and how it is written so an interrupted run never looks complete.

On disk a run is a folder: ``steps.parquet``, ``trades.parquet``, ``liquidations.parquet``,
``funding.parquet`` (the event tables carry decoded columns in people's units beside their integer
ones, ``abm.results.decode``), ``accounts.parquet`` (who owned each account and how it ended,
``abm.results.accounts``), with simulated spot venues ``spot_trades.parquet`` and ``spot_accounts.parquet``
(``abm.results.spot``; a run without them, or a folder written before they existed, reads back empty
ones with their columns), with ``run.amplification`` ``control_steps.parquet`` and
``control_liquidations.parquet`` (the no-feedback control's, ``abm.scenarios.runner.control_scenario``),
``config.toml`` (the resolved configuration: running it again repeats the run
exactly), ``venue.toml`` (the venue profile it ran with, overrides applied, which ``config.toml`` names,
so a later change to a shipped profile cannot change the repeat), ``provenance.json`` (versions, build,
commit, seed, scenario hash), ``meta.json`` (markets' units, spot venues' markets, the shock schedule and
the tables' dtypes, for analysis),
``summary.json`` and ``report.png``.

Everything, the report included, is written into a temporary sibling folder ``.NAME.HOST.PID.XXXX.partial``
that is renamed into place only when complete: a folder at its final name is always whole. A run that
was killed leaves its partial folder behind; the next save into the same parent removes the ones whose
process (on this host) is gone, never a live run's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import pandas as pd

from abm.errors import InvalidInput
from abm.results.spot import SPOT_TABLES, empty_spot_tables

TABLES = ("steps", "trades", "liquidations", "funding")
CONTROL_TABLES = ("control_steps", "control_liquidations")  # with run.amplification only
ACCOUNTS = "accounts"
PARTIAL = ".partial"


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
    accounts: pd.DataFrame = field(default_factory=pd.DataFrame)  # abm.results.accounts.accounts_table
    quote: str = "USDC"  # the venue's quote currency: the decoded money columns' suffix
    quote_decimals: int = 6
    # simulated spot venues (abm.results.spot): every fill, every account, and per venue its markets' units
    spot_trades: pd.DataFrame = field(default_factory=lambda: empty_spot_tables()["spot_trades"])
    spot_accounts: pd.DataFrame = field(default_factory=lambda: empty_spot_tables()["spot_accounts"])
    spot_markets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # with run.amplification: the no-feedback control's steps and liquidations (empty without it), so what the
    # control did is there to read beside the run, not only its totals in the summary
    control_steps: pd.DataFrame = field(default_factory=pd.DataFrame)
    control_liquidations: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def multipliers(self) -> dict[int, int]:
        return {i: int(m["multiplier"]) for i, m in enumerate(self.markets)}


def _host() -> str:
    """This machine's name as one dot-free token (partial folders are only judged by their own host)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()) or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_partials(parent: Path) -> list[Path]:
    """Remove the partial folders in ``parent`` left by dead processes of this host; return them.

    A partial folder is named ``.NAME.HOST.PID.XXXX.partial``. Another host's, a live process's and any
    folder not named so are left alone: a pid is only meaningful on its own machine.
    """
    removed: list[Path] = []
    if not parent.is_dir():
        return removed
    host = _host()
    for p in parent.iterdir():
        if not (p.name.startswith(".") and p.name.endswith(PARTIAL) and p.is_dir()):
            continue
        parts = p.name[: -len(PARTIAL)].rsplit(".", 3)
        if len(parts) != 4 or parts[1] != host or not parts[2].isdigit():
            continue
        pid = int(parts[2])
        if pid == os.getpid() or _alive(pid):
            continue
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed


def save_run(result: RunResult, out: str | Path, config_toml: str, *, venue_toml: Optional[str] = None,
             provenance: Optional[dict[str, Any]] = None,
             report: Optional[Callable[[RunResult, Path], Any]] = None) -> Path:
    """Write the run atomically into ``out`` (which must not exist yet) and return the folder.

    ``venue_toml`` (the frozen venue profile) and ``provenance`` are written when given; ``report(result,
    path)`` draws ``report.png`` into the temporary folder, so the renamed folder already has it.
    """
    out = Path(out)
    if out.exists():
        raise InvalidInput("out", str(out), "must not exist yet (runs are never overwritten)")
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(out.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.{_host()}.{os.getpid()}.", suffix=PARTIAL, dir=out.parent))
    # the spot tables only with spot venues: a run without them writes the folder it always wrote
    written = TABLES + (ACCOUNTS,) + (SPOT_TABLES if result.spot_markets else ()) + \
        (CONTROL_TABLES if len(result.control_steps) else ())
    try:
        for name in written:
            getattr(result, name).to_parquet(tmp / f"{name}.parquet", index=False)
        (tmp / "config.toml").write_text(config_toml)
        if venue_toml is not None:
            (tmp / "venue.toml").write_text(venue_toml)
        if provenance is not None:
            (tmp / "provenance.json").write_text(json.dumps(provenance, indent=2, default=str))
        meta: dict[str, Any] = {"scenario": result.scenario, "markets": result.markets, "shocks": result.shocks,
                                "quote": result.quote, "quote_decimals": result.quote_decimals}
        if result.spot_markets:
            meta["spot_markets"] = result.spot_markets
        meta["dtypes"] = {name: _dtypes(getattr(result, name)) for name in written}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        (tmp / "summary.json").write_text(json.dumps(result.summary, indent=2, default=float))
        if report is not None:
            report(result, tmp / "report.png")
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result.path = out
    return out


def _dtypes(df: pd.DataFrame) -> dict[str, Any]:
    """Each column's dtype, a categorical's as its categories: Parquet keeps neither exactly (an empty
    categorical comes back without categories, a unit of time may change)."""
    return {str(c): ({"categories": [str(x) for x in df[c].cat.categories]}
                     if isinstance(df[c].dtype, pd.CategoricalDtype) else str(df[c].dtype)) for c in df.columns}


def _restore(df: pd.DataFrame, dtypes: dict[str, Any]) -> pd.DataFrame:
    for c, dt in dtypes.items():
        if c not in df:
            continue
        if isinstance(dt, dict):
            df[c] = pd.Categorical(df[c].astype(object), categories=dt["categories"])
        elif str(df[c].dtype) != dt:
            df[c] = df[c].astype(dt)
    return df


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow's errors have no common base: any failure to read is a damaged file
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InvalidInput("run_dir", str(path),
                           f"must be a readable run folder; {path.name} is not a valid Parquet file ({first})") from None


def load_run(path: str | Path) -> RunResult:
    """Read a run folder written by ``save_run``; a missing or damaged file is named in the error.

    Every column comes back with the dtype it was saved with (``meta.json`` keeps the dtypes and
    categories, which Parquet alone does not), so the result equals the one the run returned. Folders written before
    ``accounts.parquet`` existed are refused by name: run their ``config.toml`` again to rebuild them.
    """
    import tomllib

    p = Path(path)
    needed = [f"{t}.parquet" for t in TABLES + (ACCOUNTS,)] + ["config.toml", "meta.json", "summary.json"]
    for name in needed:
        if not (p / name).is_file():
            raise InvalidInput("run_dir", str(p), f"must be a complete run folder; {name} is missing")
    try:
        meta = json.loads((p / "meta.json").read_text())
        summary = json.loads((p / "summary.json").read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InvalidInput("run_dir", str(p), f"must be a readable run folder; a JSON file is damaged ({e})") from None
    try:
        config = tomllib.loads((p / "config.toml").read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InvalidInput("run_dir", str(p), f"must be a readable run folder; config.toml is damaged ({e})") from None
    dtypes = meta.get("dtypes", {})
    quote = str(meta.get("quote", "USDC"))
    spot = [t for t in SPOT_TABLES if (p / f"{t}.parquet").is_file()]
    if spot and len(spot) != len(SPOT_TABLES):
        missing = next(t for t in SPOT_TABLES if t not in spot)
        raise InvalidInput("run_dir", str(p), f"must be a complete run folder; {missing}.parquet is missing "
                                              f"({spot[0]}.parquet is there)")
    control = [t for t in CONTROL_TABLES if (p / f"{t}.parquet").is_file()]
    if control and len(control) != len(CONTROL_TABLES):
        missing = next(t for t in CONTROL_TABLES if t not in control)
        raise InvalidInput("run_dir", str(p), f"must be a complete run folder; {missing}.parquet is missing "
                                              f"({control[0]}.parquet is there)")
    tables = {t: _restore(_read_parquet(p / f"{t}.parquet"), dtypes.get(t, {}))
              for t in TABLES + (ACCOUNTS,) + tuple(spot) + tuple(control)}
    for t, empty in empty_spot_tables(quote).items():
        tables.setdefault(t, empty)
    return RunResult(scenario=meta["scenario"], config=config, markets=meta["markets"], shocks=meta["shocks"],
                     summary=summary, path=p, quote=quote, quote_decimals=int(meta.get("quote_decimals", 6)),
                     spot_markets=dict(meta.get("spot_markets", {})), **tables)
