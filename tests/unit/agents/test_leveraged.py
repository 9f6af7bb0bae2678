"""The leveraged trader: leverage draws, margin modes, liquidation of a high-leverage crowd, stops,
take-profits, funding-aware exits, re-entry after a liquidation, determinism and parameter checks.

The runs add a small test-only liquidity provider (``OracleQuoter``) that re-quotes a ladder around
the oracle every second, so the book (and therefore the mark) follows a scripted index shock; the
noise traders alone leave the book where it was and the mark would move only part of the way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from math import floor
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from abm.agents.base import Trader, TraderParams
from abm.agents.leveraged import LeveragedParams, LeveragedTrader, pareto_quantile, pareto_truncated
from abm.agents.testing import FakeContext, build_agent
from abm.errors import InvalidInput
from abm.model import MarketModel
from abm.units import SELL
from tests.support import group, market, scenario, shock

TICK = 0.1  # BTC-PERP tick size in USDC


@dataclass(frozen=True, slots=True)
class QuoterParams(TraderParams):
    deposit_usdc: float = 200_000_000.0
    wake: str = "periodic"
    wake_every_s: float = 1.0
    jitter_ms: float = 0.0  # cancel and new quotes arrive in the order sent
    levels: int = 10
    step_bps: float = 5.0
    size_lots: int = 1000
    skew_bps: float = 0.0  # quote around oracle * (1 + skew) from skew_from_s on: a book rich to the oracle
    skew_from_s: float = 0.0


class OracleQuoter(Trader):
    """Test-only market maker: a symmetric ladder around the oracle (optionally skewed), refreshed each wake."""

    kind = "test_quoter"
    Params = QuoterParams
    p: QuoterParams

    def on_wake(self, t: int) -> None:
        o = self.oracle()
        if o is None:
            return
        p = self.p
        c = o * (1 + (p.skew_bps / 1e4 if t >= p.skew_from_s * 1e6 else 0.0))
        self.cancel_all()
        for k in range(1, p.levels + 1):
            d = k * p.step_bps / 1e4
            self.limit(0, p.size_lots, int(c * (1 - d)))
            self.limit(1, p.size_lots, int(c * (1 + d)) + 1)

    def on_reject(self, action: str, error: Any) -> None:
        pass


QUOTER = f"{__name__}:OracleQuoter"


def run(agents: tuple, shocks: tuple = (), duration_s: float = 400, seed: int = 1,
        process: str = "gbm", sigma: float = 0.3, quoter: dict | None = None,
        venue_overrides: dict | None = None) -> MarketModel:
    cfg = scenario(seed=seed, duration_s=duration_s, venue_overrides=venue_overrides or {},
                      markets=(market(symbol="BTC-PERP", s0=60_000, sigma=sigma, process=process,
                                            shocks=shocks),),
                      agents=(group("noise", 10, {}), group(QUOTER, 1, quoter or {}), *agents))
    return MarketModel(cfg, audit=True).run()


def lev_agents(model: MarketModel) -> list[LeveragedTrader]:
    return model.agents_by_kind["leveraged"]  # type: ignore[return-value]


def events(agent: LeveragedTrader, name: str) -> list[tuple[int, str, int, int]]:
    return [h for h in agent.history if h[1] == name]


def build_only(groups: tuple, seed: int = 3) -> MarketModel:
    """A model with its agents constructed (leverage and mode chosen) but not run."""
    cfg = scenario(seed=seed, duration_s=10, markets=(market(symbol="BTC-PERP", s0=60_000),), agents=groups)
    return MarketModel(cfg)


# ---------------------------------------------------------------------------------------------- leverage draws


def test_pareto_draws_match_the_truncated_power_law() -> None:
    """Median and tail fraction of the inverse-CDF draws agree with the analytic law within sampling error."""
    a, lo, hi, n = 1.0, 2.0, 50.0, 40_000
    x = pareto_truncated(np.random.default_rng(7), a, lo, hi, n)
    assert x.min() >= lo and x.max() <= hi
    med = pareto_quantile(0.5, a, lo, hi)  # 3.846...
    assert med == pytest.approx(2 / (1 - 0.5 * (1 - lo / hi)))
    density = a * lo**a * med ** (-a - 1) / (1 - (lo / hi) ** a)
    se_med = 1 / (2 * density * math.sqrt(n))
    assert abs(np.median(x) - med) < 4 * se_med
    for cut in (10.0, 25.0):
        p = ((lo / cut) ** a - (lo / hi) ** a) / (1 - (lo / hi) ** a)  # P(X > cut)
        frac = float((x > cut).mean())
        assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / n), (cut, frac, p)
    # heavy tail: far more mass above 5x the minimum than an exponential from the minimum with the same median
    assert (x > 5 * lo).mean() > 2 * 0.5 ** ((5 * lo - lo) / (med - lo))
    # a larger exponent is a lighter tail
    y = pareto_truncated(np.random.default_rng(7), 3.0, lo, hi, n)
    assert (y > 10).mean() < (x > 10).mean() / 5


def test_agents_leverage_follows_distribution_up_to_the_venue_maximum() -> None:
    m = build_only((group("leveraged", 400, {}),))
    ags = lev_agents(m)
    idx = m.exchange.market("BTC-PERP").index
    cap = m.exchange.risk.params[idx].tiers.max_leverage(0)
    assert cap == 40  # Hyperliquid BTC tier: the default leverage_max
    raw = np.array([a.leverage_raw for a in ags])
    assert raw.min() >= 2 and raw.max() <= 40
    med = pareto_quantile(0.5, 1.0, 2.0, 40.0)
    density = 2 / med**2 / (1 - 2 / 40)
    assert abs(np.median(raw) - med) < 4 / (2 * density * math.sqrt(len(raw)))
    for a in ags:
        assert a.leverage == max(1, round(a.leverage_raw)) <= cap  # rounded, never capped
        assert m.exchange.risk.lev(a.account, idx) == a.leverage  # set on the exchange
    # a leverage_max above the venue's maximum is refused, not capped (the draws would pile up at the cap)
    with pytest.raises(InvalidInput, match=r"agents\.hot\.leverage_max: must be <= 40"):
        build_only((group("leveraged", 3, {"leverage_min": 30, "leverage_max": 60}, name="hot"),))
    # a fixed leverage at the cap is taken as it is; uniform draws stay in bounds
    m3 = build_only((group("leveraged", 3, {"leverage": 40}, name="fixed"),
                     group("leveraged", 50, {"leverage_dist": "uniform", "leverage_min": 3, "leverage_max": 7},
                                name="uniform")))
    levs = [a.leverage for a in lev_agents(m3)]
    assert levs[:3] == [40, 40, 40]
    assert set(levs[3:]) <= {3, 4, 5, 6, 7} and len(set(levs[3:])) >= 4


def test_a_fixed_leverage_above_the_venue_maximum_is_refused_naming_the_group() -> None:
    with pytest.raises(InvalidInput, match=r"\n  agents\.fixed\.leverage: must be <= 40 \(the venue's maximum for "
                                           r"BTC-PERP, hyperliquid; refused, not capped\), got 100$"):
        build_only((group("leveraged", 3, {"leverage": 100}, name="fixed"),))
    with pytest.raises(InvalidInput, match=r"\n  agents\.leveraged\.leverage: must be <= 40"):
        build_only((group("leveraged", 1, {"leverage": 41}),))


def test_margin_modes_set_on_exchange() -> None:
    m = build_only((group("leveraged", 5, {"margin_mode": "isolated"}, name="isolated"),
                    group("leveraged", 5, {"margin_mode": "cross"}, name="cross"),
                    group("leveraged", 300, {"margin_mode": "mixed", "isolated_prob": 0.3}, name="mixed")))
    ags = lev_agents(m)
    for a in ags:
        assert m.exchange.position(a.account, "BTC-PERP").mode == a.margin_mode
    assert [a.margin_mode for a in ags[:5]] == ["isolated"] * 5
    assert [a.margin_mode for a in ags[5:10]] == ["cross"] * 5
    frac = np.mean([a.margin_mode == "isolated" for a in ags[10:]])
    assert abs(frac - 0.3) < 4 * math.sqrt(0.3 * 0.7 / 300)


def test_trend_contrarian_signals_exit_on_reversal_and_hold_limit() -> None:
    """+3% then -3%: trend followers buy the rise and reverse on the fall, contrarians the opposite; with
    ``exit_on_signal`` off they keep the first position; ``hold_s`` closes after that long."""
    p = {"threshold_bps": 20.0, "ema_s": 60.0, "wake_every_s": 5.0, "leverage": 3}
    m = run((group("leveraged", 3, {**p, "signal": "trend"}, name="trend"),
             group("leveraged", 3, {**p, "signal": "contrarian"}, name="contrarian"),
             group("leveraged", 2, {**p, "signal": "trend", "exit_on_signal": False}, name="trend_keep"),
             group("leveraged", 2, {**p, "signal": "trend", "exit_on_signal": False, "hold_s": 40.0},
                        name="trend_hold")),
            shocks=(shock(100, 30, 3), shock(180, 30, -3)), duration_s=260, sigma=0.0)
    ags = lev_agents(m)
    for a in ags:
        first = events(a, "entry")[0]
        assert 100e6 < first[0] < 135e6  # nothing to follow before the move, a signal during it
        assert (first[2] > 0) == (a.p.signal == "trend")
    for a in ags[:6]:
        (t_out, _, q_out, _), *_ = events(a, "exit:signal")
        assert t_out > 180e6 and q_out == -events(a, "entry")[0][2]
        after = [h for h in events(a, "entry") if h[0] > t_out]
        assert after and (after[0][2] > 0) != (events(a, "entry")[0][2] > 0)  # the other side next
    for a in ags[6:8]:
        assert len(events(a, "entry")) == 1 and a.position().size > 0 and not events(a, "exit:signal")
    for a in ags[8:]:
        (t_in, _, q, _) = events(a, "entry")[0]
        (t_out, _, q_out, _) = events(a, "exit:hold")[0]
        assert q_out == -q and 40e6 <= t_out - t_in <= 40e6 + 30e6  # at the first wake after 40 s


# ---------------------------------------------------------------------------------------------- liquidation


def test_20x_isolated_crowd_liquidated_2x_crowd_survives() -> None:
    crowd = {"signal": "long", "margin_mode": "isolated", "entry_delay_s": 30.0, "wake": "none"}
    m = run((group("leveraged", 6, {**crowd, "leverage": 20}, name="high"),
             group("leveraged", 6, {**crowd, "leverage": 2}, name="low")),
            shocks=(shock(200, 60, -10),))
    ags = lev_agents(m)
    high, low = ags[:6], ags[6:]
    assert all(a.leverage == 20 for a in high) and all(a.leverage == 2 for a in low)
    assert all(events(a, "entry") for a in ags)  # the whole crowd got in near the start
    assert all(events(a, "entry")[0][0] <= 31e6 and events(a, "entry")[0][2] > 0 for a in ags)
    liq = m.tables()["liquidations"]
    liq_accounts = set(liq["account"])
    for a in high:
        rows = liq[liq["account"] == a.account]
        assert len(rows) >= 1
        assert set(rows["kind"].astype(str)) & {"book", "backstop"}
        assert (rows["time_us"] >= 200e6).all()
        assert a.liquidations == 1 and not a.active and a.position().size == 0
    for a in low:
        assert a.account not in liq_accounts
        assert a.liquidations == 0 and a.active and a.position().size > 0
    assert m.conservation_gap_last == 0


def test_stop_loss_fires_above_liquidation_price() -> None:
    p = {"signal": "long", "margin_mode": "isolated", "leverage": 10, "stop_loss_pct": 2.0,
         "entry_delay_s": 20.0, "wake": "none"}
    m = run((group("leveraged", 4, p),), shocks=(shock(150, 60, -10),), duration_s=300)
    liq = m.tables()["liquidations"]
    trades = m.tables()["trades"]
    for a in lev_agents(m):
        entry = events(a, "entry")
        exits = events(a, "exit:stop")
        assert len(entry) == 1 and len(exits) == 1, a.history
        q_in, px_in = entry[0][2], entry[0][3]
        t_out, q_out, px_out = exits[0][0], exits[0][2], exits[0][3]
        assert q_out == -q_in and a.position().size == 0 and a.liquidations == 0
        assert a.account not in set(liq["account"])
        stop = px_in * 0.98
        assert a.liq_price_at_entry is not None and float(a.liq_price_at_entry) < stop
        assert abs(px_out - stop) / stop < 0.01  # closed near the stop level, well above the liquidation price
        assert t_out >= 150e6
        mine = trades[(trades["taker_account"] == a.account) & (trades["time_us"] == t_out)]
        assert len(mine) and (mine["taker_side"] == 1).all() and (mine["liquidation"] == 0).all()


def test_take_profit_fires() -> None:
    p = {"signal": "short", "margin_mode": "cross", "leverage": 10, "take_profit_pct": 1.5, "stop_loss_pct": 5.0,
         "entry_delay_s": 20.0, "wake": "none"}
    m = run((group("leveraged", 3, p),), shocks=(shock(100, 30, -5),), duration_s=200)
    for a in lev_agents(m):
        entry, tp = events(a, "entry"), events(a, "exit:take_profit")
        assert len(entry) == 1 and len(tp) == 1, a.history
        assert entry[0][2] < 0 and tp[0][2] == -entry[0][2]
        target = entry[0][3] * 0.985
        assert tp[0][3] <= target * 1.003 and tp[0][3] > target * 0.99
        assert a.position().size == 0 and a.equity() > 10_000 * 10**6  # a profit net of fees
        assert a.active


def test_reentry_none_retires_and_reenter_trades_after_cooldown() -> None:
    base = {"signal": "long", "margin_mode": "isolated", "leverage": 25, "entry_delay_s": 10.0, "wake_every_s": 5.0}
    m = run((group("leveraged", 3, {**base, "reentry": "none"}, name="retire"),
             group("leveraged", 3, {**base, "reentry": "reenter", "reentry_cooldown_s": 60.0}, name="reenter")),
            shocks=(shock(60, 20, -8),), duration_s=240, sigma=0.0)
    ags = lev_agents(m)
    liq = m.tables()["liquidations"]
    for a in ags[:3]:
        (t_liq, _, size, _), = events(a, "liquidated")
        assert size < 0 and a.account in set(liq["account"])
        assert not a.active and events(a, "retired")
        assert all(h[0] <= t_liq for h in events(a, "entry"))  # never traded again
        assert a.position().size == 0
    for a in ags[3:]:
        liqs = events(a, "liquidated")  # the first position, whole or in pieces (a book slice, then the backstop)
        assert -sum(h[2] for h in liqs) == events(a, "entry")[0][2]
        t_liq = liqs[-1][0]
        assert a.active
        later = [h for h in events(a, "entry") if h[0] > t_liq]
        assert later, a.history
        assert later[0][0] >= t_liq + 60e6  # not before the cooldown ended
        assert later[0][0] <= t_liq + 80e6  # but soon after it
        assert a.position().size > 0
        # re-entered with what was left: a smaller position than the first one
        assert later[0][2] < events(a, "entry")[0][2]


def test_sliced_liquidation_counted_once_cooldown_from_flat() -> None:
    """Without a backstop vault a 500k position goes in pieces (a 20% book slice, the rest after the 30 s
    cooldown): one liquidation in the agent's count, and its re-entry cooldown runs from the last piece."""
    p = {"signal": "long", "margin_mode": "isolated", "leverage": 20, "deposit_usdc": 50_000.0, "entry_delay_s": 10.0,
         "funding_exit_bps": None, "reentry": "reenter", "reentry_cooldown_s": 30.0, "wake_every_s": 5.0}
    m = run((group("leveraged", 3, p),), shocks=(shock(60, 30, -6),), duration_s=240, sigma=0.0,
            quoter={"size_lots": 3000},
            venue_overrides={"liquidation.backstop": False, "liquidation.backstop_ratio": None})
    liq = m.tables()["liquidations"]
    for a in lev_agents(m):
        rows = liq[(liq["account"] == a.account) & (liq["kind"].astype(str) != "bad_debt")]
        assert rows["time_us"].nunique() >= 2  # the venue took it in more than one step
        pieces = events(a, "liquidated")
        assert len(pieces) >= 2 and a.liquidations == 1, a.history
        (_, _, q0, _) = events(a, "entry")[0]
        assert q0 > 0 and sum(h[2] for h in pieces) == -q0
        assert [h[0] for h in pieces] == sorted(set(rows["time_us"]))  # noticed at the mark update of each piece
        t_flat = pieces[-1][0]
        again = [h for h in events(a, "entry") if h[0] > t_flat]
        assert again and t_flat + 30e6 <= again[0][0] <= t_flat + 40e6
        assert a.active


