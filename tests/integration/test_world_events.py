"""A scenario's [[events]] in whole runs: market makers standing aside quote nothing in their window and come back
after it, on the perp and on a spot venue; a halted perp trades nothing, refuses with the state's name and (paused)
liquidates only when it reopens, or (continue) liquidates into its frozen book; a halted spot venue leaves the
index. Every run audits conservation after every step; the same seed gives the same run; bad events are refused
by name."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from abm.errors import InvalidInput, VenueStateViolation
from abm.model import MarketModel
from abm.results.fingerprint import fingerprint
from abm.scenarios import load_scenario
from abm.scenarios.runner import run

SPOT: dict[str, Any] = {
    "markets[0].shocks": [],
    "markets[0].index": "venues",
    "spot": {"binance": {"weight": 3}},
    "agents.spot_mm": {"kind": "market_maker", "count": 3, "venue": "binance", "deposit_usdc": 2_000_000,
                       "spot_inventory": 20.0, "reference": "mid", "max_inventory": 15.0},
    "agents.spot_noise": {"kind": "noise", "count": 20, "venue": "binance", "deposit_usdc": 1_000_000,
                          "spot_inventory": 10.0},
}


def withdrawal(group: str, start_s: float, duration_s: float, **kw: Any) -> dict[str, Any]:
    return {"kind": "mm_withdrawal", "group": group, "start_s": start_s, "duration_s": duration_s, **kw}


def resting_notional(ex: Any, accounts: list[int]) -> int:
    """Quote units of the accounts' resting orders on venue ``ex`` (price x lots x multiplier)."""
    total = 0
    for aid in accounts:
        for sym, _, price, left in ex.open_orders(aid).values():
            total += price * left * ex.market(sym).spec.multiplier
    return total


def stepped(model: MarketModel, groups: dict[str, Any]) -> dict[str, dict[float, int]]:
    """Run the model; each group's resting notional on its venue at the end of every step, by time (s)."""
    seen: dict[str, dict[float, int]] = {g: {} for g in groups}
    while model.running:
        model.step()
        for g, ex in groups.items():
            seen[g][model.time_us / 1e6] = resting_notional(ex, [a.account for a in model.agents_by_group[g]])
    return seen


def test_market_makers_stand_aside_in_their_window_and_come_back() -> None:
    scn = load_scenario("baseline", {"run.duration_s": 180, "events": [withdrawal("market_maker", 60, 60)]}, seed=3)
    model = MarketModel(scn, audit=True)  # conservation after every step
    quoted = stepped(model, {"market_maker": model.exchange})["market_maker"]
    assert all(v > 0 for t, v in quoted.items() if 10 <= t < 60)
    assert all(v == 0 for t, v in quoted.items() if 61 <= t < 120), "nothing quoted in the window (after latency)"
    assert all(v > 0 for t, v in quoted.items() if t >= 125), "quoting again once it is over"
    assert all(mm.pull_reason != "withdrawn" for mm in model.agents_by_group["market_maker"])


def test_a_fraction_of_the_group_stands_aside() -> None:
    scn = load_scenario("baseline", {"run.duration_s": 100, "events": [withdrawal("market_maker", 40, 100,
                                                                                 fraction=0.5)]}, seed=3)
    model = MarketModel(scn, audit=True)
    makers = model.agents_by_group["market_maker"]
    model.run()
    away = [resting_notional(model.exchange, [mm.account]) for mm in makers]
    assert away[:3] == [0, 0, 0] and all(v > 0 for v in away[3:]), "the group's first round(0.5 x 6) = 3 only"


def test_spot_market_makers_stand_aside_on_their_own_venue() -> None:
    scn = load_scenario("whale_dump", {**SPOT, "run.duration_s": 150, "agents.whale.start_s": 140,
                                       "events": [withdrawal("spot_mm", 50, 50)]}, seed=7)
    model = MarketModel(scn, audit=True)  # audit: the perp and the spot venue, every step
    seen = stepped(model, {"spot_mm": model.spot_venues["binance"], "market_maker": model.exchange})
    spot, perp = seen["spot_mm"], seen["market_maker"]
    assert all(v > 0 for t, v in spot.items() if 20 <= t < 50)
    assert all(v == 0 for t, v in spot.items() if 51 <= t < 100)
    assert all(v > 0 for t, v in spot.items() if t >= 105)
    assert all(v > 0 for t, v in perp.items() if 51 <= t < 100), "the perp's makers were not asked"


HALT = {"kind": "venue_state", "state": "halted", "start_s": 290, "duration_s": 90}


@pytest.fixture(scope="module")
def halts() -> dict[str, Any]:
    """whale_dump (the block sale at 300 s, the index sliding 6% from 300 s) with the perp halted from 290 s to 380 s."""
    ov = {"run.duration_s": 420}
    return {liq: run("whale_dump", {**ov, "events": [{**HALT, "liquidations": liq}]}, seed=7, report=False)
            for liq in ("paused", "continue")}


def in_window(times: Any) -> Any:
    return (times >= 290e6) & (times < 380e6)


