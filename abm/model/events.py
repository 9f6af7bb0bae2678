"""What happens in the world during a run: a scenario's ``[[events]]``, checked before the run and scheduled in it.

Why a section of its own: a scenario says a stress as things that happen (market makers stand aside, a
venue halts), and each of them acts through the pieces that already exist rather than by editing state:

- ``mm_withdrawal``: the group's market makers are asked to stand aside (``MarketMaker.withdraw``) at
  ``start_s``, at the agents' priority; they cancel their quotes through their own context (after their
  latency, as any order) and quote nothing until the window ends, then refresh. ``fraction`` takes the
  group's first ``round(fraction x count)`` agents by index (no draw, so no stream changes).
- ``venue_state``: the venue that owns the markets changes their trading state at ``start_s`` and back
  to open at the end (``Exchange.set_market_state``, ``SpotExchange.set_market_state``) at the ``VENUE``
  priority, before anything else at that time; order entry then refuses what the state does not accept
  (``abm.exchange.entry``) with a ``VenueStateViolation`` naming the state, which the agent counts as a
  reject like any other. A perp halt pauses liquidations and funding samples unless
  ``liquidations = "continue"``; a halted spot venue leaves the index (it publishes no prices).

A large seller is a whale group (``[agents.NAME]`` with ``kind = "whale"``, ``venue``, ``size``, ``start_s``,
``execution``), and news in the value is a market's ``shocks`` with ``index = "venues"``: both already are
what happens in the world, so they are not events too (one way to say each thing).

No events, nothing scheduled: a scenario without the section runs exactly as before.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Iterator

from abm.config import Problem
from abm.errors import InvalidInput
from abm.units import US_PER_S

if TYPE_CHECKING:
    from abm.model.model import MarketModel
    from abm.model.scenario import MmWithdrawalEvent, Scenario, VenueStateEvent

PERP = "the perp venue"


def withdrawn_count(fraction: float, count: int) -> int:
    """How many of a group of ``count`` an ``mm_withdrawal`` of ``fraction`` takes: round half up."""
    return min(count, math.floor(fraction * count + 0.5))


def check_events(scn: Scenario) -> Iterator[Problem]:
    """Every event inside the run, naming groups, venues and markets the scenario has; states that fit the venue;
    no market in two states at once."""
    windows: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    for j, ev in enumerate(scn.events):
        at = f"events[{j}]"
        if ev.start_s >= scn.run.duration_s:
            yield Problem(f"{at}.start_s", ev.start_s, f"must be < run.duration_s = {scn.run.duration_s:g} s (an event "
                                                       "after the end never happens)")
        if ev.kind == "mm_withdrawal":
            yield from _check_withdrawal(at, ev, scn)
        else:
            for sym in (yield from _check_venue_state(at, ev, scn)):
                windows.setdefault((ev.venue or PERP, sym), []).append((ev.start_s, ev.start_s + ev.duration_s, j))
    for (venue, sym), spans in windows.items():
        spans.sort()
        for (a0, a1, i), (b0, _b1, j) in zip(spans, spans[1:]):
            if b0 < a1:
                yield Problem(f"events[{j}].start_s", b0, f"must not fall inside events[{i}] ({a0:g} s to {a1:g} s) on "
                                                         f"{sym} ({venue}): a market is in one state at a time")


def _check_withdrawal(at: str, ev: MmWithdrawalEvent, scn: Scenario) -> Iterator[Problem]:
    from abm.agents import resolve
    from abm.agents.market_maker import MarketMaker
    from abm.model.scenario import agent_groups

    groups = {name: (kind, count) for name, kind, count, _ in agent_groups(scn)}
    if ev.group not in groups:
        yield Problem(f"{at}.group", ev.group, f"must be one of the scenario's agent groups {sorted(groups)}")
        return
    kind, count = groups[ev.group]
    try:
        cls = resolve(kind)
    except InvalidInput:
        return  # the group's kind is refused by name under agents
    if not (isinstance(cls, type) and issubclass(cls, MarketMaker)):
        makers = sorted(n for n, (k, _) in groups.items() if _is_maker(k))
        yield Problem(f"{at}.group", ev.group, f"must be a group of market makers (kind market_maker or a subclass), "
                                               f"not {kind!r}; the scenario's are {makers}")
        return
    if type(count) is int and count >= 0 and withdrawn_count(ev.fraction, count) == 0:
        yield Problem(f"{at}.fraction", ev.fraction, f"must take at least one of the {count} market makers of group "
                                                     f"{ev.group!r} (round({ev.fraction:g} x {count}) = 0)")


def _is_maker(kind: Any) -> bool:
    from abm.agents import resolve
    from abm.agents.market_maker import MarketMaker

    try:
        cls = resolve(kind)
    except InvalidInput:
        return False
    return isinstance(cls, type) and issubclass(cls, MarketMaker)


def _check_venue_state(at: str, ev: VenueStateEvent, scn: Scenario) -> Any:
    """The venue-state event's problems (yielded); returns the perp symbols it covers (for the overlap check)."""
    from abm.model.scenario import spot_listings

    symbols = [m.symbol for m in scn.markets]
    if ev.venue is None:
        listed = symbols
    elif ev.venue not in scn.spot:
        yield Problem(f"{at}.venue", ev.venue, f"must be one of the scenario's spot venues {sorted(scn.spot)}, or left "
                                               "out for the perp venue")
        return []
    else:
        listed = spot_listings(scn)[ev.venue]
        if ev.state == "reduce_only":
            yield Problem(f"{at}.state", ev.state, f"is a perp venue's state: spot venue {ev.venue!r} has no positions to "
                                                   "reduce (halted, cancel_only or post_only)")
    if ev.liquidations is not None and (ev.venue is not None or ev.state != "halted"):
        yield Problem(f"{at}.liquidations", ev.liquidations, "only a halt of the perp venue (state = \"halted\", no "
                                                             "venue) chooses what liquidations do")
    where = PERP if ev.venue is None else f"spot venue {ev.venue!r}"
    bad = False
    for k, sym in enumerate(ev.markets):
        if sym not in listed:
            bad = True
            yield Problem(f"{at}.markets[{k}]", sym, f"must be one of the markets {where} lists {listed}")
    if len(set(ev.markets)) != len(ev.markets):
        bad = True
        yield Problem(f"{at}.markets", ev.markets, "must name each market once")
    return [] if bad else list(ev.markets or listed)


