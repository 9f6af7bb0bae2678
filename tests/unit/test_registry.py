"""Registries of modelling assumptions: names, a user's own ``module:Class``, and what is refused.

That the built-in names give byte-identical results to the code they replaced is checked by
fingerprinting every catalogue scenario before and after; here the built-ins are checked to be
the same objects and constants as before.
"""

from __future__ import annotations

import importlib
import textwrap
from decimal import Decimal
from fractions import Fraction

import pytest

from abm import Exchange, MarketSpec
from abm.errors import InvalidInput
from abm.margin import ADL_RANKINGS, AdlRanking, LiquidationConfig, RiskParams
from abm.margin.adl import BinanceRanking, HyperliquidRanking
from abm.margin.tiers import hyperliquid_tiers
from abm.model import MarketModel, MarketSection
from abm.prices import (
    GARCH,
    GBM,
    INDEX_PROCESSES,
    MARK_MODELS,
    BinanceMark,
    FundingConfig,
    FundingSchedule,
    HyperliquidMark,
    JumpDiffusion,
    MarkModel,
    Oracle,
    RegimeSwitching,
    Scripted,
)
from abm.prices.processes import GARCH_ALPHA, GARCH_BETA, REGIME_STRESS_MULTIPLIER
from abm.registry import Registry, subclass_of
from abm.sim import MarketFeed, Scheduler
from abm.venues import InvalidProfile, load_venue
from abm.venues.fees import FEE_MODELS
from tests.support import market, scenario

USDC = 10**6
S = 1_000_000


def _module(tmp_path, monkeypatch, name: str, source: str) -> str:
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    return name


# ------------------------------------------------------------------------------ the mechanism


class _Base:
    pass


def test_register_resolve_and_names():
    reg: Registry[type[_Base]] = Registry("widget", "cfg.widget", "a subclass of _Base", subclass_of(_Base))

    @reg.register("plain")
    class Plain(_Base):
        pass

    @reg.register("fancy")
    class Fancy(_Base):
        pass

    assert reg.names() == ("fancy", "plain") and list(reg) == ["fancy", "plain"]
    assert reg.resolve("plain") is Plain and reg.resolve("fancy") is Fancy
    assert "plain" in reg and "other" not in reg and 3 not in reg
    with pytest.raises(InvalidInput, match="already registered"):
        reg.register("plain")
    with pytest.raises(InvalidInput, match="must be an identifier"):
        reg.register("not a name")
    with pytest.raises(InvalidInput, match="must be a subclass of _Base"):
        reg.register("wrong")(int)
    assert reg.names() == ("fancy", "plain")  # nothing half-registered


def test_unknown_name_lists_the_names_and_suggests_the_closest():
    with pytest.raises(InvalidInput) as e:
        MARK_MODELS.resolve("hyperliqid")
    assert e.value.field == "mark.formula"
    assert "['binance', 'hyperliquid']" in str(e.value) and "did you mean 'hyperliquid'?" in str(e.value)
    with pytest.raises(InvalidInput) as e:
        ADL_RANKINGS.resolve("binanse")
    assert e.value.field == "adl_ranking" and "did you mean 'binance'?" in str(e.value)
    with pytest.raises(InvalidInput, match=r"markets\[0\]\.process: must be 'replay' or one of \['flat', 'garch', 'gbm', "
                                           r"'jump', 'regime'\] .*\(did you mean 'garch'\?\)"):
        MarketModel(scenario(markets=(market(process="garh"),)))
    with pytest.raises(InvalidInput, match=r"fees.model: must be one of \['flat'\]"):
        FEE_MODELS.resolve("tiered")
    with pytest.raises(InvalidInput) as e:
        MARK_MODELS.resolve("zzzz")
    assert "did you mean" not in str(e.value)


