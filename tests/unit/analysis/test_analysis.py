"""Run analysis: depth resilience, cascade attribution and metrics, stylized facts, the run summary.

Hand-built tables where the right numbers can be worked out by hand, plus one small real run.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from abm.analysis import cascade_graph, cascade_metrics, depth_metrics, run_summary, stylized_facts
from abm.analysis.liquidations import event_records, liquidated_positions, liquidation_events, liquidation_totals, mode_outcomes
from abm.analysis.stylized import acf1, excess_kurtosis, hill_alpha
from abm.model import MarketModel
from tests.support import group, market, scenario, shock

S = 1_000_000


# ---------------------------------------------------------------------------------------- depth


def depth_frame() -> pd.DataFrame:
    """Bid 50 -> 5 (linear over 100..110 s) then +0.5/s back to 50; ask 50 -> 25 and stays; shock at 100 s."""
    t = np.arange(1, 401, dtype=float)
    bid = np.where(t < 100, 50.0, np.where(t <= 110, 50 - 4.5 * (t - 100), np.minimum(50.0, 5 + 0.5 * (t - 110))))
    bid[t == 60] = 0.0  # a transient sweep inside the baseline window: the median ignores it
    ask = np.where(t < 100, 50.0, 25.0)
    spread = np.ones_like(t)
    spread[t == 115] = 250.0
    index = np.full_like(t, 100.0)
    mark = index.copy()
    mark[t == 120] = 97.0
    mid = index.copy()
    mid[t == 130] = 0.0  # no mid (one-sided book): ignored
    mid[t == 140] = 101.0
    return pd.DataFrame({"time_s": t, "index": index, "mark": mark, "mid": mid, "spread_bps": spread,
                         "depth_bid_1pct": bid, "depth_ask_1pct": ask})


def test_depth_drop_and_recovery_exact():
    d = depth_metrics(depth_frame(), shock_start_s=100, baseline_window_s=60)
    assert d["baseline_window"] == (40.0, 100.0)
    bid, ask, tot = d["bid"], d["ask"], d["total"]
    assert bid["baseline"] == 50 and bid["min"] == 5 and bid["time_of_min_s"] == 110
    assert bid["drop"] == pytest.approx(0.9)
    assert bid["recover_50_s"] == 40.0  # 25 reached at t = 150
    assert bid["recover_90_s"] == 80.0  # 45 reached at t = 190
    assert ask["baseline"] == 50 and ask["drop"] == pytest.approx(0.5) and ask["time_of_min_s"] == 100
    assert ask["recover_50_s"] == 0.0 and ask["recover_90_s"] is None  # already at 50%, never at 90%
    assert tot["baseline"] == 100 and tot["min"] == 30 and tot["time_of_min_s"] == 110
    assert tot["drop"] == pytest.approx(0.7)
    assert tot["recover_50_s"] == 40.0 and tot["recover_90_s"] is None  # tops out at 75
    assert d["spread_max_bps"] == 250.0
    assert d["basis_mark"] == {"max_abs_bps": pytest.approx(300.0), "min_bps": pytest.approx(-300.0), "max_bps": 0.0}
    assert d["basis_mid"]["max_abs_bps"] == pytest.approx(100.0) and d["basis_mid"]["min_bps"] == 0.0
    json.dumps(d, allow_nan=False)


def test_depth_without_shock_uses_first_window_and_suffixed_market():
    f = depth_frame().rename(columns=lambda c: c if c == "time_s" else f"{c}[ETH-PERP]")
    d = depth_metrics(f, shock_start_s=None, baseline_window_s=60, market="ETH-PERP")
    assert d["baseline_window"] == (1.0, 61.0)
    assert d["total"]["baseline"] == 100 and d["total"]["drop"] == pytest.approx(0.7)
    assert d["total"]["time_of_min_s"] == 110 and d["total"]["recover_50_s"] == 40.0
    # no shock and no drop at all: drop 0, recovered at once; an empty book has no drop to speak of
    flat = pd.DataFrame({"time_s": [1.0, 2.0, 3.0], "depth_bid_1pct": [0.0] * 3, "depth_ask_1pct": [4.0, 5.0, 6.0]})
    d = depth_metrics(flat, None, baseline_window_s=1)
    assert d["bid"]["drop"] is None and d["ask"]["baseline"] == 4.5 and d["ask"]["drop"] == 0.0
    assert d["ask"]["recover_90_s"] == 0.0


# ---------------------------------------------------------------------------------------- cascades

LIQ_COLS = ("event_id", "time_us", "trigger", "account", "market", "mode", "kind", "size", "price", "mark",
            "equity_before", "equity_after", "bad_debt", "insurance_after", "order_id")
TRADE_COLS = ("time_us", "market", "maker_oid", "maker_account", "taker_oid", "taker_account", "price", "qty",
              "taker_side", "liquidation")
SELL, BUY = 1, 0
MULT = {0: S}  # notional (USDC) = |size| * price in these tables


def liq_table(rows: list[tuple]) -> pd.DataFrame:
    """rows: (time_s, trigger, account, kind, size, price, order_id[, bad_debt USDC])."""
    out = []
    for i, r in enumerate(rows):
        t, trig, acct, kind, size, price, oid = r[:7]
        debt = r[7] if len(r) > 7 else 0
        out.append({"event_id": i, "time_us": int(t * S), "trigger": trig, "account": acct, "market": 0, "mode": 0,
                    "kind": kind, "size": size, "price": price, "mark": price, "equity_before": 0, "equity_after": 0,
                    "bad_debt": int(debt * S), "insurance_after": 0, "order_id": oid})
    return pd.DataFrame(out, columns=list(LIQ_COLS))


def trade_table(rows: list[tuple]) -> pd.DataFrame:
    """rows: (time_s, taker_oid, side, qty, price, liquidation[, market])."""
    out = [{"time_us": int(t * S), "market": (r[0] if r else 0), "maker_oid": 1, "maker_account": 99,
            "taker_oid": oid, "taker_account": 98, "price": p, "qty": q, "taker_side": side, "liquidation": liq}
           for (t, oid, side, q, p, liq, *r) in rows]
    return pd.DataFrame(out, columns=list(TRADE_COLS))


def chain_tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A shock at 100 s; A (shock) -> B -> C, A -> F (same mark update as B), E short (shock), D late (market)."""
    liqs = liq_table([
        (102, 10, 1, "book", -10, 100, 500),  # A: long sold, 1000
        (103, 11, 6, "book", -1, 99, 504),  # F: same mark update as B, 99
        (103, 11, 2, "book", -5, 99, 501),  # B: book slice then backstop, 495 + 490 = 985
        (103, 11, 2, "backstop", -5, 98, -1),
        (104, 12, 3, "adl", -2, 97, -1),  # C: 194
        (104, 12, 9, "adl_counterparty", 2, 97, -1),  # not a node
        (104, 12, 3, "bad_debt", 0, 0, -1, 7.5),  # C's bad debt
        (104, 12, 5, "book", 4, 97, 503),  # E: a short bought back, 388
        (300, 13, 4, "book", 3, 110, 502),  # D: 330, long after everything
    ])
    trades = trade_table([
        (50, 42, SELL, 3, 101, False),  # ordinary flow: never a parent
        (102, 500, SELL, 10, 100, True),  # A's fill
        (103, 504, SELL, 1, 99, True),  # F's fill
        (103, 501, SELL, 5, 99, True),  # B's fill (the last sell before trigger 12)
        (103.5, 43, SELL, 9, 98, False),  # ordinary flow again
        (103.9, 77, SELL, 9, 98, True, 1),  # a liquidation-flagged fill in another market: irrelevant here
        (104, 503, BUY, 4, 97, True),  # E's fill
        (300, 502, BUY, 3, 110, True),  # D's fill
    ])
    return liqs, trades


