"""The scenario file's schema: what a scenario may say, validated before anything runs.

Every problem is reported on one line with its dotted path, the value and what is allowed (unknown
keys with the closest valid name), using the same machinery as venue profiles. Agent parameters are
checked by each agent kind's own parameter class, so a scenario cannot name a parameter its agent
would ignore. No code runs from a scenario file, except an agent class it names explicitly as
``kind = "module:Class"``.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from abm.errors import InvalidInput
from abm.venues.schema import InvalidConfig, Problem, problem_of


class InvalidScenario(InvalidConfig):
    what = "scenario"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunSection(_Model):
    seed: int = 1
    duration_s: float = Field(900.0, gt=0)
    step_s: float = Field(1.0, gt=0)
    mark_cadence_s: float = Field(1.0, gt=0)


class VenueSection(_Model):
    profile: str = "hyperliquid"
    overrides: dict[str, Any] = Field(default_factory=dict)


class FundsSection(_Model):
    insurance_usdc: float = Field(1_000_000.0, ge=0)
    vault_usdc: float = Field(5_000_000.0, ge=0)


class ShockSection(_Model):
    start_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    pct: float = Field(gt=-100)


class MarketSection(_Model):
    symbol: str = Field("BTC-PERP", min_length=1)
    tick_size: str = "0.1"
    lot_size: str = "0.001"
    tier_class: str = "btc"
    s0: float = Field(60_000.0, gt=0)
    process: Literal["gbm", "jump", "garch", "regime", "flat"] = "gbm"
    sigma: float = Field(0.5, ge=0)
    jump_rate: float = Field(0.0, ge=0)
    jump_mean: float = 0.0
    jump_std: float = Field(0.0, ge=0)
    shocks: list[ShockSection] = Field(default_factory=list)
    oracle_interval_s: Optional[float] = Field(None, gt=0)
    oracle_delay_s: Optional[float] = Field(None, ge=0)
    oracle_noise_bps: Optional[float] = Field(None, ge=0)
    oracle_outages_s: list[tuple[float, float]] = Field(default_factory=list)
    impact_notional_usdc: Optional[float] = Field(None, gt=0)


class Scenario(_Model):
    name: str = Field(min_length=1)
    description: str = ""
    run: RunSection = Field(default_factory=RunSection)
    venue: VenueSection = Field(default_factory=VenueSection)
    funds: FundsSection = Field(default_factory=FundsSection)
    markets: list[MarketSection] = Field(default_factory=lambda: [MarketSection()], min_length=1)
    agents: dict[str, dict[str, Any]] = Field(default_factory=dict)


def parse_scenario(data: Mapping[str, Any], source: str) -> Scenario:
    """Validate raw scenario data (and every agent group's parameters) or raise InvalidScenario."""
    try:
        scn = Scenario.model_validate(dict(data))
    except ValidationError as e:
        raise InvalidScenario(source, [problem_of(err, Scenario) for err in e.errors()]) from None
    problems = list(_check_agents(scn))
    symbols = [m.symbol for m in scn.markets]
    if len(set(symbols)) != len(symbols):
        problems.append(Problem("markets", symbols, "symbols must be unique"))
    if problems:
        raise InvalidScenario(source, problems)
    return scn


def _check_agents(scn: Scenario):  # type: ignore[no-untyped-def]
    from abm.agents import resolve
    from abm.agents.base import parse_params

    symbols = {m.symbol for m in scn.markets}
    for name, table in scn.agents.items():
        params = dict(table)
        kind = params.pop("kind", name)
        count = params.pop("count", 1)
        if type(count) is not int or count < 0:
            yield Problem(f"agents.{name}.count", count, "must be a non-negative integer")
        try:
            cls = resolve(kind)
        except InvalidInput as e:
            yield Problem(f"agents.{name}.kind", kind, e.allowed)
            continue
        try:
            p = parse_params(cls.Params, params, f"agents.{name}")
        except InvalidInput as e:
            yield Problem(e.field, e.value, e.allowed)
            continue
        if p.symbol is not None and p.symbol not in symbols:
            yield Problem(f"agents.{name}.symbol", p.symbol, f"must be one of {sorted(symbols)}")
