"""Agent parameters validated by one library (pydantic), every problem reported at once, in user units.

Why like this: parameter classes stay plain frozen ``__slots__`` dataclasses (agents read them on hot
paths, and a user's own kind extends one in three lines), but their checks are no longer a hundred
hand-written ``if`` lines that stop at the first bad value. Each field's type says what is allowed
(``Annotated[float, number(ge=0, unit="USDC")]``); from the type hints we build, once per class, a strict
pydantic model (no coercion: ``"1"`` is not 1, ``true`` is not 1, ``inf`` is not a number) and validate the
dataclass's values against it. Values are checked, never converted, so what a run computes with is what
the user wrote. Rules that span fields are a class's ``cross_checks`` method, run once the fields are
valid. Messages are written from the field's declared range and unit, the same wording as scenario and
venue files (``must be a number in (0, 1] (share of equity)``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Sequence
from typing import Annotated, Any, Callable, Iterator, Literal, Optional, Union, get_args, get_origin

from pydantic import AfterValidator, ConfigDict, Field, ValidationError, create_model
from pydantic.fields import FieldInfo

from abm.config import MISSING, InvalidConfig, Problem
from abm.errors import InvalidInput


class InvalidParams(InvalidConfig):
    """An agent kind's parameters broke their declared types or ranges; one line per problem."""

    what = "agent parameters"


def number(*, gt: Optional[float] = None, ge: Optional[float] = None, lt: Optional[float] = None,
           le: Optional[float] = None, unit: str = "") -> Any:
    """A field's range and unit, for ``Annotated[float, number(...)]`` (or ``int``)."""
    return Field(gt=gt, ge=ge, lt=lt, le=le, description=unit or None)


# the shapes most parameters take
Usdc = Annotated[float, number(ge=0, unit="USDC")]
PositiveUsdc = Annotated[float, number(gt=0, unit="USDC")]
Seconds = Annotated[float, number(ge=0, unit="seconds")]
PositiveSeconds = Annotated[float, number(gt=0, unit="seconds")]
Millis = Annotated[float, number(ge=0, unit="milliseconds")]
Probability = Annotated[float, number(ge=0, le=1, unit="a probability")]
Leverage = Annotated[int, number(ge=1)]
Bps = Annotated[float, number(ge=0, lt=10_000, unit="basis points")]
PositiveBps = Annotated[float, number(gt=0, lt=10_000, unit="basis points")]
PositiveInt = Annotated[int, number(ge=1)]
SmallBps = Annotated[float, number(ge=0, lt=1_000, unit="basis points")]  # a fee or a spread
Rate = Annotated[float, number(ge=0, unit="per second")]
BaseUnits = Annotated[float, number(ge=0, unit="base units")]

_CONFIG = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, arbitrary_types_allowed=True)
_MODELS: dict[type, Any] = {}