def test_a_halted_perp_trades_nothing_and_liquidates_when_it_reopens(halts: dict[str, Any]) -> None:
    r = halts["paused"]
    assert not in_window(r.trades.time_us).any(), "no fill while halted"
    liq = r.liquidations
    assert len(liq) and liq.time_us.min() == 380_000_000, "the check runs the moment it reopens"
    whale = [u for u in r.summary["unfilled"] if u["group"] == "whale"]
    assert whale[0]["filled"] == 0 and "halted: BTC-PERP is halted" in whale[0]["reason"]
    assert r.accounts.groupby("group")["rejects"].sum()["whale"] == 1
    assert (r.accounts.groupby("group")["rejects"].sum()[["market_maker", "noise"]] > 0).all()


def test_a_halt_that_lets_liquidations_go_on_fills_them_against_the_frozen_book(halts: dict[str, Any]) -> None:
    r = halts["continue"]
    trades = r.trades[in_window(r.trades.time_us)]
    assert len(trades) and trades.liquidation.all(), "only the venue's own liquidation orders trade while halted"
    assert in_window(r.liquidations.time_us).any()


def test_a_halted_spot_venue_leaves_the_index() -> None:
    """binance (weight 3) and okx (weight 2, the value itself): the weighted median is binance's mid, except while
    binance is halted, when only okx is left."""
    ov = {**SPOT, "run.duration_s": 150, "agents.whale.start_s": 140,
          "markets[0].index_sources": [{"name": "okx", "weight": 2}],
          "events": [{"kind": "venue_state", "state": "halted", "venue": "binance", "start_s": 60, "duration_s": 40}]}
    model = MarketModel(load_scenario("whale_dump", ov, seed=7), audit=True)
    pair = model.spot_venues["binance"].market("BTC/USDC")
    last: dict[float, int] = {}
    while model.running:
        model.step()
        last[model.time_us / 1e6] = pair.last_price
    li, value = model.indices["BTC-PERP"], model.paths["BTC-PERP"]
    t = np.array(li.times)
    v = np.array(li.values)
    okx = np.array([value.value_at(int(x)) for x in t])
    halted = (t >= 60e6) & (t < 100e6)
    assert np.allclose(v[halted], okx[halted], rtol=0, atol=1e-9)
    assert (np.abs(v[~halted & (t > 10e6)] - okx[~halted & (t > 10e6)]) > 1e-6).mean() > 0.9
    assert len({p for s, p in last.items() if 61 <= s < 100}) == 1, "no spot trade while halted"
    spot_rejects = [a.last_reject for a in model.agents_by_group["spot_noise"]]
    assert any(isinstance(e, VenueStateViolation) and e.field == "halted" for e in spot_rejects)


def test_the_same_seed_gives_the_same_run_and_the_folder_repeats_it(tmp_path: Any) -> None:
    ov = {"run.duration_s": 90, "events": [withdrawal("market_maker", 20, 20),
                                           {"kind": "venue_state", "state": "post_only", "start_s": 50, "duration_s": 20}]}
    a = run("baseline", ov, seed=5, out=tmp_path / "run", report=False)
    b = run("baseline", ov, seed=5, report=False)
    assert fingerprint(a) == fingerprint(b)
    again = run(tmp_path / "run" / "config.toml", report=False)  # the events are in the saved config
    assert fingerprint(again) == fingerprint(a)
    assert fingerprint(a) != fingerprint(run("baseline", {"run.duration_s": 90}, seed=5, report=False))


@pytest.mark.parametrize("events, field, words", [
    ([{"kind": "halt", "start_s": 1, "duration_s": 1}], "events[0].kind", "'mm_withdrawal' or 'venue_state' or 'transfer_freeze'"),
    ([withdrawal("market_maker", 1e6, 1)], "events[0].start_s", "never happens"),
    ([withdrawal("nobody", 1, 1)], "events[0].group", "agent groups"),
    ([withdrawal("noise", 1, 1)], "events[0].group", "a group of market makers"),
    ([withdrawal("market_maker", 1, 1, fraction=0.01)], "events[0].fraction", "at least one"),
    ([withdrawal("market_maker", 1, 1, venue="binance")], "events[0].venue", "unknown key"),
    ([{**HALT, "venue": "kraken"}], "events[0].venue", "spot venues"),
    ([{**HALT, "markets": ["ETH-PERP"]}], "events[0].markets[0]", "must be one of the markets"),
    ([{**HALT, "state": "paused"}], "events[0].state", "'halted', 'cancel_only', 'post_only' or 'reduce_only'"),
    ([{**HALT, "state": "post_only", "liquidations": "paused"}], "events[0].liquidations", "only a halt"),
    ([HALT, {**HALT, "state": "cancel_only", "start_s": 300}], "events[1].start_s", "one state at a time"),
])
def test_bad_events_are_refused_by_name(events: list[dict[str, Any]], field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as e:
        load_scenario("baseline", {"events": events})
    lines = [p for p in e.value.problems if p.path == field]  # type: ignore[attr-defined]
    assert lines and words in lines[0].allowed, e.value


def test_a_spot_venue_has_no_reduce_only_state() -> None:
    with pytest.raises(InvalidInput, match=r"events\[0\]\.state: is a perp venue's state"):
        load_scenario("whale_dump", {**SPOT, "events": [{**HALT, "state": "reduce_only", "venue": "binance"}]})
