"""Dotted paths into a pydantic schema: walking it (closest-name hints, pydantic errors as ``Problem``s in
our wording) and overrides (``apply_overrides``: ``fees.taker_bps``, ``markets[0].sigma``) checked
against the schema before anything is set. Used by venue profiles and scenarios alike."""

from __future__ import annotations

import copy
import difflib
import re
import types
from typing import (
    Annotated,
    Any,
    Iterator,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Union,
    get_args,
    get_origin,
)

from pydantic import BaseModel

from abm.config.problems import MISSING, InvalidConfig, Problem

# ------------------------------------------------------------------------------------- walking the schema


def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional; a union of several models comes back as a tuple of them."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
            continue
        if origin is Union or origin is types.UnionType:
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
            return tuple(args)
        return tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


TAGS = ("formula", "kind")  # the keys that pick a variant of a union of tables (a mark formula, an event's kind)
# ... and in error paths also a law's (initial_positions' leverage and size); overrides merge a table naming another
# law as before (a [randomize] draw's dist is not a variant)
_WALK_TAGS = (*TAGS, "dist")


def _tag_key(model: type[BaseModel]) -> Optional[str]:
    return next((k for k in _WALK_TAGS if k in model.model_fields and get_origin(model.model_fields[k].annotation) is Literal),
                None)


def _tag(model: type[BaseModel]) -> Optional[str]:
    key = _tag_key(model)
    return get_args(model.model_fields[key].annotation)[0] if key is not None else None


def _child(tp: Any, seg: Any) -> Any:
    """The type under ``seg`` of a (unwrapped) type, or None if ``seg`` is not part of it."""
    if _is_model(tp):
        f = tp.model_fields.get(seg) if isinstance(seg, str) else None
        return f.annotation if f is not None else None
    origin = get_origin(tp)
    if origin is dict and isinstance(seg, str):
        return get_args(tp)[1]
    if origin in (list, tuple) and isinstance(seg, int):
        return get_args(tp)[0]
    return None


def _keys(tp: Any) -> list[str]:
    u = _unwrap(tp)
    if isinstance(u, tuple):
        return sorted({k for m in u for k in m.model_fields})
    return list(u.model_fields) if _is_model(u) else []


def format_path(segs: Sequence[Any]) -> str:
    out = ""
    for s in segs:
        if isinstance(s, int):
            out += f"[{s}]"
        else:
            out += ("." if out else "") + str(s)
    return out


def _walk_loc(loc: Sequence[Any], root: Any) -> tuple[list[Any], Any]:
    """Follow a pydantic error location: the segments to show (union tags dropped) and the type reached."""
    tp: Any = root
    shown: list[Any] = []
    for seg in loc:
        if seg == "[key]":
            continue
        u = _unwrap(tp) if tp is not None else None
        if isinstance(u, tuple):
            variant = next((m for m in u if _tag(m) == seg), None)
            if variant is not None:
                tp = variant
                continue
        shown.append(seg)
        tp = _child(u, seg) if u is not None else None
    return shown, tp


def _suggest(bad: str, options: Sequence[str]) -> str:
    best = difflib.get_close_matches(bad, list(options), n=1, cutoff=0.6)
    if best:
        return f"did you mean '{best[0]}'?"
    return "allowed: " + ", ".join(f"'{o}'" for o in options)