@pytest.mark.parametrize("bad", ["../evil", "a b", "mod:", ":Cls", "a..b:C", "a:b:c", "", 3, None, ["binance"]])
def test_non_identifiers_are_refused_naming_the_field(bad):
    with pytest.raises(InvalidInput) as e:
        ADL_RANKINGS.resolve(bad)
    assert e.value.field == "adl_ranking" and "['binance', 'hyperliquid']" in e.value.allowed
    with pytest.raises(InvalidInput, match="adl_ranking"):
        LiquidationConfig(adl_ranking=bad)


def test_a_module_without_the_class_is_refused_without_being_imported(tmp_path, monkeypatch):
    marker = tmp_path / "ran.txt"
    mod = _module(tmp_path, monkeypatch, "reg_side_effect", f"""
        import pathlib
        pathlib.Path({str(marker)!r}).write_text("imported")

        class Something:
            pass
    """)
    for reg in (MARK_MODELS, ADL_RANKINGS, INDEX_PROCESSES):
        with pytest.raises(InvalidInput, match="defines no 'Missing'"):
            reg.resolve(f"{mod}:Missing")
    with pytest.raises(InvalidProfile, match="liquidation.adl_ranking: .*defines no 'Missing'"):
        load_venue("hyperliquid", {"liquidation.adl_ranking": f"{mod}:Missing"})
    with pytest.raises(InvalidInput, match="could not be found"):
        MARK_MODELS.resolve("no_such_module_here:Mark")
    assert not marker.exists()
    # a class that is there but of the wrong kind is refused after the import
    with pytest.raises(InvalidInput, match="must name a subclass of abm.prices.MarkModel"):
        MARK_MODELS.resolve(f"{mod}:Something")
    assert marker.exists()


# ------------------------------------------------------------------------------ mark models


def test_venue_mark_formula_selects_the_registered_class():
    assert MARK_MODELS.names() == ("binance", "hyperliquid")
    assert MARK_MODELS.resolve("hyperliquid") is HyperliquidMark and MARK_MODELS.resolve("binance") is BinanceMark
    hl = load_venue("hyperliquid").mark_model()
    bn = load_venue("binance").mark_model()
    assert type(hl) is HyperliquidMark and hl.tau_s == 150.0
    assert type(bn) is BinanceMark and bn.window_us == 30 * S and bn.interval_us == 8 * 3600 * S


def _feed(mark_model: MarkModel):
    ex = Exchange()
    ex.list_market(MarketSpec("BTC", tick_size="0.01", lot_size="0.001", maker_fee_bps=0, taker_fee_bps=0),
                   RiskParams(hyperliquid_tiers([(0, 40)])))
    path = Scripted([(10, 0, 5)], s0=100.0).path(120 * S, dt_us=100_000)
    oracle = Oracle(path, Decimal("0.01"), interval_us=3 * S)
    feed = MarketFeed(ex, "BTC", oracle, mark_model, FundingSchedule(FundingConfig.hyperliquid()),
                      impact_notional=20 * USDC)
    mm = ex.open_account(10_000_000 * USDC)
    ex.set_mark("BTC", 10_000)
    ex.limit(mm, "BTC", "buy", 2_000, 9_000)
    ex.limit(mm, "BTC", "sell", 2_000, 11_000)
    sched = Scheduler(ex)
    feed.start(sched)
    return ex, feed, sched, oracle


def test_a_users_mark_model_by_module_path(tmp_path, monkeypatch):
    mod = _module(tmp_path, monkeypatch, "reg_user_mark", """
        from abm.prices import MarkModel

        class OracleMark(MarkModel):
            '''The oracle itself, plus a fixed offset from the venue profile's ema window (to see from_profile).'''
            __slots__ = ("value", "offset", "calls")

            def __init__(self, offset=0):
                self.value = None
                self.offset = offset
                self.calls = []

            @classmethod
            def from_profile(cls, profile):
                return cls(offset=int(profile.mark.ema_window_s))

            def on_feed(self, t_us, oracle, best_bid, best_ask, last_trade, last_funding_rate, time_to_funding_us,
                        funding_interval_us):
                self.calls.append((t_us, best_bid, best_ask, time_to_funding_us))
                self.value = int(oracle) + self.offset
                return self.value
    """)
    cls = MARK_MODELS.resolve(f"{mod}:OracleMark")
    model = cls.from_profile(load_venue("hyperliquid").profile)
    assert model.offset == 150
    ex, feed, sched, oracle = _feed(model)
    sched.run_until(30 * S)
    assert model.calls and all(c[1:3] == (9_000, 11_000) for c in model.calls)
    assert feed.mark == oracle.price + 150 == 10_500 + 150  # after the +5% step at 10 s
    assert ex.risk.mark(0) == feed.mark  # what margin is measured at
    with pytest.raises(InvalidInput, match="mark_model: must be an abm.prices.MarkModel"):
        MarketFeed(ex, "BTC", oracle, object(), FundingSchedule(FundingConfig.hyperliquid()),  # type: ignore[arg-type]
                   impact_notional=20 * USDC)


