"""Write docs/parameters.md, the parameter reference, from the schemas themselves.

    python docs/make_reference.py            # rewrite docs/parameters.md
    python docs/make_reference.py --check    # exit 1 if the file is not what the schemas say (the test runs this)

Why generated: a hand-kept table drifts from the code; this one lists every scenario field, every
agent kind's parameters and every venue-profile key with its type, default and bounds as the
validators hold them, and the one-line comment written beside the field in the source.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import types
from fractions import Fraction
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

OUT = Path(__file__).resolve().parent / "parameters.md"
_FIELD_LINE = re.compile(r"^\s+(\w+)\s*:[^#]*?#\s*(.+?)\s*$")


def _comments(cls: type) -> dict[str, str]:
    """Trailing ``# ...`` comments of a class's field lines, by field name."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        try:
            src = inspect.getsource(klass)
        except (OSError, TypeError):
            continue
        for line in src.splitlines():
            m = _FIELD_LINE.match(line)
            if m:
                out[m.group(1)] = m.group(2)
    return out


def _type(tp: Any) -> str:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        inner = " or ".join(_type(a) for a in args)
        return f"{inner} (optional)" if len(args) < len(get_args(tp)) else inner
    if origin is not None:
        args = get_args(tp)
        if origin.__name__ == "Annotated" or str(origin).endswith("Annotated"):
            return _type(args[0])
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type(a) for a in args if a is not Ellipsis)}]" if args else name
    if tp is Fraction:
        return "number (exact)"
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _bounds(field: Any) -> str:
    parts = []
    for m in getattr(field, "metadata", []):
        for attr, sym in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="), ("min_length", "min length")):
            v = getattr(m, attr, None)
            if v is not None:
                parts.append(f"{sym} {v}")
    return ", ".join(parts)


def _default(v: Any) -> str:
    if v is dataclasses.MISSING or v is ... or repr(v) == "PydanticUndefined":
        return "required"
    if isinstance(v, BaseModel):
        return "(table)"
    if isinstance(v, bool):
        return "true" if v else "false"
    return "none" if v is None else f"`{v!r}`" if not isinstance(v, str) else f'`"{v}"`'


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _model_rows(model: type[BaseModel], prefix: str) -> list[str]:
    notes = _comments(model)
    rows = []
    for name, f in model.model_fields.items():
        tp = f.annotation
        kinds = _kinds(tp)
        if kinds:  # a list of tables of several kinds ([[events]]): each kind's keys, its kind named
            for kind, sub in kinds:
                rows.append(f"| `{prefix}{name}[i]` | kind = \"{kind}\" |  |  | {_cell(_doc(sub))} |")
                rows.extend(r for r in _model_rows(sub, f"{prefix}{name}[i].") if not r.startswith(f"| `{prefix}{name}[i].kind`"))
            continue
        laws = _laws(tp)
        if laws:  # a table of several laws told apart by dist (initial_positions' leverage, size)
            first = f.default_factory().dist if f.default_factory is not None else None  # type: ignore[call-arg]
            for dist, sub in laws:
                mark = "(the default)" if dist == first else ""
                note = _cell(notes.get(name, "")) if dist == laws[0][0] else ""
                rows.append(f"| `{prefix}{name}` | dist = \"{dist}\" | {mark} |  | {note} |")
                rows.extend(r for r in _model_rows(sub, f"{prefix}{name}.") if not r.startswith(f"| `{prefix}{name}.dist`"))
            continue
        kinds = _table_kinds(tp)
        if kinds:  # one optional table of several kinds (margin.dynamic): each kind's keys, its kind named
            for kind, sub in kinds:
                rows.append(f"| `{prefix}{name}` | kind = \"{kind}\" (optional) |  |  | {_cell(_doc(sub))} |")
                rows.extend(r for r in _model_rows(sub, f"{prefix}{name}.") if not r.startswith(f"| `{prefix}{name}.kind`"))
            continue
        sub = _submodel(tp)
        if sub is not None:
            index = "[i]" if _is_list(tp) else ".NAME" if _is_dict(tp) else ""
            rows.extend(_model_rows(sub, f"{prefix}{name}{index}."))
            continue
        default = f.default_factory() if f.default_factory is not None else f.default  # type: ignore[call-arg]
        rows.append(f"| `{prefix}{name}` | {_cell(_type(tp))} | {_cell(_default(default))} | {_cell(_bounds(f))} | "
                    f"{_cell(notes.get(name, ''))} |")
    return rows


def _is_list(tp: Any) -> bool:
    return any(get_origin(t) in (list, tuple) for t in (tp, *get_args(tp)))


