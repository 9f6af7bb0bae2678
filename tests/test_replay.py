"""The shared 1M-event workload must end with exactly the published totals (shared/bench/README.md)."""

from abm.market.replay import ReplayTotals, load_events, replay

EXPECTED = ReplayTotals(
    trades=369_005,
    volume=1_342_899,
    notional=134_259_832_412,
    resting_orders=2_186,
    best_bid=100_011,
    best_ask=100_014,
    resting_bid_volume=6_231,
    resting_ask_volume=5_750,
)


def test_full_replay_matches_published_totals(lob_events_path):
    events = load_events(lob_events_path)
    assert len(events) == 1_000_000
    book, totals = replay(events)
    assert totals == EXPECTED
    book.check_invariants()


def test_replay_prefix_keeps_invariants_and_depth_totals(lob_events_path):
    events = load_events(lob_events_path)[:50_000]
    book, totals = replay(events)
    book.check_invariants()
    # depth over the whole book (100% band around the mid) equals the resting volume per side
    b, _, a, _ = book.depth_within(10_000)
    assert (b, a) == (totals.resting_bid_volume, totals.resting_ask_volume)
    assert totals.trades > 0 and totals.resting_orders == len(book)
