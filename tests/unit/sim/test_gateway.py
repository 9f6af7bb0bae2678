"""The venue's gateway alone, on the real scheduler: the queue in closed form, the limit, cancel priority, rate
limit windows and the venue's own jobs."""

from __future__ import annotations

from typing import Optional

import pytest

from abm.errors import GatewayOverload, RateLimitExceeded
from abm.sim import Scheduler
from abm.sim.gateway import Gateway
from abm.venues import load_venue
from abm.venues.venue import GatewaySpec, RateLimitSpec

S = 200  # µs per action


def gateway(service_us: int = S, queue_limit: Optional[int] = None, cancel_priority: bool = False,
            limits: tuple[RateLimitSpec, ...] = ()) -> tuple[Gateway, Scheduler, list[tuple[int, str]]]:
    sched = Scheduler()
    served: list[tuple[int, str]] = []  # (time executed, label)
    return Gateway(GatewaySpec(service_us, queue_limit, cancel_priority, False, limits), sched), sched, served


def offer(gw: Gateway, served: list, t: int, label: str, action: str = "limit", account: int = 1):  # type: ignore[no-untyped-def]
    return gw.offer(t, account, action, lambda ts, lab: served.append((ts, lab)), (label,))


def test_a_burst_is_served_one_service_time_apart_and_refused_past_the_limit():
    gw, sched, served = gateway(queue_limit=6)
    t0 = 1_000
    refusals = []

    def burst(t: int) -> None:
        for k in range(10):
            refusals.append(offer(gw, served, t, f"a{k}"))

    sched.at(t0, burst)
    sched.run_until(t0)
    assert len(gw) == 6 and gw.peak == 6
    sched.run_until(10_000)
    # the k-th admitted action (k = 1..6) is executed at t0 + k s; the 7th to 10th are refused at once
    assert served == [(t0 + k * S, f"a{k - 1}") for k in range(1, 7)]
    assert refusals[:6] == [None] * 6
    for e in refusals[6:]:
        assert isinstance(e, GatewayOverload)
        assert e.field == "gateway.queue_limit" and e.value == "limit"
        assert "at most 6 actions" in e.allowed and "6 were there" in e.allowed and "overload" in e.allowed
    assert gw.waits_us == [k * S for k in range(1, 7)] and gw.rejected["overload"] == 4
    assert len(gw) == 0 and gw.served == 6 and gw.refused == 4


def test_an_idle_server_serves_after_one_service_time_and_waits_add_up_under_load():
    gw, sched, served = gateway()
    for t in (0, 1_000, 1_050, 1_100):  # the last two arrive while the server is busy
        sched.at(t, lambda tt: offer(gw, served, tt, str(tt)))
    sched.run_until(5_000)
    assert served == [(200, "0"), (1_200, "1000"), (1_400, "1050"), (1_600, "1100")]
    assert gw.waits_us == [200, 200, 350, 500]  # start = max(arrival, server free), done = start + s


def test_room_frees_as_actions_are_served():
    gw, sched, served = gateway(queue_limit=2)
    out = {}
    for t, lab in ((0, "a"), (0, "b"), (0, "c"), (S, "d"), (S + 1, "e")):
        sched.at(t, lambda tt, lab=lab: out.__setitem__(lab, offer(gw, served, tt, lab)))
    sched.run_until(10_000)
    # c finds two in the gateway; at 200 the arrival d (scheduled before a's completion was) runs first and finds
    # two as well: equal times go by scheduling order, so the outcome is fixed
    assert out["a"] is None and out["b"] is None and isinstance(out["c"], GatewayOverload)
    assert isinstance(out["d"], GatewayOverload)
    assert out["e"] is None  # by 201 a is done: room for e
    assert served == [(S, "a"), (2 * S, "b"), (3 * S, "e")]


def order_of_service(priority: bool) -> list[str]:
    gw, sched, served = gateway(cancel_priority=priority)

    def burst(t: int) -> None:
        for k in range(4):
            offer(gw, served, t, f"o{k}")
        offer(gw, served, t, "c", "cancel")
        offer(gw, served, t, "m", "modify")
        offer(gw, served, t, "ca", "cancel_all")
        offer(gw, served, t, "s", "stop")
        offer(gw, served, t, "cs", "cancel_stop")

    sched.at(0, burst)
    sched.run_until(10_000)
    assert [t for t, _ in served] == [S * k for k in range(1, 10)]  # one service time apart either way
    return [lab for _, lab in served]


