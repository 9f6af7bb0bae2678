"""The scenario: the model's one configuration, as a file says it and as Python builds it, validated before anything runs.

Every problem is reported on one line with its dotted path, the value and what is allowed (unknown
keys with the closest valid name), using the same machinery as venue profiles. Agent parameters are
checked by each agent kind's own parameter class, so a scenario cannot name a parameter its agent
would ignore. No code runs from a scenario file, except an agent class it names explicitly as
``kind = "module:Class"``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Iterator, Literal, Mapping, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer

from abm.config import MAX_SHOWN, MISSING, InvalidConfig, Problem, problem_of, show
from abm.errors import InvalidInput
from abm.model.randomize import Draw
from abm.venues.schema import GatewayConfig, check_gateway


class InvalidScenario(InvalidConfig):
    what = "scenario"


def _without_defaults(data: Any, defaults: Mapping[str, Any]) -> Any:
    """Fields added after scenarios were first hashed are left out of the dump at their defaults, so an
    existing scenario's record and hash stay what they were."""
    if isinstance(data, dict):
        for k, v in defaults.items():
            if k in data and data[k] == v:
                del data[k]
    return data


class _Model(BaseModel):
    # strict: `duration_s = true`, `sigma = "0.5"` and `seed = 3.0` are refused, not coerced (an integer
    # is still a number where a float is asked); no inf or nan anywhere
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


# a name picks the default output folder (runs/<name>-<time>/), so it is an identifier, never a path
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