def test_funding_aware_exit_when_book_is_rich() -> None:
    """From 30 s the book trades 1% above the oracle: predicted funding turns against longs by ~10 bp per hour
    (Hyperliquid pays hourly), beyond the 3 bp per hour threshold."""
    p = {"margin_mode": "cross", "leverage": 5, "entry_delay_s": 5.0, "funding_exit_bps": 3.0, "wake_every_s": 5.0}
    m = run((group("leveraged", 3, {**p, "signal": "long"}, name="longs"),
             group("leveraged", 3, {**p, "signal": "short"}, name="shorts")),
            duration_s=200, process="flat", quoter={"skew_bps": 100.0, "skew_from_s": 30.0})
    feed = m.feeds["BTC-PERP"]
    assert feed.predicted_rate() * 10_000 > 3  # the rate is indeed against longs beyond the threshold
    ags = lev_agents(m)
    for a in ags[:3]:
        (t_in, _, q, _), = events(a, "entry")
        (t_out, _, q_out, _), = events(a, "exit:funding")
        assert q > 0 and q_out == -q and 30e6 < t_out < 200e6
        assert a.position().size == 0
        assert not any(h[0] > t_out for h in events(a, "entry"))  # does not go long again against the funding
    for a in ags[3:]:
        (_, _, q, _), = events(a, "entry")
        assert q < 0 and a.position().size == q  # shorts receive the funding: they stay
        assert not events(a, "exit:funding")


