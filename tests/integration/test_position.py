"""A user's position in a scenario with its leashes, checked against the tape and closed forms; position_risk over
seeds with every mode on the same seeds."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from math import floor

import numpy as np
import pandas as pd
import pytest

from abm.agents.leashed import LeashedTrader, fills_by_order
from abm.agents.leashes import Stop, StopSpec, TakeProfit, TakeProfitSpec, TrailingStop, TrailingStopSpec
from abm.errors import InvalidInput
from abm.model import MarketModel
from abm.position import position_risk
from abm.position.stats import expected_shortfall, var, wilson
from tests.support import ABM, group, market, scenario

SYM = "BTC-PERP"


def crash_model(leashes=(), mode="isolated", outages=(), extra=(), **pos) -> MarketModel:
    """A calm book, a 10x long opened at 30 s, then a -8 % slide from 100 s; audited (conservation each event)."""
    params = {"notional_usdc": 30_000.0, "leverage": 10, "margin_mode": mode, "open_s": 30.0, "deposit_usdc": 5_000.0,
              "leashes": list(leashes)}
    params.update(pos)
    cfg = scenario(seed=4, duration_s=300, markets=(market(symbol=SYM, s0=60_000, sigma=0.2, shocks=((100, 60, -8),),
                                                           oracle_outages_s=outages),),
                   agents=(group("noise", 30, {}), group("market_maker", 3, {"pull_vol": None}),
                           group("arbitrageur", 2, {}), group("position", 1, params), *extra))
    m = MarketModel(cfg, audit=True)
    m.run()
    return m


def holder(m: MarketModel):
    return m.agents_by_group["position"][0]


def fills(m: MarketModel, account: int) -> pd.DataFrame:
    """The account's fills from the tape: time, price (ticks), signed lots (+ bought)."""
    t = m.tape
    col = {c: np.frombuffer(t.column(c), dtype=np.int64) for c in ("time_us", "price", "qty", "taker_account",
                                                                   "maker_account", "taker_side")}
    taker, maker = col["taker_account"] == account, col["maker_account"] == account
    buy = np.where(taker, col["taker_side"] == 0, col["taker_side"] == 1)
    mine = taker | maker
    return pd.DataFrame({"time_us": col["time_us"][mine], "price": col["price"][mine],
                         "lots": np.where(buy[mine], col["qty"][mine], -col["qty"][mine])})


def outcome(m: MarketModel) -> dict:
    a = holder(m)
    liquidated = bool(m.exchange.liquidations.to_pandas().query("account == @a.account").shape[0])
    return a.outcome(fills_by_order(m.tape, a.account), liquidated)


def test_the_position_opens_at_its_notional_and_its_entry_is_the_tapes_vwap():
    m = crash_model()
    a = holder(m)
    f = fills(m, a.account)
    opening = f[f["lots"] > 0]
    assert a.requested == floor(Fraction(30_000 * 10**6) / (a.entry_mark * a.ctx.multiplier(SYM)))
    assert opening["lots"].sum() == a.requested
    vwap = Fraction(int((opening["price"] * opening["lots"]).sum()), int(opening["lots"].sum()))
    assert a.entry == vwap  # the exchange's entry price, which the leashes read, is the fills' vwap
    out = outcome(m)
    assert out["entry_price"] == pytest.approx(float(vwap) * 0.1)
    assert out["opened_s"] * 1e6 >= 30_000_000 + a.latency.min_us


def test_a_market_stop_closes_the_whole_position_and_reports_the_books_fills():
    m = crash_model([{"kind": "stop", "pct": 3}])
    a = holder(m)
    (rec,) = a.exits
    level = floor(a.entry * Fraction(97, 100))
    assert rec.kind == "stop" and rec.trigger_mark <= level and a.position().size == 0
    closing = fills(m, a.account)
    closing = closing[closing["lots"] < 0]
    vwap = Fraction(int((closing["price"] * -closing["lots"]).sum()), int(-closing["lots"].sum()))
    out = outcome(m)
    assert out["ended"] == "exit" and out["exit_filled_base"] == pytest.approx(rec.held * 0.001)
    assert out["exit_slippage_bps"] == pytest.approx(float((rec.trigger_mark - vwap) / rec.trigger_mark * 10_000))
    last = closing["time_us"].max()
    assert out["time_to_flat_s"] == (last - rec.trigger_us) / 1e6 and last - rec.trigger_us >= a.latency.min_us