# ------------------------------------------------------------------------------ ADL rankings


def test_adl_ranking_is_resolved_once_when_the_config_is_built():
    assert ADL_RANKINGS.names() == ("binance", "hyperliquid")
    hl, bn = LiquidationConfig(), LiquidationConfig(adl_ranking="binance")
    assert type(hl.ranking) is HyperliquidRanking and type(bn.ranking) is BinanceRanking
    assert hl.adl_ranking == "hyperliquid" and hl == LiquidationConfig() and hl != bn  # the name is the config
    assert type(load_venue("binance").liquidation_config().ranking) is BinanceRanking


def _adl(liquidation: LiquidationConfig) -> list[tuple[str, int]]:
    """L (long 600, 10x) goes bankrupt with no vault and no fund: ADL against shorts A 500, B 300, C 200."""
    ex = Exchange()
    ex.list_market(MarketSpec("BTC", tick_size="0.01", lot_size="0.001", maker_fee_bps=0, taker_fee_bps=0),
                   RiskParams(hyperliquid_tiers([(0, 40)]), liquidation=liquidation))
    ex.set_mark("BTC", 10_000)
    acc = {n: ex.open_account(d * USDC) for n, d in [("A", 1_000), ("B", 100), ("C", 10_000), ("G", 100)]}
    for n, lots in (("A", 500), ("B", 300), ("C", 200)):
        ex.limit(acc[n], "BTC", "sell", lots, 10_000)
    acc["L"] = ex.open_account(6 * USDC)
    ex.set_leverage(acc["L"], "BTC", 10)
    assert ex.market_order(acc["L"], "BTC", "buy", 600).filled == 600
    assert ex.market_order(acc["G"], "BTC", "buy", 400).filled == 400
    ex.set_mark("BTC", 8_000)
    ex.check_conservation()
    name = {v: k for k, v in acc.items()}
    return [(name[r["account"]], r["size"]) for r in ex.liquidations.rows() if r["kind"] == "adl_counterparty"]


def test_a_users_adl_ranking_by_module_path(tmp_path, monkeypatch):
    mod = _module(tmp_path, monkeypatch, "reg_user_ranking", """
        from fractions import Fraction
        from abm.margin import AdlRanking

        class SmallestFirst(AdlRanking):
            __slots__ = ()

            def score(self, p, mark, mult, upnl, notional, equity):
                return Fraction(-notional)
    """)
    assert _adl(LiquidationConfig(backstop=False)) == [("B", 300), ("A", 300)]  # the venue's score
    cfg = LiquidationConfig(backstop=False, adl_ranking=f"{mod}:SmallestFirst")
    assert isinstance(cfg.ranking, AdlRanking) and type(cfg.ranking).__name__ == "SmallestFirst"
    # resolving per event would fail from here on: the liquidator uses the ranking resolved above
    monkeypatch.setattr(ADL_RANKINGS, "resolve", lambda *a, **k: pytest.fail("resolved per event"))
    assert _adl(cfg) == [("C", 200), ("B", 300), ("A", 100)]
    monkeypatch.undo()
    # and the same from a venue profile
    venue = load_venue("hyperliquid", {"liquidation.adl_ranking": f"{mod}:SmallestFirst"})
    assert type(venue.liquidation_config().ranking).__name__ == "SmallestFirst"
    assert venue.to_dict()["liquidation"]["adl_ranking"] == f"{mod}:SmallestFirst"  # recorded as named
    with pytest.raises(InvalidInput, match="must name a subclass of abm.margin.AdlRanking"):
        LiquidationConfig(adl_ranking="fractions:Fraction")


