"""Checks of a whole scenario in user units, before anything runs.

Why here and not at model build: a value that passes the schema but fails every run (a step that
rounds to 0 µs, an oracle delay beyond the price path, leverage above the venue's maximum, a whale
that starts after the run ends) should be refused by ``abm show`` and sweep planning already, naming
the scenario's own field (``markets[0].oracle_delay_s``), not an internal one (``delay_us``). The
limits come from the pieces that would otherwise refuse later (the index grid, the money ceiling,
the venue profile), so the two can never disagree.

Values that are legal but almost surely a mistake (sigma 30 is 3000 %/yr) are accepted with a
warning, printed once per process (``warn_once``).
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, Iterator, Optional

from abm.config import Problem
from abm.errors import InvalidInput
from abm.market.spec import MAX_MONEY
from abm.prices.index import DEFAULT_DT_US, MAX_GRID_POINTS, PATH_MARGIN_US
from abm.units import US_PER_S, USDC, usdc_units

if TYPE_CHECKING:
    from abm.model.scenario import Scenario
    from abm.venues import Venue

PATH_MARGIN_S = PATH_MARGIN_US // US_PER_S
# the longest run the index grid holds (50 M points at 0.1 s: ~400 MB of prices)
MAX_DURATION_S = (MAX_GRID_POINTS - 1) * DEFAULT_DT_US // US_PER_S - PATH_MARGIN_S
# one metrics row per step: beyond this the step table alone needs gigabytes
MAX_STEPS = 10_000_000
MAX_AGENTS = 1_000_000
MAX_SIGMA = 100.0  # annualised: 10,000 %/yr; above, exp() of a day's move overflows
WARN_SIGMA = 5.0  # 500 %/yr: legal, but a crypto crash is 1-5
# one lot at s0 must leave room for this many-fold moves before a notional hits the money ceiling
PRICE_HEADROOM = 1000
# agent parameters that say when a group starts acting (any kind, a user's own included): inside the run
START_FIELDS = ("start_s", "entry_delay_min_s")


class AbsurdValue(UserWarning):
    """A legal value that is almost surely a mistake (shown once per process)."""


_warned: set[str] = set()


def warn_once(text: str) -> None:
    if text not in _warned:
        _warned.add(text)
        warnings.warn(text, AbsurdValue, stacklevel=2)


def _whole_us(path: str, v: float) -> Iterator[Problem]:
    us = v * US_PER_S
    if us < 1:
        yield Problem(path, v, "must be at least 1 µs (0.000001 s)")
    elif abs(us - round(us)) > 1e-6 * max(1.0, us) and abs(us - round(us)) > 1e-3:
        yield Problem(path, v, "must be a whole number of microseconds (the simulation's clock unit)")


def check_scenario(scn: Scenario) -> list[Problem]:
    """Every problem the model build or the run would meet, in the scenario's own fields."""
    problems: list[Problem] = []
    run = scn.run
    for field in ("step_s", "mark_cadence_s"):
        problems.extend(_whole_us(f"run.{field}", getattr(run, field)))
    if run.duration_s > MAX_DURATION_S:
        problems.append(Problem("run.duration_s", run.duration_s, f"must be <= {MAX_DURATION_S:,} s (~58 days: the index "
                                                                  "path's grid of 0.1 s holds at most 50 M points)"))
    if run.step_s * US_PER_S >= 1 and run.duration_s / run.step_s > MAX_STEPS:
        problems.append(Problem("run.step_s", run.step_s,
                                f"gives {math.ceil(run.duration_s / run.step_s):,} steps over run.duration_s = "
                                f"{run.duration_s:g} s; at most {MAX_STEPS:,} (one metrics row per step)"))
    venue = _venue(scn, problems)
    _check_money(scn, problems)
    problems.extend(_check_vault(scn))
    for i, m in enumerate(scn.markets):
        problems.extend(_check_market(i, m, scn, venue))
    if venue is not None:
        problems.extend(_check_agents(scn, venue))
    return problems


def _venue(scn: Scenario, problems: list[Problem]) -> Optional[Venue]:
    from abm.config import InvalidConfig
    from abm.model.scenario import scenario_venue
    from abm.venues import load_venue

    try:
        venue = load_venue(scn.venue.profile, dict(scn.venue.overrides) or None)
    except InvalidConfig as e:
        where = "venue.overrides" if scn.venue.overrides else "venue.profile"
        problems.extend(Problem(f"{where}: {p.path}" if where == "venue.overrides" else where, p.value, p.allowed)
                        for p in e.problems)
        return None
    except InvalidInput as e:
        problems.append(Problem("venue.profile", scn.venue.profile, e.allowed))
        return None
    if not scn.venue.rules:
        return venue
    try:
        return scenario_venue(scn)  # the rules added: each built for every tier class once
    except InvalidConfig as e:
        problems.extend(Problem(f"venue.rules: {p.path}", p.value, p.allowed) for p in e.problems)
    return None