def test_cancels_go_ahead_of_waiting_orders_only_with_priority():
    assert order_of_service(False) == ["o0", "o1", "o2", "o3", "c", "m", "ca", "s", "cs"], "FIFO: arrival order"
    # the action in service (o0) is not interrupted; the cancels (of orders and of triggers) keep their own order
    assert order_of_service(True) == ["o0", "c", "ca", "cs", "o1", "o2", "o3", "m", "s"]


def test_rate_limit_windows_weights_and_accounts():
    lim = RateLimitSpec("orders_1s", 1_000_000, 5, {"limit": 1, "market": 2, "cancel": 0, "cancel_all": 1, "modify": 1})
    gw, sched, served = gateway(service_us=0, limits=(lim,))
    res = [offer(gw, served, 10, f"l{k}") for k in range(4)]  # weight 4
    res.append(offer(gw, served, 20, "m0", "market"))  # 4 + 2 > 5: refused, not counted
    res.append(offer(gw, served, 30, "l4"))  # 5: accepted
    res.append(offer(gw, served, 40, "c0", "cancel"))  # weight 0: always passes
    res.append(offer(gw, served, 50, "l5"))  # 6 > 5
    res.append(offer(gw, served, 60, "other", account=2))  # another account has its own window
    res.append(offer(gw, served, 999_999, "l6"))  # still the first window
    res.append(offer(gw, served, 1_000_000, "l7"))  # a new window starts at 1 s
    refused = {i for i, r in enumerate(res) if r is not None}
    assert refused == {4, 7, 9}
    e = res[4]
    assert isinstance(e, RateLimitExceeded) and e.field == "gateway.rate_limits.orders_1s" and e.value == 6
    assert "at most 5 weight" in e.allowed and "1 s window" in e.allowed and "market weighs 2" in e.allowed
    assert [lab for _, lab in served] == ["l0", "l1", "l2", "l3", "l4", "c0", "other", "l7"]
    assert [t for t, _ in served][:4] == [10] * 4  # no service time: served on arrival
    assert gw.rejected == {"overload": 0, "orders_1s": 3}


def test_two_rate_limits_each_count_and_the_first_one_hit_is_named():
    short = RateLimitSpec("per_10ms", 10_000, 2, {a: 1 for a in ("limit", "market", "cancel", "cancel_all", "modify")})
    long = RateLimitSpec("per_s", 1_000_000, 3, {a: 1 for a in ("limit", "market", "cancel", "cancel_all", "modify")})
    gw, sched, served = gateway(service_us=0, limits=(short, long))
    res = [offer(gw, served, t, str(t)) for t in (0, 1, 2, 10_000, 20_000)]
    assert res[:2] == [None, None] and res[3] is None
    assert res[2].field == "gateway.rate_limits.per_10ms"  # type: ignore[union-attr]
    assert res[4].field == "gateway.rate_limits.per_s"  # type: ignore[union-attr]  # 3 already used in this second


def test_the_venues_own_jobs_wait_in_line_are_never_refused_and_coalesce():
    gw, sched, served = gateway(queue_limit=2)
    ran: list[int] = []

    def burst(t: int) -> None:
        offer(gw, served, t, "a")
        offer(gw, served, t, "b")
        gw.internal("liq", lambda: ran.append(sched.now))
        gw.internal("liq", lambda: ran.append(-1))  # one waiting already: coalesced
        assert isinstance(offer(gw, served, t, "c"), GatewayOverload)

    sched.at(0, burst)
    sched.run_until(10_000)
    assert [t for t, _ in served] == [S, 2 * S] and ran == [3 * S]


def test_a_profile_gateway_builds_into_integers():
    v = load_venue("binance", {"gateway": {"actions_per_s": 5_000, "queue_limit": 100, "rate_limits": [
        {"name": "orders_10s", "window_s": 10, "limit": 300, "weights": {"cancel": 0}}]}})
    spec = v.gateway()
    assert spec is not None and spec.service_us == 200 and spec.queue_limit == 100 and not spec.cancel_priority
    (r,) = spec.rate_limits
    assert r.window_us == 10_000_000 and r.limit == 300 and r.weights["cancel"] == 0 and r.weights["market"] == 1
    assert load_venue("binance").gateway() is None and "gateway" not in load_venue("binance").to_dict()
    assert load_venue(v.to_dict()) == v  # the record loads back