def test_cascade_graph_parents_by_hand():
    liqs, trades = chain_tables()
    G = cascade_graph(liqs, trades, shocks=(shock(100, 10, -5),), multiplier=MULT, lookback_s=30)
    A, B, C, D, E, F = "liq:1:10", "liq:2:11", "liq:3:12", "liq:4:13", "liq:5:12", "liq:6:11"
    liq_nodes = {n for n, d in G.nodes(data=True) if d["type"] == "liquidation"}
    assert liq_nodes == {A, B, C, D, E, F}
    assert set(G.nodes) == liq_nodes | {"market", "shock:0"}
    parent = {n: next(iter(G.predecessors(n))) for n in liq_nodes}
    assert all(G.in_degree(n) == 1 for n in liq_nodes)
    assert parent == {A: "shock:0", B: A, F: A, C: B, E: "shock:0", D: "market"}
    assert G.edges["shock:0", A]["rule"] == "shock" and G.edges["shock:0", A]["lag_s"] == 2.0
    assert G.edges[B, C]["rule"] == "liquidation" and G.edges[B, C]["lag_s"] == 1.0
    assert G.edges["market", D]["rule"] == "market"
    nb = G.nodes[B]
    assert nb["notional"] == 985 and nb["kinds"] == ("book", "backstop") and nb["kind"] == "backstop"
    assert nb["notional_by_kind"] == {"book": 495, "backstop": 490}
    assert G.nodes[C]["notional"] == 194 and G.nodes[C]["bad_debt"] == 7.5 and G.nodes[C]["kind"] == "adl"
    assert [G.nodes[n]["notional"] for n in (A, D, E, F)] == [1000, 330, 388, 99]
    # a shorter lookback cuts C off from B's fill (1 s before): C falls back to the shock window
    G2 = cascade_graph(liqs, trades, shocks=(shock(100, 10, -5),), multiplier=MULT, lookback_s=0.5)
    assert next(iter(G2.predecessors(C))) == "shock:0" and next(iter(G2.predecessors(B))) == "shock:0"
    # the liquidation orders' own moves come from the log: the tape adds nothing here
    assert set(cascade_graph(liqs, None, shocks=(shock(100, 10, -5),), multiplier=MULT).edges) == set(G.edges)
    # without the shock, A and E hang off the market root
    G3 = cascade_graph(liqs, trades, multiplier=MULT)
    assert next(iter(G3.predecessors(A))) == "market" and next(iter(G3.predecessors(E))) == "market"