# ---------------------------------------------------------------------------------------------- determinism, input


def test_same_seed_same_trades() -> None:
    groups = (group("leveraged", 8, {"signal": "random", "margin_mode": "mixed", "stop_loss_pct": 1.0,
                                          "take_profit_pct": 1.0, "wake_every_s": 20.0}, name="random"),
              group("leveraged", 4, {"signal": "trend", "threshold_bps": 5.0, "ema_s": 60.0}, name="trend"))
    a = run(groups, shocks=(shock(100, 30, -6),), duration_s=200, seed=5, sigma=1.0)
    b = run(groups, shocks=(shock(100, 30, -6),), duration_s=200, seed=5, sigma=1.0)
    ta, tb = a.tables()["trades"], b.tables()["trades"]
    assert len(ta) > 0 and ta.equals(tb)
    assert a.tables()["liquidations"].equals(b.tables()["liquidations"])
    ha = [x.history for x in lev_agents(a)]
    assert ha == [x.history for x in lev_agents(b)]
    assert sum(len(h) for h in ha) > 5
    c = run(groups, shocks=(shock(100, 30, -6),), duration_s=200, seed=6, sigma=1.0)
    assert [x.history for x in lev_agents(c)] != ha


@pytest.mark.parametrize("field,value", [
    ("margin_mode", "portfolio"), ("isolated_prob", 1.5), ("leverage", 0), ("leverage", 2.5),
    ("leverage_dist", "cauchy"), ("leverage_min", 0.5), ("leverage_max", 1.5), ("leverage_alpha", 0),
    ("signal", "momentum"), ("ema_s", 0), ("threshold_bps", -1), ("long_prob", -0.1), ("size_fraction", 0),
    ("size_fraction", 1.2), ("slippage_bps", 10_000), ("exit_slippage_bps", -5), ("entry_delay_s", -1),
    ("stop_loss_pct", 0), ("stop_loss_pct", 100), ("take_profit_pct", -2), ("funding_exit_bps", -1),
    ("exit_on_signal", 1), ("hold_s", 0), ("reentry", "sometimes"), ("reentry_cooldown_s", -1),
    ("reentry_min_usdc", "x"), ("entry_retries", -1), ("retry_s", 0), ("isolated_prob", None),
    ("size_fraction", "half"), ("leverage_max", float("nan")), ("leverage_max", float("inf")), ("deposit_usdc", -1),
])
def test_bad_params_named(field: str, value: object) -> None:
    with pytest.raises(InvalidInput) as e:
        LeveragedParams(**{field: value})
    assert e.value.field == field
    with pytest.raises(InvalidInput) as e2:
        build_only((group("leveraged", 1, {field: value}),))
    assert e2.value.field == f"agents.leveraged.{field}"


