"""Agents' links and streams: FIFO delivery, a network stream apart from decisions, streams keyed by group."""

from __future__ import annotations

from abm.agents import Trader
from abm.model import MarketModel
from abm.scenarios import load_scenario
from tests.support import group, market, scenario

QUIET_UNTIL_US = 50_000_000  # the test agents stop deciding here, so nothing is in flight when the run ends


class LimitThenCancel(Trader):
    """Places a resting bid far below the book and cancels it at once, every wake; logs every arrival."""

    kind = "limit_then_cancel"

    def __init__(self, model, rng, params) -> None:  # type: ignore[no-untyped-def]
        super().__init__(model, rng, params)
        self.arrivals: list[tuple[int, str]] = []  # (arrival time, action), as the exchange received them
        self.decisions: list[tuple[int, int, int]] = []  # (time, size, distance below the mark in ticks)

    def on_wake(self, t: int) -> None:
        if t >= QUIET_UNTIL_US:
            return
        qty = 1 + int(self.uniform() * 5)  # decided from the agent's own stream only
        below = 2_000 + int(self.uniform() * 1_000)
        self.decisions.append((t, qty, below))
        cid = self.next_cid()
        self.limit(0, qty, self.mark() - below, client_id=cid)
        self.cancel(client_id=cid)

    def on_result(self, action: str, result: object) -> None:
        self.arrivals.append((self.now, action))

    def on_reject(self, action: str, error: object) -> None:
        self.arrivals.append((self.now, action))


KIND = f"{__name__}:LimitThenCancel"


def run_with(latency: dict, seed: int = 4) -> LimitThenCancel:
    params = {"wake": "poisson", "wake_every_s": 0.2, **latency}
    cfg = scenario(seed=seed, duration_s=60, markets=(market(sigma=0.3),),
                      agents=(group("noise", 10, {}), group(KIND, 2, params, name="probe")))
    m = MarketModel(cfg, audit=True).run()
    return m.agents_by_group["probe"][1]  # type: ignore[return-value]


def test_cancels_never_overtake_their_orders_with_large_jitter():
    # jitter 0.5 s on a 1 ms link: without FIFO about half of the cancels would land before their order
    a = run_with({"data_latency_ms": 0.0, "entry_latency_ms": 1.0, "jitter_ms": 500.0})
    assert len(a.decisions) > 100
    assert [act for _, act in a.arrivals] == ["limit", "cancel"] * len(a.decisions), "they land in send order"
    assert a.rejects == 0 and a.n_open_orders() == 0, "no cancel missed its order, no order left orphaned"
    lags = [t_arr - t_dec for (t_dec, _, _), (t_arr, _) in zip(a.decisions, a.arrivals[::2])]
    assert min(lags) >= 1_000 and max(lags) > 500_000  # the latency is real: 1 ms plus up to 1 s of jitter


def test_arrival_times_on_a_link_never_decrease():
    cfg = scenario(seed=2, duration_s=10, agents=(group(KIND, 1, {"wake": "none", "data_latency_ms": 5.0,
                                                                             "entry_latency_ms": 0.0, "jitter_ms": 300.0}),))
    m = MarketModel(cfg)
    (a,) = m.agents_by_kind[KIND]
    landed: list[tuple[int, int]] = []  # (send number, arrival time)

    def send_burst(t: int, first: int) -> None:
        for k in range(first, first + 20):  # 20 actions at one instant, then the next burst 50 ms later
            a.ctx.cancel_all(on_done=lambda res, err, k=k: landed.append((k, m.sched.now)))  # nothing to cancel: lands

    for b in range(50):
        m.sched.at(b * 50_000, send_burst, b * 20)
    m.run()
    assert [k for k, _ in landed] == list(range(1000)), "delivered in send order"
    times = [t for _, t in landed]
    assert all(x <= y for x, y in zip(times, times[1:])), "arrival times in send order never decrease"
    assert len(set(times)) > 20 and times[-1] - 49 * 50_000 >= 5_000  # jittered, and never faster than the link


def test_latency_never_changes_decisions():
    on = run_with({"data_latency_ms": 20.0, "entry_latency_ms": 30.0, "jitter_ms": 40.0})
    off = run_with({"data_latency_ms": 0.0, "entry_latency_ms": 0.0, "jitter_ms": 0.0})
    assert len(on.decisions) > 100
    # the same wake times, sizes and distances: jitter comes from the network stream, not the decision stream
    assert on.decisions == off.decisions
    assert on.arrivals != off.arrivals  # while the orders did land at other times


def crowd_model(isolated: int) -> MarketModel:
    scn = load_scenario("isolated_vs_cross", {"agents.isolated_crowd.count": isolated,
                                              "agents.isolated_crowd.margin_mode": "mixed",
                                              "agents.cross_crowd.margin_mode": "mixed"})
    return MarketModel(scn)


def test_resizing_one_group_leaves_another_groups_draws_and_decisions_alone():
    cfg = load_scenario("isolated_vs_cross")
    assert list(cfg.agents) == ["noise", "market_maker", "arbitrageur", "isolated_crowd", "cross_crowd"]
    base, more = crowd_model(100), crowd_model(101)
    assert len(more.agents_by_group["isolated_crowd"]) == 101 and len(more.agents_by_kind["leveraged"]) == 201
    a, b = base.agents_by_group["cross_crowd"], more.agents_by_group["cross_crowd"]
    assert [x.group_index for x in b] == list(range(100)) and {x.group for x in b} == {"cross_crowd"}
    # what each cross trader decided when it was made: its margin mode and the time of its first look
    decided = [[(x.margin_mode, x._first_delay_us) for x in g] for g in (a, b)]  # type: ignore[attr-defined]
    assert decided[0] == decided[1]
    assert {d[0] for d in decided[0]} == {"isolated", "cross"} and len({d[1] for d in decided[0]}) == 100  # drawn
    # and the numbers they will draw from here on, decisions and network alike
    assert [x.rng.random(4).tolist() for x in a] == [x.rng.random(4).tolist() for x in b]
    assert [x.ctx.network_uniform() for x in a] == [x.ctx.network_uniform() for x in b]
    assert a[0].rng.random() != a[0].ctx.network_uniform()  # two streams, not one
    # the group that grew keeps its first 100 agents' draws too
    assert ([x._first_delay_us for x in base.agents_by_group["isolated_crowd"]]  # type: ignore[attr-defined]
            == [x._first_delay_us for x in more.agents_by_group["isolated_crowd"][:100]])  # type: ignore[attr-defined]


def test_a_groups_kind_defaults_to_its_name_and_two_groups_may_share_a_kind():
    m = MarketModel({"run": {"duration_s": 1}, "agents": {"noise": {"count": 2}}})
    assert [(a.group, a.kind) for a in m.agents_by_group["noise"]] == [("noise", "noise")] * 2
    m = MarketModel(scenario(duration_s=1, agents=(group("noise", 2, name="a"), group("noise", 3, name="b"))))
    assert [len(v) for v in m.agents_by_group.values()] == [2, 3] and len(m.agents_by_kind["noise"]) == 5