def test_cascade_metrics_by_hand():
    liqs, trades = chain_tables()
    m = cascade_metrics(cascade_graph(liqs, trades, shocks=(shock(100, 10, -5),), multiplier=MULT))
    assert m["liquidations"] == 6 and m["notional"] == pytest.approx(2996)
    # the shock's tree {A, B, C, E, F} is one cascade; D under "market" is another
    assert m["cascades"] == 2
    assert m["largest_cascade_root"] == "shock:0"
    assert m["largest_cascade_events"] == 5 and m["largest_cascade_notional"] == pytest.approx(2666)
    assert m["longest_chain"] == 3  # A -> B -> C
    assert m["mean_branching"] == pytest.approx(1.5)  # A has 2 children, B has 1
    assert m["liq_edges"] == 3
    # R: children B + F + C over the distinct parents A + B
    assert m["triggered_notional"] == pytest.approx(985 + 99 + 194)
    assert m["parent_notional"] == pytest.approx(1000 + 985)
    assert m["R"] == pytest.approx(1278 / 1985)
    assert m["R_all"] == pytest.approx(1278 / 2996)
    assert m["notional_from_shocks"] == pytest.approx(1388) and m["notional_from_market"] == pytest.approx(330)
    # market-root cascades: each child of "market" is its own cascade
    m3 = cascade_metrics(cascade_graph(liqs, trades, multiplier=MULT))
    assert m3["cascades"] == 3 and m3["largest_cascade_root"] == "liq:1:10" and m3["largest_cascade_events"] == 4
    empty = cascade_metrics(cascade_graph(liqs.iloc[:0], trades.iloc[:0], shocks=(shock(1, 1, 1),)))
    assert empty["liquidations"] == 0 and empty["cascades"] == 0 and empty["R"] is None and empty["R_all"] is None


