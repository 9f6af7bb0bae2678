"""What several test modules build the same way, defined once: the checkout's paths, the console command,
a free port, and the small models more than one module runs. A test module imports what it needs from here
(``from tests.support import ...``); fixtures stay in ``tests/conftest.py``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import pandas as pd

from abm.agents.whale import Whale
from abm.model import MarketModel

REPO = Path(__file__).resolve().parent.parent  # the checkout: abm/, scenarios/, docs/, notebooks/
ABM = str(Path(sys.executable).with_name("abm"))  # the console command of the interpreter running the tests


def cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``abm ARGS`` as a user runs it, output captured as text."""
    return subprocess.run([ABM, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def unused_port() -> int:
    """A loopback port nothing listens on (bound, then closed): free to start a server on, or to find refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def without_wall_time(rows: pd.DataFrame) -> pd.DataFrame:
    """A sweep's rows without the one column that differs between identical runs."""
    return rows.drop(columns=["wall_s"]).reset_index(drop=True)


# ------------------------------------------------------------------------------------- scenario data
# Short builders with the keywords the tests had, producing what a scenario file says (the model's one
# configuration), so every test model goes through the scenario's validation.


def shock(start_s: float, duration_s: float, pct: float) -> dict[str, Any]:
    return {"start_s": start_s, "duration_s": duration_s, "pct": pct}


def market(**fields: Any) -> dict[str, Any]:
    """A ``[[markets]]`` table; tuples (shocks, outage windows) become the lists a file would hold."""
    out = dict(fields)
    if "shocks" in out:
        out["shocks"] = [dict(s) if isinstance(s, Mapping) else shock(*s) for s in out["shocks"]]
    if "oracle_outages_s" in out:
        out["oracle_outages_s"] = [list(w) for w in out["oracle_outages_s"]]
    return out


def group(kind: str, count: int = 1, params: Optional[Mapping[str, Any]] = None,
          name: Optional[str] = None) -> tuple[str, dict[str, Any]]:
    """One ``[agents.NAME]`` table as (name, table); the name defaults to the kind."""
    return (name or kind, {"kind": kind, "count": count, **dict(params or {})})


def scenario(seed: int = 1, duration_s: float = 3_600.0, step_s: float = 1.0, venue: str = "hyperliquid",
             venue_overrides: Optional[Mapping[str, Any]] = None, markets: Iterable[Mapping[str, Any]] = ({},),
             agents: Iterable[tuple[str, Mapping[str, Any]]] = (), insurance_usdc: float = 1_000_000.0,
             vault_usdc: float = 5_000_000.0, mark_cadence_s: float = 1.0,
             correlation: Optional[Iterable[Iterable[float]]] = None, name: str = "test") -> dict[str, Any]:
    groups: dict[str, Any] = {}
    for n, table in agents:
        assert n not in groups, f"two test groups named {n!r}"
        groups[n] = dict(table)
    out: dict[str, Any] = {
        "name": name,
        "run": {"seed": seed, "duration_s": duration_s, "step_s": step_s, "mark_cadence_s": mark_cadence_s},
        "venue": {"profile": venue, "overrides": dict(venue_overrides or {})},
        "funds": {"insurance_usdc": insurance_usdc, "vault_usdc": vault_usdc},
        "markets": [market(**m) for m in markets],
        "agents": groups,
    }
    if correlation is not None:
        out["correlation"] = [list(r) for r in correlation]
    return out


# ------------------------------------------------------------------------------------- a whale's market

SYM = "BTC-PERP"
LOT = 0.001  # BTC-PERP's lot size in BTC
NOISE = {"size_lots": 5, "delta": 0.01}  # a book of about 0.8M USDC within 1 % of the mid


def whale_model(whale: Optional[dict], duration_s: float = 200, seed: int = 2, mm: int = 3, noise: dict = NOISE,
                shocks: tuple = (), extra: tuple = ()) -> MarketModel:
    """Noise traders, ``mm`` market makers and one whale with ``whale`` params (none when None), audited."""
    agents = [group("noise", 20, noise)]
    if mm:
        agents.append(group("market_maker", mm, {}))
    if whale is not None:
        agents.append(group("whale", 1, whale))
    agents.extend(extra)
    cfg = scenario(seed=seed, duration_s=duration_s,
                      markets=(market(symbol=SYM, s0=60_000, sigma=0.3, shocks=shocks),), agents=tuple(agents))
    return MarketModel(cfg, audit=True)


def whale_of(m: MarketModel) -> Whale:
    (w,) = m.agents_by_kind["whale"]
    return w


# ------------------------------------------------------------------------------------- a crash

def crash_config(seed: int = 11, duration_s: float = 600, whale: bool = True) -> dict:
    """Every agent kind (the whale optional) and a -9% shock at 240 s: a leveraged long crowd liquidated into
    the book and the backstop."""
    agents = (
        group("noise", 30, {"alpha": 0.005, "delta": 0.02}),
        group("market_maker", 5, {}),
        group("arbitrageur", 3, {}),
        # funding_exit_bps high: the crowd holds until the shock (churning in and out on funding in this
        # thin book liquidates some of it before the shock on a third of the seeds, with or without it)
        group("leveraged", 40, {"signal": "long", "entry_delay_s": 60, "leverage_min": 15,
                                     "leverage_max": 40, "margin_mode": "mixed", "funding_exit_bps": 1000}),
    )
    return scenario(
        seed=seed,
        duration_s=duration_s,
        markets=(market(symbol="BTC-PERP", s0=60_000, sigma=0.4, shocks=(shock(240, 30, -9),)),),
        agents=(*agents, group("whale", 1, {})) if whale else agents,
    )
