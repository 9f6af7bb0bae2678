"""What is wrong with a configuration: one ``Problem`` per thing (dotted path, value, what is allowed), all
of them in one ``InvalidConfig``. Venue profiles and scenarios report through these, so every
configuration error reads the same."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import (
    Any,
    Optional,
    Sequence,
)

from abm.config.numbers import dump_number
from abm.errors import InvalidInput

# ------------------------------------------------------------------------------------- problems and the error


class _Missing:
    """No value to show (a missing key, an unknown key)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()
MAX_SHOWN = 80  # characters of a value an error shows
MAX_SHOWN_STR = 1000  # of a string value


def show(value: Any, limit: Optional[int] = None) -> str:
    """A value as a user wrote it: ``1.5`` not ``Decimal('1.5')``, ``true`` not ``True``, strings quoted.

    ``limit`` cuts the text (a cell read from a user's file is shown as far as it identifies the cell, never
    the file); without it a string is shown whole up to ``MAX_SHOWN_STR`` and anything else up to ``MAX_SHOWN``.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Fraction):
        return str(dump_number(value))  # 0.2 as the user wrote it, not 1/5
    text = repr(value)
    # a string (a path, a name) is shown whole so the user can find it; a long list or table is cut
    if limit is None:
        limit = MAX_SHOWN_STR if isinstance(value, str) else MAX_SHOWN
    return text if len(text) <= limit else text[:limit - 3] + "..."


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a profile: where (dotted path), what was there, and what is allowed."""

    path: str
    value: Any
    allowed: str

    @property
    def line(self) -> str:
        if self.value is MISSING:
            return f"{self.path}: {self.allowed}"
        return f"{self.path}: {self.allowed}, got {show(self.value)}"


class InvalidConfig(InvalidInput):
    """A configuration (file, mapping or overrides) broke its schema; the message has one line per problem.

    ``problems`` keeps them as ``Problem`` objects; ``field``/``value``/``allowed`` are the first one's,
    so code that handles any ``InvalidInput`` still gets a meaningful field.
    """

    what = "configuration"

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError(f"{type(self).__name__} needs at least one problem")  # internal misuse only
        self.source = source
        self.problems = tuple(problems)
        first = self.problems[0]
        super().__init__(first.path, first.value, first.allowed)
        n = len(self.problems)
        head = f"invalid {self.what} {source}: {n} problem{'s' if n > 1 else ''}"
        self.args = ("\n  ".join([head, *(p.line for p in self.problems)]),)

    @property
    def lines(self) -> tuple[str, ...]:
        return tuple(p.line for p in self.problems)


