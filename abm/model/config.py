"""The model's configuration as plain, validated dataclasses (scenario files map onto these).

Money in the configuration is in quote currency (USDC) for people; the model converts it to integer
quote units. Times are in seconds here and microseconds inside the simulation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from abm.errors import InvalidInput


def _positive(path: str, v: object) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise InvalidInput(path, v, "must be a number > 0")


def _non_negative(path: str, v: object) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0:
        raise InvalidInput(path, v, "must be a number >= 0")


def check_replay_file(path: str, v: object) -> None:
    """A replay file must be given and exist (read and checked in full when the model builds the index)."""
    import os
    from pathlib import Path

    if v is None:
        raise InvalidInput(path, v, 'is required when process = "replay" (a .csv or .parquet file of time, price)')
    if not isinstance(v, (str, os.PathLike)) or not Path(v).is_file():
        raise InvalidInput(path, str(v), "must be an existing .csv or .parquet file (columns time, price)")


@dataclass(frozen=True, slots=True)
class Shock:
    """A scripted index move: ``pct`` percent over ``duration_s`` starting at ``start_s``."""

    start_s: float
    duration_s: float
    pct: float


@dataclass(frozen=True, slots=True)
class MarketConfig:
    symbol: str = "BTC-PERP"
    tick_size: str = "0.1"
    lot_size: str = "0.001"
    tier_class: str = "btc"  # which tier table of the venue profile applies
    s0: float = 60_000.0  # starting index price (quote currency)
    process: str = "gbm"  # gbm, jump, garch, regime, flat, replay
    sigma: float = 0.5  # annualised volatility
    jump_rate: float = 0.0  # per year (process = jump)
    jump_mean: float = 0.0
    jump_std: float = 0.0
    shocks: tuple[Shock, ...] = ()
    oracle_interval_s: Optional[float] = None  # None: the venue profile's
    oracle_delay_s: Optional[float] = None
    oracle_noise_bps: Optional[float] = None
    oracle_outages_s: tuple[tuple[float, float], ...] = ()
    impact_notional_usdc: Optional[float] = None  # None: the venue profile's
    # process = "replay": the index is the price file (columns time [s or ISO-8601], price). Without
    # rescaling the file's prices are used as they are and s0 is ignored (the index starts at the
    # file's first price); with replay_rescale the path is multiplied so its first price is s0.
    replay_file: Optional[str] = None
    replay_rescale: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.symbol, str) or not self.symbol:
            raise InvalidInput("markets.symbol", self.symbol, "must be a non-empty string")
        _positive("markets.s0", self.s0)
        if self.process != "replay":
            from abm.prices import INDEX_PROCESSES

            try:
                INDEX_PROCESSES.resolve(self.process)  # a registered name (or a module:function of the user's)
            except InvalidInput as e:
                raise InvalidInput(e.field, e.value, f"{e.allowed}, or 'replay' (the prices of markets.replay_file)") from None
        if not isinstance(self.replay_rescale, bool):
            raise InvalidInput("markets.replay_rescale", self.replay_rescale, "must be true or false")
        if self.process == "replay":
            check_replay_file("markets.replay_file", self.replay_file)
        _non_negative("markets.sigma", self.sigma)
        for i, w in enumerate(self.oracle_outages_s):
            if len(w) != 2 or not 0 <= w[0] < w[1]:
                raise InvalidInput(f"markets.oracle_outages_s[{i}]", w, "must be (start_s, end_s) with 0 <= start < end")


@dataclass(frozen=True, slots=True)
class AgentGroup:
    """``count`` agents of one kind. ``name`` (a scenario's ``[agents.NAME]`` key; the kind by default) keys
    the group's random streams, so it must be unique in a model."""

    kind: str
    count: int = 1
    params: Mapping[str, Any] = field(default_factory=dict)
    name: Optional[str] = None

    def __post_init__(self) -> None:
        if self.name is None:
            object.__setattr__(self, "name", self.kind)
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInput(f"agents.{self.kind}.name", self.name, "must be a non-empty string")
        if type(self.count) is not int or self.count < 0:
            raise InvalidInput(f"agents.{self.name}.count", self.count, "must be a non-negative integer")


@dataclass(frozen=True, slots=True)
class ModelConfig:
    seed: int = 1
    duration_s: float = 3_600.0
    step_s: float = 1.0
    venue: str = "hyperliquid"
    venue_overrides: Mapping[str, Any] = field(default_factory=dict)
    markets: tuple[MarketConfig, ...] = (MarketConfig(),)
    agents: tuple[AgentGroup, ...] = ()
    insurance_usdc: float = 1_000_000.0
    vault_usdc: float = 5_000_000.0  # 0: no backstop vault
    mark_cadence_s: float = 1.0
    correlation: Optional[tuple[tuple[float, ...], ...]] = None  # of the markets' index shocks (None: independent)

    def __post_init__(self) -> None:
        if type(self.seed) is not int:
            raise InvalidInput("seed", self.seed, "must be an integer")
        _positive("duration_s", self.duration_s)
        _positive("step_s", self.step_s)
        _positive("mark_cadence_s", self.mark_cadence_s)
        _non_negative("insurance_usdc", self.insurance_usdc)
        _non_negative("vault_usdc", self.vault_usdc)
        if not self.markets:
            raise InvalidInput("markets", [], "must list at least one market")
        symbols = [m.symbol for m in self.markets]
        if len(set(symbols)) != len(symbols):
            raise InvalidInput("markets", symbols, "symbols must be unique")
        first: dict[str, int] = {}
        for i, g in enumerate(self.agents):
            j = first.setdefault(g.name, i)  # type: ignore[arg-type]  # set by AgentGroup
            if j != i:
                raise InvalidInput(f"agents[{i}].name", g.name,
                                   f"must be unique: agents[{j}] (kind {self.agents[j].kind!r}) and agents[{i}] "
                                   f"(kind {g.kind!r}) are both named {g.name!r}; give each AgentGroup its own name")
        if self.correlation is not None:
            from abm.prices import check_correlation

            check_correlation([list(r) for r in self.correlation], len(self.markets))
            bad = [m.symbol for m in self.markets if m.process not in ("gbm", "jump", "garch", "regime")]
            if bad:
                raise InvalidInput("correlation", bad, "needs every market's process to be gbm, jump, garch or regime")