class RunSection(_Model):
    seed: int = Field(1, ge=0)  # one seed gives byte-identical results
    duration_s: float = Field(900.0, gt=0)  # market time simulated
    step_s: float = Field(1.0, gt=0)  # one row of per-step metrics per step (events run in between)
    mark_cadence_s: float = Field(1.0, gt=0)  # how often the mark is recomputed from the book
    # when the run starts in the world (ISO-8601; no offset means UTC): event tables get a UTC timestamp
    start_time: Optional[str] = None
    # the control: the same scenario and seed again with liquidations closed off the book at the mark
    # (liquidation.process = "no_feedback"); the summary gains its liquidated notional ("control") and
    # "amplification" = liquidated notional with feedback / without (None when the control liquidates nothing)
    amplification: bool = False  # also run the no-feedback control and report the amplification
    # a stylized-fact report (abm.analysis.cascade_facts.FACT_REPORTS name or "module:function"): its rows,
    # each fact against the real value, go into the summary as "facts"; the registry sits above the model
    # layer, so the name is checked by abm.scenarios.runner before the run starts
    facts: Optional[str] = None  # a fact report the summary gains (None: none)

    @model_serializer(mode="wrap")
    def _without_late_defaults(self, handler: Any) -> Any:
        return _without_defaults(handler(self), {"amplification": False, "facts": None})

    @field_validator("start_time")
    @classmethod
    def _iso_time(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        from datetime import datetime, timezone

        try:
            t = datetime.fromisoformat(v)
        except ValueError:
            raise ValueError("must be an ISO-8601 time such as '2025-10-10T21:00:00Z' (no offset: UTC)") from None
        t = t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


def _known_rule(v: str) -> str:
    from abm.venues.rules import VENUE_RULES

    try:
        VENUE_RULES.resolve(v)
    except InvalidInput as e:
        raise ValueError(e.allowed) from None
    return v


class VenueSection(_Model):
    profile: str = "hyperliquid"  # a shipped profile (hyperliquid, binance) or a .toml file
    overrides: dict[str, Any] = Field(default_factory=dict)  # dotted paths into the profile, e.g. "fees.taker_bps"
    # to switch off a rule the profile enables, override the profile's list: overrides = {rules = [...]}
    rules: list[Annotated[str, AfterValidator(_known_rule)]] = Field(default_factory=list)  # venue rules added to the profile's rules

    @model_serializer(mode="wrap")
    def _without_no_rules(self, handler: Any) -> Any:
        return _without_defaults(handler(self), {"rules": []})


_VAULT_DEFAULTS: dict[str, Any] = {"vault_loss_limit_usdc": None, "vault_adl_equity_usdc": 0.0,
                                   "vault_max_notional_usdc": None, "vault_unwind_interval_s": 30.0,
                                   "vault_unwind_slippage_bps": 100}


class FundsSection(_Model):
    insurance_usdc: float = Field(1_000_000.0, ge=0)  # the insurance fund at the start
    vault_usdc: float = Field(5_000_000.0, ge=0)  # the backstop liquidator vault (0: none)
    # the vault's limits (a unit it may not take over goes to ADL); each needs vault_usdc > 0
    vault_loss_limit_usdc: Optional[float] = Field(None, gt=0)  # it takes over nothing once it has lost this much (None: its whole deposit)
    vault_adl_equity_usdc: float = Field(0.0, ge=0)  # ADL trigger: below this equity ADL closes its own positions
    vault_max_notional_usdc: Optional[float] = Field(None, gt=0)  # risk limit: its position per market (at the mark); None: none
    vault_unwind_interval_s: float = Field(30.0, gt=0)  # it sells one slice of what it took over per interval
    vault_unwind_slippage_bps: int = Field(100, gt=0, lt=10_000)  # each slice no worse than this from the mark

    @model_serializer(mode="wrap")
    def _without_vault_defaults(self, handler: Any) -> Any:
        return _without_defaults(handler(self), _VAULT_DEFAULTS)


class ShockSection(_Model):
    start_s: float = Field(ge=0)  # when the scripted index move starts
    duration_s: float = Field(gt=0)  # over how long it happens (linear in log price)
    pct: float = Field(gt=-100)  # the move, percent of the index


class IndexSourceSection(_Model):
    """An exogenous venue in a market's index: it follows the market's value process with its own noise."""

    name: str = Field(min_length=1)
    weight: int = Field(1, ge=1)  # its weight in the venue's index rule
    noise_bps: float = Field(0.0, ge=0, lt=10_000)  # lognormal noise of each of its prices


class ExternalPerpSection(_Model):
    """The same perp on another venue (``markets[i].external_perps``), the third input of Hyperliquid's mark:
    it follows the market's price without the oracle's delay (abm.prices.external_perp)."""

    name: str = Field(min_length=1)
    weight: int = Field(1, ge=1)  # its weight in the external perps' weighted median
    follows: Literal["value", "index"] = "value"  # "value": the drawn path (the world now); "index": what the oracle reads
    basis_bps: float = Field(0.0, gt=-10_000, lt=10_000)  # how far above the followed price it trades
    noise_bps: float = Field(0.0, ge=0, lt=10_000)  # lognormal noise, redrawn every interval_s
    lag_s: float = Field(0.0, ge=0)  # how far behind the followed price it trades
    interval_s: float = Field(1.0, gt=0)  # how often its noise is redrawn


class SpotVenueSection(_Model):
    """A simulated spot venue (``[spot.NAME]``): an order book per listed market's underlying, paired with the
    quote currency, with spot accounts (cash and inventory, no leverage) and a lending pool."""

    markets: list[str] = Field(default_factory=list)  # perp symbols whose underlying it lists (empty: all)
    weight: int = Field(1, ge=1)  # its weight in those markets' index (markets with index = "venues")
    maker_bps: float = Field(1.0, gt=-10_000, lt=10_000)  # fee rates, multiples of 0.01 bp
    taker_bps: float = Field(5.0, ge=0, lt=10_000)
    borrow_bps_per_day: float = Field(0.0, ge=0, lt=10_000)  # interest on borrowed inventory
    collateral_pct: float = Field(100.0, ge=0, le=1_000)  # cash locked against a borrow, percent of its value
    lending: float = Field(0.0, ge=0)  # base units its pool can lend, per listed pair
    # its order gateway, as a venue profile's [gateway] (abm.sim.gateway; liquidations do not apply); absent: none
    gateway: Optional[GatewayConfig] = None

    @model_serializer(mode="wrap")
    def _without_no_gateway(self, handler: Any) -> Any:
        return _without_defaults(handler(self), {"gateway": None})


class MmWithdrawalEvent(_Model):
    """Market makers of one group stand aside: at start_s they cancel their quotes (through their own orders) and
    quote nothing for duration_s, then come back; on whatever venue the group trades (the perp or a spot venue)."""

    kind: Literal["mm_withdrawal"]
    start_s: float = Field(ge=0)  # when they cancel their quotes
    duration_s: float = Field(gt=0)  # how long they stay away (then they quote again)
    group: str = Field(min_length=1)  # an [agents.NAME] group of market makers
    fraction: float = Field(1.0, gt=0, le=1)  # of the group: its first round(fraction x count) agents


class VenueTrigger(_Model):
    """What starts a triggered venue state (``events[i].when``): one condition, watched from start_s on in the
    event's perp markets; the state begins at the first oracle publication or mark update that meets it (once)."""

    oracle_outage: bool = False  # true: when the oracle misses a publication (markets[i].oracle_outages_s)
    move_pct: Optional[float] = Field(None, gt=0, lt=100)  # the mark moves at least this many % of an earlier mark ...
    within_s: Optional[float] = Field(None, gt=0)  # ... between two mark updates at most this far apart
    direction: Literal["either", "down", "up"] = "either"  # which way the move counts


class VenueStateEvent(_Model):
    """A window in which a venue's markets accept less (abm.exchange.entry): halted (nothing, not even cancels),
    cancel_only, post_only (nothing that takes) or reduce_only (perp only); refused actions are rejects."""

    kind: Literal["venue_state"]
    start_s: float = Field(ge=0)  # when the state begins (with ``when``: when the trigger starts watching)
    duration_s: float = Field(gt=0)  # how long it lasts (then the markets are open again)
    state: Literal["halted", "cancel_only", "post_only", "reduce_only"]  # what the markets accept meanwhile
    venue: Optional[str] = None  # a [spot.NAME] venue; left out: the perp venue
    markets: list[str] = Field(default_factory=list)  # perp symbols (a spot venue: their pairs); empty: all it lists
    # a halt of the perp venue only: "paused" (the default) stops its engine too (no liquidations, no funding
    # samples; Binance's maintenance windows), "continue" locks users out while liquidations go on against the
    # frozen book (Hyperliquid's API outage of 2025-07-29)
    liquidations: Optional[Literal["paused", "continue"]] = None  # perp halt: paused (default) or continue
    # a triggered state: it begins when the condition is first met at or after start_s (an oracle outage, or a
    # move of move_pct % of the mark within within_s), and lasts duration_s; left out: it begins at start_s
    when: Optional[VenueTrigger] = None

    @model_serializer(mode="wrap")
    def _without_no_trigger(self, handler: Any) -> Any:
        return _without_defaults(handler(self), {"when": None})


class TransferFreezeEvent(_Model):
    """A window in which a venue takes no deposits and/or withdrawals (what blocked arbitrage transfers in March
    2020): the venue refuses them (``TransferFrozen``), a reject like any other; trading goes on."""

    kind: Literal["transfer_freeze"]
    start_s: float = Field(ge=0)  # when the freeze begins
    duration_s: float = Field(gt=0)  # how long it lasts
    venue: Optional[str] = None  # a [spot.NAME] venue; left out: the perp venue
    blocks: Literal["deposits", "withdrawals", "both"] = "both"  # what it refuses


# what happens in the world during a run, one table per event ([[events]] with its kind)
Event = Annotated[Union[MmWithdrawalEvent, VenueStateEvent, TransferFreezeEvent], Field(discriminator="kind")]


class EqualSize(_Model):
    dist: Literal["equal"]


class LognormalSize(_Model):
    dist: Literal["lognormal"]
    sigma: float = Field(gt=0, le=10)  # the sd of the log of a holder's relative size


class ParetoSize(_Model):
    dist: Literal["pareto"]
    alpha: float = Field(gt=0)  # a holder's relative size is (1 - u)^(-1/alpha): smaller is heavier-tailed


# how the holders' sizes compare (the scale is set by notional_usdc)
SizeDist = Annotated[Union[EqualSize, LognormalSize, ParetoSize], Field(discriminator="dist")]


class FixedLeverage(_Model):
    dist: Literal["fixed"]
    value: int = Field(ge=1)


class ParetoLeverage(_Model):
    dist: Literal["pareto"]
    alpha: float = Field(gt=0)  # a Pareto law truncated to [min, max], drawn by inversion
    min: float = Field(ge=1)
    max: float = Field(ge=1)


class LognormalLeverage(_Model):
    dist: Literal["lognormal"]
    median: float = Field(ge=1)  # a lognormal law truncated to [min, max], drawn by inversion
    sigma: float = Field(gt=0, le=10)
    min: float = Field(ge=1)
    max: float = Field(ge=1)


class UniformLeverage(_Model):
    dist: Literal["uniform"]
    min: float = Field(ge=1)
    max: float = Field(ge=1)


LeverageDist = Annotated[Union[FixedLeverage, ParetoLeverage, LognormalLeverage, UniformLeverage],
                         Field(discriminator="dist")]


class InitialPositionsSection(_Model):
    """Open interest in place when the run starts (``[[initial_positions]]``, abm.model.initial): every agent of
    ``group`` holds one position drawn from the distributions below, each booked by the exchange's opening
    settlement against an agent of ``counterparty`` at its entry price, so every market's net is zero."""

    group: str = Field(min_length=1)  # the [agents.NAME] group whose agents hold the positions
    counterparty: str = Field(min_length=1)  # the group whose agents take the other side, holder i against i mod count
    symbol: Optional[str] = Field(None, min_length=1)  # None: the first market
    notional_usdc: float = Field(gt=0)  # the holders' positions in all, at s0: round(this / (s0 x lot)) lots exactly
    long_share: float = Field(1.0, ge=0, le=1)  # each holder is long with this probability
    size: SizeDist = Field(default_factory=lambda: EqualSize(dist="equal"))  # how holders' sizes compare
    # each holder's position is worth notional at s0 / leverage at the start (rounded to an integer, at most the tier's)
    leverage: LeverageDist = Field(default_factory=lambda: FixedLeverage(dist="fixed", value=10))  # the snapshot's leverage
    # (the profitable side is cut at s0 -+ s0/leverage, so each position is worth its margin at s0 from a deposit >= 0)
    entry_spread_pct: float = Field(0.0, ge=0, lt=100)  # entries uniform within +-this % of s0, in ticks
    margin_mode: Literal["cross", "isolated", "mixed"] = "cross"  # "mixed": isolated with probability isolated_share
    isolated_share: float = Field(0.5, ge=0, le=1)  # margin_mode = "mixed": the probability of isolated
    counterparty_leverage: int = Field(1, ge=1)  # counterparties' equity at s0: their net position / this


# fields added with the spot venues: left out of the dump at their defaults, so existing scenarios keep their hash
_INDEX_DEFAULTS: dict[str, Any] = {"index": "exogenous", "index_sources": [], "index_rule": None, "index_interval_s": 1.0,
                                   "external_perps": [], "replay_move_scale": 1.0, "replay_block_s": None}


class MarketSection(_Model):
    symbol: str = Field("BTC-PERP", min_length=1)
    tick_size: str = "0.1"  # exact decimal, quote currency
    lot_size: str = "0.001"  # exact decimal, base units
    tier_class: str = "btc"  # which tier table of the venue profile applies
    s0: float = Field(60_000.0, gt=0)  # the index at the start (quote currency)
    # a registered index process (abm.prices.INDEX_PROCESSES), "replay", or a user's "module:function"
    process: str = "gbm"
    sigma: float = Field(0.5, ge=0)  # annualised volatility of the index (0.5 is 50 %/yr)
    jump_rate: float = Field(0.0, ge=0)  # jumps per year (process = "jump")
    jump_mean: float = 0.0  # mean log jump
    jump_std: float = Field(0.0, ge=0)  # standard deviation of the log jump
    shocks: list[ShockSection] = Field(default_factory=list)
    oracle_interval_s: Optional[float] = Field(None, gt=0)  # publication period (None: the venue profile's)
    oracle_delay_s: Optional[float] = Field(None, ge=0)  # how stale each published price is (None: the profile's)
    oracle_noise_bps: Optional[float] = Field(None, ge=0)  # noise on each publication (None: the profile's)
    # [start_s, end_s] windows with no oracle publication
    oracle_outages_s: list[Annotated[list[float], Field(min_length=2, max_length=2)]] = Field(default_factory=list)
    impact_notional_usdc: Optional[float] = Field(None, gt=0)  # the funding premium's impact size (None: the profile's)
    # process = "replay": the index is this price file (columns time, price), relative to the scenario
    # file's folder when relative. Without replay_rescale the prices are used as they are and s0 is
    # derived from the file's first price; with it the path is scaled so that it starts at s0.
    replay_file: Optional[str] = Field(None, min_length=1)  # process = "replay": a .csv/.parquet of time, price
    replay_rescale: bool = False  # scale the replayed path to start at s0
    # every log move of the replayed run from its first price times this factor (a deeper or milder crash)
    replay_move_scale: float = Field(1.0, gt=0)
    # a moving-block bootstrap of the replayed run's log returns, blocks of this many seconds, drawn per seed
    replay_block_s: Optional[float] = Field(None, gt=0)
    # "exogenous": the index is the process above (drawn before the run); "venues": the process is the latent
    # value, and the index is made during the run from the spot venues listing this market and index_sources
    index: Literal["exogenous", "venues"] = "exogenous"
    index_sources: list[IndexSourceSection] = Field(default_factory=list)  # exogenous venues (index = "venues")
    index_rule: Optional[str] = None  # abm.prices.INDEX_RULES name (None: the venue's, by its mark formula)
    index_interval_s: float = Field(1.0, gt=0)  # how often the index reads its sources
    # the same perp on other venues: the Hyperliquid mark's third input, median(oracle-based, book, their median)
    external_perps: list[ExternalPerpSection] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _without_index_defaults(self, handler: Any) -> Any:
        return _without_defaults(handler(self), _INDEX_DEFAULTS)

    @field_validator("index_rule")
    @classmethod
    def _known_rule(cls, v: Optional[str]) -> Optional[str]:
        from abm.prices.index_rules import INDEX_RULES

        if v is not None:
            try:
                INDEX_RULES.resolve(v, "index_rule")
            except InvalidInput as e:
                raise ValueError(e.allowed) from None
        return v


    @field_validator("process")
    @classmethod
    def _known_process(cls, v: str) -> str:
        from abm.errors import InvalidInput as _Invalid
        from abm.prices import INDEX_PROCESSES

        if v != "replay":
            try:
                INDEX_PROCESSES.resolve(v, "process")
            except _Invalid as e:
                raise ValueError(e.allowed.replace("must be one of [", "must be 'replay' or one of [", 1)) from None
        return v


class Scenario(_Model):
    name: str = Field(min_length=1)
    description: str = ""
    run: RunSection = Field(default_factory=RunSection)
    venue: VenueSection = Field(default_factory=VenueSection)
    funds: FundsSection = Field(default_factory=FundsSection)
    markets: list[MarketSection] = Field(default_factory=lambda: [MarketSection()], min_length=1)
    agents: dict[str, dict[str, Any]] = Field(default_factory=dict)  # [agents.NAME]: kind, count, parameters
    correlation: Optional[list[list[float]]] = None  # of the markets' index shocks, in market order
    spot: dict[str, SpotVenueSection] = Field(default_factory=dict)  # [spot.NAME]: simulated spot venues
    events: list[Event] = Field(default_factory=list)  # [[events]]: what happens in the world (abm.model.events)
    # [randomize]: "dotted.path" = {dist = ..., ...}, drawn per seed (abm.model.randomize)
    randomize: dict[str, Draw] = Field(default_factory=dict)
    # [[initial_positions]]: open interest in place at the start, booked by the exchange (abm.model.initial)
    initial_positions: list[InitialPositionsSection] = Field(default_factory=list)

    @model_serializer(mode="wrap")
    def _without_no_spot(self, handler: Any) -> Any:
        return _without_defaults(handler(self), {"spot": {}, "events": [], "randomize": {}, "initial_positions": []})

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, v: str) -> str:
        if not NAME_PATTERN.fullmatch(v) or ".." in v:
            raise ValueError("must be a name of at most 100 letters, digits, '_', '-' and '.', starting with a letter "
                             "or digit (it names the output folder runs/<name>-<time>/; use --out for another place)")
        return v


