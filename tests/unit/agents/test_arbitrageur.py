"""The arbitrageur kind: basis arbitrage against the index with an external spot hedge, funding carry,
capital limits, transfers between venues, and bad params."""

from __future__ import annotations

import math
from typing import Any, Optional

import pytest

from abm.agents.arbitrageur import Arbitrageur, ArbitrageurParams
from abm.errors import InvalidInput
from abm.model import MarketModel
from tests.support import group, market, scenario, shock

SYM = "BTC-PERP"
THIN = {"size_lots": 5, "delta": 0.01}  # noise book of about 0.8M USDC within 1 %
DEEP = {"delta": 0.01}  # default sizes: about ten times deeper
USDC = 10**6
SEED_CARRY = 3


def make(arb: Optional[dict[str, Any]], n_arb: int = 3, seed: int = 5, duration_s: float = 1200,
         noise: dict[str, Any] = THIN, shocks: tuple = (), mm: int = 3, **cfg: Any) -> MarketModel:
    agents = [group("noise", 20, noise)]
    if mm:
        agents.append(group("market_maker", mm, {}))
    if arb is not None:
        agents.append(group("arbitrageur", n_arb, arb))
    return MarketModel(scenario(seed=seed, duration_s=duration_s, agents=tuple(agents),
                                   markets=(market(symbol=SYM, s0=60_000, sigma=0.3, shocks=shocks),), **cfg),
                       audit=True)


def arbs(m: MarketModel) -> list[Arbitrageur]:
    return m.agents_by_kind["arbitrageur"]  # type: ignore[return-value]


def mean_abs_basis_bps(m: MarketModel, after_s: float = 0.0) -> float:
    df = m.steps_frame()
    df = df[df.time_s > after_s]
    return float(((df.mark - df["index"]) / df["index"] * 10_000).abs().mean())


def hedged(a: Arbitrageur) -> bool:
    return a._spot_lots == -a.position().size


# ---------------------------------------------------------------------- basis


def test_arbitrageurs_tie_the_mark_to_the_index_in_a_calm_market() -> None:
    without = make(None).run()
    with_arbs = make({}).run()
    idx = without.steps_frame()["index"]
    assert (idx.max() - idx.min()) / idx.iloc[0] * 10_000 > 15  # this seed's index wanders (calm, sigma 0.3)
    b0, b1 = mean_abs_basis_bps(without), mean_abs_basis_bps(with_arbs)
    assert b1 < 5.0, b1  # within a few bps of the index
    assert b0 > 2 * b1, (b0, b1)  # the same market drifts away from the index without them
    for a in arbs(with_arbs):
        assert a.perp_orders > 0 and a.spot_volume > 0
        assert a.rejects == 0
        assert hedged(a)
        # they pay fees and spreads but the basis pays them: no capital is lost in a calm run
        assert a.total_value() > 0.999 * (a.p.deposit_usdc + a.p.spot_cash_usdc)


def test_arbitrageur_sells_a_rich_perp_and_buys_a_cheap_one_within_its_cost_band() -> None:
    m = make({}, n_arb=1, duration_s=600)
    (a,) = arbs(m)
    tr_seen: list[tuple[int, int, int, float]] = []
    orig = a._perp

    def spy(side: int, qty: int, bound: int, purpose: str) -> None:
        tr_seen.append((side, bound, purpose, a.index_price() / a.tick))
        orig(side, qty, bound, purpose)

    a._perp = spy  # type: ignore[method-assign]
    m.run()
    opens = [x for x in tr_seen if x[2] == "open"]
    assert opens
    cost = a.cost_bps / 10_000
    assert a.cost_bps == pytest.approx(4.5 + 1.0 + 0.5 + 1.0)  # taker fee + spot fee + half spread + threshold
    for side, bound, _, idx in opens:
        if side == 1:  # sell perp only at or above index x (1 + costs)
            assert bound >= idx * (1 + cost)
        else:
            assert bound <= idx * (1 - cost)
    tape = m.tables()["trades"]
    mine = tape[tape.taker_account == a.account]
    assert len(mine) and set(mine.taker_side) <= {0, 1}


# ---------------------------------------------------------------------- spot venue