def test_a_twap_exit_sends_its_slices_an_interval_apart():
    m = crash_model([{"kind": "twap_exit", "pct": 3, "slices": 4, "interval_s": 10, "slippage_bps": 1000}],
                    leverage=5, deposit_usdc=8_000.0)
    a = holder(m)
    (rec,) = a.exits
    closing = fills(m, a.account)
    closing = closing[closing["lots"] < 0]
    assert len(rec.oids) >= 4 and a.position().size == 0 and -closing["lots"].sum() == rec.held
    assert outcome(m)["ended"] == "exit"
    assert [t - rec.sent_us[0] for t in rec.sent_us[:4]] == [0, 10_000_000, 20_000_000, 30_000_000]
    assert rec.sent_us[0] == rec.trigger_us


def test_a_stop_limit_rests_at_its_price_and_fills_only_there():
    m = crash_model([{"kind": "stop", "pct": 3, "order": "limit", "limit_offset_bps": 50}])
    a = holder(m)
    (rec,) = a.exits
    level = Fraction(floor(a.entry * Fraction(97, 100)))
    price = floor(level * (1 - Fraction(50, 10_000)))
    mine = fills_by_order(m.tape, a.account)
    got = [mine[o] for o in rec.oids if o in mine]
    assert len(rec.oids) == 1 and all(Fraction(f.notional, f.lots) >= price for f in got)


def test_a_top_up_moves_the_wallet_into_the_isolated_margin():
    m = crash_model([{"kind": "top_up", "distance_pct": 4, "amount_usdc": 1_000, "max_usdc": 2_000}])
    a = holder(m)
    assert a.top_ups and sum(amount for _, amount, _, _ in a.top_ups) <= 2_000 * 10**6
    for _, amount, before, after in a.top_ups:
        assert after - before == amount == 1_000 * 10**6
    assert outcome(m)["topped_up_usdc"] == sum(x[1] for x in a.top_ups) / 1e6


def test_a_stale_oracle_closes_the_position():
    m = crash_model([{"kind": "stale_oracle", "max_age_s": 5, "check_s": 1}], outages=((60, 90),))
    (rec,) = holder(m).exits
    assert rec.kind == "stale_oracle" and holder(m).position().size == 0
    # the last publication is at most one oracle interval (3 s) before the outage: 5 s later, within a look
    assert 62_000_000 <= rec.trigger_us <= 66_100_000
    assert not holder(crash_model([{"kind": "stale_oracle", "max_age_s": 5, "check_s": 1}])).exits


def test_levels_in_closed_form():
    class H:
        entry, sign, best = Fraction(60_001), 1, 62_000

    h = H()
    assert Stop(StopSpec(kind="stop", pct=5)).levels(h) == (floor(60_001 * 0.95), None)
    assert TakeProfit(TakeProfitSpec(kind="take_profit", pct=10)).levels(h) == (None, 66_002)  # ceil(66001.1)
    assert TrailingStop(TrailingStopSpec(kind="trailing_stop", pct=2)).levels(h) == (60_760, 62_001)
    h.sign, h.best = -1, 58_000
    assert Stop(StopSpec(kind="stop", pct=5)).levels(h) == (None, 63_002)  # ceil(63001.05)
    assert TrailingStop(TrailingStopSpec(kind="trailing_stop", pct=2)).levels(h) == (57_999, 59_160)