def parse_scenario(data: Mapping[str, Any], source: str, base_dir: Optional[Path] = None) -> Scenario:
    """Validate raw scenario data (and every agent group's parameters) or raise InvalidScenario.

    ``base_dir`` is the scenario file's folder: relative ``replay_file`` paths are taken from there
    (else from the working directory) and stored absolute, so a saved config.toml replays the same file.
    """
    try:
        scn = Scenario.model_validate(dict(data))
    except ValidationError as e:
        raise InvalidScenario(source, [problem_of(err, Scenario) for err in e.errors()]) from None
    if scn.randomize:
        scn = _with_draws(scn, data, source)
    problems = list(_check_agents(scn))
    symbols = [m.symbol for m in scn.markets]
    if len(set(symbols)) != len(symbols):
        problems.append(Problem("markets", symbols, "symbols must be unique"))
    if scn.correlation is not None:
        from abm.prices import check_correlation

        try:
            check_correlation(scn.correlation, len(scn.markets))
        except InvalidInput as e:
            problems.append(Problem("correlation", scn.correlation, e.allowed))
        bad = [m.symbol for m in scn.markets if m.process not in ("gbm", "jump", "garch", "regime")]
        if bad:
            problems.append(Problem("correlation", bad, "needs every market's process to be gbm, jump, garch or regime"))
    problems.extend(_check_spot(scn))
    if scn.initial_positions:
        from abm.model.initial import check_initial_positions

        problems.extend(check_initial_positions(scn))
    from abm.model.events import check_events

    problems.extend(check_events(scn))
    markets = []
    for i, m in enumerate(scn.markets):
        for key, off in (("replay_move_scale", 1.0), ("replay_block_s", None)):
            if m.process != "replay" and getattr(m, key) != off:
                problems.append(Problem(f"markets[{i}].{key}", getattr(m, key), 'applies to process = "replay" only'))
        markets.append(_check_replay(i, m, scn.run.duration_s, base_dir, problems) if m.process == "replay" else m)
    if markets != list(scn.markets):
        scn = scn.model_copy(update={"markets": markets})
    if base_dir is not None:
        scn = _venue_beside(scn, base_dir)
    if not any(p.path.startswith("markets") for p in problems):
        from abm.model.checks import check_scenario

        problems.extend(check_scenario(scn))
    if problems:
        raise InvalidScenario(source, _drawn(scn, problems))
    return scn


