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
  With ``when`` the state is triggered instead (``VenueTrigger``): watched from ``start_s``, it begins at the
  first missed oracle publication (``oracle_outage = true``) or the first mark update at which the mark has
  moved ``move_pct`` % of an earlier mark within ``within_s`` (``direction``), once, and lasts ``duration_s``.
  The move is exact (integer ticks against a Fraction) and costs O(1) per mark update amortised: the window's
  highest and lowest marks are kept in two monotonic queues.
- ``transfer_freeze``: the venue (the perp venue, or ``venue`` = a spot venue) refuses deposits, withdrawals or
  both from ``start_s`` for ``duration_s`` (``TransferFrozen``, a reject like any other): what kept arbitrage
  capital from moving between venues in March 2020. Freezes may overlap (each kind is counted).

A large seller is a whale group (``[agents.NAME]`` with ``kind = "whale"``, ``venue``, ``size``, ``start_s``,
``execution``), and news in the value is a market's ``shocks`` with ``index = "venues"``: both already are
what happens in the world, so they are not events too (one way to say each thing).

No events, nothing scheduled: a scenario without the section runs exactly as before.
"""

from __future__ import annotations

import math
from collections import deque
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable, Iterator

from abm.config import Problem
from abm.errors import InvalidInput
from abm.units import US_PER_S

if TYPE_CHECKING:
    from abm.model.model import MarketModel
    from abm.model.scenario import MmWithdrawalEvent, Scenario, TransferFreezeEvent, VenueStateEvent, VenueTrigger

PERP = "the perp venue"


def withdrawn_count(fraction: float, count: int) -> int:
    """How many of a group of ``count`` an ``mm_withdrawal`` of ``fraction`` takes: round half up."""
    return min(count, math.floor(fraction * count + 0.5))


def check_events(scn: Scenario) -> Iterator[Problem]:
    """Every event inside the run, naming groups, venues and markets the scenario has; states that fit the venue;
    no market in two states at once."""
    windows: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    triggered: dict[tuple[str, str], int] = {}  # (venue, market) -> the triggered event on it
    for j, ev in enumerate(scn.events):
        at = f"events[{j}]"
        if ev.start_s >= scn.run.duration_s:
            yield Problem(f"{at}.start_s", ev.start_s, f"must be < run.duration_s = {scn.run.duration_s:g} s (an event "
                                                       "after the end never happens)")
        if ev.kind == "mm_withdrawal":
            yield from _check_withdrawal(at, ev, scn)
        elif ev.kind == "transfer_freeze":
            yield from _check_freeze(at, ev, scn)
        else:
            covered = yield from _check_venue_state(at, ev, scn)
            if ev.when is not None:
                yield from _check_trigger(f"{at}.when", ev.when, scn, covered or ev.markets)
            for sym in covered:
                key = (ev.venue or PERP, sym)
                windows.setdefault(key, []).append((ev.start_s, ev.start_s + ev.duration_s, j))
                if ev.when is not None:
                    triggered.setdefault(key, j)
    for (venue, sym), spans in windows.items():
        spans.sort()
        if len(spans) > 1 and (venue, sym) in triggered:  # when a triggered state begins is known only in the run
            i = triggered[(venue, sym)]
            j = next(k for _, _, k in spans if k != i)
            yield Problem(f"events[{max(i, j)}].markets", scn.events[max(i, j)].markets,  # type: ignore[union-attr]
                          f"must not share {sym} ({venue}) with events[{min(i, j)}]: a triggered state's window is "
                          "known only when it fires, and a market is in one state at a time")
            continue
        for (a0, a1, i), (b0, _b1, j) in zip(spans, spans[1:]):
            if b0 < a1:
                yield Problem(f"events[{j}].start_s", b0, f"must not fall inside events[{i}] ({a0:g} s to {a1:g} s) on "
                                                         f"{sym} ({venue}): a market is in one state at a time")


def _check_trigger(at: str, when: VenueTrigger, scn: Scenario, symbols: list[str]) -> Iterator[Problem]:
    """One condition: an oracle outage, or a move (move_pct with within_s); an outage trigger needs an outage."""
    if when.oracle_outage and when.move_pct is not None:
        yield Problem(f"{at}.move_pct", when.move_pct, "must be left out with oracle_outage = true (one condition)")
    elif not when.oracle_outage and when.move_pct is None:
        yield Problem(f"{at}", when.model_dump(exclude_defaults=True), "must give a condition: oracle_outage = true, "
                                                                      "or move_pct with within_s")
    if when.move_pct is not None and when.within_s is None:
        yield Problem(f"{at}.within_s", None, "is required with move_pct (the move counts within this many seconds)")
    if when.move_pct is None and when.within_s is not None:
        yield Problem(f"{at}.within_s", when.within_s, "is read only with move_pct")
    if when.move_pct is None and when.direction != "either":
        yield Problem(f"{at}.direction", when.direction, "is read only with move_pct")
    if when.oracle_outage:
        outages = {m.symbol for m in scn.markets if m.oracle_outages_s}
        if symbols and not outages & set(symbols):
            yield Problem(f"{at}.oracle_outage", True, f"never fires: none of {symbols} has oracle_outages_s")


def _check_freeze(at: str, ev: TransferFreezeEvent, scn: Scenario) -> Iterator[Problem]:
    if ev.venue is not None and ev.venue not in scn.spot:
        yield Problem(f"{at}.venue", ev.venue, f"must be one of the scenario's spot venues {sorted(scn.spot)}, or left "
                                               "out for the perp venue")


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
        if ev.kind == "transfer_freeze":
            ex = model.exchange if ev.venue is None else model.spot_venues[ev.venue]
            deposits, withdrawals = ev.blocks in ("deposits", "both"), ev.blocks in ("withdrawals", "both")
            sched.at(start, _freeze, ex, deposits, withdrawals, 1, priority=VENUE)
            sched.at(end, _freeze, ex, deposits, withdrawals, -1, priority=VENUE)
            continue
        targets = _state_targets(model, ev)
        paused = ev.venue is None and ev.state == "halted" and ev.liquidations != "continue"
        if ev.when is not None:
            _arm(model, ev, start, end - start, targets, paused)
            continue
        sched.at(start, _set_state, targets, ev.state, paused, priority=VENUE)
        sched.at(end, _set_state, targets, "open", False, priority=VENUE)


class _Trigger:
    """One triggered venue state: fires once, at the first watched moment (at or after ``start``) that meets its
    condition, setting the state at once and scheduling the return to open ``duration`` later."""

    __slots__ = ("model", "state", "start", "duration", "targets", "paused", "fired_us")

    def __init__(self, model: MarketModel, state: str, start: int, duration: int, targets: list[Any], paused: bool) -> None:
        self.model, self.state, self.start, self.duration = model, state, start, duration
        self.targets, self.paused = targets, paused
        self.fired_us = -1  # when it fired; -1: not yet

    def fire(self, t: int) -> None:
        from abm.sim import VENUE

        self.fired_us = t
        _set_state(t, self.targets, self.state, self.paused)
        self.model.sched.at(t + self.duration, _set_state, self.targets, "open", False, priority=VENUE)


class MoveWatch:
    """Whether the mark has moved at least ``pct`` (a Fraction: 0.05 is 5 %) of an earlier mark within ``window_us``.

    Why two monotonic queues: the largest fall from any mark in the window is measured from the window's highest
    mark, the largest rise from its lowest; each queue keeps only marks that can still be the extreme, so each
    mark is pushed and popped once: O(1) amortised per update, exact in integers.
    """

    __slots__ = ("window_us", "num", "den", "down", "up", "_hi", "_lo")

    def __init__(self, pct: Fraction, window_us: int, direction: str = "either") -> None:
        self.window_us, self.num, self.den = window_us, pct.numerator, pct.denominator
        self.down, self.up = direction in ("either", "down"), direction in ("either", "up")
        self._hi: deque[tuple[int, int]] = deque()  # (t, mark), marks decreasing: the window's highest first
        self._lo: deque[tuple[int, int]] = deque()  # marks increasing: the lowest first

    def update(self, t: int, mark: int) -> bool:
        """Add the mark at ``t`` (times not decreasing); True if it is the moved-enough end of a move in the window."""
        cut = t - self.window_us
        hi, lo = self._hi, self._lo
        while hi and hi[0][0] < cut:
            hi.popleft()
        while lo and lo[0][0] < cut:
            lo.popleft()
        moved = ((self.down and bool(hi) and (hi[0][1] - mark) * self.den >= self.num * hi[0][1])
                 or (self.up and bool(lo) and (mark - lo[0][1]) * self.den >= self.num * lo[0][1]))
        while hi and hi[-1][1] <= mark:
            hi.pop()
        hi.append((t, mark))
        while lo and lo[-1][1] >= mark:
            lo.pop()
        lo.append((t, mark))
        return moved


def _arm(model: MarketModel, ev: VenueStateEvent, start: int, duration: int, targets: list[Any], paused: bool) -> None:
    """Watch the event's perp markets for its condition (``ev.when``) from ``start`` on."""
    when = ev.when
    assert when is not None
    trig = _Trigger(model, ev.state, start, duration, targets, paused)
    model.event_triggers.append(trig)
    watched = ev.markets or (model.symbols if ev.venue is None else list(model.perp_of_spot[ev.venue].values()))
    for sym in watched:
        feed = model.feeds[sym]
        if when.oracle_outage:
            feed.outage_listeners.append(_on_outage(trig))
        else:
            assert when.move_pct is not None and when.within_s is not None
            watch = MoveWatch(Fraction(repr(when.move_pct)) / 100, int(round(when.within_s * US_PER_S)), when.direction)
            feed.mark_listeners.insert(0, _on_move(trig, watch))  # before the agents' price triggers hear of the mark


def _on_outage(trig: _Trigger) -> Callable[[int], None]:
    def heard(t: int) -> None:
        if trig.fired_us < 0 and t >= trig.start:
            trig.fire(t)

    return heard


def _on_move(trig: _Trigger, watch: MoveWatch) -> Callable[[int, int], None]:
    def heard(t: int, mark: int) -> None:
        if trig.fired_us < 0 and t >= trig.start and watch.update(t, mark):
            trig.fire(t)

    return heard


def _freeze(t: int, ex: Any, deposits: bool, withdrawals: bool, step: int) -> None:
    ex.freeze_transfers(deposits, withdrawals, step)


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


__all__ = ["check_events", "schedule_events", "halted_spot_venues", "withdrawn_count", "MoveWatch"]
