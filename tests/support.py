"""What several test modules build the same way, defined once: the checkout's paths, the console command,
a free port, and the small models more than one module runs. A test module imports what it needs from here
(``from tests.support import ...``); fixtures stay in ``tests/conftest.py``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pandas as pd

from abm.agents.whale import Whale
from abm.model import AgentGroup, MarketConfig, MarketModel, ModelConfig, Shock

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


# ------------------------------------------------------------------------------------- a whale's market

SYM = "BTC-PERP"
LOT = 0.001  # BTC-PERP's lot size in BTC
NOISE = {"size_lots": 5, "delta": 0.01}  # a book of about 0.8M USDC within 1 % of the mid


def whale_model(whale: Optional[dict], duration_s: float = 200, seed: int = 2, mm: int = 3, noise: dict = NOISE,
                shocks: tuple[Shock, ...] = (), extra: tuple[AgentGroup, ...] = ()) -> MarketModel:
    """Noise traders, ``mm`` market makers and one whale with ``whale`` params (none when None), audited."""
    agents = [AgentGroup("noise", 20, noise)]
    if mm:
        agents.append(AgentGroup("market_maker", mm, {}))
    if whale is not None:
        agents.append(AgentGroup("whale", 1, whale))
    agents.extend(extra)
    cfg = ModelConfig(seed=seed, duration_s=duration_s,
                      markets=(MarketConfig(symbol=SYM, s0=60_000, sigma=0.3, shocks=shocks),), agents=tuple(agents))
    return MarketModel(cfg, audit=True)


def whale_of(m: MarketModel) -> Whale:
    (w,) = m.agents_by_kind["whale"]
    return w


# ------------------------------------------------------------------------------------- a crash

def crash_config(seed: int = 11, duration_s: float = 600, whale: bool = True) -> ModelConfig:
    """Every agent kind (the whale optional) and a -9% shock at 240 s: a leveraged long crowd liquidated into
    the book and the backstop."""
    agents = (
        AgentGroup("noise", 30, {"alpha": 0.005, "delta": 0.02}),
        AgentGroup("market_maker", 5, {}),
        AgentGroup("arbitrageur", 3, {}),
        # funding_exit_bps high: the crowd holds until the shock (churning in and out on funding in this
        # thin book liquidates some of it before the shock on a third of the seeds, with or without it)
        AgentGroup("leveraged", 40, {"signal": "long", "entry_delay_s": 60, "leverage_min": 15,
                                     "leverage_max": 40, "margin_mode": "mixed", "funding_exit_bps": 1000}),
    )
    return ModelConfig(
        seed=seed,
        duration_s=duration_s,
        markets=(MarketConfig(symbol="BTC-PERP", s0=60_000, sigma=0.4, shocks=(Shock(240, 30, -9),)),),
        agents=(*agents, AgentGroup("whale", 1, {})) if whale else agents,
    )