def _with_draws(scn: Scenario, data: Mapping[str, Any], source: str) -> Scenario:
    """``scn`` with its ``[randomize]`` fields drawn at its seed, validated like values written in the file."""
    from abm.config import apply_overrides
    from abm.model.randomize import draws

    fixed = [p for p in scn.randomize if p == "run.seed" or p.split(".")[0].split("[")[0] in ("name", "randomize")]
    if fixed:
        raise InvalidScenario(source, [Problem(f"randomize.{p}", p, "must name a field of the run other than "
                                                                    "run.seed, name and randomize") for p in fixed])
    try:
        drawn = draws(scn.randomize, scn.run.seed)
    except ValueError as e:
        raise InvalidScenario(source, [Problem("randomize", dict(scn.randomize), str(e))]) from None
    raw = apply_overrides(dict(data), drawn, source, root=Scenario, error=InvalidScenario)
    try:
        return Scenario.model_validate(raw)
    except ValidationError as e:
        raise InvalidScenario(source, _drawn(scn, [problem_of(err, Scenario) for err in e.errors()])) from None


def _drawn(scn: Scenario, problems: list[Problem]) -> list[Problem]:
    """Problems with a drawn value say so: the value is not in the file."""
    return [Problem(p.path, p.value, f"{p.allowed} (drawn by [randomize])") if p.path in scn.randomize else p
            for p in problems]


