"""Exact numbers in configuration: every number becomes a ``Fraction`` (``0.1`` is 1/10, ``"2/3"`` is
2/3) so money, rates and times convert to integer units without rounding, and is written back as an
int or an exact decimal string. ``number(...)`` and ``integer(...)`` make bounded field types whose
errors say what is allowed."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from typing import (
    Annotated,
    Any,
    Optional,
    Union,
)

from pydantic import PlainSerializer, PlainValidator

# ------------------------------------------------------------------------------------- exact numbers

_NUMBER = "must be a number (such as 5, 0.5, \"0.5\" or \"2/3\")"
_DEC_RE = re.compile(r"[+-]?(?:\d(?:_?\d)*)?(?:\.\d(?:_?\d)*)?(?:[eE][+-]?\d+)?")
_FRAC_RE = re.compile(r"[+-]?\d+\s*/\s*\d+")


def exact(value: Any) -> Fraction:
    """``value`` as an exact Fraction, or ValueError(what is allowed). Bools, NaN and infinities are refused."""
    if isinstance(value, bool):
        raise ValueError(_NUMBER)
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, Fraction):
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("must be a finite number")
        return Fraction(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        return Fraction(repr(value))  # as written: 0.1 is 1/10
    if isinstance(value, str):
        s = value.strip()
        if s and any(c.isdigit() for c in s) and _DEC_RE.fullmatch(s):
            return Fraction(Decimal(s.replace("_", "")))
        if _FRAC_RE.fullmatch(s):
            num, den = (int(x) for x in s.split("/"))
            if den == 0:
                raise ValueError("must not divide by zero")
            return Fraction(num, den)
        raise ValueError(_NUMBER)
    if hasattr(value, "__index__"):  # numpy integers
        return Fraction(int(value.__index__()))
    raise ValueError(_NUMBER)


def dump_number(f: Fraction) -> Union[int, str]:
    """An int when whole; else the exact decimal string when one exists ("1.5"), else "n/d" ("2/3")."""
    if f.denominator == 1:
        return int(f)
    d, twos, fives = f.denominator, 0, 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return f"{f.numerator}/{f.denominator}"
    k = max(twos, fives)
    scaled = f.numerator * 10**k // f.denominator  # exact: 10**k is a multiple of the denominator
    return format(Decimal(scaled).scaleb(-k), "f")


def _bound_text(gt: Any, ge: Any, lt: Any, le: Any) -> str:
    parts = []
    if gt is not None:
        parts.append(f"> {gt}")
    if ge is not None:
        parts.append(f">= {ge}")
    if lt is not None:
        parts.append(f"< {lt}")
    if le is not None:
        parts.append(f"<= {le}")
    return "must be " + " and ".join(parts)


def number(gt: Any = None, ge: Any = None, lt: Any = None, le: Any = None,
            step: Optional[Fraction] = None, step_text: str = "") -> Any:
    """An exact-number field type with bounds (and optionally a grid); errors say what is allowed."""
    lo_gt, lo_ge, hi_lt, hi_le = (None if b is None else Fraction(b) for b in (gt, ge, lt, le))
    bounds = _bound_text(gt, ge, lt, le) if any(b is not None for b in (gt, ge, lt, le)) else ""

    def check(value: Any) -> Fraction:
        f = exact(value)
        if (lo_gt is not None and not f > lo_gt) or (lo_ge is not None and not f >= lo_ge) or \
                (hi_lt is not None and not f < hi_lt) or (hi_le is not None and not f <= hi_le):
            raise ValueError(bounds)
        if step is not None and (f / step).denominator != 1:
            raise ValueError(step_text)
        return f

    return Annotated[Fraction, PlainValidator(check), PlainSerializer(dump_number)]


def integer(ge: int, le: int) -> Any:
    """A TOML integer in [ge, le]: 40.0 or "40" are refused, so a leverage is never silently truncated."""
    text = f"must be an integer in [{ge}, {le}]"

    def check(value: Any) -> int:
        if isinstance(value, bool) or not (isinstance(value, int) or hasattr(value, "__index__")) \
                or isinstance(value, (float, Decimal, Fraction, str)):
            raise ValueError(text)
        v = int(value.__index__())
        if not ge <= v <= le:
            raise ValueError(text)
        return v

    return Annotated[int, PlainValidator(check)]