# ---------------------------------------------------------------------- in the run


def schedule_events(model: MarketModel) -> None:
    """Put the scenario's events on the model's scheduler (called once the agents exist and have started)."""
    from abm.sim import AGENT, VENUE

    sched = model.sched
    for ev in model.config.events:
        start = int(round(ev.start_s * US_PER_S))
        end = start + int(round(ev.duration_s * US_PER_S))
        if ev.kind == "mm_withdrawal":
            group = model.agents_by_group[ev.group]
            chosen = group[:withdrawn_count(ev.fraction, len(group))]
            sched.at(start, _withdraw, chosen, end, priority=AGENT)
            continue
        targets = _state_targets(model, ev)
        paused = ev.venue is None and ev.state == "halted" and ev.liquidations != "continue"
        sched.at(start, _set_state, targets, ev.state, paused, priority=VENUE)
        sched.at(end, _set_state, targets, "open", False, priority=VENUE)


def halted_spot_venues(model: MarketModel) -> set[str]:
    """Spot venues some event halts: only their index sources look at the venue's state (no cost elsewhere)."""
    return {ev.venue for ev in model.config.events
            if ev.kind == "venue_state" and ev.venue is not None and ev.state == "halted"}


def _state_targets(model: MarketModel, ev: VenueStateEvent) -> list[tuple[Any, str, bool]]:
    """(exchange, symbol on it, margined perp?) of each market the event covers."""
    if ev.venue is None:
        return [(model.exchange, sym, True) for sym in (ev.markets or model.symbols)]
    sx = model.spot_venues[ev.venue]
    pair_of = {perp: pair for pair, perp in model.perp_of_spot[ev.venue].items()}
    return [(sx, pair_of[sym], False) for sym in (ev.markets or list(pair_of))]


def _set_state(t: int, targets: list[tuple[Any, str, bool]], state: str, paused: bool) -> None:
    for ex, symbol, perp in targets:
        if perp:
            ex.set_market_state(symbol, state, paused)
        else:
            ex.set_market_state(symbol, state)


def _withdraw(t: int, agents: list[Any], until_us: int) -> None:
    for a in agents:
        a.withdraw(t, until_us)


__all__ = ["check_events", "schedule_events", "halted_spot_venues", "withdrawn_count"]
