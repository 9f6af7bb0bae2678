"""The venue's gateway in whole runs: per-link FIFO through the queue, cancel priority, refusals reaching agents,
liquidations bypassing or queueing, determinism, and a gateway that never binds changing nothing."""

from __future__ import annotations

from typing import Any

from abm.agents import Trader
from abm.errors import GatewayOverload, RateLimitExceeded, UnknownOrder
from abm.model import MarketModel
from abm.results.fingerprint import fingerprint, table_digest
from abm.scenarios.runner import run
from tests.support import crash_config, group, market, scenario

QUIET_UNTIL_US = 20_000_000


class PlaceThenCancel(Trader):
    """A resting bid far below the book, cancelled by client id at once; logs what landed and what was refused."""

    kind = "place_then_cancel"

    def __init__(self, model, rng, params) -> None:  # type: ignore[no-untyped-def]
        super().__init__(model, rng, params)
        self.landed: list[tuple[int, str]] = []
        self.refusals: list[tuple[str, Exception]] = []
        self.executed: list[tuple[int, str]] = []
        self.sent = 0

    def on_wake(self, t: int) -> None:
        if t >= QUIET_UNTIL_US:
            return
        for _ in range(3):
            cid = self.next_cid()
            self.limit(0, 1, self.mark() - 3_000, client_id=cid)
            self.cancel(client_id=cid)
            self.sent += 1

    def on_result(self, action: str, result: object) -> None:
        self.landed.append((self.now, action))
        self.executed.append((self.now, action))

    def on_reject(self, action: str, error: Exception) -> None:
        self.landed.append((self.now, action))
        self.refusals.append((action, error))


KIND = f"{__name__}:PlaceThenCancel"


def probe_model(gateway: dict[str, Any] | None, seed: int = 4, probes: int = 6, noise: int = 30) -> MarketModel:
    params = {"wake": "poisson", "wake_every_s": 0.05, "data_latency_ms": 0.0, "entry_latency_ms": 1.0,
              "jitter_ms": 20.0}
    cfg = scenario(seed=seed, duration_s=30, markets=(market(sigma=0.3),),
                   venue_overrides={"gateway": gateway} if gateway else None,
                   agents=(group("noise", noise, {}), group(KIND, probes, params, name="probe")))
    return MarketModel(cfg, audit=True).run()


def filled_orders(m: MarketModel, a: Trader) -> int:
    """The agent's orders that traded (each is one lot: it is gone, and a cancel sent after it finds nothing)."""
    tape = m.tape.to_pandas()
    return len(set(tape.loc[tape["maker_account"] == a.account, "maker_oid"])
               | set(tape.loc[tape["taker_account"] == a.account, "taker_oid"]))


def test_each_link_keeps_its_order_through_a_busy_gateway():
    m = probe_model({"service_s": 0.002})  # ~420 actions/s offered against 500/s of capacity: queues form
    assert m.gateway is not None and m.gateway.served > 5_000
    assert m.steps_frame()["gateway_latency_max_ms"].max() > 20, "the queue really delayed actions"
    for a in m.agents_by_group["probe"]:
        assert [act for _, act in a.landed] == ["limit", "cancel"] * a.sent, "every cancel after its order"
        # a cancel misses only an order that has traded (a stray noise order far below the mark), never one not yet there
        assert a.rejects == filled_orders(m, a) and a.n_open_orders() == 0  # type: ignore[attr-defined]
        times = [t for t, _ in a.landed]
        assert times == sorted(times)


def test_with_cancel_priority_a_cancel_can_overtake_its_order_and_misses_it():
    m = probe_model({"service_s": 0.002, "cancel_priority": True})
    missed = orphans = 0
    for a in m.agents_by_group["probe"]:
        for action, e in a.refusals:
            assert action == "cancel" and isinstance(e, UnknownOrder)  # the venue did not hold it (yet)
        missed += len(a.refusals)
        orphans += a.n_open_orders()  # type: ignore[attr-defined]
        assert a.n_open_orders() + filled_orders(m, a) == len(a.refusals), \
            "a missed cancel leaves its order resting (as on the venue) unless it has traded"
        assert [act for _, act in a.landed].count("limit") == a.sent
        order = [act for _, act in a.landed]
        assert any(order[i:i + 2] == ["cancel", "limit"] for i in range(len(order))), "cancels moved ahead"
    assert missed > 100 and orphans > 100


