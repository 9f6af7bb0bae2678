"""Fee models: how a venue profile's fees become a market's integer maker/taker rates.

A fee model is resolved once, when a market is listed (``Venue.market_spec``): it returns the maker and
taker rates in basis points, which ``MarketSpec`` turns into the integer ppm rates the fill loop charges,
so the fill loop never sees a model. Only the flat model exists today (one rate per side for every
account); volume tiers or per-account schedules would be further entries.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

from abm.config import dump_number
from abm.registry import Registry

FeeModel = Callable[[Any], tuple[Decimal, Decimal]]  # venue profile -> (maker bps, taker bps)


def _is_function(piece: object) -> bool:
    return callable(piece) and not isinstance(piece, type)


FEE_MODELS: Registry[FeeModel] = Registry("fee model", "fees.model",
                                          "a function of a venue profile returning (maker bps, taker bps)", _is_function)
DEFAULT_FEE_MODEL = "flat"  # venue profiles do not name a fee model yet: every venue's is this one


@FEE_MODELS.register("flat")
def flat(profile: Any) -> tuple[Decimal, Decimal]:
    """``fees.maker_bps`` and ``fees.taker_bps`` of the profile, for every account and any volume."""
    fees = profile.fees
    return Decimal(str(dump_number(fees.maker_bps))), Decimal(str(dump_number(fees.taker_bps)))
