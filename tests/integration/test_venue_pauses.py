"""The venue's pauses in whole runs: the opt-in oracle rules (a stale oracle refuses the whale's block and holds
liquidations exactly while it is older than staleness.margin_s), triggered halts (an oracle outage; a move of X % of
the mark within Y s, found at the same mark update as a brute-force search), and transfer freezes that the
arbitrageur rides out (refused withdrawals retried at its wakes, a refused deposit held in transit until it lands).
Every run audits conservation; bad input is refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from abm.errors import InvalidInput, StaleOracle, TransferFrozen
from abm.model import MarketModel
from abm.results.fingerprint import fingerprint
from abm.scenarios import load_scenario
from abm.scenarios.runner import run
from tests.integration.test_world_events import SPOT

S = 1_000_000
SYM = "BTC-PERP"
# oracle_lag: publications every 3 s of the index 10 s before; the outage made 60 s long: the last publication before
# it is at 294 s, the first after it at 357 s (the first multiple of 3 at or after 355 s)
OUTAGE = {"run.duration_s": 420, "markets[0].oracle_outages_s": [[295, 355]]}


def stepped(model: MarketModel, probe: Any) -> dict[int, Any]:
    seen = {}
    while model.running:
        model.step()
        seen[model.time_us // S] = probe(model)
    return seen


def test_a_stale_oracle_refuses_the_block_and_holds_liquidations_while_older_than_margin_s() -> None:
    rules = ["oracle_trading_staleness", "oracle_margin_staleness"]
    model = MarketModel(load_scenario("oracle_lag", {**OUTAGE, "venue.rules": rules}, seed=7), audit=True)
    paused = stepped(model, lambda m: m.exchange.market(SYM).paused)
    # held from the first mark update more than 48 s after 294 s until the oracle publishes at 357 s
    assert [t for t, p in paused.items() if p and t > 20] == list(range(343, 357))
    # and before the first publication (12 s: the first multiple of 3 s at or after the 10 s delay): never published
    assert [t for t, p in paused.items() if p and t <= 20] == list(range(1, 12))
    (whale,) = model.agents_by_group["whale"]
    (short,) = whale.shortfalls
    assert short.filled == 0 and "oracle_trading_staleness" in short.reason and "staleness.trading_s = 4 s" in short.reason
    assert isinstance(whale.last_reject, StaleOracle)
    liq = model.tables()["liquidations"]
    assert not ((liq.time_us > 342 * S) & (liq.time_us < 357 * S)).any()


def test_oracle_rules_are_deterministic_and_recorded(tmp_path: Any) -> None:
    ov = {**OUTAGE, "run.duration_s": 330, "venue.rules": ["mark_oracle_divergence", "oracle_trading_staleness"]}
    a = run("oracle_lag", ov, seed=7, out=tmp_path / "run", report=False)
    assert fingerprint(a) == fingerprint(run(tmp_path / "run" / "config.toml", report=False))
    assert a.config["venue"]["rules"] == ["mark_oracle_divergence", "oracle_trading_staleness"]


# ------------------------------------------------------------------------------ triggered halts


HALT = {"kind": "venue_state", "state": "halted", "start_s": 0, "duration_s": 30}


def test_an_oracle_outage_triggers_a_halt_at_the_first_missed_publication() -> None:
    ov = {"run.duration_s": 360, "events": [{**HALT, "when": {"oracle_outage": True}}]}
    model = MarketModel(load_scenario("oracle_lag", ov, seed=7), audit=True)
    states = stepped(model, lambda m: m.exchange.market(SYM).state)
    (trig,) = model.event_triggers
    assert trig.fired_us == 297 * S  # the outage starts at 295 s; the oracle is due at 297 s and misses
    assert {t for t, s in states.items() if s} == set(range(297, 327))
    trades = model.tables()["trades"]
    assert not ((trades.time_us >= 297 * S) & (trades.time_us < 327 * S)).any()


def test_a_spot_venue_halt_is_triggered_by_its_perp_market_s_oracle() -> None:
    ov = {**SPOT, "run.duration_s": 100, "agents.whale.start_s": 95, "markets[0].oracle_outages_s": [[61, 70]],
          "events": [{**HALT, "venue": "binance", "when": {"oracle_outage": True}}]}
    model = MarketModel(load_scenario("whale_dump", ov, seed=7), audit=True)
    states = stepped(model, lambda m: m.spot_venues["binance"].market("BTC/USDC").state)
    assert model.event_triggers[0].fired_us == 63 * S  # the first publication due inside [61, 70)
    assert {t for t, s in states.items() if s} == set(range(63, 93))
    assert not model.exchange.market(SYM).state, "the perp venue is not halted"


def first_move(marks: list[tuple[int, int]], start: int, window: int, pct: float) -> int:
    """The first mark update (at or after ``start``) at which the mark is at least ``pct`` % below a mark at most
    ``window`` earlier (both at or after ``start``): the brute-force reading of the trigger."""
    from fractions import Fraction

    f = Fraction(repr(pct)) / 100
    seen = [(t, m) for t, m in marks if t >= start]
    for j, (t, m) in enumerate(seen):
        if any(t - s <= window and (ms - m) >= f * ms for s, ms in seen[:j]):
            return t
    return -1


def test_a_move_triggers_a_halt_at_the_mark_update_a_brute_force_search_finds() -> None:
    when = {"move_pct": 1.5, "within_s": 30, "direction": "down"}
    ov = {"run.duration_s": 420, "events": [{**HALT, "start_s": 200, "duration_s": 40, "when": when}]}
    model = MarketModel(load_scenario("whale_dump", ov, seed=7), audit=True)
    marks: list[tuple[int, int]] = []
    model.feeds[SYM].mark_listeners.append(lambda t, mark: marks.append((t, mark)))
    model.run()
    (trig,) = model.event_triggers
    assert trig.fired_us > 300 * S  # the block sale at 300 s is what moves the mark that much
    assert trig.fired_us == first_move(marks, 200 * S, 30 * S, 1.5)
    trades = model.tables()["trades"]
    window = (trades.time_us > trig.fired_us) & (trades.time_us < trig.fired_us + 40 * S)
    assert not window.any(), "nothing trades while halted (liquidations paused too)"


@pytest.mark.parametrize("events, field, words", [
    ([{**HALT, "when": {}}], "events[0].when", "must give a condition"),
    ([{**HALT, "when": {"oracle_outage": True, "move_pct": 5, "within_s": 60}}], "events[0].when.move_pct", "one condition"),
    ([{**HALT, "when": {"move_pct": 5}}], "events[0].when.within_s", "is required with move_pct"),
    ([{**HALT, "when": {"within_s": 5}}], "events[0].when.within_s", "only with move_pct"),
    ([{**HALT, "when": {"move_pct": 150, "within_s": 5}}], "events[0].when.move_pct", "less than 100"),
    ([{**HALT, "when": {"oracle_outage": True}}], "events[0].when.oracle_outage", "never fires"),
    ([{**HALT, "when": {"move_pct": 5, "within_s": 60}}, {**HALT, "start_s": 100, "state": "post_only"}],
     "events[1].markets", "a triggered state"),
    ([{"kind": "transfer_freeze", "start_s": 1, "duration_s": 1, "venue": "kraken"}], "events[0].venue", "spot venues"),
    ([{"kind": "transfer_freeze", "start_s": 1, "duration_s": 1, "blocks": "trades"}], "events[0].blocks",
     "'deposits', 'withdrawals' or 'both'"),
])
def test_bad_triggers_and_freezes_are_refused_by_name(events: list[dict[str, Any]], field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as e:
        load_scenario("baseline", {"events": events})
    lines = [p for p in e.value.problems if p.path == field]  # type: ignore[attr-defined]
    assert lines and words in lines[0].allowed, e.value


# ------------------------------------------------------------------------------ transfer freezes


def test_the_arbitrageur_rides_out_transfer_freezes() -> None:
    """Its spot leg on the simulated venue binance with 50,000 USDC, below one clip: it moves collateral there at its
    first wake. Perp withdrawals frozen for 40 s: every attempt (one a wake, every 2 s) is refused until 40 s; binance
    deposits frozen from 30 s to 150 s: the transfer arriving at 100 s is refused at 100, 102, ..., 148 s (25 times)
    and lands at 150 s, when the freeze ends."""
    ov = {**SPOT, "run.duration_s": 160, "agents.whale.start_s": 155,
          "agents.arbitrageur.spot_venue": "binance", "agents.arbitrageur.spot_cash_usdc": 50_000,
          "events": [{"kind": "transfer_freeze", "start_s": 0, "duration_s": 40, "blocks": "withdrawals"},
                     {"kind": "transfer_freeze", "venue": "binance", "start_s": 30, "duration_s": 120,
                      "blocks": "deposits"}]}
    model = MarketModel(load_scenario("whale_dump", ov, seed=7), audit=True)
    arbs = model.agents_by_group["arbitrageur"]
    frozen: dict[int, list[tuple[int, str]]] = {id(a): [] for a in arbs}

    def listener(seen: list[tuple[int, str]]) -> Any:
        def heard(action: str, e: Any) -> None:
            if isinstance(e, TransferFrozen):
                seen.append((model.sched.now, e.field))
        return heard

    for a in arbs:
        a.on_reject = listener(frozen[id(a)])  # type: ignore[method-assign]
    model.run()
    for a in arbs:
        first = a.transfers[0]
        assert (first["to"], first["sent_us"], first["arrived_us"], first["refused"]) == ("spot", 40 * S, 150 * S, 25)
        refused = frozen[id(a)]
        assert [t for t, f in refused if f == "deposits"] == list(range(100 * S, 150 * S, 2 * S))
        withdrawals = [t for t, f in refused if f == "withdrawals"]
        assert withdrawals and max(withdrawals) < 40 * S
        assert a.spot.rejects >= 25 and a.ctx.rejects >= len(withdrawals)  # each venue counts what it refused
    assert model.exchange.frozen_withdrawals == 0 and model.spot_venues["binance"].frozen_deposits == 0


def test_triggered_states_and_freezes_repeat_from_the_run_folder(tmp_path: Any) -> None:
    # baseline's mark first moves 0.01 % within 5 s after 10 s at 16 s (seed 5): a halt from 16 s to 26 s
    events = [{**HALT, "start_s": 10, "duration_s": 10, "when": {"move_pct": 0.01, "within_s": 5}},
              {"kind": "transfer_freeze", "start_s": 5, "duration_s": 30}]
    a = run("baseline", {"run.duration_s": 60, "events": events}, seed=5, out=tmp_path / "run", report=False)
    assert a.config["events"][0]["when"]["move_pct"] == 0.01 and a.config["events"][1]["blocks"] == "both"
    assert not ((a.trades.time_us >= 16 * S) & (a.trades.time_us < 26 * S)).any()
    assert ((a.trades.time_us >= 26 * S) & (a.trades.time_us < 30 * S)).any()
    again = run(tmp_path / "run" / "config.toml", report=False)
    assert fingerprint(again) == fingerprint(a)
    assert fingerprint(a) != fingerprint(run("baseline", {"run.duration_s": 60}, seed=5, report=False))