def test_spot_trades_at_the_index_plus_half_spread_with_fee_and_borrow() -> None:
    m = make({"wake": "none", "carry": False, "spot_fee_bps": 2.0, "spot_spread_bps": 4.0, "borrow_bps_per_day": 10.0},
             n_arb=1, duration_s=20, mm=0)
    (a,) = arbs(m)
    cash0 = a._spot_cash
    idx = a.index_price()
    assert a.spot_trade(1_000) == 1_000  # buy 1 BTC
    gross = idx * (1 + 2 / 10_000) * USDC
    assert cash0 - a._spot_cash == math.ceil(gross) + math.ceil(gross * 2 / 10_000)
    assert a.spot_position == pytest.approx(1.0)
    assert a.spot_trade(-3_000) == -3_000  # sell 3: 2 of them borrowed
    assert a.spot_position == pytest.approx(-2.0)
    cash1 = a._spot_cash
    m.run()  # 20 s pass; the borrow fee accrues on the 2 BTC borrowed
    a._accrue_borrow()
    fee = 2 * a.index_price() * 10 / 10_000 * 20 / 86_400 * USDC
    assert cash1 - a._spot_cash == pytest.approx(fee, abs=2)
    assert a.spot_trade(10**9) < 10**9  # a buy is cut to the cash
    assert a._spot_cash >= 0


def test_without_borrowing_the_spot_leg_cannot_go_short() -> None:
    m = make({"wake": "none", "carry": False, "allow_borrow": False}, n_arb=1, duration_s=5, mm=0)
    (a,) = arbs(m)
    assert a.spot_trade(-1_000) == 0 and a.spot_position == 0
    a.spot_trade(500)
    assert a.spot_trade(-1_000) == -500 and a.spot_position == 0


def test_total_value_counts_both_venues() -> None:
    m = make({"deposit_usdc": 300_000, "spot_cash_usdc": 700_000}, n_arb=1, duration_s=10, mm=0)
    (a,) = arbs(m)
    assert a.total_value() == pytest.approx(1_000_000)
    assert a.spot_cash == 700_000 and a.spot_position == 0 and a.in_transit == 0


# ---------------------------------------------------------------------- funding carry


def test_funding_carry_opens_when_funding_is_high_and_unwinds_when_it_falls_back() -> None:
    # The index drops 1 % at 60 s and comes back at 160 s. Nothing but this one carry trader ties the book
    # to the index (its basis leg is off), so the book lags: it trades rich, the predicted funding jumps,
    # and falls back once the index has returned. Funding is paid every 120 s here, so the averaged premium
    # that the prediction rests on starts afresh often enough for a short test.
    params = {"threshold_bps": 500.0, "carry_threshold": 0.00005, "carry_exit": 0.00002,
              "carry_notional_usdc": 300_000, "allow_borrow": False}
    m = make(params, n_arb=1, seed=SEED_CARRY, duration_s=400, noise=DEEP, shocks=(shock(60, 20, -1.0), shock(160, 20, 1.0)),
             venue_overrides={"funding.payment_interval_s": 120})
    (a,) = arbs(m)
    rows = []
    while m.running:
        m.step()
        rows.append((m.sched.now, a.funding_per_hour(), a.position().size, a.carry_lots, a._spot_lots, a.carry_target))
    assert all(r[2] == 0 for r in rows if r[0] < 60_000_000)  # normal funding (the interest leg): no carry
    assert all(abs(r[1] - 0.0000125) < 1e-9 for r in rows if r[0] < 60_000_000)
    high = [i for i, r in enumerate(rows) if r[1] > 0.00005]
    assert high
    assert all(r[2] == 0 for r in rows[:high[0]])  # nothing before funding was high
    opened = [r for r in rows if r[3] < 0]
    assert opened and opened[0][0] >= rows[high[0]][0]
    assert min(r[3] for r in opened) <= -4_000  # short most of the 300k target (about 5 BTC) ...
    assert all(r[4] == -r[2] for r in rows)  # ... always hedged with long spot
    assert all(r[2] == r[3] for r in rows)  # all of it is the carry trade
    # funding falls back below carry_exit once the index has returned, and the trade is unwound: the target
    # goes to flat at the next wake and the position shrinks to nothing (without paying more than the
    # trading costs above the index, so the last part may wait for the book)
    t_open = opened[0][0]
    low = [i for i, r in enumerate(rows) if r[0] > t_open and abs(r[1]) < 0.00002]
    assert low
    i_low = low[0]
    assert rows[i_low - 1][2] < 0  # it held the trade until then
    soon = [r for r in rows if rows[i_low][0] + 3_000_000 <= r[0]]
    assert soon[0][5] == 0  # the decision to unwind
    assert all(r[1] < 0.00005 for r in rows[i_low:])  # funding stayed below the entry threshold ...
    assert rows[-1][2] == 0 and a.spot_position == 0  # ... and the trade was gone by the end
    assert all(r[2] >= prev[2] for prev, r in zip(rows[i_low:], rows[i_low + 1:]))  # shrinking all the way