def test_cascade_whale_root_and_vault_unwind_credit():
    liqs = liq_table([
        (60, 5, 1, "book", -10, 100, 710),  # G: after the whale's sell
        (61, 6, 2, "backstop", -3, 95, -1),  # H: taken over by the vault (which then holds a long)
        (95, 9, 3, "book", -2, 90, 711),  # I: after the vault sold at 91
        (96, 10, 4, "book", 2, 91, 712),  # J: a short: no buy-side mover before it
    ])
    trades = trade_table([
        (50, 700, SELL, 20, 101, False),  # the whale's market order
        (60, 710, SELL, 10, 100, True),
        (91, 999, SELL, 3, 92, True),  # the vault unwinding (no liquidation row has order 999)
        (95, 711, SELL, 2, 90, True),
        (96, 712, BUY, 2, 91, True),
    ])
    G = cascade_graph(liqs, trades, whale_orders=[700], multiplier=MULT)
    par = {n: next(iter(G.predecessors(n))) for n, d in G.nodes(data=True) if d["type"] == "liquidation"}
    assert par == {"liq:1:5": "whale:700", "liq:2:6": "liq:1:5", "liq:3:9": "liq:2:6", "liq:4:10": "market"}
    assert G.edges["whale:700", "liq:1:5"]["rule"] == "whale"
    assert G.edges["liq:2:6", "liq:3:9"]["rule"] == "unwind" and G.edges["liq:2:6", "liq:3:9"]["lag_s"] == 4.0
    m = cascade_metrics(G)
    assert m["cascades"] == 2 and m["largest_cascade_root"] == "whale:700" and m["longest_chain"] == 3
    assert m["notional_from_whales"] == 1000
    # the whale given as a DataFrame of orders works the same; without it G hangs off the market
    G2 = cascade_graph(liqs, trades, whale_orders=pd.DataFrame({"order_id": [700]}), multiplier=MULT)
    assert set(G2.edges) == set(G.edges)
    assert next(iter(cascade_graph(liqs, trades, multiplier=MULT).predecessors("liq:1:5"))) == "market"
    # without the tape there is no unwind credit (nor whale): I only has G's sale, 35 s before, too old
    G3 = cascade_graph(liqs, None, whale_orders=[700], multiplier=MULT)
    assert next(iter(G3.predecessors("liq:3:9"))) == "market" and G3.out_degree("whale:700") == 0


# ---------------------------------------------------------------------------------------- stylized facts


def price_frame(log_returns: np.ndarray) -> pd.DataFrame:
    p = 100 * np.exp(np.concatenate([[0.0], np.cumsum(log_returns)]))
    return pd.DataFrame({"time_s": np.arange(1, p.size + 1, dtype=float), "mid": p})


def garch_returns(n: int, rng: np.random.Generator, omega: float = 1e-7, a: float = 0.15, b: float = 0.8) -> np.ndarray:
    r = np.empty(n)
    var = omega / (1 - a - b)
    for i in range(n):
        r[i] = math.sqrt(var) * rng.standard_normal()
        var = omega + a * r[i] ** 2 + b * var
    return r


def test_stylized_iid_gaussian_has_no_excess_kurtosis_or_clustering():
    rng = np.random.default_rng(5)
    f = stylized_facts(price_frame(0.001 * rng.standard_normal(20_000)), horizons_s=(1, 10, 60))
    assert list(f["horizon_s"]) == [1.0, 10.0, 60.0] and list(f["lag_rows"]) == [1, 10, 60]
    assert list(f["n"]) == [20_000, 2_000, 333]
    one = f.loc[1.0]
    assert abs(one["excess_kurtosis"]) < 0.15  # sd of the estimator ~ sqrt(24/n) = 0.035
    assert abs(one["acf_r_1"]) < 0.03 and abs(one["acf_abs_r_1"]) < 0.03  # sd ~ 1/sqrt(n) = 0.007
    assert one["std"] == pytest.approx(0.001, rel=0.03)
    assert f.loc[10.0, "std"] == pytest.approx(0.001 * math.sqrt(10), rel=0.06)
    assert abs(f.loc[10.0, "excess_kurtosis"]) < 0.4 and abs(f.loc[10.0, "acf_abs_r_1"]) < 0.08


def test_stylized_garch_has_fat_tails_and_volatility_clustering():
    f = stylized_facts(price_frame(garch_returns(20_000, np.random.default_rng(7))), horizons_s=(1,))
    assert f.loc[1.0, "acf_abs_r_1"] > 0.1
    assert f.loc[1.0, "excess_kurtosis"] > 0.5
    assert abs(f.loc[1.0, "acf_r_1"]) < 0.03  # clustering without linear predictability


def test_excess_kurtosis_is_pandas_estimator_exactly_summed():
    rng = np.random.default_rng(3)
    for x in (rng.standard_normal(500), rng.standard_t(3, 400), np.array([1.0, 2.0, 2.0, 3.0, 10.0])):
        assert excess_kurtosis(x) == pytest.approx(pd.Series(x).kurt(), rel=1e-9)
    assert math.isnan(excess_kurtosis(np.array([1.0, 2.0, 3.0]))) and excess_kurtosis(np.ones(6)) == 0.0