def test_unknown_param_suggests_name() -> None:
    with pytest.raises(InvalidInput) as e:
        build_only((group("leveraged", 1, {"stop_loss": 2.0}),))
    assert e.value.field == "agents.leveraged.stop_loss" and "stop_loss_pct" in e.value.allowed


# ---------------------------------------------------------------------------------------------- venue-held stops


def test_stop_on_exchange_fires_at_the_mark_update_and_is_its_own_exit() -> None:
    """The same crowd and crash as ``test_stop_loss_fires_above_liquidation_price``: with the stop held by the
    venue each exit fills at the very mark update that crossed the stop (the agent's own stop lands its
    latency later), its fills carry the trigger in the trades table, and nothing counts as a liquidation."""
    p = {"signal": "long", "margin_mode": "isolated", "leverage": 10, "stop_loss_pct": 2.0,
         "entry_delay_s": 20.0, "wake": "none"}
    own = run((group("leveraged", 4, p),), shocks=(shock(150, 60, -10),), duration_s=300)
    assert "trigger_id" not in own.tables()["trades"]  # no trigger order in the run: the table as before
    m = run((group("leveraged", 4, {**p, "stop_on_exchange": True}),), shocks=(shock(150, 60, -10),), duration_s=300)
    trades = m.tables()["trades"]
    for a, b in zip(lev_agents(m), lev_agents(own)):
        (entry,), (out,) = events(a, "entry"), events(a, "exit:stop")
        assert entry == events(b, "entry")[0] and out[2] == -entry[2] and a.liquidations == 0
        assert a.position().size == 0 and a.rejects == 0
        mine = trades[(trades["taker_account"] == a.account) & (trades["time_us"] == out[0])]
        assert len(mine) and (mine["trigger_id"] > 0).all() and mine["qty"].sum() == entry[2]
        stop = floor(Fraction(int(mine["trigger_price"].iloc[0])))
        assert abs(stop - entry[3] * 0.98) / stop < 0.001
        assert (mine["trigger_mark"] <= stop).all() and (mine["price"] >= mine["trigger_mark"] * 0.9).all()
        assert (mine["trigger_slippage"] == stop - mine["price"]).all()
        assert out[0] % 1_000_000 == 0 and out[0] < events(b, "exit:stop")[0][0]  # at the mark update: 1 s cadence
    m.exchange.check_conservation()
    again = run((group("leveraged", 4, {**p, "stop_on_exchange": True}),), shocks=(shock(150, 60, -10),), duration_s=300)
    assert again.tables()["trades"].equals(trades)