def test_carry_uses_the_hourly_rate_whatever_the_payment_interval() -> None:
    m = make({"wake": "none"}, n_arb=1, duration_s=5, mm=0, venue_overrides={"funding.payment_interval_s": 600})
    (a,) = arbs(m)
    feed = m.feeds[SYM]
    assert a.funding_per_hour() == pytest.approx(float(feed.predicted_rate()) * 6)
    assert a.funding_per_hour() == pytest.approx(0.0001 / 8)  # the interest leg, 0.01 % per 8 h


# ---------------------------------------------------------------------- capital limits under stress


STRESS = (shock(60, 30, -3.0),)  # the index falls 3 % in 30 s; nothing pulls the book after it but arbitrage


def test_notional_cap_stops_adding_and_lets_the_basis_blow_out() -> None:
    def run(cap: float) -> tuple[MarketModel, float, int]:
        m = make({"max_notional_usdc": cap}, seed=1, duration_s=200, noise=DEEP, shocks=STRESS)
        peak, peak_total = 0.0, 0
        while m.running:
            m.step()
            peak = max([peak] + [abs(a.position().size) * a.mark() * a.mult / USDC for a in arbs(m)])
            peak_total = max(peak_total, sum(-a.position().size for a in arbs(m)))
        return m, peak, peak_total

    capped, peak, total_capped = run(60_000)
    free, _, total_free = run(5_000_000)
    assert 59_000 < peak <= 60_000 * 1.01  # up to the cap (valued at the mark), never past it
    for a in arbs(capped):
        size = a.position().size
        assert size < 0  # it sold the rich perp ...
        assert -size * a.mark() * a.mult > 55_000 * USDC  # ... filled its cap ...
        assert a.capped["notional"] > 0  # ... and then stopped adding
        assert hedged(a)
    b_capped, b_free = mean_abs_basis_bps(capped, 120), mean_abs_basis_bps(free, 120)
    assert b_capped > 100, b_capped  # the basis stays blown out
    assert b_free < b_capped / 3, (b_free, b_capped)
    assert total_free > 5 * total_capped  # what it took to close the basis: far more than the capped capital


def test_margin_usage_cap_stops_adding() -> None:
    params = {"deposit_usdc": 100_000, "leverage": 2, "max_margin_usage": 0.3, "rebalance": False}
    m = make(params, seed=1, duration_s=200, noise=DEEP, shocks=STRESS).run()
    for a in arbs(m):
        assert a.position().size < 0
        assert a.capped["margin"] > 0 and a.capped["notional"] == 0
        assert a.margin_usage() <= 0.3 * 1.05  # initial margin in use stayed at the cap (up to price moves)
        assert a.margin_usage() >= 0.3 * 0.8  # it did use what it had
    assert mean_abs_basis_bps(m, 120) > 100


# ---------------------------------------------------------------------- transfers


def test_transfers_arrive_after_the_latency_and_conserve_money() -> None:
    params = {"wake": "none", "carry": False, "rebalance": False, "transfer_s": 30.0,
              "deposit_usdc": 500_000, "spot_cash_usdc": 500_000}
    m = make(params, n_arb=1, duration_s=120, mm=0)  # audit=True: money is checked after every step
    (a,) = arbs(m)
    ex = m.exchange
    seen: dict[str, Any] = {}

    def send_to_spot(t: int) -> None:
        seen["bal0"] = ex.account(a.account).balance
        seen["ext0"] = ex.ledgers.external
        seen["ok1"] = a.transfer(100_000, "spot")
        seen["bal1"] = ex.account(a.account).balance
        seen["cash1"] = a.spot_cash
        seen["transit1"] = a.in_transit
        seen["total1"] = a.total_value()

    def look(key: str) -> Any:
        return lambda t: seen.__setitem__(key, (a.spot_cash, ex.account(a.account).balance, a.in_transit, a.total_value()))

    def send_to_perp(t: int) -> None:
        seen["ok2"] = a.transfer(50_000, "perp")
        seen["cash2"] = a.spot_cash
        seen["bal2"] = ex.account(a.account).balance
        seen["too_much"] = a.transfer(10_000_000, "perp")
        seen["too_much_out"] = a.transfer(10_000_000, "spot")

    m.sched.at(10_000_000, send_to_spot)
    m.sched.at(39_999_999, look("before_arrival"))
    m.sched.at(40_000_001, look("after_arrival"))
    m.sched.at(50_000_000, send_to_perp)
    m.sched.at(79_999_999, look("before_deposit"))
    m.sched.at(80_000_001, look("after_deposit"))
    m.run()
    assert seen["ok1"] and seen["bal0"] - seen["bal1"] == 100_000 * USDC  # withdrawn at once
    assert seen["cash1"] == 500_000 and seen["transit1"] == 100_000  # in transit, not yet on the spot venue
    assert seen["before_arrival"][0] == 500_000 and seen["before_arrival"][2] == 100_000
    assert seen["after_arrival"][0] == 600_000 and seen["after_arrival"][2] == 0
    assert seen["ok2"] and seen["cash2"] == 550_000 and seen["bal2"] == seen["bal1"]
    assert seen["before_deposit"][1] == seen["bal1"] and seen["before_deposit"][2] == 50_000
    assert seen["after_deposit"][1] == seen["bal1"] + 50_000 * USDC and seen["after_deposit"][2] == 0
    assert not seen["too_much"] and not seen["too_much_out"] and a.rejects == 2
    for key in ("before_arrival", "after_arrival", "before_deposit", "after_deposit"):
        assert seen[key][3] == pytest.approx(1_000_000)  # nothing lost in transit
    assert [(r["to"], r["arrived_us"] - r["sent_us"]) for r in a.transfers] == [("spot", 30_000_000), ("perp", 30_000_000)]
    # the exchange saw both as external flows: out 100k, in 50k
    assert ex.ledgers.external == seen["ext0"] - 100_000 * USDC + 50_000 * USDC
    ex.check_conservation()