def _check_vault(scn: Scenario) -> Iterator[Problem]:
    """The vault's limits only make sense with a vault, and inside its deposit."""
    from abm.model.scenario import _VAULT_DEFAULTS

    f = scn.funds
    if not f.vault_usdc:
        for field, default in _VAULT_DEFAULTS.items():
            if getattr(f, field) != default:
                yield Problem(f"funds.{field}", getattr(f, field), "only allowed with a vault (funds.vault_usdc > 0)")
        return
    if f.vault_loss_limit_usdc is not None and f.vault_loss_limit_usdc > f.vault_usdc:
        yield Problem("funds.vault_loss_limit_usdc", f.vault_loss_limit_usdc,
                      f"must be <= funds.vault_usdc = {f.vault_usdc:g} (the vault cannot lose more than its deposit)")
    if f.vault_adl_equity_usdc >= f.vault_usdc:
        yield Problem("funds.vault_adl_equity_usdc", f.vault_adl_equity_usdc,
                      f"must be < funds.vault_usdc = {f.vault_usdc:g} (else its first takeover is deleveraged at once)")
    yield from _whole_us("funds.vault_unwind_interval_s", f.vault_unwind_interval_s)


def _check_money(scn: Scenario, problems: list[Problem]) -> None:
    """All money that enters the venue must fit the exchange's 64-bit ledgers (abm.market.spec.MAX_MONEY)."""
    ceiling = MAX_MONEY / USDC
    total = usdc_units(scn.funds.insurance_usdc) + usdc_units(scn.funds.vault_usdc)
    for field in ("insurance_usdc", "vault_usdc"):
        v = getattr(scn.funds, field)
        if usdc_units(v) > MAX_MONEY:
            problems.append(Problem(f"funds.{field}", v, f"must be <= {ceiling:,.0f} USDC (the ledgers' 64-bit ceiling)"))
    from abm.model.scenario import agent_groups

    agents = 0
    for _name, kind, count, params in agent_groups(scn):
        deposit = params.get("deposit_usdc", _default_deposit(kind))  # a kind's own default (a whale's 50M)
        if type(count) is int and count >= 0:
            agents += count
            if isinstance(deposit, (int, float)) and not isinstance(deposit, bool) and math.isfinite(deposit):
                total += count * usdc_units(abs(deposit))
    if agents > MAX_AGENTS:
        problems.append(Problem("agents", f"{agents:,} agents", f"must hold at most {MAX_AGENTS:,} agents in all"))
    elif total > MAX_MONEY:
        problems.append(Problem("agents", f"{total / USDC:,.0f} USDC",
                                f"funds and all agents' deposits (count x deposit_usdc) must total <= {ceiling:,.0f} USDC "
                                "(the ledgers' 64-bit ceiling)"))


def _default_deposit(kind: object) -> float:
    """The deposit a group gets when its table names none: its kind's ``Params`` default (0 if unknown)."""
    import dataclasses

    from abm.agents import resolve

    try:
        cls = resolve(kind)  # type: ignore[arg-type]
    except InvalidInput:
        return 0.0  # refused by name elsewhere
    field = next((f for f in dataclasses.fields(cls.Params) if f.name == "deposit_usdc"), None)
    return float(field.default) if field is not None and isinstance(field.default, (int, float)) else 0.0


