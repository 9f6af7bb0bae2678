"""The oracle: delayed, tick-rounded, scheduled publications; outages, clipping, noise and strict validation."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest

from abm.errors import InvalidInput, InvalidPrice
from abm.prices import GBM, IndexPath, Move, Oracle, Scripted, WrongPublishTime

S = 1_000_000
TICK = Decimal("0.1")


def ticks_of(value: float, tick: Decimal = TICK) -> int:
    """Reference rounding, done differently from the oracle: exact Decimal, banker's rounding."""
    with localcontext() as ctx:
        ctx.prec = 100
        return int((Decimal(value) / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def run(o: Oracle, until_us: int) -> list[tuple[int, int | None]]:
    """Drive the oracle as the scheduler would: publish at each due time up to ``until_us``."""
    out = []
    while (t := o.next_update_us()) is not None and t <= until_us:
        out.append((t, o.publish(t)))
    return out


@pytest.fixture
def path() -> IndexPath:
    return GBM(60_000.0, 0.0, 1.5).path(600 * S, np.random.default_rng(1))


@pytest.fixture
def ramp() -> IndexPath:
    """A strictly rising index (1 tick per 100 ms), so reading at the wrong time is always visible."""
    return IndexPath(1_000.0 + 0.1 * np.arange(6_001), dt_us=100_000)


# ------------------------------------------------------------------------------ delay and schedule


@pytest.mark.parametrize("delay_us, interval_us", [(0, 3 * S), (700_000, 3 * S), (2_500_000, 1 * S), (4 * S, 3 * S)])
def test_each_publication_is_the_index_at_t_minus_delay_in_ticks(path, delay_us, interval_us):
    o = Oracle(path, TICK, interval_us=interval_us, delay_us=delay_us)
    pubs = run(o, 10**12)
    first = -(-delay_us // interval_us) * interval_us  # first grid time that can look back by the delay
    assert [t for t, _ in pubs] == list(range(first, path.end_us + delay_us + 1, interval_us))
    for t, px in pubs:
        assert px == ticks_of(path.value_at(t - delay_us))
    assert o.price == pubs[-1][1] and o.last_update_us == pubs[-1][0]
    assert o.next_update_us() is None  # the path is used up: nothing more can be published


def test_delay_really_lags_the_index(ramp):
    o = Oracle(ramp, TICK, interval_us=S, delay_us=2 * S)
    assert o.next_update_us() == 2 * S
    assert o.publish(2 * S) == 10_000  # the index at t = 0, not at t = 2 s (10_020)
    assert o.publish(3 * S) == 10_010
    assert ticks_of(ramp.value_at(3 * S)) == 10_030


def test_rounding_is_half_to_even():
    # with a 0.5 tick every price below is exactly representable and half-way cases really occur
    p = IndexPath(np.array([10.25, 10.75, 11.25, 10.2, 10.3]), dt_us=S)
    o = Oracle(p, Decimal("0.5"), interval_us=S)
    assert [px for _, px in run(o, 4 * S)] == [20, 22, 22, 20, 21]


def test_staleness_and_age(ramp):
    o = Oracle(ramp, TICK, interval_us=3 * S)
    assert o.price is None and o.age_us(0) is None and o.is_stale(0, 10**9)
    o.publish(0)
    assert o.age_us(0) == 0 and o.age_us(2 * S) == 2 * S
    assert not o.is_stale(2 * S, 2 * S) and o.is_stale(2 * S + 1, 2 * S)
    with pytest.raises(InvalidInput, match="max_age_us"):
        o.is_stale(S, -1)


def test_publish_at_the_wrong_time_raises_and_changes_nothing(ramp):
    o = Oracle(ramp, TICK, interval_us=3 * S)
    o.publish(0)
    for bad in (0, 3 * S - 1, 3 * S + 1, 6 * S):
        with pytest.raises(WrongPublishTime, match="next_update_us"):
            o.publish(bad)
    assert (o.price, o.last_update_us, o.next_update_us()) == (10_000, 0, 3 * S)
    run(o, ramp.end_us)
    with pytest.raises(WrongPublishTime, match="no publication is due"):
        o.publish(ramp.end_us + 3 * S)


# -------------------------------------------------------------------------------------- outages


def test_outage_publishes_nothing_and_resumes_on_the_grid(ramp):
    o = Oracle(ramp, TICK, interval_us=3 * S, delay_us=500_000, outages=[(10 * S, 25 * S)])
    pubs = dict(run(o, 40 * S))
    assert pubs[9 * S] == ticks_of(ramp.value_at(8_500_000))
    assert pubs[12 * S] is None  # the first missed boundary is still an event: the miss is visible
    assert 15 * S not in pubs and 21 * S not in pubs  # the rest of the outage is skipped
    assert pubs[27 * S] == ticks_of(ramp.value_at(26_500_000))  # first boundary after the outage
    assert sorted(pubs) == [3 * S * k for k in (1, 2, 3, 4, 9, 10, 11, 12, 13)]


def test_age_grows_through_an_outage(ramp):
    o = Oracle(ramp, TICK, interval_us=3 * S, outages=[(4 * S, 20 * S)])
    run(o, 3 * S)
    assert o.next_update_us() == 6 * S and o.publish(6 * S) is None
    assert o.price == ticks_of(ramp.value_at(3 * S)) and o.last_update_us == 3 * S
    assert o.next_update_us() == 21 * S
    ages = [o.age_us(t) for t in (6 * S, 12 * S, 20 * S)]
    assert ages == [3 * S, 9 * S, 17 * S] and o.is_stale(20 * S, 4 * S)
    assert o.publish(21 * S) == ticks_of(ramp.value_at(21 * S)) and o.age_us(21 * S) == 0


def test_outage_windows_are_half_open_and_merged(ramp):
    o = Oracle(ramp, TICK, interval_us=3 * S, outages=[(5 * S, 9 * S), (8 * S, 12 * S)])
    assert o.outages == ((5 * S, 12 * S),)
    pubs = run(o, 15 * S)
    assert pubs[2:] == [(6 * S, None), (12 * S, ticks_of(ramp.value_at(12 * S))), (15 * S, ticks_of(ramp.value_at(15 * S)))]


def test_outage_at_the_start(ramp):
    o = Oracle(ramp, TICK, interval_us=3 * S, outages=[(0, 7 * S)])
    assert o.publish(0) is None and o.price is None and o.next_update_us() == 9 * S


# ------------------------------------------------------------------------------- clipping, noise


def test_clipping_bounds_every_step():
    crash = Scripted([Move(60, 0, -30), Move(200, 0, 50)], s0=50_000.0).path(400 * S, None)
    o = Oracle(crash, TICK, interval_us=3 * S, clip_pct=2.0)
    px = [p for _, p in run(o, crash.end_us)]
    steps = [Fraction(b, a) - 1 for a, b in zip(px, px[1:])]
    assert max(abs(s) for s in steps) <= Fraction(2, 100)
    assert min(steps) < Fraction(-199, 10_000)  # the clip binds on the way down ...
    assert max(steps) > Fraction(199, 10_000)  # ... and on the way up
    assert px[-1] == ticks_of(crash.values[-1])  # and the oracle catches up once the index holds still


def test_clipping_leaves_ordinary_moves_alone(path):
    a = [p for _, p in run(Oracle(path, TICK, clip_pct=5.0), path.end_us)]
    b = [p for _, p in run(Oracle(path, TICK), path.end_us)]
    assert a == b


def test_noise_is_seeded_reproducible_and_about_the_right_size(path):
    def noisy(seed: int) -> list[int]:
        return [p for _, p in run(Oracle(path, Decimal("0.01"), interval_us=S, noise_bps=10.0,
                                         rng=np.random.default_rng(seed)), path.end_us)]

    a, b, c = noisy(5), noisy(5), noisy(6)
    assert a == b and a != c
    clean = [ticks_of(path.value_at(t), Decimal("0.01")) for t in range(0, path.end_us + 1, S)]
    rel = np.log(np.array(a, float) / np.array(clean, float)) * 1e4  # in bps
    n = len(rel)
    assert abs(rel.std(ddof=1) - 10.0) < 4 * 10.0 / math.sqrt(2 * (n - 1)) + 0.2  # 0.2 bp of tick rounding
    assert abs(rel.mean()) < 4 * 10.0 / math.sqrt(n)


def test_noise_uses_only_the_oracles_generator(ramp):
    g = np.random.default_rng(3)
    o = Oracle(ramp, TICK, noise_bps=5.0, rng=g, outages=[(2 * S, 10 * S)])
    before = g.bit_generator.state
    o.publish(0)
    assert g.bit_generator.state != before
    after_one = g.bit_generator.state
    o.publish(3 * S)  # an outage: nothing drawn
    assert g.bit_generator.state == after_one


def test_a_price_below_half_a_tick_is_refused():
    o = Oracle(IndexPath(np.array([0.04, 0.04])), TICK)
    with pytest.raises(InvalidPrice, match="ticks"):
        o.publish(0)
    assert o.price is None and o.next_update_us() == 0


# ---------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"path": [1.0, 2.0]}, "path"),
        ({"tick_size": Decimal(0)}, "tick_size"),
        ({"tick_size": "abc"}, "tick_size"),
        ({"tick_size": Decimal("NaN")}, "tick_size"),
        ({"interval_us": 0}, "interval_us"),
        ({"interval_us": 1.5}, "interval_us"),
        ({"delay_us": -1}, "delay_us"),
        ({"delay_us": 10**12}, "delay_us"),
        ({"noise_bps": -1.0}, "noise_bps"),
        ({"noise_bps": float("nan")}, "noise_bps"),
        ({"noise_bps": 5.0}, "rng"),
        ({"rng": 42}, "rng"),
        ({"clip_pct": 0}, "clip_pct"),
        ({"clip_pct": 100}, "clip_pct"),
        ({"outages": [(5, 5)]}, "outages[0].end_us"),
        ({"outages": [(0, 10), (-1, 5)]}, "outages[1].start_us"),
        ({"outages": [(0, 10, 20)]}, "outages[0]"),
        ({"outages": (1, 2)}, "outages[0]"),
        ({"outages": "never"}, "outages"),
    ],
)
def test_bad_parameters_name_the_field(ramp, kwargs, field):
    args = {"path": ramp, "tick_size": TICK, **kwargs}
    with pytest.raises(InvalidInput) as e:
        Oracle(**args)
    assert e.value.field == field and field in str(e.value)


def test_tick_size_accepts_decimal_like_values(ramp):
    for tick in (Decimal("0.1"), "0.1", 0.1):
        assert Oracle(ramp, tick).tick_size == Decimal("0.1")
    assert Oracle(ramp, 1).publish(0) == 1_000
