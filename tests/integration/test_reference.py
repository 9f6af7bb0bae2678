"""docs/parameters.md is what the schemas say: a field added, renamed or re-defaulted without regenerating it fails here."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO


def test_the_parameter_reference_is_up_to_date():
    r = subprocess.run([sys.executable, str(REPO / "docs" / "make_reference.py"), "--check"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_the_reference_lists_every_field_of_the_schemas():
    text = (REPO / "docs" / "parameters.md").read_text()
    for row in ("`run.duration_s`", "`markets[i].oracle_delay_s`", "`markets[i].shocks[i].pct`", "`funds.vault_usdc`",
                "## Agent kind `whale`", "`leverage_max`", "`tiers.NAME.bands[i].max_leverage`", "`liquidation.adl_ranking`"):
        assert row in text, row
