"""The liquidation process as a registered piece: the default, a bad name, and a user's own class in a run.

That the default gives byte-identical runs to the directly built liquidator it replaced is checked by
fingerprinting every catalogue scenario before and after; here, that it is the same class.
"""

from __future__ import annotations

import importlib
import textwrap

import pytest

from abm import Exchange
from abm.errors import InvalidInput
from abm.margin import DEFAULT_LIQUIDATION_PROCESS, LIQUIDATION_PROCESSES, Liquidator
from abm.model import MarketModel
from abm.venues import InvalidProfile, load_venue
from tests.support import crash_config

OWN = f"{__name__}:CountingLiquidator"


class CountingLiquidator(Liquidator):
    """The default waterfall, counting the mark updates it is told of."""

    marks = 0

    def on_mark(self, idx: int) -> None:
        type(self).marks += 1
        super().on_mark(idx)


def _crash(overrides: dict) -> MarketModel:
    cfg = crash_config(duration_s=300)
    cfg["venue"]["overrides"].update(overrides)
    return MarketModel(cfg, audit=True).run()  # audit: conservation checked after every step


def test_the_default_is_the_book_backstop_adl_waterfall():
    assert DEFAULT_LIQUIDATION_PROCESS == "book_backstop_adl"
    assert LIQUIDATION_PROCESSES.resolve("book_backstop_adl") is Liquidator
    assert LIQUIDATION_PROCESSES.names() == ("book_backstop_adl", "no_feedback")  # the control: test_no_feedback
    for venue in ("hyperliquid", "binance"):  # no shipped profile names one: both get the default
        v = load_venue(venue)
        assert "process" not in v.to_dict()["liquidation"]  # and the recorded profile is as before
        assert v.liquidation_process() is Liquidator
    assert type(Exchange()._liquidator) is Liquidator


def test_an_unknown_name_is_refused_naming_the_field_with_the_closest_name():
    with pytest.raises(InvalidProfile) as e:
        load_venue("hyperliquid", {"liquidation.process": "book_backstop_ad"})
    text = str(e.value)
    assert "liquidation.process" in text and "did you mean 'book_backstop_adl'?" in text
    with pytest.raises(InvalidInput) as e2:
        LIQUIDATION_PROCESSES.resolve("backstop")
    assert e2.value.field == "liquidation.process" and "['book_backstop_adl', 'no_feedback']" in e2.value.allowed


def test_a_class_that_is_not_a_liquidation_process_is_refused():
    with pytest.raises(InvalidProfile, match="liquidation.process: .*must name a class implementing"):
        load_venue("hyperliquid", {"liquidation.process": "fractions:Fraction"})
    with pytest.raises(InvalidInput, match="liquidation"):
        Exchange(object)  # type: ignore[arg-type]


def test_a_users_own_class_by_module_path_is_used_by_a_run():
    v = load_venue("hyperliquid", {"liquidation.process": OWN})
    assert v.liquidation_process() is CountingLiquidator
    assert v.to_dict()["liquidation"]["process"] == OWN  # recorded as named
    CountingLiquidator.marks = 0
    own = _crash({"liquidation.process": OWN})
    assert type(own.exchange._liquidator) is CountingLiquidator and CountingLiquidator.marks > 0
    default = _crash({})
    rows = own.exchange.liquidations.rows()
    assert len(rows) > 0 and rows == default.exchange.liquidations.rows()  # the same waterfall, so the same run


def test_a_users_own_class_from_a_file_of_its_own(tmp_path, monkeypatch):
    """Any class with the two methods will do (the protocol, not a base class); the exchange builds it once."""
    (tmp_path / "liq_own.py").write_text(textwrap.dedent("""
        class Recorder:
            built = []

            def __init__(self, venue, engine):
                self.venue, self.engine = venue, engine
                Recorder.built.append(self)

            def on_mark(self, idx):
                pass

            def cover_bad_debt(self, a, unit):
                pass
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    cls = load_venue("hyperliquid", {"liquidation.process": "liq_own:Recorder"}).liquidation_process()
    ex = Exchange(cls)
    assert cls.built == [ex._liquidator] and ex._liquidator.venue is ex and ex._liquidator.engine is ex.risk