@pytest.mark.parametrize("leash, mode, message", [
    ({"kind": "stopp", "pct": 3}, "isolated", "leashes\\[0\\]"),
    ({"kind": "stop"}, "isolated", "leashes\\[0\\].pct"),
    ({"kind": "stop", "pct": 300}, "isolated", "leashes\\[0\\].pct"),
    ({"kind": "top_up", "distance_pct": 2, "amount_usdc": 1, "max_usdc": 2}, "cross", "margin_mode = 'isolated'"),
    ({"kind": "hedge", "pct": 2, "symbol": SYM}, "isolated", "another market"),
    ({"kind": "hedge", "pct": 2, "symbol": "ETH-PERP"}, "isolated", "hedge's symbol"),
])
def test_bad_leashes_are_named(leash, mode, message):
    with pytest.raises(InvalidInput, match=message):
        crash_model([leash], mode=mode)


def test_statistics_in_closed_form():
    lo, hi = wilson(0, 200)
    assert lo == pytest.approx(0, abs=1e-12) and hi == pytest.approx(0.018846, abs=1e-6)  # 3.84 / (200 + 3.84)
    assert wilson(200, 200)[1] == 1
    x = np.arange(1, 101, dtype=float)
    assert var(x, 0.95) == pytest.approx(95.05) and expected_shortfall(x, 0.95) == pytest.approx(98.0)


def test_position_risk_compares_the_modes_on_the_same_seeds(tmp_path):
    r = position_risk("whale_dump", notional=50_000, leverage=20, stop="4%", seeds=2, workers=2, out=tmp_path / "p",
                      deposit=3_000, figure=True)
    assert list(r.summary["mode"]) == ["isolated", "cross"] and (r.runs["error"] == "").all()
    seeds = [set(g["seed"]) for _, g in r.runs.groupby("mode")]
    assert seeds[0] == seeds[1] == set(r.without["seed"])
    for mode, g in r.runs.groupby("mode"):
        s = r.summary.set_index("mode").loc[mode]
        paired = g.merge(r.without[["seed", "liquidated_notional.total"]], on="seed", suffixes=("", "_w"))
        diff = paired["liquidated_notional.total"] - paired["liquidated_notional.total_w"]
        assert s["impact_mean"] == pytest.approx(diff.mean())
        assert s["p_liquidated"] == g["metric.liquidated"].mean()
        assert s["loss_q50"] == pytest.approx(g["metric.loss_usdc"].median())
    assert all(p.exists() for p in r.files.values()) and "P(liquidated)" in r.table()
    # resumable: the same call runs nothing again
    again = position_risk("whale_dump", notional=50_000, leverage=20, stop="4%", seeds=2, out=tmp_path / "p",
                          deposit=3_000, figure=False)
    assert again.runs.drop(columns="wall_s").equals(r.runs.drop(columns="wall_s"))