def test_refusals_past_the_queue_limit_reach_the_agent_and_its_rejects():
    m = probe_model({"service_s": 0.005, "queue_limit": 5})
    gw = m.gateway
    assert gw is not None and gw.refused > 100
    steps = m.steps_frame()
    assert int(steps["gateway_rejects_overload"].sum()) == gw.refused
    assert steps["gateway_queue_peak"].max() == 5 and steps["gateway_queue"].max() <= 5
    counted = 0
    for agents in m.agents_by_group.values():
        counted += sum(a.rejects for a in agents)
    probe_refusals = [e for a in m.agents_by_group["probe"] for _, e in a.refusals]
    assert any(isinstance(e, GatewayOverload) and e.field == "gateway.queue_limit" for e in probe_refusals)
    assert counted >= gw.refused


def test_a_rate_limit_refuses_by_name_in_its_window():
    limit = {"name": "orders_1s", "window_s": 1, "limit": 10, "weights": {"cancel": 0}}
    m = probe_model({"rate_limits": [limit]}, probes=2, noise=0)
    for a in m.agents_by_group["probe"]:
        refused = [e for act, e in a.refusals if isinstance(e, RateLimitExceeded)]
        assert refused and all(e.field == "gateway.rate_limits.orders_1s" for e in refused)
        # no service time: an order is executed when it arrives, so each whole second executes at most 10 of the
        # agent's orders and, with 60 offered a second, every second in which it acts exactly 10; cancels weigh nothing
        per_s: dict[int, int] = {}
        for t, act in a.executed:
            if act == "limit":
                per_s[t // 1_000_000] = per_s.get(t // 1_000_000, 0) + 1
        assert max(per_s.values()) == 10 and sum(n == 10 for n in per_s.values()) >= QUIET_UNTIL_US // 1_000_000 - 2
        # what was refused is the orders over the limit, and the cancels sent after them (they find nothing)
        kinds = [(act, type(e)) for act, e in a.refusals]
        assert set(kinds) == {("limit", RateLimitExceeded), ("cancel", UnknownOrder)}
        assert kinds.count(("cancel", UnknownOrder)) == len(refused) + filled_orders(m, a)
    steps = m.steps_frame()
    assert "gateway_rejects_orders_1s" in steps and steps["gateway_rejects_orders_1s"].sum() > 0


def crash(gateway: dict[str, Any] | None, seed: int = 11) -> MarketModel:
    cfg = crash_config(seed=seed, duration_s=300)
    if gateway:
        cfg["venue"] = {**cfg["venue"], "overrides": {"gateway": gateway}}
    return MarketModel(cfg, audit=True).run()


def test_liquidations_bypass_the_queue_or_wait_behind_it_as_the_profile_says():
    bypass = crash({"service_s": 0.02})
    queued = crash({"service_s": 0.02, "liquidations": "queued"})
    tb = bypass.exchange.liquidations.to_pandas()["time_us"].to_numpy()
    tq = queued.exchange.liquidations.to_pandas()["time_us"].to_numpy()
    assert len(tb) > 5 and len(tq) > 5
    assert bypass.steps_frame()["gateway_latency_max_ms"].max() > 100, "users' actions waited"
    assert (tb % 1_000_000 == 0).all(), "bypass: every liquidation at the mark update (1 s cadence) that caused it"
    lag = tq % 1_000_000
    assert (lag >= 20_000).all(), "queued: each check waits at least one service time after its mark update"


def test_same_seed_same_run_with_a_gateway():
    ov = {"run.duration_s": 330, "venue.overrides": {"gateway": {"service_s": 0.004, "queue_limit": 50,
                                                                 "cancel_priority": True}}}
    a = run("whale_dump", ov, seed=3, report=False)
    b = run("whale_dump", ov, seed=3, report=False)
    assert fingerprint(a) == fingerprint(b)
    assert a.steps["gateway_served"].sum() > 0


def test_a_gateway_that_never_binds_changes_nothing_but_adds_its_columns():
    base = run("baseline", {"run.duration_s": 60}, seed=3, report=False)
    loose = {"rate_limits": [{"name": "huge", "window_s": 1, "limit": 10**9}]}
    on = run("baseline", {"run.duration_s": 60, "venue.overrides": {"gateway": loose}}, seed=3, report=False)
    for t in ("trades", "liquidations", "funding", "accounts"):
        assert table_digest(getattr(on, t)) == table_digest(getattr(base, t)), t
    extra = [c for c in on.steps.columns if c not in base.steps.columns]
    assert extra and all(c.startswith("gateway_") for c in extra)
    assert table_digest(on.steps[list(base.steps.columns)]) == table_digest(base.steps)
    assert not any(c.startswith("gateway") for c in base.steps.columns)
    assert on.steps["gateway_latency_max_ms"].max() == 0 and on.steps["gateway_rejects_huge"].sum() == 0


def test_a_dotted_override_switches_the_gateway_on():
    r = run("baseline", {"run.duration_s": 20, "venue.overrides": {"gateway.service_s": 0.001}}, seed=3, report=False)
    assert r.steps["gateway_served"].sum() > 0


def test_venue_overload_saturates_the_gateway_while_liquidations_bypass_it():
    from abm.report import build_figure

    r = run("venue_overload", report=False)  # its own seed
    g = r.summary["gateway"]
    steps = r.steps
    calm = steps[steps["time_s"] < 240]  # before the slide: about half the capacity, no refusals
    assert calm["gateway_latency_p99_ms"].max() < 300 and calm.filter(like="gateway_rejects_").to_numpy().sum() == 0
    assert g["saturated_s"] > 30 and g["max_p99_latency_ms"] > 1_000 and g["peak_queue"] == 100
    # Binance's 300 orders per 10 s never binds here: the overload does the refusing
    assert g["refused"]["overload"] > 500 and g["refused"]["orders_10s"] == 0
    rejects = r.accounts.groupby("group")["rejects"].sum()
    assert rejects["long_crowd"] > 500  # stops refused (and retried)
    t = r.liquidations["time_us"].to_numpy()
    assert len(t) > 5 and (t % 1_000_000 == 0).all(), "liquidations at their mark updates, never behind the queue"
    assert r.summary["liquidation_events"] > 5
    fig = build_figure(r)
    labels = [a.get_label() for a in fig.axes]
    assert labels[:2] == ["prices", "gateway"] and "gateway_price" in labels  # latency beside the price
    assert "gateway:" in fig._suptitle.get_text()  # type: ignore[union-attr]
    off = build_figure(run("baseline", {"run.duration_s": 30}, seed=1, report=False))
    assert "gateway" not in [a.get_label() for a in off.axes]


def test_a_spot_venue_has_a_gateway_of_its_own():
    spot = {"binance": {"weight": 3, "gateway": {"service_s": 0.01, "queue_limit": 5}}}
    agents = (group("noise", 10, {}), group("noise", 20, {"venue": "binance", "spot_inventory": 10.0}, name="spot_noise"),
              group("market_maker", 2, {"venue": "binance", "spot_inventory": 20.0, "deposit_usdc": 2_000_000}, name="spot_mm"))
    cfg = {**scenario(seed=2, duration_s=60, agents=agents), "spot": spot}
    m = MarketModel(cfg, audit=True).run()
    assert m.gateway is None and set(m.spot_gateways) == {"binance"}
    gw = m.spot_gateways["binance"]
    steps = m.steps_frame()
    assert not any(c.startswith("gateway_") and "@" not in c for c in steps.columns)  # the perp venue has none
    assert int(steps["gateway_served@binance"].sum()) == gw.served > 100
    assert int(steps["gateway_rejects_overload@binance"].sum()) == gw.refused > 0
    assert steps["gateway_queue_peak@binance"].max() == 5
    refused = sum(a.ctx.rejects for a in m.agents_by_group["spot_noise"] + m.agents_by_group["spot_mm"])
    assert refused >= gw.refused
    assert all(a.ctx._gateway is None for a in m.agents_by_group["noise"])  # the perp venue's links pass none
    assert all(a.ctx._gateway is gw for a in m.agents_by_group["spot_noise"])
    from abm.model.scenario import parse_scenario

    r = run(parse_scenario(cfg, "test"), report=False)
    assert r.summary["spot_gateways"]["binance"]["refused"]["overload"] == gw.refused and "gateway" not in r.summary


def test_bad_spot_gateway_input_names_the_spot_venue():
    import pytest

    from abm.model.scenario import InvalidScenario, parse_scenario

    for gw, words in (({"queue_limit": 5}, "spot.binance.gateway.queue_limit: only allowed with"),
                      ({"service_s": 0.01, "liquidations": "queued"}, "spot.binance.gateway.liquidations: must be 'bypass'"),
                      ({"service_s": -1}, "spot.binance.gateway.service_s: must be > 0")):
        with pytest.raises(InvalidScenario) as e:
            parse_scenario({"name": "x", "spot": {"binance": {"gateway": gw}}}, "t")
        assert words in str(e.value), str(e.value)


def test_a_spot_gateway_round_trips_and_none_leaves_the_record_as_it_was():
    import tomllib

    from abm.model.scenario import parse_scenario
    from abm.scenarios import to_toml

    data = {"name": "x", "spot": {"binance": {"gateway": {"service_s": 0.01, "rate_limits": [
        {"name": "r", "window_s": 1, "limit": 5, "weights": {"cancel": 0}}]}}}}
    scn = parse_scenario(data, "t")
    assert parse_scenario(tomllib.loads(to_toml(scn)), "again") == scn
    plain = parse_scenario({"name": "x", "spot": {"binance": {}}}, "t")
    assert "gateway" not in plain.model_dump(mode="json")["spot"]["binance"]


def test_a_run_folder_repeats_a_run_through_the_gateway(tmp_path):  # type: ignore[no-untyped-def]
    first = run("venue_overload", {"run.duration_s": 260}, out=tmp_path / "run", report=False)
    venue_toml = (tmp_path / "run" / "venue.toml").read_text()
    assert "[gateway]" in venue_toml and "queue_limit = 100" in venue_toml  # the frozen profile has it
    again = run(tmp_path / "run" / "config.toml", report=False)
    assert fingerprint(again) == fingerprint(first) and first.summary["gateway"]["served"] > 0


def test_venue_held_stops_fire_at_the_mark_past_a_saturated_gateway():
    r = run("venue_overload", {"run.duration_s": 300, "agents.long_crowd.stop_on_exchange": True}, report=False)
    assert r.summary["gateway"]["saturated_s"] > 10  # users' actions queued for seconds meanwhile
    fired = r.trades[r.trades["trigger_id"] > 0]
    assert len(fired) > 5
    assert ((fired["time_us"] % 1_000_000) == 0).all(), "each fill at the mark update (1 s cadence) that fired it"


def test_the_report_draws_every_venue_gateway_the_perp_venue_first():
    """A perp gateway and a spot venue's: a panel each, below the prices, each from its own columns."""
    import numpy as np
    from matplotlib.lines import Line2D

    from abm.model.scenario import parse_scenario
    from abm.report import build_figure

    spot = {"binance": {"weight": 3, "gateway": {"service_s": 0.01, "queue_limit": 5}}}
    agents = (group("noise", 10, {}), group("noise", 20, {"venue": "binance", "spot_inventory": 10.0}, name="spot_noise"),
              group("market_maker", 2, {"venue": "binance", "spot_inventory": 20.0, "deposit_usdc": 2_000_000}, name="spot_mm"))
    cfg: dict[str, Any] = {**scenario(seed=2, duration_s=60, agents=agents), "spot": spot}
    cfg["venue"] = {**cfg["venue"], "overrides": {"gateway": {"service_s": 0.002}}}
    r = run(parse_scenario(cfg, "test"), report=False)
    assert "gateway_served" in r.steps and "gateway_served@binance" in r.steps
    fig = build_figure(r)
    labels = [a.get_label() for a in fig.axes]
    assert labels[:3] == ["prices", "gateway", "gateway@binance"]
    assert {"gateway_price", "gateway_price@binance"} <= set(labels)
    ax = {a.get_label(): a for a in fig.axes}
    for name, suffix in (("gateway", ""), ("gateway@binance", "@binance")):
        p99 = next(ln for ln in ax[name].get_lines() if isinstance(ln, Line2D) and ln.get_label() == "latency p99")
        np.testing.assert_array_equal(p99.get_ydata(), r.steps["gateway_latency_p99_ms" + suffix].to_numpy(float))
    assert "Spot venue binance's gateway" in ax["gateway@binance"].get_title()
    assert "peak queue 5 actions" in ax["gateway@binance"].get_title()  # its own summary, not the perp venue's
    assert ax["gateway"].get_title().startswith("Venue gateway")
    del cfg["venue"]["overrides"]
    r2 = run(parse_scenario(cfg, "test"), report=False)
    labels2 = [a.get_label() for a in build_figure(r2).axes]
    assert "gateway@binance" in labels2 and "gateway" not in labels2  # a spot venue's gateway alone is drawn too
    try:
        from abm.report import interactive
        interactive._plotly()
    except Exception:  # noqa: BLE001  (the viz extra is optional)
        return
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        text = interactive.render_html(r, Path(d) / "g.html").read_text(encoding="utf-8")
    assert "Spot venue binance's gateway" in text and "Venue gateway" in text
