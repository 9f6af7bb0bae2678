"""quiet_gc: the collector is frozen and rare during a run, and exactly as it was after, also on an error."""

from __future__ import annotations

import gc

import pytest

from abm.model.quiet_gc import GEN0_THRESHOLD, quiet_gc
from tests.support import group, scenario


def test_the_collector_is_restored_after_a_run_and_after_an_error() -> None:
    before = gc.get_threshold()
    with quiet_gc():
        assert gc.get_threshold()[0] == GEN0_THRESHOLD and gc.get_freeze_count() > 0
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), quiet_gc():
        raise RuntimeError("a run that failed")
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


def test_a_run_leaves_the_collector_as_it_found_it() -> None:
    from abm.model import MarketModel

    before = gc.get_threshold()
    MarketModel(scenario(seed=1, duration_s=5, agents=(group("noise", 3, {}),))).run()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
