"""A rally on a venue enforcing a small maximum market-order value: the leveraged crowd's entries are sized down
(recorded) and its take-profit exits, worth more than the limit at the higher mark, go in children, so only a
child the mark outran on its way is refused for that limit, and it is sized again at once; conservation holds."""

from __future__ import annotations

from typing import Any

import pytest

from abm.agents.leveraged import LeveragedTrader
from abm.errors import OrderLimitViolation
from abm.model import MarketModel
from tests.support import crash_config


def test_a_leveraged_crowd_keeps_inside_the_maximum_market_order_value(monkeypatch: pytest.MonkeyPatch) -> None:
    refused: list[Any] = []
    original = LeveragedTrader.on_reject

    def on_reject(self: LeveragedTrader, action: str, error: Any) -> None:
        refused.append(error)
        original(self, action, error)

    monkeypatch.setattr(LeveragedTrader, "on_reject", on_reject)
    cfg = crash_config(seed=11, duration_s=420, whale=False)
    cfg["venue"]["rules"] = ["max_market_order_value"]
    cfg["venue"]["overrides"] = {"orders.max_market_value": [{"min_leverage": 1, "value": 20_000}]}
    cfg["markets"][0]["shocks"][0]["pct"] = 9  # a rally: the crowd's positions grow in value past the limit
    cfg["agents"]["leveraged"]["take_profit_pct"] = 3.0
    m = MarketModel(cfg, audit=True).run()
    crowd = m.agents_by_group["leveraged"]
    sized = [r for a in crowd for r in a.shortfalls if "max_market_order_value" in r.reason]
    assert sized, "some entries were worth more than 20,000 USDC and were sized down, with a record"
    assert sum(a.limit_splits for a in crowd) > 0, "some exits went in children"
    # a child the venue refused for the limit was sized right at the mark it was sent at: the mark rose before it
    # landed (by less than 1 %), and it was sized again at once
    raced = [e for e in refused if isinstance(e, OrderLimitViolation) and e.field == "max_market_order_value"]
    assert all(20_000 < float(str(e.value).split()[0].replace(",", "")) < 20_200 for e in raced)
    split = [a for a in crowd if a.limit_splits]
    assert all(len([h for h in a.history if h[1] == "exit:take_profit"]) > 1 for a in split)  # one fill per child