@pytest.mark.parametrize("gw, field, words", [
    ({"service_s": 0}, "gateway.service_s", "must be > 0"),
    ({"service_s": "0.0000005"}, "gateway.service_s", "whole number of microseconds"),
    ({"actions_per_s": 3}, "gateway.actions_per_s", "whole number of microseconds"),
    ({"actions_per_s": 1000, "service_s": 0.001}, "gateway.actions_per_s", "one of the two"),
    ({"queue_limit": 5}, "gateway.queue_limit", "only allowed with gateway.service_s"),
    ({"service_s": 0.001, "queue_limit": 0}, "gateway.queue_limit", "integer in [1"),
    ({"service_s": 0.001, "liquidations": "later"}, "gateway.liquidations", "bypass"),
    ({}, "gateway", "must set gateway.service_s"),
    ({"rate_limits": [{"name": "a", "window_s": 1, "limit": 5}, {"name": "a", "window_s": 2, "limit": 5}]},
     "gateway.rate_limits[1].name", "must not repeat"),
    ({"rate_limits": [{"name": "a", "window_s": 1, "limit": 5, "weights": {"limit": -1}}]},
     "gateway.rate_limits[0].weights.limit", "integer in [0"),
    ({"rate_limits": [{"name": "a", "window_s": 1, "limit": 5, "weights": {"limit": 0, "market": 0, "cancel": 0,
                                                                              "cancel_all": 0, "modify": 0, "stop": 0,
                                                                              "cancel_stop": 0}}]},
     "gateway.rate_limits[0].weights", "weight above 0"),
    ({"service_s": 0.001, "queue_limt": 5}, "gateway.queue_limt", "queue_limit"),
])
def test_bad_gateway_input_names_the_field(gw, field, words):  # type: ignore[no-untyped-def]
    from abm.venues import InvalidProfile

    with pytest.raises(InvalidProfile) as info:
        load_venue("hyperliquid", {"gateway": gw})
    text = str(info.value)
    line = next((ln for ln in text.splitlines() if ln.strip().startswith(field)), None)
    assert line is not None, text
    assert words in line, text


@pytest.mark.parametrize("name", ["hyperliquid", "binance"])
def test_the_shipped_profiles_gateway_sketch_loads_once_uncommented(name):  # type: ignore[no-untyped-def]
    import tomllib
    from decimal import Decimal

    from abm.venues import read_profile
    from tests.support import REPO

    text = (REPO / "abm" / "venues" / "profiles" / f"{name}.toml").read_text()
    block = text[text.index("# [gateway]"):]
    sketch = tomllib.loads("\n".join(ln[2:] for ln in block.splitlines()), parse_float=Decimal)
    raw, _ = read_profile(name)
    assert "gateway" not in raw, "off in the shipped profile"
    spec = load_venue({**raw, "gateway": sketch["gateway"]}).gateway()
    assert spec is not None and spec.service_us > 0 and spec.rate_limits and not spec.liquidations_queued


@pytest.mark.parametrize("seed, limit", [(1, None), (2, 8), (3, 3), (4, 30)])
def test_random_arrivals_match_the_queue_recurrence(seed, limit):  # type: ignore[no-untyped-def]
    """Against an independent model: d_k = max(a_k, d_{k-1}) + s for the admitted, refused while `limit` remain."""
    import numpy as np

    rng = np.random.default_rng(seed)
    s = 1_333  # arrivals on a 1 ms grid, service 1.333 ms: no completion falls on an arrival (no ties to order)
    arrivals = np.sort(rng.integers(0, 400, size=600)) * 1_000  # bursts (repeated times) and gaps
    gw, sched, served = gateway(service_us=s, queue_limit=limit)
    refused: list[int] = []

    def arrive(t: int, k: int) -> None:
        if offer(gw, served, t, str(k)) is not None:
            refused.append(k)

    for k, a in enumerate(arrivals.tolist()):
        sched.at(a, arrive, k)
    sched.run_until(10**9)
    free, inside, expect, expect_refused = 0, [], [], []
    for k, a in enumerate(arrivals.tolist()):
        inside = [d for d in inside if d > a]
        if limit is not None and len(inside) >= limit:
            expect_refused.append(k)
            continue
        free = max(a, free) + s
        inside.append(free)
        expect.append((free, str(k)))
    assert served == expect and refused == expect_refused
    assert (limit is None) == (not refused)
