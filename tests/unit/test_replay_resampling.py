"""A replayed path rescaled by a factor or block-bootstrapped per seed (for [randomize]d stress studies)."""

from __future__ import annotations

import numpy as np
import pytest

from abm.errors import InvalidInput
from abm.model import MarketModel
from abm.prices.replay import block_bootstrap, scale_moves
from abm.scenarios import load_scenario

SYM = "BTC-PERP"


def test_block_bootstrap_lays_contiguous_windows_end_to_end():
    values = 100 * np.exp(np.cumsum(np.r_[0.0, np.random.default_rng(1).normal(0, 0.01, 23)]))
    r = np.diff(np.log(values))
    out = block_bootstrap(values, 5, np.random.default_rng(7))
    starts = np.random.default_rng(7).integers(0, len(r) - 5 + 1, size=5)  # ceil(23 / 5) blocks
    expected = np.concatenate([r[s:s + 5] for s in starts])[:23]
    assert out[0] == values[0] and len(out) == len(values)
    assert np.allclose(np.diff(np.log(out)), expected, rtol=0, atol=1e-12)
    with pytest.raises(InvalidInput, match="replay_block_s"):
        block_bootstrap(values, 24, np.random.default_rng(0))


def test_scale_moves_multiplies_every_log_move_from_the_start():
    v = np.array([100.0, 90.0, 80.0, 110.0])
    assert np.allclose(scale_moves(v, 2.0), [100.0, 81.0, 64.0, 121.0])


def _path(**over):
    scn = load_scenario("replay", {"run.duration_s": 120, **{f"markets[0].{k}": v for k, v in over.items()}})
    return MarketModel(scn).paths[SYM].values


def test_the_run_replays_the_rescaled_or_resampled_path():
    base = _path()
    deeper = _path(replay_move_scale=2.0)
    assert np.allclose(np.log(deeper / deeper[0]), 2 * np.log(base / base[0]))
    a = MarketModel(load_scenario("replay", {"run.duration_s": 120, "markets[0].replay_block_s": 10}, 1)).paths[SYM]
    again = MarketModel(load_scenario("replay", {"run.duration_s": 120, "markets[0].replay_block_s": 10}, 1)).paths[SYM]
    other = MarketModel(load_scenario("replay", {"run.duration_s": 120, "markets[0].replay_block_s": 10}, 2)).paths[SYM]
    assert np.array_equal(a.values, again.values) and not np.array_equal(a.values, other.values)
    assert a.values[0] == base[0] and not np.array_equal(a.values, base)
    # the run's returns, resampled: the bootstrapped path's moves are the recorded run's moves, reordered in blocks
    n = 1 + int(120 * 1_000_000 // a.dt_us)
    run_moves = np.sort(np.round(np.diff(np.log(base[:n])), 12))
    boot_moves = np.round(np.diff(np.log(a.values[:n])), 12)
    assert set(boot_moves) <= set(run_moves)


@pytest.mark.parametrize("over, message", [
    ({"markets[0].replay_move_scale": 0}, "replay_move_scale"),
    ({"markets[0].replay_block_s": 500}, "must be <= run.duration_s"),
])
def test_bad_resampling_is_named(over, message):
    with pytest.raises(InvalidInput, match=message):
        load_scenario("replay", {"run.duration_s": 120, **over})


def test_resampling_a_simulated_market_is_refused():
    with pytest.raises(InvalidInput, match='replay_block_s: applies to process = "replay" only'):
        load_scenario("baseline", {"markets[0].replay_block_s": 10})