def test_hill_and_acf_by_hand():
    x = np.concatenate([np.ones(95), np.exp([2.0, 1.0, 1.0, 1.0, 0.5])])  # top 5% = 5 values over x_(6) = 1
    assert hill_alpha(x) == pytest.approx(1 / 1.1)
    pareto = np.random.default_rng(3).random(40_000) ** (-1 / 3)  # tail index 3
    assert hill_alpha(pareto) == pytest.approx(3.0, rel=0.1)
    assert math.isnan(hill_alpha(np.zeros(100)))  # no tail when the threshold is 0
    assert acf1(np.array([1.0, -1, 1, -1, 1, -1])) == pytest.approx(-5 / 6)
    # pairs only across present neighbours: (2, 3), (4, 5), (5, 6) around the mean 3.5
    assert acf1(np.array([1.0, np.nan, 2, 3, np.nan, 4, 5, 6])) == pytest.approx(
        (1.5 * 0.5 + 0.5 * 1.5 + 1.5 * 2.5) / (2.5**2 + 1.5**2 + 0.5**2 + 0.5**2 + 1.5**2 + 2.5**2))
    assert math.isnan(acf1(np.array([1.0, 2.0, np.nan, 3.0])))  # too few pairs


def test_stylized_drops_bad_prices_and_survives_short_series():
    bad = pd.DataFrame({"time_s": np.arange(1.0, 8.0), "mid": [100, 101, 0, 102, np.nan, 103, 104]})
    f = stylized_facts(bad, horizons_s=(1, 0.5))
    assert f.loc[1.0, "n"] == 2  # 100->101 and 103->104; nothing bridges the gaps
    assert f.loc[0.5, "lag_rows"] == 0 and f.loc[0.5, "n"] == 0 and math.isnan(f.loc[0.5, "acf_r_1"])
    short = stylized_facts(pd.DataFrame({"time_s": [1.0, 2.0, 3.0], "mid": [1.0, 2.0, 3.0]}))
    assert short["excess_kurtosis"].isna().all() and short["hill_alpha"].isna().all() and list(short["n"]) == [2, 0, 0]
    empty = stylized_facts(pd.DataFrame({"time_s": [], "mid": []}))
    assert len(empty) == 3 and (empty["n"] == 0).all()


# ---------------------------------------------------------------------------------------- summary


def test_liquidation_events_by_hand():
    liqs, _ = chain_tables()
    ev = liquidation_events(liqs, MULT)
    assert list(ev["event"]) == ["liq:1:10", "liq:6:11", "liq:2:11", "liq:3:12", "liq:5:12", "liq:4:13"]  # log order
    assert list(ev["rows"]) == [1, 1, 2, 1, 1, 1]  # B's book slice and backstop are one event; no counterparty row
    b = ev.set_index("event").loc["liq:2:11"]
    assert b["kind"] == "backstop" and b["book_units"] == 495 * S and b["backstop_units"] == 490 * S
    assert b["notional"] == 985 and b["markets"] == (0,)
    assert ev.set_index("event").loc["liq:3:12", "bad_debt_units"] == 7.5 * S
    tot = liquidation_totals(event_records(liqs, MULT))
    assert tot["events"] == 6 and tot["rows"] == 7 and tot["accounts"] == 6
    assert tot["by_last_resort"] == {"book": 4, "backstop": 1, "adl": 1}
    assert tot["notional_units"] == 2996 * S and tot["notional_by_kind"]["adl"] == 194


def test_money_is_summed_exactly_whatever_the_order():
    """0.1 + 0.2 + 0.3 is 0.6000000000000001 in floats (Python 3.11's sum) but 0.6 exactly rounded (3.12's):
    the summary sums integer quote units, so it says 0.6 on every version and in every node order."""
    liqs = liq_table([(100, 1, 1, "book", -1, 100_000, 1), (101, 2, 2, "book", -1, 200_000, 2),
                      (102, 3, 3, "book", -1, 300_000, 3)])
    s = run_summary(depth_frame(), liqs, None, {0: 1}, ())
    assert s["liquidated_notional"]["total"] == 0.6 and s["liquidated_notional"]["book"] == 0.6
    assert s["cascade"]["notional"] == 0.6 and s["largest_cascade_notional"] in (0.6, 0.3)
    assert math.fsum([0.1, 0.2, 0.3]) == 0.6  # the exactly rounded answer the integers give
    shuffled = run_summary(depth_frame(), liqs.iloc[::-1].reset_index(drop=True), None, {0: 1}, ())
    assert shuffled["liquidated_notional"] == s["liquidated_notional"]
    assert shuffled["cascade"]["notional"] == s["cascade"]["notional"]


