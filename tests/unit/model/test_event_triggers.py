"""The move a triggered venue state watches for (``MoveWatch``): exact at its boundaries (a move of exactly X % within
exactly Y s counts), one-sided when asked, and the same answer at every update as a brute-force search over the
window (hypothesis)."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from abm.model.events import MoveWatch

S = 1_000_000


def test_a_move_of_exactly_the_share_within_exactly_the_window_counts() -> None:
    w = MoveWatch(Fraction(5, 100), 60 * S, "down")
    assert not w.update(0, 1_000)
    assert not w.update(30 * S, 951)  # 4.9 %
    assert w.update(60 * S, 950)  # exactly 5 % below the mark exactly 60 s before


def test_a_mark_just_outside_the_window_is_forgotten() -> None:
    w = MoveWatch(Fraction(5, 100), 60 * S, "down")
    w.update(0, 1_000)
    w.update(30 * S, 990)
    assert not w.update(60 * S + 1, 950)  # 1,000 is 60 s + 1 µs old; from 990 it is 4.04 %


def test_direction() -> None:
    down, up, either = (MoveWatch(Fraction(1, 10), S, d) for d in ("down", "up", "either"))
    for w in (down, up, either):
        w.update(0, 100)
    assert (down.update(1, 110), up.update(1, 110), either.update(1, 110)) == (False, True, True)
    assert (down.update(2, 99), up.update(2, 99), either.update(2, 99)) == (True, False, True)


def brute(marks: list[tuple[int, int]], pct: Fraction, window: int, direction: str) -> list[bool]:
    out = []
    for j, (t, m) in enumerate(marks):
        hit = False
        for s, ms in marks[:j]:
            if t - s > window:
                continue
            if direction in ("either", "down") and (ms - m) >= pct * ms:
                hit = True
            if direction in ("either", "up") and (m - ms) >= pct * ms:
                hit = True
        out.append(hit)
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 200)), min_size=1, max_size=40),
       st.integers(1, 30), st.integers(0, 8), st.sampled_from(["either", "down", "up"]))
def test_the_same_answer_as_a_brute_force_search(steps: list[tuple[int, int]], pct: int, window: int, direction: str) -> None:
    marks, t = [], 0
    for dt, m in steps:
        t += dt
        marks.append((t, m))
    f = Fraction(pct, 100)
    w = MoveWatch(f, window, direction)
    assert [w.update(t, m) for t, m in marks] == brute(marks, f, window, direction)