def refuse_drawn_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any], source: str) -> None:
    """An override of a field ``[randomize]`` draws would be overwritten by the draw: refused by its path."""
    from abm.model.randomize import overridden

    drawn = raw.get("randomize")
    problems = overridden(drawn, overrides) if isinstance(drawn, Mapping) else []
    if problems:
        raise InvalidScenario(source, problems)


def spot_pair(symbol: str, quote: str) -> str:
    """The pair a spot venue lists for a perp market's underlying: ``BTC-PERP`` in USDC is ``BTC/USDC``."""
    return f"{symbol.split('-')[0]}/{quote}"


def spot_listings(scn: Scenario) -> dict[str, list[str]]:
    """``{spot venue: [perp symbols whose underlying it lists]}``, in the scenario's order."""
    symbols = [m.symbol for m in scn.markets]
    return {name: list(v.markets) or symbols for name, v in scn.spot.items()}


def _check_spot(scn: Scenario) -> Iterator[Problem]:
    """Spot venues name existing markets; a market whose index comes from venues has a source and distinct names."""
    symbols = [m.symbol for m in scn.markets]
    for name, v in scn.spot.items():
        if not NAME_PATTERN.fullmatch(name):
            yield Problem(f"spot.{name}", name, "must be a name of letters, digits, '_', '-' and '.'")
        for j, sym in enumerate(v.markets):
            if sym not in symbols:
                yield Problem(f"spot.{name}.markets[{j}]", sym, f"must be one of the scenario's markets {symbols}")
        if v.gateway is not None:
            yield from check_gateway(v.gateway, f"spot.{name}.gateway")
            if v.gateway.liquidations != "bypass":
                yield Problem(f"spot.{name}.gateway.liquidations", v.gateway.liquidations,
                              "must be 'bypass' (a spot venue liquidates nobody)")
    listings = spot_listings(scn)
    for i, m in enumerate(scn.markets):
        venues = [n for n, syms in listings.items() if m.symbol in syms]
        names = venues + [src.name for src in m.index_sources]
        if m.index == "venues" and not names:
            yield Problem(f"markets[{i}].index", m.index, "needs a source: a [spot.NAME] venue listing this market or "
                                                          "an entry in index_sources")
        if m.index == "exogenous" and m.index_sources:
            yield Problem(f"markets[{i}].index_sources", [s.name for s in m.index_sources],
                          'are only read with index = "venues"')
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            yield Problem(f"markets[{i}].index_sources", dup, "must have names distinct from each other and from the "
                                                                "spot venues")
    for name, _kind, _count, params in agent_groups(scn):
        for key in ("venue", "spot_venue", "other_venue"):  # an agent's venue; an arbitrageur's spot leg or second venue
            venue = params.get(key)
            if venue is not None and venue not in scn.spot:
                yield Problem(f"agents.{name}.{key}", venue, f"must be one of the scenario's spot venues "
                                                             f"{sorted(scn.spot)} (or left out)")
            elif venue is not None and key == "spot_venue":
                sym = params.get("symbol") or symbols[0]
                if sym not in listings[venue]:
                    yield Problem(f"agents.{name}.spot_venue", venue, f"must list {sym} (it lists {listings[venue]})")