def test_losses_of_liquidated_positions_by_hand():
    """A trader buys 10 at 100 (tape), is taken over by the vault at 90 with 30 left in its unit; another
    sells 4 at 100, buys 1 back at 95 and is liquidated into the book at 110 (3 lots) with a bad debt of 5."""
    liqs = liq_table([(50, 7, 1, "backstop", -10, 90, -1), (60, 8, 2, "book", 3, 110, 900),
                      (60, 8, 2, "bad_debt", 0, 0, -1, 5)])
    liqs.loc[0, "equity_before"] = 30 * S
    liqs.loc[0, "mode"] = 1  # the first trader's position was isolated
    trades = trade_table([(10, 100, BUY, 10, 100, False), (20, 101, SELL, 4, 100, False),
                          (30, 102, BUY, 1, 95, False), (60, 900, BUY, 3, 110, True)])
    trades["taker_account"] = [1, 2, 2, 2]
    pos = liquidated_positions(event_records(liqs, MULT), liqs, trades, MULT, {0: 1}).set_index("account")
    assert pos.loc[1, "pnl_units"] == (90 - 100) * 10 * S and pos.loc[1, "forfeited_units"] == 30 * S
    assert pos.loc[1, "loss_units"] == 130 * S  # 100 lost on the price and 30 left to the vault
    assert pos.loc[2, "pnl_units"] == (400 - 95 - 330) * S and pos.loc[2, "bad_debt_units"] == 5 * S
    assert pos.loc[2, "loss_units"] == 20 * S  # 25 lost on the price, 5 of it paid by the fund
    assert list(pos["mode"]) == [1, 0] and pos.loc[2, "first_us"] == pos.loc[2, "last_us"] == 60 * S
    modes = mode_outcomes(event_records(liqs, MULT), pos.reset_index())
    assert modes[1]["loss"] == 130 and modes[0]["loss"] == 20 and modes[0]["bad_debt_units"] == 5 * S
    assert modes[1]["notional"] == 900 and modes[0]["events"] == 1 and modes[0]["positions"] == 1
    # a position still open at the end is valued at the last mark
    still = liquidated_positions(event_records(liqs.iloc[1:], MULT), liqs.iloc[1:], trades.iloc[1:3], MULT, {0: 90})
    assert still.loc[0, "pnl_units"] == (400 - 95 - 3 * 90) * S


def test_run_summary_by_hand():
    liqs, trades = chain_tables()
    steps = depth_frame()
    steps["insurance_fund"] = np.linspace(1000, 992.5, len(steps))
    steps["funding_predicted"] = np.linspace(-1e-4, 3e-4, len(steps))
    funding = pd.DataFrame({"time_us": [3600 * S, 7200 * S], "market": [0, 0], "rate": [2e-5, -7e-5],
                            "price": [1, 1], "paid": [0, 0], "received": [0, 0], "rounding": [0, 0], "accounts": [0, 0]})
    s = run_summary(steps, liqs, funding, MULT, (shock(100, 10, -5),), trades=trades)
    json.dumps(s, allow_nan=False)
    assert s["liquidated_notional"] == {"book": 1000 + 99 + 495 + 388 + 330, "backstop": 490, "adl": 194,
                                        "total": 2996}
    assert s["liquidation_rows"] == 7 and s["liquidation_events"] == 6 and s["accounts_liquidated"] == 6
    assert s["largest_cascade_events"] == 5 and s["largest_cascade_notional"] == pytest.approx(2666)
    assert s["longest_chain"] == 3 and s["R"] == pytest.approx(1278 / 1985)
    assert s["worst_depth_drop"] == pytest.approx(0.7) and s["depth_recover_50_s"] == 40.0
    assert s["max_abs_basis_bps"] == pytest.approx(300) and s["max_spread_bps"] == 250
    assert s["funding_min"] == -7e-5 and s["funding_max"] == 2e-5
    assert s["funding_predicted_min"] == -1e-4 and s["funding_predicted_max"] == pytest.approx(3e-4)
    assert s["insurance_fund_end"] == 992.5 and s["bad_debt_total"] == 7.5
    # the scenario runner's form: no tape, shocks as dicts naming the (first, unsuffixed) market's symbol
    runner = run_summary(steps, liqs, funding.iloc[:0], MULT,
                         [{"symbol": "BTC-PERP", "start_s": 100, "duration_s": 10, "pct": -5}])
    json.dumps(runner, allow_nan=False)
    assert runner["cascade"] == s["cascade"]  # liquidation orders' moves come from the log itself
    assert runner["worst_depth_drop"] == pytest.approx(0.7) and runner["funding_max"] is None
    # a shock named for another market neither roots these liquidations nor sets this market's baseline
    other = run_summary(steps.assign(**{"mark[ETH-PERP]": 1.0}), liqs, funding, MULT,
                        [{"symbol": "ETH-PERP", "start_s": 100, "duration_s": 10, "pct": -5}], trades=trades)
    assert other["cascade"]["notional_from_shocks"] == 0 and other["cascades"] == 3  # A, E, D off "market"
    assert other["depth_recover_50_s"] == 40.0  # no shock for the first market: baseline = first minute, same here


