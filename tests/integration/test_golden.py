"""Golden outputs: the fingerprints of three short runs, pinned.

A fingerprint (``abm.results.fingerprint``) is one value hash per table (steps, trades, liquidations,
funding, and here the accounts table too) and one of the summary: the same on every machine, process,
Python line (3.11, 3.12) and build (pure Python and compiled), so these pins must hold in all of them.
A change that moves a pin changed what the simulator computes (or how a table is laid out).

To update the pins deliberately: run ``python -m tests.integration.test_golden`` (with the checkout on the path),
paste the printed dictionary over ``PINS``, and say in the commit which pins moved and why (which
behaviour changed, and that it was meant to). Never update them to make an unexplained change pass.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import abm
from abm.results.fingerprint import fingerprint, table_digest

RUNS: dict[str, tuple[str, dict[str, Any], int]] = {
    # a calm market: no liquidation, no funding payment yet; pins the books, flows and metrics
    "baseline_300s": ("baseline", {"run.duration_s": 300}, 1),
    # the whale's market sell at 5 min into the index shock, and the cascade of the crowd's liquidations
    "whale_dump_400s": ("whale_dump", {"run.duration_s": 400}, 1),
    # a crowded long book through its first hourly funding payment and a liquidation
    "funding_squeeze_3700s": ("funding_squeeze", {"run.duration_s": 3700}, 1),
}

PINS = {
    "baseline_300s": {"steps": "b51e1ae1a585b9cc", "trades": "282f99b5bfac5c59", "liquidations": "3b0338907ee918b5",
                      "funding": "81431f2514022da6", "summary": "e5808d2e85de6786", "accounts": "1692460b4ac21de5"},
    "whale_dump_400s": {"steps": "1186bd72d0fcaafb", "trades": "168757bd928297a5", "liquidations": "227c91325b4d36e0",
                        "funding": "81431f2514022da6", "summary": "b3bbbb64a812d6f2", "accounts": "f9435db9b3d50020"},
    "funding_squeeze_3700s": {"steps": "0fd8c8fb12d995b2", "trades": "278b9e04bc47fcd0",
                              "liquidations": "550156cc78d8a3bc", "funding": "6b9280f510bceee1",
                              "summary": "7ed1dde8ee4a35d4", "accounts": "2873f1b5b969e7e0"},
}


def golden(name: str) -> tuple[Any, dict[str, str]]:
    scenario, overrides, seed = RUNS[name]
    result = abm.run(scenario, overrides, seed=seed)
    return result, {**fingerprint(result), "accounts": table_digest(result.accounts)}


@pytest.mark.parametrize("name", list(RUNS))
def test_fingerprint_is_pinned(name):
    result, got = golden(name)
    if name == "whale_dump_400s":  # what this pin is meant to hold: the whale traded and the crowd was liquidated
        whale = set(result.accounts.loc[result.accounts["group"] == "whale", "account"])
        assert whale & set(result.trades["taker_account"]) and len(result.liquidations) > 0
    if name == "funding_squeeze_3700s":
        assert len(result.funding) == 1 and len(result.liquidations) > 0
    moved = {k: (PINS[name].get(k), v) for k, v in got.items() if PINS[name].get(k) != v}
    assert not moved, f"{name}: fingerprints moved (pinned, now): {moved}; see this file's docstring"


if __name__ == "__main__":
    print(json.dumps({name: golden(name)[1] for name in RUNS}, indent=1))