def problem_of(err: Mapping[str, Any], root: Any) -> Problem:
    """One pydantic error as one Problem with our wording; ``root`` is the model validated (default: a venue profile)."""
    loc = tuple(err.get("loc", ()))
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input", MISSING)
    if kind == "extra_forbidden":
        shown, _ = _walk_loc(loc, root)
        _, parent = _walk_loc(loc[:-1], root)
        return Problem(format_path(shown), MISSING, f"unknown key; {_suggest(str(loc[-1]), _keys(parent))}")
    shown, tp = _walk_loc(loc, root)
    path = format_path(shown)
    if kind == "missing":
        return Problem(path, MISSING, "required key is missing")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        models = _unwrap(tp) if isinstance(_unwrap(tp), tuple) else ()
        tags = [_tag(m) for m in models]
        key = next((k for k in map(_tag_key, models) if k is not None), "formula")
        options = " or ".join(f"'{t}'" for t in tags)
        if kind == "union_tag_not_found":
            if not isinstance(value, Mapping):
                return Problem(path, value, "must be a table")
            return Problem(f"{path}.{key}", MISSING, f"required key is missing ({options})")
        return Problem(f"{path}.{key}", ctx.get("tag", MISSING), f"must be {options}")
    if kind == "value_error":
        return Problem(path, value, str(ctx.get("error", err.get("msg"))))
    if kind == "literal_error":
        return Problem(path, value, f"must be {ctx.get('expected')}")
    if kind == "bool_type":
        return Problem(path, value, "must be true or false")
    if kind == "string_type":
        return Problem(path, value, "must be a string")
    if kind == "string_pattern_mismatch":
        return Problem(path, value, "must use only letters, digits, '_' and '-'")
    if kind in ("float_type", "float_parsing"):
        return Problem(path, value, "must be a number")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return Problem(path, value, "must be an integer")
    if kind == "finite_number":
        return Problem(path, value, "must be a finite number")
    if kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        return Problem(path, value, "must be a table")
    if kind in ("list_type", "tuple_type", "iterable_type"):
        return Problem(path, value, "must be a list")
    if kind in ("too_short", "string_too_short"):
        n = ctx.get("min_length", 1)
        what = "character" if kind == "string_too_short" else "entry"
        return Problem(path, value, f"must hold at least {n} {what}{'s' if n != 1 else ''}")
    msg = str(err.get("msg", kind))
    return Problem(path, value, msg[:1].lower() + msg[1:])


# ------------------------------------------------------------------------------------- overrides


_SEG_RE = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")


def parse_path(path: str) -> Optional[list[Any]]:
    """``"tiers.btc.bands[1].max_leverage"`` -> ``["tiers", "btc", "bands", 1, "max_leverage"]``; None if malformed."""
    segs: list[Any] = []
    for piece in path.split("."):
        m = _SEG_RE.fullmatch(piece)
        if m is None:
            return None
        segs.append(m.group(1))
        segs.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return segs


def _variant(tp: Any, node: Any) -> Any:
    """For a union of models, the variant the data selects (by ``formula`` or ``kind``); the first one otherwise."""
    u = _unwrap(tp)
    if not isinstance(u, tuple):
        return u
    key = next((k for k in map(_tag_key, u) if k is not None), "formula")
    tag = node.get(key) if isinstance(node, Mapping) else None
    return next((m for m in u if _tag(m) == tag), None) or u


def _all_paths(tp: Any, node: Any, prefix: list[Any]) -> Iterator[str]:
    """Every path the schema allows here, with tier classes and list indices taken from the data."""
    u = _variant(tp, node)
    models = u if isinstance(u, tuple) else (u,) if _is_model(u) else ()
    for m in models:
        for key, f in m.model_fields.items():
            p = [*prefix, key]
            yield format_path(p)
            yield from _all_paths(f.annotation, node.get(key) if isinstance(node, Mapping) else None, p)
    if models:
        return
    origin = get_origin(u)
    if origin is dict and isinstance(node, Mapping):
        for key, sub in node.items():
            yield format_path([*prefix, key])
            yield from _all_paths(get_args(u)[1], sub, [*prefix, key])
    elif origin in (list, tuple) and isinstance(node, list):
        for i, sub in enumerate(node):
            yield format_path([*prefix, i])
            yield from _all_paths(get_args(u)[0], sub, [*prefix, i])