def _venue_beside(scn: Scenario, base_dir: Path) -> Scenario:
    """A relative venue profile path that names a file in the scenario's folder, made absolute.

    Why: a run folder's config.toml names its frozen ``venue.toml`` beside it, and must repeat the run
    from any working directory. A relative path with no such file stays as written (taken from the
    working directory, as before).
    """
    from abm.venues import PROFILES

    profile = scn.venue.profile
    if profile in PROFILES or Path(profile).is_absolute():
        return scn
    beside = base_dir / profile
    if not beside.is_file():
        return scn
    return scn.model_copy(update={"venue": scn.venue.model_copy(update={"profile": str(beside)})})


def scenario_venue(scn: Scenario) -> Any:
    """The ``Venue`` a scenario runs on: its profile with the overrides applied and ``venue.rules`` added.

    The rules are added to the profile's own (in order, each once), so the Venue's record (a run
    folder's venue.toml, the scenario's hash) holds every rule the run enforced.
    """
    from abm.venues import load_venue

    venue = load_venue(scn.venue.profile, dict(scn.venue.overrides) or None)
    rules = list(dict.fromkeys([*venue.profile.rules, *scn.venue.rules]))
    if rules != list(venue.profile.rules):
        venue = venue.with_overrides({"rules": rules})
    return venue


