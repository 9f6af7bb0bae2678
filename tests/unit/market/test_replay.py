"""The shared 1M-event workload must end with exactly the published totals (shared/bench/README.md)."""

from abm.market.replay import SHARED_WORKLOAD_TOTALS, load_events, replay

EXPECTED = SHARED_WORKLOAD_TOTALS


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
