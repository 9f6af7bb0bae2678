"""The Mesa model: an exchange, its price feeds and an agent population, stepped in market time.

One Mesa step is ``step_s`` of market time. Inside a step the event scheduler runs, in time order,
oracle publications, mark updates (each one runs the liquidation check), funding samples and
payments, agents' wake-ups and their orders arriving after latency. Agents are event driven, so a
step costs what happened in it, not the number of agents. After each step the DataCollector records
the registered metrics (``abm.model.reporters``); trades, liquidations and funding payments are kept as columnar
event tables (``model.tables()``).

Seeding: one master seed; the index paths, oracle noise and every agent draw from their own
``numpy`` streams spawned from it by name, so one seed gives identical results in any process. An
agent's streams are keyed by its group's name and its index in the group (decisions), plus
"network" (latency jitter): resizing one group leaves every other group's streams unchanged, and
latency never changes what an agent decides.
"""

from __future__ import annotations

import zlib
from decimal import Decimal
from fractions import Fraction
from functools import partial
from typing import Any, Callable, Mapping, Optional

import mesa
import numpy as np

from abm.agents import resolve
from abm.agents.base import Shortfall, Trader
from abm.agents.fills import FillNotices
from abm.agents.params import renamed
from abm.errors import InvalidInput
from abm.exchange import Exchange, conservation_gap
from abm.exchange.entry import HALTED
from abm.market.spec import MarketSpec
from abm.market.tape import Tape
from abm.market.view import BookView
from abm.model.events import halted_spot_venues, schedule_events
from abm.model.gateway import gateway_plan, queued_liquidations
from abm.model.metrics import LEVERAGED_TAG
from abm.model.reporters import StepCollector, collect, column, plan
from abm.model.scenario import MarketSection, Scenario, agent_groups, model_scenario, scenario_venue, spot_listings, spot_pair
from abm.model.triggers import PriceTriggers
from abm.prices import (
    DEFAULT_DT_US,
    INDEX_PROCESSES,
    PATH_MARGIN_US,
    FundingSchedule,
    IndexPath,
    Move,
    Oracle,
    Replay,
    Scripted,
    correlated_paths,
)
from abm.prices.external_perp import ExternalPerp, ExternalPerps
from abm.prices.index_rules import INDEX_RULES
from abm.prices.live_index import BookMidSource, LiveIndex, ValueSource
from abm.prices.replay import block_bootstrap, scale_moves
from abm.sim import INDEX, FundingLog, MarketFeed, Scheduler
from abm.sim.gateway import Gateway
from abm.spot import SpotExchange
from abm.spot.tape import SpotTape
from abm.units import US_PER_S, usdc_units
from abm.venues.venue import gateway_spec

UNFILLED_COLUMNS = ("group", "agent", "kind", "symbol", "what", "requested", "filled", "requested_lots", "filled_lots",
                    "orders", "time_s", "reason")


# The role of a built-in kind whose class does not declare ``role`` yet (every other kind's role is its kind).
def role_of(cls: type) -> str:
    """What the metrics group an agent class by: its ``role`` ClassVar, inherited by subclasses (a user's
    subclass of ``MarketMaker`` is a market maker), else its ``kind``."""
    role = getattr(cls, "role", None)
    return role if isinstance(role, str) else str(getattr(cls, "kind", "trader"))


DEFAULT_INDEX_RULES = {"hyperliquid": "weighted_median", "binance": "weighted_mean_outlier"}  # by mark formula


def stream(seed: int, *key: object) -> np.random.Generator:
    """A generator for (seed, key...): stable across processes and independent of other keys."""
    spawn_key = tuple(zlib.crc32(str(k).encode()) if not isinstance(k, int) else k for k in key)
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=spawn_key))