def revalidate(scn: Scenario) -> Scenario:
    """A Scenario built in Python (``Scenario(...)``, ``model_copy``) checked as a file would be."""
    return parse_scenario(scn.model_dump(mode="python"), scn.name)


def _check_replay(i: int, m: MarketSection, duration_s: float, base_dir: Optional[Path],
                  problems: list[Problem]) -> MarketSection:
    """Read and check a replay market's file now (not minutes into a run); returns it with the path absolute."""
    from abm.prices import InvalidReplayData, Replay
    from abm.prices.replay import _plain

    field = f"markets[{i}].replay_file"
    if m.replay_file is None:
        problems.append(Problem(field, MISSING, 'is required when process = "replay" (a .csv or .parquet file '
                                                'with columns time, price)'))
        return m
    p = Path(m.replay_file).expanduser()
    if not p.is_absolute():
        p = (base_dir or Path.cwd()) / p
    p = p.resolve()
    if not p.is_file():
        problems.append(Problem(field, str(p), "must be an existing .csv or .parquet file (relative paths are taken "
                                               "from the scenario file's folder)"))
        return m
    try:
        rep = Replay(p)
    except InvalidReplayData as e:
        what = f"column '{e.field}' " if e.field not in ("file", "source", "time_col", "price_col") else ""
        # the file's content is shown only as far as the offending value, and that shortened
        problems.append(Problem(field, str(p), f"must be a valid price file: {what}{e.allowed} (found {show(_plain(e.value), MAX_SHOWN)})"))
        return m
    span_s = rep.span_us / 1e6
    if duration_s > span_s:
        problems.append(Problem("run.duration_s", duration_s, f"must be <= {span_s:g} s, the span of {field} ({p.name})"))
    if m.replay_block_s is not None and m.replay_block_s > duration_s:
        problems.append(Problem(f"markets[{i}].replay_block_s", m.replay_block_s,
                                f"must be <= run.duration_s = {duration_s:g} s (the run's span is what is resampled)"))
    update: dict[str, Any] = {"replay_file": str(p)}
    if not m.replay_rescale:
        first = float(rep.prices[0])
        if "s0" in m.model_fields_set and m.s0 != first:
            problems.append(Problem(f"markets[{i}].s0", m.s0, f"is taken from {field} ({first:g}) unless "
                                                               "replay_rescale = true; remove s0 or set replay_rescale = true"))
        update["s0"] = first
    return m.model_copy(update=update)


