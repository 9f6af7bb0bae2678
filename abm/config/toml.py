"""Configuration written as TOML, by tomli_w (the writer that pairs with the standard library's reader)."""

from __future__ import annotations

from typing import (
    Any,
    Mapping,
)

# ------------------------------------------------------------------------------------- writing TOML


def dump_toml(data: Mapping[str, Any]) -> str:
    """TOML text for plain data as ``VenueProfile.to_dict`` makes it (None values are left out).

    Written by tomli_w (the writer that pairs with the standard library's reader) rather than by hand;
    exact numbers are strings in the data already (``dump_number``), so nothing is lost to floats.
    """
    import tomli_w

    return tomli_w.dumps(_without_none(data))


def _without_none(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: _without_none(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_without_none(x) for x in v]
    return v
