"""Orders that do what they say: a parent order that ends short is recorded (agent, model frame, run summary)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from abm.model import MarketModel
from abm.model.model import UNFILLED_COLUMNS
from abm.scenarios import load_scenario
from abm.scenarios.runner import UNFILLED_SUMMARY_KEYS, collect_result
from tests.support import LOT, SYM, group, whale_model, whale_of

SELL = 1


def whale_dump(overrides: dict) -> tuple[MarketModel, dict]:
    scn = load_scenario("whale_dump", {"run.duration_s": 420, **overrides})
    m = MarketModel(scn).run()
    return m, collect_result(scn, m).summary


def base_units(lots: int) -> float:
    return float(Decimal(lots) * Decimal(str(LOT)))


@pytest.mark.parametrize("size", [40, 160])
def test_a_block_the_book_cannot_absorb_reports_filled_x_of_y(size):
    m, summary = whale_dump({"agents.whale.size": size})
    w = whale_of(m)
    # what filled, computed apart from the whale: its taker fills on the tape, and its position
    trades = m.tables()["trades"]
    taken = int(trades.loc[(trades.taker_account == w.account) & (trades.taker_side == SELL), "qty"].sum())
    assert taken == -w.position().size == w.filled_lots and 0 < taken < size / LOT
    (row,) = [r for r in summary["unfilled"] if r["group"] == "whale"]
    assert row == {"group": "whale", "agent": 0, "kind": "whale", "symbol": SYM, "what": "market sell",
                   "requested": float(size), "filled": base_units(taken), "orders": 1,
                   "time_s": row["time_s"], "reason": row["reason"]}
    assert 300 < row["time_s"] < 300.1  # when the order landed (the whale's latency after start_s)
    assert "ran out" in row["reason"] and "remainder='report'" in row["reason"]
    # the summary's list: the keys the report reads, in time order, and it survives the run folder's JSON
    assert all(tuple(r) == UNFILLED_SUMMARY_KEYS for r in summary["unfilled"])
    times = [r["time_s"] for r in summary["unfilled"]]
    assert times == sorted(times)
    assert json.loads(json.dumps(summary))["unfilled"] == summary["unfilled"]


def test_exits_the_venue_cut_short_and_the_flow_counters_are_recorded():
    m, summary = whale_dump({"agents.long_crowd.stop_loss_pct": 1.5, "agents.long_crowd.exit_slippage_bps": 5.0,
                             "agents.long_crowd.retry_s": 20.0})
    frame = m.unfilled_frame()
    assert tuple(frame.columns) == UNFILLED_COLUMNS
    exits = frame[frame.what == "market sell (exit: stop)"]
    assert len(exits) > 10
    crowd = m.agents_by_group["long_crowd"]
    for r in exits.itertuples():
        a = crowd[r.agent]
        entered = sum(q for _, ev, q, _ in a.history if ev == "entry")
        own_exit = -sum(q for _, ev, q, _ in a.history if ev == "exit:stop")
        assert (r.requested_lots, r.filled_lots) == (entered, own_exit) and own_exit < entered
        assert r.reason == "liquidated before the exit completed" and a.liquidations == 1
        assert any(ev == "liquidated" and t / 1e6 == r.time_s for t, ev, _, _ in a.history)
    # the background flow: per agent in the frame, one summed row per group in the summary
    noise = frame[frame.group == "noise"]
    counters = [a for a in m.agents_by_group["noise"] if a.short_orders]  # type: ignore[attr-defined]
    assert len(noise) == len(counters) > 1
    assert noise.orders.sum() == sum(a.short_orders for a in counters)  # type: ignore[attr-defined]
    (flow,) = [r for r in summary["unfilled"] if r["group"] == "noise"]
    assert flow["agent"] is None and flow["orders"] == noise.orders.sum()
    assert flow["requested"] == base_units(int(noise.requested_lots.sum()))
    assert flow["filled"] == base_units(int(noise.filled_lots.sum())) < flow["requested"]
    assert flow["time_s"] == noise.time_s.min()
    assert len(summary["unfilled"]) == len(frame) - len(noise) + 1


def test_remainder_work_keeps_selling_what_is_left():
    lots = int(12 / LOT)
    report = whale_of(whale_model({"execution": "market", "size": 12.0, "start_s": 30}).run())
    assert report.filled_lots < lots and len(report.shortfalls) == 1  # the thin book took only part at once
    m = whale_model({"execution": "market", "size": 12.0, "start_s": 30, "remainder": "work", "slice_s": 5.0,
              "duration_s": 120.0}).run()
    w = whale_of(m)
    assert w.filled_lots == lots == -w.position().size and not w.shortfalls and m.unfilled_frame().query("group == 'whale'").empty
    left = lots
    for o in w.orders:  # each order asks for exactly what the earlier ones left
        assert o["qty"] == left
        left -= o["filled"]
    assert len(w.orders) > 1 and left == 0
    # given too little time, it records what it could not sell, and how hard it tried
    w = whale_of(whale_model({"execution": "market", "size": 40.0, "start_s": 30, "remainder": "work", "slice_s": 5.0,
                       "duration_s": 20.0}).run())
    (s,) = w.shortfalls
    assert (s.requested, s.filled) == (int(40 / LOT), w.filled_lots) and s.time_us == 50_000_000
    assert s.reason.endswith(f"at each of {len(w.orders)} orders, 5 s apart over duration_s=20") and len(w.orders) == 4


def test_twap_slices_cut_at_their_bound_are_recorded_once_for_the_parent():
    w = whale_of(whale_model({"execution": "twap", "size": 20.0, "start_s": 30, "slice_s": 10.0, "duration_s": 60.0,
                       "max_slippage_bps": 10.0}).run())
    short = [o for o in w.orders if o["filled"] < o["qty"]]
    (s,) = w.shortfalls
    assert s.what == "twap sell" and s.requested == int(20 / LOT)
    assert s.filled == sum(o["filled"] for o in w.orders) == -w.position().size
    assert s.reason.startswith(f"{len(short)} of 6 slices came up short at max_slippage_bps=10") and short
    assert s.time_us == w.orders[-1]["arrived_us"]  # settled when the last slice had landed


def test_an_iceberg_that_gives_up_records_what_it_did_not_sell():
    m = whale_model({"execution": "iceberg", "size": 50.0, "start_s": 30, "display_size": 1.0, "offset_bps": 1.0,
              "duration_s": 40.0}).run()
    w = whale_of(m)
    (s,) = w.shortfalls
    assert s.what == "iceberg sell" and s.requested == int(50 / LOT)
    assert 0 < s.filled == -w.position().size < s.requested  # counted after the pull landed: no fill after it
    assert w.n_open_orders() == 0 and s.time_us >= 70_000_000
    assert s.reason == "gave up after duration_s=40 s with the rest not filled"


def test_a_hunt_that_finds_no_cluster_records_its_unspent_budget():
    # (a hunt that reached its target has done its job and records nothing: test_whale's hunt test)
    w = whale_of(whale_model({"execution": "hunt", "size": 5.0, "start_s": 30, "duration_s": 60.0}).run())
    (s,) = w.shortfalls
    assert (s.what, s.requested, s.filled, s.time_us) == ("hunt sell", 5_000, 0, 90_000_000)
    assert s.reason == "gave up after duration_s=60 s: no liquidation cluster within max_distance_pct"


def test_entries_the_book_fills_in_part():
    crowd = {"signal": "long", "entry_delay_s": 40.0, "entry_delay_min_s": 30.0, "wake": "none", "leverage": 10,
             "deposit_usdc": 2_000_000.0, "slippage_bps": 20.0, "margin_mode": "cross"}
    basket = {"deposit_usdc": 2_000_000.0, "entry_delay_s": 20.0, "slippage_bps": 20.0}
    m = whale_model(None, duration_s=100, extra=(group("leveraged", 3, crowd, name="crowd"),
                                          group("basket", 1, basket, name="basket")))
    m.run()
    frame = m.unfilled_frame().set_index(["group", "agent"])
    for a in m.agents_by_group["crowd"]:
        (entry,) = [q for _, ev, q, _ in a.history if ev == "entry"]
        r = frame.loc[("crowd", a.group_index)]
        assert r.what == "market buy (entry)" and r.filled_lots == entry == a.position().size < r.requested_lots
        assert r.reason == "no more liquidity within slippage_bps=20 of the mid"
    (b,) = m.agents_by_group["basket"]
    r = frame.loc[("basket", 0)]
    assert r.what == "market buy (entry)" and r.filled_lots == b.position().size < r.requested_lots