def _is_dict(tp: Any) -> bool:
    return any(get_origin(t) is dict for t in (tp, *get_args(tp)))


def _kinds(tp: Any) -> list[tuple[str, type[BaseModel]]]:
    """The variants of a list of tables told apart by ``kind`` (``Annotated[Union[...], discriminator]``), by kind."""
    if get_origin(tp) not in (list, tuple):
        return []
    (item,) = get_args(tp)[:1]
    if getattr(get_origin(item), "__name__", "") == "Annotated" or str(get_origin(item)).endswith("Annotated"):
        item = get_args(item)[0]
    if get_origin(item) not in (Union, types.UnionType):
        return []
    out = []
    for m in get_args(item):
        f = m.model_fields.get("kind") if isinstance(m, type) and issubclass(m, BaseModel) else None
        if f is None:
            return []
        out.append((get_args(f.annotation)[0], m))
    return out


def _laws(tp: Any) -> list[tuple[str, type[BaseModel]]]:
    """The variants of a table told apart by ``dist`` (``Annotated[Union[...], discriminator]``), by law."""
    if getattr(get_origin(tp), "__name__", "") == "Annotated" or str(get_origin(tp)).endswith("Annotated"):
        tp = get_args(tp)[0]
    if get_origin(tp) not in (Union, types.UnionType):
        return []
    out = []
    for m in get_args(tp):
        f = m.model_fields.get("dist") if isinstance(m, type) and issubclass(m, BaseModel) else None
        if f is None:
            return []
        out.append((get_args(f.annotation)[0], m))
    return out
def _table_kinds(tp: Any) -> list[tuple[str, type[BaseModel]]]:
    """The variants of one optional table told apart by ``kind`` (``Optional[Annotated[Union[...], ...]]``)."""
    if get_origin(tp) not in (Union, types.UnionType):
        return []
    for item in get_args(tp):
        if type(None) is not item:
            return _kinds(tuple[item])  # type: ignore[valid-type]
    return []


def _doc(model: type[BaseModel]) -> str:
    return " ".join(inspect.cleandoc(model.__doc__ or "").split())


def _submodel(tp: Any) -> type[BaseModel] | None:
    for t in (tp, *get_args(tp)):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


def _params_rows(cls: type) -> list[str]:
    from typing import get_type_hints

    from abm.agents.params import allowed_text

    notes = _comments(cls)
    hints = get_type_hints(cls, include_extras=True)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        allowed = allowed_text(hints[f.name]).removeprefix("must be ")
        shown = re.sub(r"Literal\[[^\]]*\]", "str", _type(hints[f.name]))  # the choices are in the allowed column
        rows.append(f"| `{f.name}` | {_cell(shown)} | {_cell(_default(default))} | {_cell(allowed)} | "
                    f"{_cell(notes.get(f.name, ''))} |")
    return rows


def reference() -> str:
    from abm.agents import BUILTIN_KINDS, resolve
    from abm.model.scenario import Scenario
    from abm.venues.schema import VenueProfile

    head = ["# Parameter reference", "",
            "Generated by `docs/make_reference.py` from the schemas (`make test` fails when it is stale). Units are in",
            "the names: `_s` seconds, `_ms` milliseconds, `_usdc` USDC, `_bps` basis points, `_pct` percent.",
            "How validation works: docs/design.md, \"Configuration and validation\".", ""]
    out = head + ["## Scenario files", "", "| field | type | default | bounds | note |", "|---|---|---|---|---|"]
    out += _model_rows(Scenario, "")
    out += ["", "`agents.NAME` tables take `kind` (a built-in kind below or `module:Class`), `count` and the kind's "
                "parameters.", ""]
    for kind in BUILTIN_KINDS:
        cls = resolve(kind)
        own = cls.__dict__.get("__doc__") or (inspect.getmodule(cls).__doc__ or "")  # type: ignore[union-attr]
        doc = inspect.cleandoc(own).split("\n\n")[0].replace("\n", " ")
        out += [f"## Agent kind `{kind}`", "", doc, "", "| parameter | type | default | allowed | note |",
                "|---|---|---|---|---|"]
        out += _params_rows(cls.Params) + [""]
    out += ["## Venue profiles", "", "Keys of a venue profile TOML (`abm/venues/profiles/*.toml`, `venue.overrides`). Numbers are",
            "exact (`0.1` is 1/10).", "", "| key | type | default | bounds | note |", "|---|---|---|---|---|"]
    out += _model_rows(VenueProfile, "")
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    text = reference()
    if "--check" in sys.argv:
        if not OUT.is_file() or OUT.read_text() != text:
            print(f"{OUT} is stale: run python docs/make_reference.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
