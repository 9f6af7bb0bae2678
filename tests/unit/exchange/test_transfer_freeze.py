"""Transfer freezes at both venues: while one is on, the frozen kind (deposits, withdrawals) is refused naming it and
nothing changes; the other kind goes on; overlapping freezes are counted; a freeze that never began cannot end."""

from __future__ import annotations

import pytest

from abm.errors import InvalidInput, TransferFrozen
from abm.exchange import Exchange
from abm.market.spec import MarketSpec
from abm.spot import SpotExchange


def test_the_perp_venue_refuses_the_frozen_kind_only() -> None:
    ex = Exchange()
    a = ex.open_account(1_000)
    ex.freeze_transfers(True, False)
    with pytest.raises(TransferFrozen) as e:
        ex.deposit(a, 10)
    assert (e.value.field, e.value.value) == ("deposits", 10) and "the perp venue" in e.value.allowed
    ex.withdraw(a, 10)
    ex.freeze_transfers(True, True)  # overlapping: deposits frozen twice, withdrawals once
    with pytest.raises(TransferFrozen, match="withdrawals"):
        ex.withdraw(a, 10)
    ex.freeze_transfers(True, False, -1)
    with pytest.raises(TransferFrozen):
        ex.deposit(a, 10)  # the other deposit freeze is still on
    ex.freeze_transfers(True, True, -1)
    ex.deposit(a, 10)
    ex.withdraw(a, 10)
    assert ex.account(a).balance == 990
    ex.check_conservation()


def test_a_spot_venue_freezes_cash_and_inventory() -> None:
    sx = SpotExchange("binance")
    sx.list_market(MarketSpec("BTC/USDC", "0.1", "0.001"))
    a = sx.open_account(1_000)
    sx.deposit_inventory(a, "BTC/USDC", 5)
    sx.freeze_transfers(False, True)
    for call in (lambda: sx.withdraw(a, 1), lambda: sx.withdraw_inventory(a, "BTC/USDC", 1)):
        with pytest.raises(TransferFrozen, match="spot venue 'binance'"):
            call()
    sx.deposit(a, 1)
    sx.freeze_transfers(False, True, -1)
    sx.withdraw(a, 1)
    assert sx.account(a).cash == 1_000
    sx.check_conservation()


@pytest.mark.parametrize("args, field", [((1, False), "deposits"), ((True, "no"), "withdrawals"),
                                         ((True, True, 2), "step"), ((True, True, -1), "step")])
def test_bad_freezes_are_refused_by_name(args: tuple, field: str) -> None:
    for venue in (Exchange(), SpotExchange()):
        with pytest.raises(InvalidInput) as e:
            venue.freeze_transfers(*args)
        assert e.value.field == field
        assert (venue.frozen_deposits, venue.frozen_withdrawals) == (0, 0)
