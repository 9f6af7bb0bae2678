"""How an error shows the value it refuses: whole for a string (a path the user must find), cut for a long table."""

from __future__ import annotations

from decimal import Decimal

from abm.config.problems import MAX_SHOWN, show


def test_a_long_path_is_shown_whole():
    path = "/tmp/" + "deeply/nested/" * 20 + "prices.csv"
    assert show(path) == repr(path)


def test_a_long_list_is_cut_with_an_ellipsis():
    text = show(list(range(100)))
    assert len(text) == MAX_SHOWN and text.endswith("...") and text.startswith("[0, 1, 2")


def test_numbers_and_booleans_as_written():
    assert (show(Decimal("1.50")), show(True), show("x")) == ("1.50", "true", "'x'")


def test_a_limit_cuts_a_string_read_from_a_file():
    assert show("SECRET" * 50, MAX_SHOWN) == repr("SECRET" * 50)[:MAX_SHOWN - 3] + "..."