def _fields(cls: type) -> dict[str, Any]:
    """``{field: type hint}`` of a params dataclass, ``Annotated`` metadata kept."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(cls)}


def _loose_tuples(tp: Any) -> Any:
    """``tuple[str, ...]`` as any sequence of str: TOML and JSON give lists, and a list is what users pass."""
    origin = get_origin(tp)
    if origin is tuple and len(get_args(tp)) == 2 and get_args(tp)[1] is Ellipsis:
        return Sequence[get_args(tp)[0]]  # type: ignore[misc]
    if origin is Annotated:
        base, *meta = get_args(tp)
        return Annotated[(_loose_tuples(base), *meta)]  # type: ignore[misc]
    if origin is Union or origin is types.UnionType:
        return Union[tuple(_loose_tuples(a) for a in get_args(tp))]
    return tp


def _model(cls: type) -> Any:
    m = _MODELS.get(cls)
    if m is None:
        fields: dict[str, Any] = {name: (_loose_tuples(tp), None) for name, tp in _fields(cls).items()}
        m = _MODELS[cls] = create_model(f"{cls.__name__}Check", __config__=_CONFIG, **fields)
    return m


# ------------------------------------------------------------------------------------- messages


def _parts(tp: Any) -> tuple[Any, Optional[FieldInfo], bool]:
    """(base type, its range/unit, whether None is allowed)."""
    optional = False
    info: Optional[FieldInfo] = None
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp, *meta = get_args(tp)
            info = next((m for m in meta if isinstance(m, FieldInfo)), info)
        elif origin is Union or origin is types.UnionType:
            args = [a for a in get_args(tp) if a is not type(None)]
            optional = optional or len(args) < len(get_args(tp))
            if len(args) != 1:
                return Union[tuple(args)], info, optional
            tp = args[0]
        else:
            return tp, info, optional


def _g(v: float) -> str:
    return f"{v:,.0f}" if isinstance(v, (int, float)) and v == int(v) and abs(v) >= 10_000 else f"{v:g}"


def _bounds(info: Optional[FieldInfo]) -> str:
    lo = hi = None
    for c in info.metadata if info is not None else ():
        for attr, sym in (("gt", "("), ("ge", "[")):
            if getattr(c, attr, None) is not None:
                lo = (getattr(c, attr), sym)
        for attr, sym in (("lt", ")"), ("le", "]")):
            if getattr(c, attr, None) is not None:
                hi = (getattr(c, attr), sym)
    if lo and hi:
        return f" in {lo[1]}{_g(lo[0])}, {_g(hi[0])}{hi[1]}"
    if lo:
        return f" {'>' if lo[1] == '(' else '>='} {_g(lo[0])}"
    if hi:
        return f" {'<' if hi[1] == ')' else '<='} {_g(hi[0])}"
    return ""


def known(registry: Any, field: str) -> Any:
    """A field that must name a piece of ``registry`` (or a ``module:Class``): checked with the fields."""

    def check(name: str) -> str:
        registry.resolve(name, field)  # InvalidInput (a ValueError) says what is known and the closest name
        return name

    return AfterValidator(check)


def allowed_text(tp: Any, value: Any = MISSING) -> str:
    """What a field of this type accepts, in the words of scenario files."""
    base, info, optional = _parts(tp)
    unit = f" ({info.description})" if info is not None and info.description else ""
    tail = " or None" if optional else ""
    if base is bool:
        text = "must be true or false"
    elif base is float or base is int:
        finite = "finite " if isinstance(value, float) and not math.isfinite(value) else ""
        noun = "an integer" if base is int else f"a {finite}number"
        text = f"must be {noun}{_bounds(info)}{unit}"
    elif get_origin(base) is Literal:
        opts = [repr(o) for o in get_args(base)]
        text = "must be " + (opts[0] if len(opts) == 1 else ", ".join(opts[:-1]) + " or " + opts[-1])
    elif base is str:
        text = "must be a string"
    elif get_origin(base) is tuple:
        inner = get_args(base)[0]
        text = f"must be a list of {'strings' if inner is str else getattr(inner, '__name__', str(inner))}"
    else:
        text = f"must be {getattr(base, '__name__', str(base))}"
    return text + tail


# ------------------------------------------------------------------------------------- checking


def _cross_checks(obj: Any) -> Iterator[Problem]:
    """Each class's own ``cross_checks``, from the base down (slots dataclasses cannot use ``super()``)."""
    for klass in reversed(type(obj).__mro__):
        fn: Optional[Callable[[Any], Iterator[Problem]]] = klass.__dict__.get("cross_checks")
        if fn is not None:
            yield from fn(obj)


def problems(obj: Any) -> list[Problem]:
    """Everything wrong with a params dataclass instance: field problems, then (if none) cross-field ones."""
    cls = type(obj)
    hints = _fields(cls)
    values = {name: getattr(obj, name) for name in hints}
    try:
        _model(cls).model_validate(values)
    except ValidationError as e:
        out, seen = [], set()
        for err in e.errors():
            name = str(err["loc"][0])
            if name in seen:  # a union's branches each report; one line per field
                continue
            seen.add(name)
            exc = (err.get("ctx") or {}).get("error") if err["type"] == "value_error" else None
            allowed = exc.allowed if isinstance(exc, InvalidInput) else str(exc) if exc is not None else \
                allowed_text(hints[name], values[name])
            out.append(Problem(name, values[name], allowed))
        return out
    return list(_cross_checks(obj))


def check_params(obj: Any) -> None:
    """Refuse an invalid params instance with every problem in one error (``InvalidParams``)."""
    found = problems(obj)
    if found:
        raise InvalidParams(type(obj).__name__, found)


def parse_params(cls: type, params: dict[str, Any], prefix: str) -> Any:
    """Build a params dataclass from a dict; every problem (unknown keys included) named under ``prefix``."""
    allowed = [f.name for f in dataclasses.fields(cls)]
    found = []
    for k in params:
        if k not in allowed:
            close = difflib.get_close_matches(str(k), allowed, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"allowed: {sorted(allowed)}"
            found.append(Problem(f"{prefix}.{k}", params[k], f"unknown parameter; {hint}"))
    if not found:
        try:
            return cls(**params)
        except InvalidConfig as e:
            found = [Problem(f"{prefix}.{p.path}", p.value, p.allowed) for p in e.problems]
        except InvalidInput as e:  # a single one, from a user's own __post_init__
            found = [Problem(f"{prefix}.{e.field}", e.value, e.allowed)]
    raise InvalidParams(prefix, found)


def renamed(e: Any, old: str, new: str) -> Any:
    """The same error with paths under ``old`` moved under ``new`` (a kind's name -> its group's name)."""
    if isinstance(e, InvalidConfig):
        moved = [Problem(new + p.path[len(old):] if p.path.startswith(old) else p.path, p.value, p.allowed)
                 for p in e.problems]
        return type(e)(new.rstrip("."), moved)
    return type(e)(new + e.field[len(old):], e.value, e.allowed)