# ---------------------------------------------------------------------------------------- a real run


def test_missing_mid_and_spread_are_nan_and_left_out():
    """A book with one side empty has no mid and no spread: NaN in the steps, never 0, and left out."""
    model = MarketModel(scenario(seed=1, duration_s=40, agents=(group("noise", 3, {}),))).run()
    steps = model.steps_frame()
    mid, spread = steps["mid"], steps["spread_bps"]
    assert mid.isna().any() and mid.notna().any()  # the thin book is one-sided at times
    assert (mid.isna() == spread.isna()).all() and (mid.dropna() > 0).all() and (spread.dropna() > 0).all()
    s = run_summary(steps, *(model.tables()[k] for k in ("liquidations", "funding")), {0: 1}, ())
    assert s["max_spread_bps"] == spread.max() and s["max_abs_mid_basis_bps"] is not None
    ix = steps["index"]
    assert s["max_abs_mid_basis_bps"] == pytest.approx(((mid - ix).abs() / ix * 1e4).max())  # NaN rows skipped
    facts = stylized_facts(steps, "mid", horizons_s=(1,))
    ok = mid.notna().to_numpy()
    assert facts.loc[1.0, "n"] == int((ok[1:] & ok[:-1]).sum())  # a return touching a missing mid is missing



def test_real_run_cascade_summary_and_depth():
    cfg = scenario(seed=11, duration_s=600, markets=(market(shocks=(shock(240, 30, -9),)),), agents=(
        group("noise", 30, {}), group("market_maker", 5, {}), group("arbitrageur", 3, {}),
        group("leveraged", 40, {"signal": "long", "entry_delay_s": 60, "leverage_min": 15, "leverage_max": 40,
                                     "margin_mode": "mixed"})))
    model = MarketModel(cfg).run()
    steps, tables = model.steps_frame(), model.tables()
    mult = {i: m.spec.multiplier for i, m in enumerate(model.exchange.markets)}
    G = cascade_graph(tables["liquidations"], tables["trades"], shocks=model.config.markets[0].shocks, multiplier=mult)
    liq_nodes = [n for n, d in G.nodes(data=True) if d["type"] == "liquidation"]
    assert liq_nodes and all(G.in_degree(n) == 1 for n in liq_nodes)
    liq = tables["liquidations"]
    assert len(liq_nodes) == len(liq[liq["kind"].isin(["book", "backstop", "adl"])][["account", "trigger"]].drop_duplicates())
    s = run_summary(steps, liq, tables["funding"], mult, {0: model.config.markets[0].shocks}, trades=tables["trades"])
    assert json.loads(json.dumps(s, allow_nan=False)) == s
    assert s["cascades"] >= 1 and s["longest_chain"] >= 2 and s["R"] is not None  # the shock did cascade
    # the summary's notional agrees with what the model's own per-step metrics recorded
    recorded = sum(steps[f"liq_{k}_notional"].sum() for k in ("book", "backstop", "adl"))
    assert s["liquidated_notional"]["total"] == pytest.approx(recorded)
    assert s["liquidation_events"] == len(liq_nodes) and s["largest_cascade_events"] >= 1
    assert s["worst_depth_drop"] > 0.5
    d = depth_metrics(steps, 240)
    assert d["total"]["drop"] == s["worst_depth_drop"]
    facts = stylized_facts(steps, "mark")
    assert list(facts["horizon_s"]) == [1.0, 10.0, 60.0] and facts.loc[1.0, "n"] > 500