# ------------------------------------------------------------------------------ index processes and fees


def test_index_processes_by_name_with_the_named_defaults():
    assert INDEX_PROCESSES.names() == ("flat", "garch", "gbm", "jump", "regime")
    assert (GARCH_ALPHA, GARCH_BETA, REGIME_STRESS_MULTIPLIER) == (0.08, 0.9, 4)  # what the model always used
    mc = dict(s0=50_000.0, sigma=0.6, jump_rate=12.0, jump_mean=-0.01, jump_std=0.02)
    market = MarketSection  # what a factory is given: the scenario's market table
    assert MarketModel._process(market(process="gbm", **mc)) == GBM(50_000.0, 0.0, 0.6)
    assert MarketModel._process(market(process="jump", **mc)) == JumpDiffusion(50_000.0, 0.0, 0.6, 12.0, -0.01, 0.02)
    assert MarketModel._process(market(process="garch", **mc)) == GARCH.from_annual_vol(50_000.0, 0.6, 0.08, 0.9)
    assert MarketModel._process(market(process="regime", **mc)) == RegimeSwitching(50_000.0, 0.0, 0.6, 2.4)
    assert MarketModel._process(market(process="flat", **mc)) == Scripted([], s0=50_000.0)


def test_a_users_index_process_by_module_path(tmp_path, monkeypatch):
    mod = _module(tmp_path, monkeypatch, "reg_user_process", """
        from abm.prices import Move, Scripted

        def staircase(mc):
            return Scripted([Move(5, 0, 10)], s0=mc.s0)
    """)
    cfg = scenario(duration_s=20.0, markets=(market(s0=1_000.0, process=f"{mod}:staircase"),))
    m = MarketModel(cfg)
    path = m.paths["BTC-PERP"]
    assert path.value_at(0) == 1_000.0 and path.value_at(10 * S) == pytest.approx(1_100.0)
    with pytest.raises(InvalidInput, match="must name a function of a market config"):
        MarketModel(scenario(markets=(market(process="abm.prices:GBM"),)))


def test_fees_are_the_flat_model_resolved_to_integer_rates_at_listing():
    assert FEE_MODELS.names() == ("flat",)
    for name in ("hyperliquid", "binance"):
        v = load_venue(name)
        spec = v.market_spec("BTC", "0.1", "0.001")
        maker, taker = FEE_MODELS.resolve("flat")(v.profile)
        assert (spec.maker_fee_bps, spec.taker_fee_bps) == (maker, taker)
        assert (spec.maker_ppm, spec.taker_ppm) == (int(v.profile.fees.maker_bps * 100), int(v.profile.fees.taker_bps * 100))
    v = load_venue("hyperliquid", {"fees.maker_bps": -1, "fees.taker_bps": Fraction(7, 2)})
    assert (v.market_spec("BTC", "0.1", "0.001").maker_ppm, v.market_spec("BTC", "0.1", "0.001").taker_ppm) == (-100, 350)


@pytest.mark.parametrize("preload", [False, True])
def test_a_missing_name_reads_the_same_whether_or_not_its_module_was_imported_first(preload, monkeypatch):
    import sys

    import abm.agents

    if preload:
        import colorsys  # noqa: F401  (what Bokeh does in a process that also runs the dashboard)
    else:
        monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    for resolve in (lambda v: ADL_RANKINGS.resolve(v), abm.agents.resolve):
        with pytest.raises(InvalidInput, match=r"must name a class defined in colorsys \(.*colorsys.py\); it defines "
                                               r"no 'Nope'"):
            resolve("colorsys:Nope")