class MarketModel(mesa.Model):
    def __init__(self, config: Scenario | Mapping[str, Any] | None = None, rng: Optional[int] = None,
                 audit: bool = False, **overrides: Any) -> None:
        """The scenario is the model's configuration (``abm.model.Scenario``), checked here as a file would be.

        ``config``: a ``Scenario``, a mapping shaped like a scenario file (``{"run": {"duration_s": 60},
        "agents": {"noise": {"count": 5}}}``) or None for the defaults. ``overrides`` are dotted scenario
        paths as ``--set`` takes them (``MarketModel(scn, **{"run.duration_s": 60})``), which is what
        ``mesa.batch_run(MarketModel, parameters={"run.seed": range(5), ...})`` sweeps; ``rng`` is Mesa's
        seed argument and sets ``run.seed``.
        """
        cfg = model_scenario(config, overrides, rng)
        super().__init__(rng=cfg.run.seed)
        self.config = cfg
        self.audit = audit
        seed = cfg.run.seed
        self.step_us = int(round(cfg.run.step_s * US_PER_S))
        self.end_us = int(round(cfg.run.duration_s * US_PER_S))
        self.venue = scenario_venue(cfg)
        gateway = self.venue.gateway()  # None: every action is served the instant it arrives
        liquidation = self.venue.liquidation_process()
        if gateway is not None and gateway.liquidations_queued:
            liquidation = queued_liquidations(liquidation, self)
        self.gateway: Optional[Gateway] = None
        self.exchange = ex = Exchange(liquidation)
        self.sched = Scheduler(ex)
        self.gateways: dict[int, Gateway] = {}  # id(venue) -> its gateway, read by the agents' links
        self.spot_gateways: dict[str, Gateway] = {}  # spot venue -> its gateway (spot.NAME.gateway)
        if gateway is not None:
            self.gateway = self.gateways[id(ex)] = Gateway(gateway, self.sched)
        self.tape = Tape()
        ex.subscribe_fills(self.tape)
        self.funding_log = FundingLog()
        self.symbols = [m.symbol for m in cfg.markets]
        self.paths: dict[str, IndexPath] = {}  # each market's drawn path: the index, or with index = "venues" the value
        self.indices: dict[str, LiveIndex] = {}  # markets whose index the venues make
        self.feeds: dict[str, MarketFeed] = {}
        self.spot_venues: dict[str, SpotExchange] = {}
        self.perp_of_spot: dict[str, dict[str, str]] = {}  # spot venue -> {pair: the perp market on its underlying}
        self.spot_tape = SpotTape()  # every spot venue's fills, with fees, in event order (venue = its index here)
        self._build_spot_venues()
        self.views: dict[str, Any] = {}
        self.triggers: dict[str, PriceTriggers] = {}
        self.funding_watchers: dict[str, list[Trader]] = {}
        self.fill_notices: dict[int, FillNotices] = {}  # by id(venue), built at an agent's first watch_fills
        self._taker_seen = [[0, 0] for _ in cfg.markets]  # markets' taker volume at the last collection
        self._correlated: Optional[list[IndexPath]] = None
        self.order_events = 0  # agents' actions that reached the exchange (orders, cancels, modifies)
        for i, mc in enumerate(cfg.markets):
            self._list_market(i, mc)
        if cfg.funds.insurance_usdc:
            ex.seed_ledger("insurance", usdc_units(cfg.funds.insurance_usdc))
        f = cfg.funds
        if f.vault_usdc:
            deposit = usdc_units(f.vault_usdc)
            ex.create_backstop_vault(
                deposit, deposit - usdc_units(f.vault_loss_limit_usdc) if f.vault_loss_limit_usdc is not None else 0,
                int(round(f.vault_unwind_interval_s * US_PER_S)), f.vault_unwind_slippage_bps,
                usdc_units(f.vault_adl_equity_usdc),
                usdc_units(f.vault_max_notional_usdc) if f.vault_max_notional_usdc is not None else None)
        self.agents_by_kind: dict[str, list[Trader]] = {}
        self.agents_by_group: dict[str, list[Trader]] = {}  # in the configuration's order
        self.agents_by_role: dict[str, list[Trader]] = {}  # what the metrics count by (``role_of``)
        for name, kind, count, params in agent_groups(cfg):
            cls = resolve(kind)
            group = self.agents_by_group[name] = []
            for i in range(count):
                # keyed by (group, index in group): resizing one group leaves every other group's draws alone
                try:
                    agent = cls.build(self, stream(seed, "agent", name, i), dict(params))
                except InvalidInput as e:  # name the group, as the scenario does, rather than the kind
                    prefix = f"agents.{cls.kind}."
                    if name == cls.kind or not e.field.startswith(prefix):
                        raise
                    raise renamed(e, prefix, f"agents.{name}.") from None
                agent._place(name, i, stream(seed, "agent", name, i, "network"))
                group.append(agent)
            self.agents_by_kind.setdefault(kind, []).extend(group)
            # the per-step metrics count a role on the perp venue; a group on a spot venue is "role@venue"
            venue = params.get("venue")
            role = role_of(cls) if venue is None else f"{role_of(cls)}@{venue}"
            self.agents_by_role.setdefault(role, []).extend(group)
        self.leveraged_accounts = {a.account for a in self.agents_by_role.get("leveraged", ())}
        for aid in sorted(self.leveraged_accounts):  # their lots by side and mode: the exchange's running totals
            ex.tag_account(aid, LEVERAGED_TAG)
        self.initial_holdings: dict[tuple[str, str], Any] = {}  # (group, symbol) -> its drawn positions
        if cfg.initial_positions:  # open interest in place at t = 0, booked by the exchange (abm.model.initial)
            from abm.model.initial import seed_open_interest

            seed_open_interest(self)
        for kind in sorted(self.agents_by_kind):
            for a in self.agents_by_kind[kind]:
                a.start()
        self.event_triggers: list[Any] = []  # triggered venue states (abm.model.events), when each fired
        if cfg.events:  # what happens in the world (abm.model.events); none: nothing scheduled
            schedule_events(self)
        self._liq_seen = 0
        self.conservation_gap_last = float("nan")
        self._steps = plan(self.symbols)  # the metric registry as it is now: a model's columns never change
        if self.gateway is not None:  # its columns only in runs that have one, after the registered ones
            self._steps += gateway_plan(self.gateway)
        for name, gw in self.spot_gateways.items():
            self._steps += gateway_plan(gw, f"@{name}")
        risk = self.exchange.risk
        for i, s in enumerate(self.symbols):  # dynamic margin's factor, only in markets that have it
            if i in risk.dynamic:
                self._steps.append((column("margin_factor", s, i == 0),
                                    lambda m, i=i: m.exchange.risk.factors[i] / 1_000_000, i))
        self.metric_cache: dict[Any, Any] = {}  # reporters' shared work within one collection
        self.datacollector = StepCollector([name for name, _, _ in self._steps])
        self.metrics: dict[str, float] = {}
        self._t = 0
        self.running = True

    # ------------------------------------------------------------------ construction

    def index_of(self, symbol: str) -> Any:
        """The index of ``symbol`` as the oracle reads it: made by the venues, or the drawn path."""
        return self.indices.get(symbol) or self.paths[symbol]

    def _build_spot_venues(self) -> None:
        """Each ``[spot.NAME]`` venue lists, for each market it names, the pair of its underlying and the quote
        currency on the perp's grid (so prices compare tick for tick), with its fees and lending pool."""
        cfg = self.config
        quote = self.venue.profile.quote_currency
        by_symbol = {m.symbol: m for m in cfg.markets}
        for name, sv in cfg.spot.items():
            sx = SpotExchange(name, collateral_pct=Decimal(repr(sv.collateral_pct)), clock=self.sched)
            pairs: dict[str, str] = {}
            for sym in spot_listings(cfg)[name]:
                mc = by_symbol[sym]
                perp = self.venue.market_spec(sym, mc.tick_size, mc.lot_size)
                pair = spot_pair(sym, quote)
                try:
                    spec = MarketSpec(pair, perp.tick_size, perp.lot_size, perp.quote_decimals,
                                      Decimal(repr(sv.maker_bps)), Decimal(repr(sv.taker_bps)))
                    sx.list_market(spec, Decimal(repr(sv.borrow_bps_per_day)))
                except InvalidInput as e:
                    raise InvalidInput(f"spot.{name}.{e.field.replace('_fee_bps', '_bps')}", e.value, e.allowed) from None
                lending = Decimal(repr(sv.lending)) / spec.lot_size
                if lending != lending.to_integral_value():
                    raise InvalidInput(f"spot.{name}.lending", sv.lending, f"must be a whole number of lots of "
                                                                          f"{spec.lot_size}")
                if lending:
                    sx.seed_lending(pair, int(lending))
                pairs[pair] = sym
            sx.subscribe_trades(self.spot_tape.listener(len(self.spot_venues)))
            if sv.gateway is not None:
                self.spot_gateways[name] = self.gateways[id(sx)] = Gateway(gateway_spec(sv.gateway), self.sched)
            self.spot_venues[name] = sx
            self.perp_of_spot[name] = pairs

    def _live_index(self, mc: MarketSection, tick_size: Decimal, value: IndexPath) -> LiveIndex:
        """The index of a market with index = "venues": its spot venues' books and its exogenous sources."""
        cfg = self.config
        sources: list[Any] = []
        halting = halted_spot_venues(self) if cfg.events else set()
        for name, sx in self.spot_venues.items():
            for pair, sym in self.perp_of_spot[name].items():
                if sym == mc.symbol:
                    sm = sx.market(pair)
                    halted = (lambda sm=sm: sm.state == HALTED) if name in halting else None  # it publishes nothing
                    last: Callable[[], int] = partial(getattr, sm, "last_price")  # read at each sample
                    sources.append(BookMidSource(name, cfg.spot[name].weight, BookView(sm.book), tick_size, halted, last))
        for src in mc.index_sources:
            sources.append(ValueSource(src.name, src.weight, value, src.noise_bps,
                                       stream(cfg.run.seed, "index-source", mc.symbol, src.name)))
        rule = mc.index_rule or DEFAULT_INDEX_RULES.get(self.venue.profile.mark.formula, "weighted_median")
        live = LiveIndex(sources, INDEX_RULES.resolve(rule, "index_rule")(), self.end_us + PATH_MARGIN_US, fallback=value)
        interval = max(1, int(round(mc.index_interval_s * US_PER_S)))
        self.sched.at(0, self._sample_index, live, interval, priority=INDEX)
        return live

    def _sample_index(self, t: int, live: LiveIndex, interval: int) -> None:
        live.sample(t)
        if t + interval <= live.end_us:
            self.sched.at(t + interval, self._sample_index, live, interval, priority=INDEX)

    def _list_market(self, i: int, mc: MarketSection) -> None:
        ex, venue, cfg = self.exchange, self.venue, self.config
        spec = venue.market_spec(mc.symbol, mc.tick_size, mc.lot_size)
        ex.list_market(spec, venue.risk_params(mc.tier_class), venue.order_rules(mc.tier_class, spec))
        path = self._index_path(i, mc)
        self.paths[mc.symbol] = path
        read: Any = path if mc.index == "exogenous" else self._live_index(mc, spec.tick_size, path)
        if mc.index == "venues":
            self.indices[mc.symbol] = read
        okw = dict(venue.oracle_kwargs())
        if mc.oracle_interval_s is not None:
            okw["interval_us"] = int(round(mc.oracle_interval_s * US_PER_S))
        if mc.oracle_delay_s is not None:
            okw["delay_us"] = int(round(mc.oracle_delay_s * US_PER_S))
        if mc.oracle_noise_bps is not None:
            okw["noise_bps"] = mc.oracle_noise_bps
        if mc.oracle_outages_s:
            okw["outages"] = [(int(a * US_PER_S), int(b * US_PER_S)) for a, b in mc.oracle_outages_s]
        oracle = Oracle(read, spec.tick_size, rng=stream(cfg.run.seed, "oracle", mc.symbol), **okw)
        if mc.impact_notional_usdc is None:
            impact = venue.impact_notional(mc.tier_class)
        else:
            impact = usdc_units(mc.impact_notional_usdc)
        feed = MarketFeed(ex, mc.symbol, oracle, venue.mark_model(), FundingSchedule(venue.funding_config(mc.tier_class)),
                          impact_notional=impact,
                          mark_cadence_us=int(round(cfg.run.mark_cadence_s * US_PER_S)), log=self.funding_log,
                          external_perps=self._external_perps(mc, spec.tick_size, path, read),
                          thin_side=venue.profile.funding.thin_side)
        self.feeds[mc.symbol] = feed
        self.views[mc.symbol] = ex.data(mc.symbol)
        triggers = PriceTriggers(mc.symbol, self.sched)
        self.triggers[mc.symbol] = triggers
        feed.mark_listeners.append(triggers.on_mark)
        watchers: list[Trader] = []
        self.funding_watchers[mc.symbol] = watchers
        def tell_watchers(t: int, rate: Fraction, sym: str = mc.symbol, w: list[Trader] = watchers) -> None:
            for a in w:
                if a.active:
                    a.on_funding(t, sym, rate)

        feed.funding_listeners.append(tell_watchers)
        s0 = float(path.values[0]) if mc.process == "replay" else mc.s0  # a replay's index starts at its own price
        ex.set_mark(mc.symbol, spec.to_ticks(Decimal(repr(round(s0 / float(spec.tick_size)) * float(spec.tick_size)))))
        feed.start(self.sched)

    def _external_perps(self, mc: MarketSection, tick_size: Decimal, value: IndexPath, index: Any) -> Optional[ExternalPerps]:
        """The market's external perps (None: none), each following the drawn path or the index the oracle reads,
        with its noise from its own stream."""
        if not mc.external_perps:
            return None
        seed = self.config.run.seed
        return ExternalPerps([ExternalPerp(e.name, value if e.follows == "value" else index, tick_size, e.weight,
                                           e.basis_bps, e.noise_bps, int(round(e.lag_s * US_PER_S)),
                                           max(1, int(round(e.interval_s * US_PER_S))),
                                           stream(seed, "external-perp", mc.symbol, e.name))
                              for e in mc.external_perps])

    @staticmethod
    def _process(mc: MarketSection) -> Any:
        return INDEX_PROCESSES.resolve(mc.process)(mc)

    def _index_path(self, i: int, mc: MarketSection) -> IndexPath:
        duration = self.end_us + PATH_MARGIN_US
        if mc.process == "replay":
            return self._replay_path(mc, duration)
        if self.config.correlation is not None:
            if self._correlated is None:  # all markets' paths at once: their shocks are drawn jointly
                procs = [self._process(m) for m in self.config.markets]
                self._correlated = correlated_paths(procs, [list(r) for r in self.config.correlation], duration,
                                                    DEFAULT_DT_US, stream(self.config.run.seed, "index", "correlated"))
            path = self._correlated[i]
        else:
            path = self._process(mc).path(duration, stream(self.config.run.seed, "index", mc.symbol))
        if mc.shocks:
            path = Scripted([Move(s.start_s, s.duration_s, s.pct) for s in mc.shocks]).apply(path)
        return path

    def _replay_path(self, mc: MarketSection, duration_us: int) -> IndexPath:
        """The price file on the grid; the run must fit in the file (the last price holds for the read margin)."""
        assert mc.replay_file is not None  # parse_scenario read the file and checked that the run fits in it
        rep = Replay(mc.replay_file)
        path = rep.path(self.end_us, None)
        run = path.values
        if mc.replay_block_s is not None:  # the run's own span resampled, from a stream of its own
            block = max(1, round(mc.replay_block_s * 1_000_000 / path.dt_us))
            run = block_bootstrap(run, block, stream(self.config.run.seed, "replay-bootstrap", mc.symbol))
        if mc.replay_move_scale != 1.0:
            run = scale_moves(run, mc.replay_move_scale)
        pad = -(-(duration_us - path.end_us) // path.dt_us)
        values = np.concatenate((run, np.full(max(pad, 0), run[-1])))
        if mc.replay_rescale:
            values = values * (mc.s0 / values[0])
        path = IndexPath(values, path.dt_us)
        if mc.shocks:
            path = Scripted([Move(s.start_s, s.duration_s, s.pct) for s in mc.shocks]).apply(path)
        return path

    # ------------------------------------------------------------------ running

    def step(self) -> None:
        t0 = self._t
        self._t = min(self._t + self.step_us, self.end_us)
        self.sched.run_until(self._t)
        if self.spot_venues:
            self._accrue_spot_interest(self._t - t0)
        if self.audit:
            self.exchange.check_conservation()
            for sx in self.spot_venues.values():
                sx.check_conservation()
            self.conservation_gap_last = float(conservation_gap(self.exchange))
        self.metrics = collect(self, self._steps)
        self._liq_seen = len(self.exchange.liquidations)  # the next step's flow figures start here
        self._taker_seen = [list(m.taker_volume) for m in self.exchange.markets]
        for gw in self.gateways.values():
            gw.new_step()
        self.datacollector.collect(self)
        if self._t >= self.end_us:
            self.running = False

    def _accrue_spot_interest(self, elapsed_us: int) -> None:
        """Each step's interest on what spot venues lent, on its value at the perp's oracle (or mark)."""
        for name, sx in self.spot_venues.items():
            for pair, sym in self.perp_of_spot[name].items():
                m = sx.market(pair)
                if m.lent and m.borrow_ppm_day:
                    ref = self.feeds[sym].oracle.price or self.exchange.risk.mark(self.exchange.market(sym).index)
                    if ref:
                        sx.accrue_interest(pair, elapsed_us, ref)

    def run(self) -> "MarketModel":
        from abm.model.quiet_gc import quiet_gc

        with quiet_gc():
            while self.running:
                self.step()
        return self

    @property
    def time_us(self) -> int:
        return self.sched.now

    def tables(self) -> dict[str, Any]:
        """Event tables as DataFrames: trades, liquidations, funding. The trades table has the trigger columns
        (``abm.exchange.triggers.TriggerBook.trade_columns``) only in a run that placed a trigger order, and
        ``opening`` (the opening settlement's rows) only in a run with ``[[initial_positions]]``."""
        trades = self.tape.to_pandas()
        stops = self.exchange.stops
        if stops is not None and stops.used:
            trades = stops.trade_columns(trades)
        if self.config.initial_positions:  # the opening settlement's rows: no order made them (order ids 0)
            trades["opening"] = trades["maker_oid"].to_numpy() == 0
        return {"trades": trades, "liquidations": self.exchange.liquidations.to_pandas(),
                "funding": self.funding_log.to_pandas()}

    def steps_frame(self) -> Any:
        return self.datacollector.get_model_vars_dataframe()

    def unfilled_records(self, flows_by_group: bool = False) -> list[dict[str, Any]]:
        """Every parent order that ended with less filled than asked, one dict each (``UNFILLED_COLUMNS``).

        Sizes in base units and lots; sorted by time, group name, index in the group, then record order.
        ``flows_by_group`` sums a background flow's rows (``Trader.flow``) into one per group and market,
        with ``agent`` None and the time of the first: what a run summary shows.
        """
        lot = {m.spec.symbol: m.spec.lot_size for m in self.exchange.markets}
        for sx in self.spot_venues.values():  # spot pairs: an agent's shortfall names its own venue's pair
            lot.update({m.symbol: m.spec.lot_size for m in sx.markets})
        kinds = {name: kind for name, kind, _, _ in agent_groups(self.config)}
        keyed: list[tuple[tuple[int, str, int, int], dict[str, Any]]] = []
        for name, group in self.agents_by_group.items():
            merged: dict[tuple[str, str], list[Any]] = {}  # (symbol, what) -> [first time, lots asked, filled, orders]
            for a in group:
                for n, r in enumerate(a.shortfall_records()):
                    if flows_by_group and a.flow:
                        m = merged.setdefault((r.symbol, r.what), [r.time_us, 0, 0, 0, r.reason])
                        m[0] = min(m[0], r.time_us)
                        m[1] += r.requested
                        m[2] += r.filled
                        m[3] += r.orders
                        continue
                    keyed.append(((r.time_us, name, a.group_index, n),
                                  self._unfilled_row(name, a.group_index, kinds[name], lot, r)))
            for (symbol, what), (t, req, filled, orders, reason) in merged.items():
                r = Shortfall(t, symbol, what, req, filled, reason, orders)
                keyed.append(((t, name, -1, 0), self._unfilled_row(name, None, kinds[name], lot, r)))
        keyed.sort(key=lambda kr: kr[0])
        return [row for _, row in keyed]

    @staticmethod
    def _unfilled_row(group: str, index: Optional[int], kind: str, lot: dict[str, Any], r: Shortfall) -> dict[str, Any]:
        return {"group": group, "agent": index, "kind": kind, "symbol": r.symbol, "what": r.what,
                "requested": float(r.requested * lot[r.symbol]), "filled": float(r.filled * lot[r.symbol]),
                "requested_lots": r.requested, "filled_lots": r.filled, "orders": r.orders, "time_s": r.time_us / US_PER_S,
                "reason": r.reason}

    def unfilled_frame(self) -> Any:
        """``unfilled_records`` as a DataFrame (empty, with its columns, when every order did what it said)."""
        import pandas as pd

        return pd.DataFrame(self.unfilled_records(), columns=list(UNFILLED_COLUMNS))


__all__ = ["MarketModel", "stream", "role_of"]