def test_stop_on_exchange_sends_a_position_stop_and_watches_only_what_the_venue_does_not() -> None:
    ctx = FakeContext(mark=600_000)
    ctx.set_book(599_990, 600_010)
    a = build_agent(LeveragedTrader, {"signal": "long", "leverage": 10, "stop_loss_pct": 2.0, "wake": "none",
                                      "stop_on_exchange": True, "funding_exit_bps": None}, ctx)
    a.on_wake(0)
    (entry,) = ctx.pending("market")
    ctx.set_position(entry.kwargs["qty"], Fraction(600_010), liquidation_price=Fraction(545_000))
    ctx.fill(price=600_010)
    (stop,) = ctx.pending("stop")
    stop_level = floor(Fraction(600_010) * Fraction(98, 100))
    assert stop.kwargs | {"on_trigger": None} == {"symbol": "BTC-PERP", "side": SELL, "qty": None,
                                                   "trigger_price": stop_level, "limit_price": None, "kind": "stop",
                                                   "reduce_only": True, "position": True, "on_trigger": None}
    assert ctx.price_watch["BTC-PERP"][0] == 545_000  # the liquidation level only: the venue holds the stop
    tid = ctx.rest()
    ctx.set_position(0)
    report = SimpleNamespace(tid=tid, status="triggered", side=SELL, filled=entry.kwargs["qty"],
                             notional=entry.kwargs["qty"] * 587_000)
    ctx.stop_reports[tid] = report
    a.on_wake(1_000)  # it looks before the report arrives: the fired stop is still its own exit, not a liquidation
    stop.kwargs["on_trigger"](report)  # the report itself, arriving late, changes nothing more
    assert [h[1] for h in a.history] == ["entry", "exit:stop"] and a.history[1][3] == 587_000
    assert a.liquidations == 0 and not a.in_position and a.active


