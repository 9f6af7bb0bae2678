"""External perps in a run: every mark update is the median of (oracle piece, book piece, the external perps'
weighted median), each external price recomputed here from its path and its own named stream; the same seed
gives the same marks; bad input is refused by name; scenarios without them keep their dump (and hash)."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from abm.errors import InvalidInput
from abm.model import MarketModel
from abm.model.model import stream
from abm.prices.index_rules import weighted_median
from abm.scenarios import load_scenario

EXT = [{"name": "binance_perp", "weight": 3, "noise_bps": 4, "basis_bps": 2},
       {"name": "okx_perp", "weight": 2, "noise_bps": 6, "lag_s": 2.5, "interval_s": 0.5},
       {"name": "bybit_perp", "weight": 2, "follows": "index", "basis_bps": -3}]
BASE: dict[str, Any] = {
    "run": {"seed": 11, "duration_s": 120},
    "venue": {"profile": "hyperliquid", "overrides": {"mark.two_inputs": "book_ema"}},
    "markets": [{"symbol": "BTC-PERP", "sigma": 0.8, "external_perps": EXT}],
    "agents": {"noise": {"count": 20}, "market_maker": {"count": 2}},
}
VENUES: dict[str, Any] = {**BASE, "markets": [{**BASE["markets"][0], "index": "venues",
                                                "index_sources": [{"name": "okx", "noise_bps": 3}]}]}


def recorded(config: dict[str, Any]) -> tuple[MarketModel, list[tuple[int, int, tuple, list]]]:
    m = MarketModel(config)
    feed = m.feeds["BTC-PERP"]
    rows: list[tuple[int, int, tuple, list]] = []
    feed.mark_listeners.append(lambda t, mark: rows.append(
        (t, mark, feed.mark_model.components, [s.value for s in feed.external_perps.sources])))
    return m.run(), rows


def half_even(x: Fraction) -> int:
    fl = math.floor(x)
    r = x - fl
    return fl + 1 if r > Fraction(1, 2) or (r == Fraction(1, 2) and fl % 2) else fl


@pytest.mark.parametrize("config", [BASE, VENUES], ids=["exogenous index", "index by venues"])
def test_every_mark_update_is_the_median_with_the_external_perps(config: dict[str, Any]) -> None:
    m, rows = recorded(config)
    assert len(rows) > 150  # a mark update every second and at each oracle publication
    tick = Fraction("0.1")
    draws = {e["name"]: stream(11, "external-perp", "BTC-PERP", e["name"]).standard_normal(1000) for e in EXT}
    for t, mark, pieces, values in rows:
        for e, v in zip(EXT, values):
            followed = m.paths["BTC-PERP"] if e.get("follows", "value") == "value" else m.index_of("BTC-PERP")
            lag = int(e.get("lag_s", 0) * 1e6)
            x = followed.value_at(max(0, t - lag)) * (1 + e.get("basis_bps", 0) * 1e-4)
            if e.get("noise_bps"):
                x *= math.exp(e["noise_bps"] * 1e-4 * float(draws[e["name"]][t // int(e.get("interval_s", 1) * 1e6)]))
            assert v == round(Fraction(x) / tick)
        ext = weighted_median([(Fraction(v), e["weight"]) for e, v in zip(EXT, values)])
        assert pieces[2] == ext
        present = sorted(p for p in pieces if p is not None)  # the book piece is missing until someone quotes
        assert pieces[0] is not None and (len(present) == 3 or pieces[1] is None)
        assert mark == half_even(present[1] if len(present) == 3 else (present[0] + present[1]) / 2)
    # the third leg matters: some updates take the external perps' median, some the book or the oracle piece
    chosen = {next(i for i, p in enumerate(pieces) if half_even(p) == mark)
              for _, mark, pieces, _ in rows if pieces[1] is not None}
    assert 2 in chosen and len(chosen) >= 2


def test_the_same_seed_gives_the_same_marks_and_the_external_perps_draw_from_no_other_stream() -> None:
    a, rows_a = recorded(BASE)
    b, rows_b = recorded(BASE)
    assert rows_a == rows_b
    without = MarketModel({**BASE, "markets": [{**BASE["markets"][0], "external_perps": []}]})
    assert without.feeds["BTC-PERP"].external_perps is None
    assert np.array_equal(without.paths["BTC-PERP"].values, a.paths["BTC-PERP"].values)  # the index's draws unchanged


def test_scenarios_without_external_perps_dump_as_before() -> None:
    scn = load_scenario("whale_dump")
    assert "external_perps" not in scn.model_dump()["markets"][0]
    with_ext = load_scenario("whale_dump", {"markets[0].external_perps": EXT[:1]})
    assert with_ext.model_dump()["markets"][0]["external_perps"][0]["name"] == "binance_perp"


@pytest.mark.parametrize("overrides, field, words", [
    ({"markets[0].external_perps": [{"name": "a"}, {"name": "a"}]}, "markets[0].external_perps", "distinct"),
    ({"markets[0].external_perps": [{"name": "a", "lag_s": 900}]}, "markets[0].external_perps[0].lag_s",
     "must be < run.duration_s"),
    ({"markets[0].external_perps": [{"name": "a", "interval_s": 1e-9}]}, "markets[0].external_perps[0].interval_s",
     "at least 1 µs"),
    ({"markets[0].external_perps": [{"name": "a"}], "venue.profile": "binance"}, "markets[0].external_perps",
     "only by the hyperliquid mark formula"),
    ({"markets[0].external_perps": [{"name": "a", "follows": "spot"}]}, "markets[0].external_perps[0].follows",
     "'value' or 'index'"),
    ({"markets[0].external_perps": [{"name": "a", "nosie_bps": 2}]}, "markets[0].external_perps[0].nosie_bps",
     "noise_bps"),
    ({"markets[0].external_perps": [{"name": "a", "weight": 0}]}, "markets[0].external_perps[0].weight",
     "greater than or equal to 1"),
    ({"markets[0].external_perps": [{"name": "a", "basis_bps": -10_000}]}, "markets[0].external_perps[0].basis_bps",
     "greater than -10000"),
])
def test_bad_external_perps_are_refused_by_name(overrides: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as e:
        load_scenario("whale_dump", overrides)
    lines = [p for p in e.value.problems if p.path == field]  # type: ignore[attr-defined]
    assert lines and words in lines[0].allowed, e.value