def plain(value: Any) -> Any:
    """A private copy as plain data: mappings as dicts, sequences (tuples too) as lists."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, object], source: str, root: Any,
                    error: type[InvalidConfig]) -> dict[str, Any]:
    """A copy of ``raw`` with each dotted path set to its value (``None`` removes an optional key).

    A table value merges into the table already there (``run = {seed = 3}`` changes the seed and keeps
    the duration), unless it names another variant (``formula`` or ``kind``): then it replaces it. A list
    or a single value replaces what was there.

    Paths are checked against the schema before anything is set: an unknown one is reported with the
    closest valid path. Values are not checked here; the caller validates the result like a file.
    """
    if not isinstance(overrides, Mapping):
        raise error(source, [Problem("overrides", overrides, "must be a mapping of dotted paths to values")])
    data: dict[str, Any] = copy.deepcopy(dict(raw))
    problems: list[Problem] = []
    for path, value in overrides.items():
        segs = parse_path(path) if isinstance(path, str) else None
        if not segs:
            problems.append(Problem("overrides", path, "keys must be dotted paths such as 'fees.taker_bps' "
                                                       "or 'tiers.btc.bands[1].max_leverage'"))
            continue
        problem = _set_path(data, path, segs, value, root)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise error(source, problems)
    return data


def _set_path(data: dict[str, Any], path: str, segs: list[Any], value: Any, root: Any) -> Optional[Problem]:
    tp: Any = root
    node: Any = data
    for i, seg in enumerate(segs):
        here = format_path(segs[: i + 1])
        last = i == len(segs) - 1
        if not isinstance(node, (dict, list)):
            return Problem(path, MISSING, f"unknown key: '{format_path(segs[:i])}' holds a single value, not a table")
        u = _variant(tp, node)
        if isinstance(u, tuple):  # no formula in the data: any variant's key will do; validation decides
            u = next((m for m in u if isinstance(seg, str) and seg in m.model_fields), u[0])
        if isinstance(node, list):
            if not isinstance(seg, int):
                return Problem(path, MISSING, f"'{format_path(segs[:i])}' is a list: address an entry as [0], [1], ...")
            if not 0 <= seg < len(node):
                return Problem(path, MISSING, f"index out of range: '{format_path(segs[:i])}' has {len(node)} "
                                              "entries (override the whole list to resize it)")
        elif isinstance(seg, int):
            return Problem(path, MISSING, f"'{format_path(segs[:i])}' is a table, not a list")
        child = _child(u, seg)
        if child is None:
            options = sorted(set(_all_paths(root, data, [])))
            return Problem(path, MISSING, f"unknown key; {_suggest(path, options)}")
        if isinstance(node, dict) and get_origin(u) is dict and seg not in node and not last:
            return Problem(path, MISSING, f"'{here}' does not exist; {_suggest(seg, sorted(node))} "
                                          f"(to add it, override '{here}' with a whole table)")
        if last:
            if value is None:
                if isinstance(node, list):
                    return Problem(path, None, "list entries cannot be removed one by one; override the whole list")
                node.pop(seg, None)
            elif isinstance(value, Mapping) and isinstance(node, dict) and isinstance(node.get(seg), dict):
                node[seg] = _merged(node[seg], plain(value))  # a table merges; it never drops its siblings
            else:
                node[seg] = plain(value)
            return None
        if isinstance(node, dict) and node.get(seg) is None:
            if not _is_model(_unwrap(child)):
                return Problem(path, MISSING, f"'{here}' is not set; override '{here}' as a whole")
            node[seg] = {}  # an absent optional table; validation reports what it still needs
        node = node[seg]
        tp = child
    return None  # unreachable: the loop returns at the last segment


def _merged(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A table merged into another; one that names another variant (``TAGS``) replaces it instead."""
    if any(t in update and update[t] != base.get(t) for t in TAGS):
        return dict(update)
    out = dict(base)
    for k, v in update.items():
        out[k] = _merged(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