def test_a_refused_venue_stop_is_watched_by_the_agent_itself() -> None:
    ctx = FakeContext(mark=600_000)
    ctx.set_book(599_990, 600_010)
    a = build_agent(LeveragedTrader, {"signal": "long", "leverage": 10, "stop_loss_pct": 2.0, "wake": "none",
                                      "stop_on_exchange": True}, ctx)
    a.on_wake(0)
    (entry,) = ctx.pending("market")
    ctx.set_position(entry.kwargs["qty"], Fraction(600_010), liquidation_price=Fraction(545_000))
    ctx.fill(price=600_010)
    ctx.reject()  # e.g. the mark was already past the stop
    assert ctx.price_watch["BTC-PERP"][0] == a.stop_price == floor(Fraction(600_010) * Fraction(98, 100))
    assert a.rejects == 1 and a._pending is None


def test_round_level_takes_the_nearest_multiple_and_the_one_further_away_half_way() -> None:
    from abm.agents.leashes import round_level

    assert round_level(571_234, 10_000, True) == 570_000
    assert round_level(576_000, 10_000, True) == 580_000
    assert round_level(575_000, 10_000, True) == 570_000  # a long's stop: half way goes below
    assert round_level(575_000, 10_000, False) == 580_000  # a short's: above
    assert round_level(3_000, 10_000, True) == 10_000  # never below one step