def _check_market(i: int, m: Any, scn: Scenario, venue: Optional[Venue]) -> Iterator[Problem]:
    at = f"markets[{i}]"
    duration = scn.run.duration_s
    if venue is not None:
        from abm.errors import InvalidInput as _Invalid

        try:
            spec = venue.market_spec(m.symbol, m.tick_size, m.lot_size)
        except _Invalid as e:
            field = e.field if e.field in ("tick_size", "lot_size", "symbol") else "tick_size"
            yield Problem(f"{at}.{field}", getattr(m, field), e.allowed)
            spec = None
        if m.tier_class not in venue.tier_classes:
            yield Problem(f"{at}.tier_class", m.tier_class, f"must be one of {list(venue.tier_classes)} "
                                                            f"(the tier classes of venue '{scn.venue.profile}')")
        if spec is not None:
            tick = float(spec.tick_size)
            if m.s0 < tick:
                yield Problem(f"{at}.s0", m.s0, f"must be at least one tick ({spec.tick_size})")
            top = spec.max_tick_lots // PRICE_HEADROOM * tick
            if m.s0 > top:
                yield Problem(f"{at}.s0", m.s0, f"must be <= {top:g} with tick_size {m.tick_size} and lot_size "
                                                f"{m.lot_size}: one lot must stay within the 64-bit money ceiling "
                                                f"through {PRICE_HEADROOM}x moves")
    if m.sigma > MAX_SIGMA:
        yield Problem(f"{at}.sigma", m.sigma, f"must be <= {MAX_SIGMA:g} (annualised: {MAX_SIGMA * 100:,.0f} %/yr)")
    elif m.sigma > WARN_SIGMA:
        warn_once(f"{at}.sigma = {m.sigma:g} is {m.sigma * 100:,.0f} %/yr annualised volatility (crypto crashes are "
                  f"100-500 %/yr); accepted")
    for j, s in enumerate(m.shocks):
        if s.start_s >= duration:
            yield Problem(f"{at}.shocks[{j}].start_s", s.start_s,
                          f"must be < run.duration_s = {duration:g} s (a shock after the end never happens)")
    if m.oracle_interval_s is not None:
        yield from _whole_us(f"{at}.oracle_interval_s", m.oracle_interval_s)
    if m.oracle_delay_s is not None and m.oracle_delay_s >= duration:
        yield Problem(f"{at}.oracle_delay_s", m.oracle_delay_s,
                      f"must be < run.duration_s = {duration:g} s (the oracle would publish nothing in the run)")
    for j, (a, b) in enumerate(m.oracle_outages_s):
        if not 0 <= a < b:
            yield Problem(f"{at}.oracle_outages_s[{j}]", [a, b], "must be [start_s, end_s] with 0 <= start_s < end_s")
        elif a >= duration:
            yield Problem(f"{at}.oracle_outages_s[{j}]", [a, b],
                          f"must start before run.duration_s = {duration:g} s (an outage after the end never happens)")
    yield from _check_external_perps(at, m, duration, venue)
    if m.impact_notional_usdc is not None and usdc_units(m.impact_notional_usdc) > MAX_MONEY:
        yield Problem(f"{at}.impact_notional_usdc", m.impact_notional_usdc,
                      f"must be <= {MAX_MONEY / USDC:,.0f} USDC (the ledgers' 64-bit ceiling)")


def _check_external_perps(at: str, m: Any, duration: float, venue: Optional[Venue]) -> Iterator[Problem]:
    """External perps: distinct names, a mark formula that reads them, times that do something in the run."""
    if not m.external_perps:
        return
    names = [e.name for e in m.external_perps]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        yield Problem(f"{at}.external_perps", dup, "must have distinct names")
    if venue is not None and venue.profile.mark.formula != "hyperliquid":
        yield Problem(f"{at}.external_perps", names, f"are read only by the hyperliquid mark formula (venue "
                                                     f"'{venue.profile.name}' uses '{venue.profile.mark.formula}')")
    for j, e in enumerate(m.external_perps):
        for field in ("lag_s", "interval_s"):
            v = getattr(e, field)
            if v:
                yield from _whole_us(f"{at}.external_perps[{j}].{field}", v)
        if e.lag_s >= duration:
            yield Problem(f"{at}.external_perps[{j}].lag_s", e.lag_s, f"must be < run.duration_s = {duration:g} s (it "
                                                                       "would show the start price for the whole run)")


def _check_agents(scn: Scenario, venue: Venue) -> Iterator[Problem]:
    """What an agent group asks that the venue or the run cannot give: leverage above the venue's maximum,
    a start after the run's end. Parameters are checked by each kind's own class (schema._check_agents)."""
    from abm.agents import resolve

    tiers = {m.symbol: m.tier_class for m in scn.markets}
    first = scn.markets[0].symbol
    for name, table in scn.agents.items():
        kind = table.get("kind", name)
        try:
            cls = resolve(kind)
        except InvalidInput:
            continue  # reported by the schema
        params = {**_defaults(cls.Params), **table}
        if "symbols" in params:  # a basket: its markets, or every market when empty
            symbols = list(params["symbols"] or tiers) if isinstance(params["symbols"], (list, tuple)) else []
        else:
            symbols = [params.get("symbol") or first]
        for field in ("leverage", "leverage_max"):
            lev = table.get(field)  # as set: a drawn leverage's default bound is checked by the agent
            if field == "leverage" and lev is None:
                lev = params.get(field)
            if not isinstance(lev, (int, float)) or isinstance(lev, bool):
                continue
            for sym in symbols:
                if sym in tiers and tiers[sym] in venue.tier_classes:
                    top = venue.max_leverage(tiers[sym])
                    if lev > top:
                        yield Problem(f"agents.{name}.{field}", lev,
                                      f"must be <= {top} (the venue's maximum for {sym}, {scn.venue.profile}; refused, "
                                      "not capped)")
                        break
        for field in START_FIELDS:
            v = params.get(field)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v >= scn.run.duration_s:
                yield Problem(f"agents.{name}.{field}", v,
                              f"must be < run.duration_s = {scn.run.duration_s:g} s (the group would never act)")


def _defaults(params_cls: type) -> dict[str, Any]:
    import dataclasses

    return {f.name: f.default for f in dataclasses.fields(params_cls)
            if f.default is not dataclasses.MISSING}
