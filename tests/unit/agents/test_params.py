"""Agent parameters: types are the schema, every problem reported at once, in user units, under the group."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Annotated, Literal, Optional

import pytest

from abm.agents import BUILTIN_KINDS, InvalidParams, TraderParams, number, resolve
from abm.agents.arbitrageur import ArbitrageurParams
from abm.agents.base import parse_params
from abm.agents.leveraged import LeveragedParams
from abm.agents.whale import WhaleParams
from abm.errors import InvalidInput
from abm.model import MarketModel
from abm.model.scenario import InvalidScenario, parse_scenario
from tests.support import group, scenario


@dataclass(frozen=True, slots=True)
class MyParams(TraderParams):
    size_btc: Annotated[float, number(gt=0, unit="BTC")] = 1.0
    lots: int = 3
    mode: Literal["a", "b"] = "a"
    stop_pct: Optional[Annotated[float, number(gt=0, lt=100, unit="percent")]] = None


def test_every_problem_at_once_in_user_units() -> None:
    with pytest.raises(InvalidParams) as e:
        WhaleParams(size=-1, start_s="60", execution="twapp", slippage_bps=float("inf"), leverage=0)
    assert e.value.field == "execution"  # the first, in field order
    assert e.value.lines == (
        "execution: must be 'market', 'twap', 'iceberg' or 'hunt', got 'twapp'",
        "size: must be a number > 0 (base units), got -1",
        "start_s: must be a number >= 0 (seconds), got '60'",
        "slippage_bps: must be a finite number in [0, 10,000) (basis points) or None, got inf",
        "leverage: must be an integer >= 1 or None, got 0",
    )


@pytest.mark.parametrize("field, value", [
    ("deposit_usdc", True),  # a bool is not a number
    ("deposit_usdc", "1000"),  # no coercion from strings
    ("deposit_usdc", float("nan")),
    ("leverage", 2.0),  # 2.0 is not an integer
    ("isolated_prob", 1.0000001),
    ("size_fraction", 0),  # open lower bound
    ("journal", 1),
    ("wake", "sometimes"),
])
def test_strict_types_and_bounds(field: str, value: object) -> None:
    with pytest.raises(InvalidParams) as e:
        LeveragedParams(**{field: value})
    assert e.value.field == field and len(e.value.problems) == 1


def test_bounds_are_exact_at_the_edge() -> None:
    LeveragedParams(isolated_prob=1.0, size_fraction=1.0, stop_loss_pct=99.99)
    with pytest.raises(InvalidParams, match=r"stop_loss_pct: must be a number in \(0, 100\)"):
        LeveragedParams(stop_loss_pct=100)


def test_values_are_checked_not_converted() -> None:
    p = LeveragedParams(deposit_usdc=5000, leverage_min=3)
    assert type(p.deposit_usdc) is int and type(p.leverage_min) is int  # what a run computes with is what was given


def test_cross_field_rules_after_the_fields() -> None:
    with pytest.raises(InvalidParams, match=r"carry_exit: must be a funding rate per hour in \[0, carry_threshold"):
        ArbitrageurParams(carry_threshold=0.001, carry_exit=0.002)
    with pytest.raises(InvalidParams, match=r"side: must be 'buy' or 'sell' for execution 'twap'"):
        WhaleParams(execution="twap", side="auto")
    assert WhaleParams(execution="hunt", side="auto").side == "auto"


def test_registry_names_are_checked_with_the_fields() -> None:
    with pytest.raises(InvalidParams) as e:
        LeveragedParams(latency_model="unifrom", leverage=0)
    assert [p.path for p in e.value.problems] == ["latency_model", "leverage"]
    assert "did you mean 'uniform'?" in e.value.problems[0].allowed


def test_a_users_own_params_are_checked_by_their_types() -> None:
    MyParams(size_btc=2, lots=4, mode="b", stop_pct=5.0)
    with pytest.raises(InvalidParams) as e:
        MyParams(size_btc=0, lots=1.5, mode="c", stop_pct=100.0)
    assert e.value.lines == (
        "size_btc: must be a number > 0 (BTC), got 0",
        "lots: must be an integer, got 1.5",
        "mode: must be 'a' or 'b', got 'c'",
        "stop_pct: must be a number in (0, 100) (percent) or None, got 100.0",
    )


def test_parse_params_names_the_group_and_reports_unknown_keys() -> None:
    with pytest.raises(InvalidParams) as e:
        parse_params(LeveragedParams, {"leverag": 3, "size_fraction": 2}, "agents.crowd")
    assert e.value.lines == ("agents.crowd.leverag: unknown parameter; did you mean 'leverage'?, got 3",)
    with pytest.raises(InvalidParams) as e:
        parse_params(LeveragedParams, {"size_fraction": 2, "ema_s": 0}, "agents.crowd")
    assert [p.path for p in e.value.problems] == ["agents.crowd.ema_s", "agents.crowd.size_fraction"]


def test_a_scenario_reports_every_problem_of_every_group() -> None:
    data = scenario(agents=(group("leveraged", name="crowd", params={"size_fraction": 2, "ema_s": -1}),
                            group("whale", params={"size": 0})))
    with pytest.raises(InvalidScenario) as e:
        parse_scenario(data, "test")
    paths = [p.path for p in e.value.problems]
    assert paths == ["agents.crowd.ema_s", "agents.crowd.size_fraction", "agents.whale.size"]
    with pytest.raises(InvalidInput) as e2:  # the model refuses the same, under the same names
        MarketModel(data)
    assert [p.path for p in e2.value.problems] == paths  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", BUILTIN_KINDS)
def test_kinds_keep_their_bases_constraints(kind: str) -> None:
    """A kind that re-declares a base field (another default) must keep the base's declared range."""
    cls = resolve(kind).Params
    hints = typing.get_type_hints(cls, include_extras=True)
    base = typing.get_type_hints(TraderParams, include_extras=True)
    for f in dataclasses.fields(TraderParams):
        assert hints[f.name] == base[f.name], f"{cls.__name__}.{f.name}"
    cls()  # every default is valid
