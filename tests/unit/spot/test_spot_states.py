"""A spot pair's trading state at order entry, as on the perp venue: a halt refuses every action and changes
nothing (holds included), cancel-only lets only cancels in, post-only nothing that takes; reduce-only is a
perp's state and refused by name."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

import pytest

from abm.errors import InvalidInput, VenueStateViolation
from abm.market.spec import MarketSpec
from abm.spot import SpotExchange
from abm.units import BUY, SELL
from tests.unit.spot.test_spot_exchange import state as snapshot

PAIR = "BTC/USDC"


def venue() -> tuple[SpotExchange, int, int]:
    """A maker with a bid at 59,990 and an ask at 60,010 (10 lots each), a trader with cash and 5 lots."""
    ex = SpotExchange("venue_a")
    ex.list_market(MarketSpec(PAIR, Decimal("0.1"), Decimal("0.001"), maker_fee_bps=Decimal("1"),
                              taker_fee_bps=Decimal("5")))
    mm = ex.open_account(10_000_000_000)
    ex.deposit_inventory(mm, PAIR, 100)
    ex.limit(mm, PAIR, BUY, 10, 599_900, client_id="bid")
    ex.limit(mm, PAIR, SELL, 10, 600_100, client_id="ask")
    t = ex.open_account(1_000_000_000)
    ex.deposit_inventory(t, PAIR, 5)
    return ex, mm, t


def actions(ex: SpotExchange, mm: int, t: int) -> dict[str, Callable[[], Any]]:
    return {
        "limit": lambda: ex.limit(t, PAIR, BUY, 1, 599_000),
        "crossing limit": lambda: ex.limit(t, PAIR, BUY, 1, 600_100),
        "IOC limit": lambda: ex.limit(t, PAIR, SELL, 1, 610_000, tif="IOC"),
        "market": lambda: ex.market_order(t, PAIR, SELL, 1),
        "modify": lambda: ex.modify(mm, client_id="bid", price=599_800),
        "modify crossing": lambda: ex.modify(mm, client_id="ask", price=599_900),
        "cancel": lambda: ex.cancel(mm, client_id="bid"),
        "cancel_all": lambda: ex.cancel_all(mm),
        "cancel_all of the pair": lambda: ex.cancel_all(mm, PAIR),
    }


CANCELS = {"cancel", "cancel_all", "cancel_all of the pair"}
ACCEPTED = {"halted": set(), "cancel_only": CANCELS, "post_only": CANCELS | {"limit", "modify"},
            "open": set(actions(*venue()))}


@pytest.mark.parametrize("state", list(ACCEPTED))
@pytest.mark.parametrize("action", list(actions(*venue())))
def test_each_state_lets_in_what_it_accepts_and_refuses_the_rest_changing_nothing(state: str, action: str) -> None:
    ex, mm, t = venue()
    ex.set_market_state(PAIR, state)
    before = snapshot(ex)
    if action in ACCEPTED[state]:
        actions(ex, mm, t)[action]()
        assert snapshot(ex) != before
    else:
        with pytest.raises(VenueStateViolation) as e:
            actions(ex, mm, t)[action]()
        assert e.value.field == state and f"{PAIR} is {state.replace('_', '-')}: it accepts" in str(e.value)
        assert snapshot(ex) == before
    ex.check_conservation()
    ex.set_market_state(PAIR, "open")
    actions(ex, mm, t)["market"]()
    ex.check_conservation()


def test_reduce_only_is_a_perp_state() -> None:
    ex, _, _ = venue()
    with pytest.raises(InvalidInput, match=r"^state: must be one of \['open', 'halted', 'cancel_only', 'post_only'\], "
                                           r"got 'reduce_only'$"):
        ex.set_market_state(PAIR, "reduce_only")
    assert ex.market(PAIR).state == 0
