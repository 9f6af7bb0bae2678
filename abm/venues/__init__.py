"""Venue profiles as data: the real venues' numbers in TOML, validated, and turned into engine objects.

Why data: venues change fees, tiers and caps often, and a study must say exactly which numbers it ran
with. A profile is a TOML file (two ship with the package: ``hyperliquid``, the default, and ``binance``,
each number commented with its source line in ``shared/reference/venue-mechanics.md``); ``load_venue``
validates it (``abm.venues.schema``), applies per-run overrides by dotted path, and returns a ``Venue``
whose builders make the ``MarketSpec``, ``RiskParams``, ``FundingConfig``, mark model and oracle
settings of a market. ``Venue.to_dict()`` records the resolved profile; loading that record gives the
same Venue, so a run can be repeated exactly.

    venue = load_venue("hyperliquid", {"fees.taker_bps": 5})
    spec = venue.market_spec("BTC", tick_size="0.1", lot_size="0.001")
    ex.list_market(spec, venue.risk_params("btc"))
"""

from __future__ import annotations

import difflib
import tomllib
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from abm.config import MISSING, Problem, apply_overrides
from abm.errors import InvalidInput
from abm.venues.rules import VENUE_RULES, VenueRule
from abm.venues.schema import InvalidProfile, VenueProfile, parse_profile
from abm.venues.venue import OrderLimits, StalenessLimits, Venue

__all__ = ["load_venue", "build_venue", "read_profile", "Venue", "VenueProfile", "InvalidProfile", "Problem",
           "OrderLimits", "StalenessLimits", "VENUE_RULES", "VenueRule", "PROFILES", "DEFAULT_VENUE"]

PROFILES = ("hyperliquid", "binance")
DEFAULT_VENUE = "hyperliquid"


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        # floats as Decimal: 0.1 in a profile means exactly 1/10
        return tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as e:
        raise InvalidProfile(source, [Problem("toml", MISSING, f"not valid TOML: {e}")]) from None


def read_profile(name_or_path: Union[str, Path]) -> tuple[dict[str, Any], str]:
    """The raw (unvalidated) data of a shipped profile or a TOML file, and a label naming where it came from."""
    if isinstance(name_or_path, str) and name_or_path in PROFILES:
        text = resources.files("abm.venues").joinpath("profiles", f"{name_or_path}.toml").read_text(encoding="utf-8")
        return _parse_toml(text, f"'{name_or_path}'"), f"'{name_or_path}'"
    if isinstance(name_or_path, (str, Path)) and not isinstance(name_or_path, bool):
        path = Path(name_or_path)
        if path.is_file():
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise InvalidInput("name_or_path", str(path), f"must be a readable UTF-8 TOML file ({e})") from None
            return _parse_toml(text, str(path)), str(path)
        close = difflib.get_close_matches(str(name_or_path), PROFILES, n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise InvalidInput("name_or_path", name_or_path,
                           f"must be one of {list(PROFILES)} or the path of an existing .toml file{hint}")
    raise InvalidInput("name_or_path", name_or_path,
                       f"must be one of {list(PROFILES)}, a path to a .toml file, or a mapping (Venue.to_dict())")


def build_venue(raw: Mapping[str, Any], source: str, overrides: Optional[Mapping[str, object]] = None) -> Venue:
    """Validate raw profile data (after applying ``overrides``) into a Venue; ``source`` labels errors."""
    label = f"{source} with overrides" if overrides else source
    data = apply_overrides(raw, overrides, label, VenueProfile, InvalidProfile) if overrides else dict(raw)
    return Venue(parse_profile(data, label), source)


def load_venue(name_or_path: Union[str, Path, Mapping[str, Any]] = DEFAULT_VENUE,
               overrides: Optional[Mapping[str, object]] = None) -> Venue:
    """Load a venue: ``"hyperliquid"`` (default) or ``"binance"``, a TOML file's path, or a ``Venue.to_dict()``.

    ``overrides`` maps dotted paths to values, e.g. ``{"fees.taker_bps": 5, "liquidation.cooldown_s": 10,
    "tiers.btc.bands[1].max_leverage": 25}``; ``None`` as a value removes an optional key. Unknown paths are
    refused with the closest valid one, and values are validated like the file's. Any problem raises
    ``InvalidProfile`` (an ``InvalidInput``) listing every problem, one line each.
    """
    if overrides is not None and not isinstance(overrides, Mapping):
        raise InvalidInput("overrides", overrides, "must be a mapping of dotted paths to values, or None")
    if isinstance(name_or_path, Mapping):
        return build_venue(name_or_path, "<mapping>", overrides)
    raw, source = read_profile(name_or_path)
    return build_venue(raw, source, overrides)