def test_command_line_position(tmp_path):
    out = subprocess.run([ABM, "position", "whale_dump", "--mode", "cross", "--seeds", "1", "--stop", "4%", "--leash",
                          '{kind = "take_profit", pct = 5}', "--out", str(tmp_path / "c"), "--no-progress"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    assert "P(liquidated)" in out.stdout and (tmp_path / "c" / "position_report.png").exists()
    bad = subprocess.run([ABM, "position", "whale_dump", "--mode", "portfolio"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode != 0 and "--mode" in bad.stderr and "Traceback" not in bad.stderr


def test_a_hedge_sells_the_other_market_in_proportion():
    eth = (group("noise", 20, {"symbol": "ETH-PERP"}, name="eth_noise"),
           group("market_maker", 2, {"symbol": "ETH-PERP", "pull_vol": None}, name="eth_mm"))
    params = {"notional_usdc": 30_000.0, "leverage": 10, "open_s": 30.0, "deposit_usdc": 8_000.0, "margin_mode": "cross",
              "leashes": [{"kind": "hedge", "pct": 2, "symbol": "ETH-PERP", "ratio": 0.5}]}
    cfg = scenario(seed=4, duration_s=250, markets=(market(symbol=SYM, s0=60_000, sigma=0.2, shocks=((100, 60, -8),)),
                                                    market(symbol="ETH-PERP", s0=3_000, sigma=0.2, tick_size="0.01",
                                                           lot_size="0.01", tier_class="eth")),
                   agents=(group("noise", 30, {}), group("market_maker", 3, {"pull_vol": None}), *eth,
                           group("position", 1, params)))
    m = MarketModel(cfg, audit=True)
    m.run()
    a = holder(m)
    (rec,) = a.exits
    assert rec.kind == "hedge" and rec.symbol == "ETH-PERP" and rec.side == 1  # a long is hedged by a sale
    eth_mult, btc_mult = a.ctx.multiplier("ETH-PERP"), a.ctx.multiplier(SYM)
    level = floor(a.entry * Fraction(98, 100))
    # sized at the BTC mark that fired it (at or below the level), half the notional, in ETH lots at ETH's mark
    assert 1 <= rec.held <= floor(Fraction(a.requested * level * btc_mult, 2) / (rec.trigger_mark * eth_mult))
    out = outcome(m)
    assert out["hedge_trigger_s"] == rec.trigger_us / 1e6 and (out["time_to_hedge_s"] is None
                                                              or out["time_to_hedge_s"] >= a.latency.min_us / 1e6)
    assert a.ctx.position("ETH-PERP").size <= 0


class OwnStrategy(LeashedTrader):
    """A user's own strategy that buys 0.5 BTC at 40 s and protects it with a trailing stop."""

    kind = "own_strategy"

    def start(self) -> None:
        self.init_leashes([{"kind": "trailing_stop", "pct": 2}])
        self.ctx.set_leverage(self.symbol, 10)
        self.wake_at(40_000_000)

    def on_wake(self, t: int) -> None:
        if not self.size:
            self.market(0, 500, slippage_bps=100, on_done=lambda r, e: self.attach_leashes() if self.size else None)


def test_a_users_own_strategy_carries_leashes():
    m = crash_model(extra=(group(f"{__name__}:OwnStrategy", 1, {"deposit_usdc": 10_000}, name="own"),))
    (a,) = m.agents_by_group["own"]
    (rec,) = a.exits
    assert rec.kind == "trailing_stop" and rec.held == 500 and a.size == 0
    assert rec.trigger_mark <= floor(a.best * Fraction(98, 100)) + 1
    with pytest.raises(InvalidInput, match="mine\\[0\\].pct"):
        a.init_leashes([{"kind": "stop", "pct": -1}], "mine")


def test_a_venue_held_stop_fires_at_the_mark_update_itself():
    own = crash_model([{"kind": "stop", "pct": 3}])
    venue = crash_model([{"kind": "stop", "pct": 3, "venue": True}])
    (mine,), (held,) = holder(own).exits, holder(venue).exits
    assert held.kind == "stop" and held.trigger_mark <= floor(holder(venue).entry * Fraction(97, 100))
    rep = holder(venue).ctx.stop_report(held.trigger_id)
    assert rep.status == "triggered" and rep.time_us == held.trigger_us and rep.oid == held.oids[0]
    got = fills_by_order(venue.tape, holder(venue).account).get(rep.oid)
    assert got is None or got.last_us == held.trigger_us  # it met the book at the mark update itself, no latency
    assert mine.sent_us[0] == mine.trigger_us and all(o > rep.oid for o in held.oids[1:])  # then the agent's own
    assert outcome(venue)["exit_kind"] == "stop" and holder(venue).size == 0


SPOT_WORLD = {
    "run.duration_s": 500, "markets[0].shocks": [], "markets[0].index": "venues",
    "spot": {"binance": {"weight": 1, "lending": 200.0, "borrow_bps_per_day": 5.0}},
    "agents.spot_mm": {"kind": "market_maker", "count": 3, "venue": "binance", "deposit_usdc": 2_000_000,
                       "spot_inventory": 20.0, "reference": "mid", "max_inventory": 15.0},
    "agents.spot_noise": {"kind": "noise", "count": 20, "venue": "binance", "deposit_usdc": 1_000_000,
                          "spot_inventory": 10.0},
    "agents.spot_whale": {"kind": "whale", "count": 1, "venue": "binance", "execution": "twap", "side": "sell",
                          "size": 30, "start_s": 300, "duration_s": 120, "slice_s": 10, "deposit_usdc": 0,
                          "spot_inventory": 30.0},
}


def spot_hedged(cash: float = 50_000.0, **hedge) -> MarketModel:
    from abm.scenarios import load_scenario

    pos = {"kind": "position", "notional_usdc": 30_000.0, "leverage": 10, "open_s": 60.0, "deposit_usdc": 5_000.0,
           "spot_venue": "binance", "spot_cash_usdc": cash,
           "leashes": [{"kind": "hedge", "pct": 0.3, "spot": True, **hedge}]}
    return MarketModel(load_scenario("whale_dump", {**SPOT_WORLD, "agents.position": pos}, seed=7), audit=True).run()


def test_a_spot_hedge_sells_the_underlying_on_the_spot_venue_borrowing_what_it_lacks():
    m = spot_hedged(borrow=True)
    a = holder(m)
    (rec,) = a.exits
    assert rec.kind == "hedge" and rec.venue == "binance" and rec.side == 1 and rec.held >= 1
    mine = fills_by_order(m.spot_tape, a.spot.account, 0)
    sold = sum(mine[o].lots for o in rec.oids if o in mine)
    acct = m.spot_venues["binance"].accounts[a.spot.account]
    assert acct.debt[0] == rec.held  # it held no inventory: everything it sold was borrowed first
    assert acct.total_inventory(0) == rec.held - sold  # what the book did not take is still held
    assert a.position().size > 0  # the perp position itself is kept: hedged, not closed
    liquidated = bool(len(m.exchange.liquidations.to_pandas().query("account == @a.account")))
    out = a.outcome(fills_by_order(m.tape, a.account), liquidated, mine)
    assert out["hedge_trigger_s"] == rec.trigger_us / 1e6 and (sold < rec.held or out["time_to_hedge_s"] >= 0)


def test_a_spot_hedge_without_inventory_or_borrowing_is_recorded_not_sent():
    m = spot_hedged(borrow=False)
    a = holder(m)
    (rec,) = a.exits
    assert not rec.oids and any("borrow = true" in s.reason for s in a.shortfalls)
    assert m.spot_venues["binance"].accounts[a.spot.account].debt[0] == 0
    poor = spot_hedged(cash=100.0, borrow=True)  # too little collateral: the venue refuses the loan, and says why
    assert any("the borrow was refused" in s.reason for s in holder(poor).shortfalls)


def test_leash_sets_are_compared_side_by_side_on_the_same_seeds(tmp_path):
    sets = {"none": [], "stop4": [{"kind": "stop", "pct": 4}]}
    r = position_risk("whale_dump", notional=50_000, leverage=20, modes="cross", leash_sets=sets, seeds=2,
                      out=tmp_path / "v", deposit=3_000, figure=False)
    assert list(r.summary["mode"]) == ["cross/none", "cross/stop4"] and set(r.summary["margin_mode"]) == {"cross"}
    by = r.summary.set_index("mode")
    assert by.loc["cross/none", "p_exit"] == 0 and by.loc["cross/stop4", "p_exit"] == 1
    seeds = [set(g["seed"]) for _, g in r.runs.groupby("mode")]
    assert seeds[0] == seeds[1] and (tmp_path / "v" / "cross-stop4").is_dir()
    with pytest.raises(InvalidInput, match="--leash-set"):
        position_risk("whale_dump", leash_sets=sets, stop=5, seeds=1, out=tmp_path / "bad")


def test_a_stop_at_a_round_number_fires_there():
    m = crash_model([{"kind": "stop", "pct": 3, "round_usdc": 500}])
    a = holder(m)
    (rec,) = a.exits
    level = a.leashes[0]._level(a)
    plain = floor(a.entry * Fraction(97, 100))
    assert level % 5_000 == 0 and abs(level - plain) <= 2_500  # the nearest multiple of 500.0 (5,000 ticks)
    assert rec.kind == "stop" and rec.trigger_mark <= level


def test_a_round_number_that_is_not_whole_ticks_is_refused():
    with pytest.raises(InvalidInput, match=r"leashes\[0\].round_usdc"):
        crash_model([{"kind": "stop", "pct": 3, "round_usdc": 0.05}])