def agent_groups(scn: Scenario) -> list[tuple[str, Any, Any, dict[str, Any]]]:
    """``(name, kind, count, parameters)`` of each ``[agents.NAME]`` table, in the scenario's order.

    The kind defaults to the group's name and the count to 1; both are checked by ``parse_scenario``.
    """
    groups = []
    for name, table in scn.agents.items():
        params = dict(table)
        kind = params.pop("kind", name)
        count = params.pop("count", 1)
        groups.append((name, kind, count, params))
    return groups


def model_scenario(config: Scenario | Mapping[str, Any] | None, overrides: Mapping[str, Any],
                   seed: Optional[int]) -> Scenario:
    """What ``MarketModel(config, rng, **overrides)`` runs: the scenario with the overrides and seed, checked whole.

    A mapping is a scenario file's content (``name`` may be left out in Python); a ``Scenario`` built in
    Python is checked again as a file would be, so both entry points refuse the same things in the
    same words.
    """
    from abm.config import apply_overrides

    if config is None:
        raw: dict[str, Any] = {"name": "model"}
    elif isinstance(config, Scenario):
        raw = config.model_dump(mode="python")
    elif isinstance(config, Mapping):
        raw = {"name": "model", **config}
    else:
        raise InvalidInput("config", type(config).__name__,
                           "must be a Scenario, a mapping shaped like a scenario file, or None (the defaults)")
    source = str(raw.get("name", "model"))
    ov = dict(overrides)
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidInput("rng", seed, "must be an integer seed (it sets run.seed)")
        ov["run.seed"] = seed
    if ov:
        refuse_drawn_overrides(raw, ov, source)
        raw = apply_overrides(raw, ov, source, root=Scenario, error=InvalidScenario)
    return parse_scenario(raw, source)


def _check_agents(scn: Scenario) -> Iterator[Problem]:
    from abm.agents import resolve
    from abm.agents.base import parse_params

    symbols = {m.symbol for m in scn.markets}
    quote: Optional[str] = None  # the venue's quote currency, read once if a spot group names its pair
    for name, kind, count, params in agent_groups(scn):
        if type(count) is not int or count < 0:
            yield Problem(f"agents.{name}.count", count, "must be a non-negative integer")
        if not isinstance(kind, str):
            yield Problem(f"agents.{name}.kind", kind, "must be a string: a built-in kind or 'module:Class'")
            continue
        try:
            cls = resolve(kind)
        except InvalidInput as e:
            yield Problem(f"agents.{name}.kind", kind, e.allowed)
            continue
        try:
            p = parse_params(cls.Params, params, f"agents.{name}")
        except InvalidConfig as e:  # every problem of the group, under its name
            yield from e.problems
            continue
        except InvalidInput as e:  # a user's own params class that checks by hand
            yield Problem(e.field, e.value, e.allowed)
            continue
        venue = params.get("venue")
        if p.symbol is not None and isinstance(venue, str) and venue in scn.spot:  # trades on a spot venue: its pairs
            if quote is None:
                quote = scenario_venue(scn).profile.quote_currency
            pairs = [spot_pair(sym, quote) for sym in spot_listings(scn)[venue]]
            if p.symbol not in pairs:
                yield Problem(f"agents.{name}.symbol", p.symbol, f"must be one of spot venue {venue!r}'s pairs {pairs}")
        elif p.symbol is not None and p.symbol not in symbols:
            yield Problem(f"agents.{name}.symbol", p.symbol, f"must be one of {sorted(symbols)}")