def test_rebalance_tops_up_perp_margin_from_spot_cash_after_the_latency() -> None:
    params = {"deposit_usdc": 100_000, "spot_cash_usdc": 1_000_000, "leverage": 2, "max_margin_usage": 0.9,
              "topup_usage": 0.4, "max_notional_usdc": 150_000, "transfer_s": 20.0}
    m = make(params, n_arb=1, seed=1, duration_s=200, noise=DEEP, shocks=STRESS)
    (a,) = arbs(m)
    usage: list[tuple[int, float]] = []
    while m.running:
        m.step()
        usage.append((m.sched.now, a.margin_usage()))
    tops = [r for r in a.transfers if r["to"] == "perp"]
    assert tops  # its short perp needed more collateral than it kept on the exchange
    for r in tops:
        assert r["arrived_us"] - r["sent_us"] == 20_000_000
    first = tops[0]
    assert first["usage"] > 0.4  # sent when usage exceeded the top-up level ...
    during = [u for t, u in usage if first["sent_us"] < t < first["arrived_us"]]
    assert during and max(during) > 0.4  # ... still high while the money was on its way ...
    after = [u for t, u in usage if t > first["arrived_us"]]
    assert after and after[0] < 0.4  # ... and back below it once it had arrived
    assert a.total_value() == pytest.approx(1_100_000, rel=0.01)


# ---------------------------------------------------------------------- params


@pytest.mark.parametrize("field,value", [
    ("spot_cash_usdc", -1), ("trigger_bps", 0), ("spot_fee_bps", -0.1), ("spot_spread_bps", 1_000),
    ("threshold_bps", -1), ("close_bps", 3.0), ("basis_ref", "last"), ("clip_usdc", 0),
    ("max_notional_usdc", -5), ("max_margin_usage", 0), ("max_margin_usage", 1.5), ("leverage", 0),
    ("leverage", 2.5), ("allow_borrow", 1), ("borrow_bps_per_day", -1), ("carry_threshold", 0),
    ("carry_exit", 0.0001), ("carry_notional_usdc", -1), ("transfer_s", -1), ("topup_usage", 1.0),
    ("carry", "yes"), ("spot_fee_bps", float("nan")),
])
def test_bad_params_are_named(field: str, value: object) -> None:
    with pytest.raises(InvalidInput) as e:
        ArbitrageurParams(**{field: value})
    assert e.value.field == field


def test_bad_params_named_through_the_model() -> None:
    with pytest.raises(InvalidInput) as e:
        make({"clip_usd": 5}, n_arb=1, duration_s=5)
    assert e.value.field == "agents.arbitrageur.clip_usd" and "clip_usdc" in e.value.allowed
    with pytest.raises(InvalidInput) as e:
        make({"leverage": 1000}, n_arb=1, duration_s=5)
    assert e.value.field == "agents.arbitrageur.leverage"
    m = make({"wake": "none"}, n_arb=1, duration_s=5, mm=0)
    (a,) = arbs(m)
    with pytest.raises(InvalidInput) as e:
        a.transfer(100, "bank")
    assert e.value.field == "to"
    with pytest.raises(InvalidInput) as e:
        a.transfer(-1, "spot")
    assert e.value.field == "amount_usdc"
