"""Catalogue scenarios run end to end: their effects, the run API, results on disk and the command line.
(Loading, overrides and bad scenario files without a run: tests/unit/scenarios/test_scenario_files.py.)"""

from __future__ import annotations

import json

import pytest

import abm
from abm.errors import InvalidInput
from abm.scenarios import load_scenario
from tests.support import cli


def test_whale_dump_liquidates_and_depth_evaporates_baseline_stays_calm():
    dump = abm.run("whale_dump")
    s = dump.summary
    assert sum(s["liquidated_notional"].values()) > 0
    assert s["worst_depth_drop"] > 0.5
    base = abm.run("baseline")
    assert base.summary["liquidation_events"] == 0 or base.summary["largest_cascade_events"] <= 1


def test_results_on_disk_are_complete_and_atomic(tmp_path):
    out = tmp_path / "run1"
    res = abm.run("baseline", {"run.duration_s": 60}, out=out)
    for name in ("steps.parquet", "trades.parquet", "liquidations.parquet", "funding.parquet", "config.toml",
                 "summary.json", "meta.json", "report.png"):
        assert (out / name).is_file(), name
    assert json.loads((out / "summary.json").read_text()) == json.loads(json.dumps(res.summary, default=float))
    # the saved configuration repeats the run exactly
    again = abm.run(out / "config.toml")
    assert again.trades.equals(res.trades)
    with pytest.raises(InvalidInput, match="must not exist"):
        abm.run("baseline", {"run.duration_s": 10}, out=out)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_command_line(tmp_path):
    r = cli("list")
    assert r.returncode == 0 and "whale_dump" in r.stdout and "baseline" in r.stdout
    r = cli("show", "whale_dump", "--set", "agents.whale.size=120")
    assert r.returncode == 0 and "size = 120" in r.stdout
    r = cli("run", "baseline", "--set", "run.duration_s=30", "--seed", "4", "--out", str(tmp_path / "r"), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "summary" in r.stdout and (tmp_path / "r" / "report.png").is_file()
    (tmp_path / "r" / "report.png").unlink()
    r = cli("report", str(tmp_path / "r"))
    assert r.returncode == 0 and (tmp_path / "r" / "report.png").is_file()
    for bad in (["run", "whale_dumb"], ["run", "baseline", "--set", "run.duration_s=-1"], ["report", str(tmp_path)]):
        r = cli(*bad)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.startswith("abm: error:"), bad


def _first_liquidation_s(result) -> float:
    liq = result.liquidations
    return float(liq[liq["kind"].isin(["book", "backstop", "adl"])]["time_us"].min()) / 1e6


def test_oracle_lag_delays_liquidations_and_splits_mark_from_index():
    fast, slow = abm.run("whale_dump"), abm.run("oracle_lag")
    assert slow.summary["liquidation_events"] > 0
    assert _first_liquidation_s(slow) > _first_liquidation_s(fast)  # the stale oracle holds the mark up
    assert slow.summary["max_abs_basis_bps"] > 2 * fast.summary["max_abs_basis_bps"]


def test_isolated_traders_go_first_cross_traders_lose_more():
    from abm.model import MarketModel
    pass  #

    m = MarketModel(load_scenario("isolated_vs_cross")).run()
    liq = m.tables()["liquidations"]
    first, loss = {}, {}
    for mode in ("isolated", "cross"):
        crowd = [a for a in m.agents_by_kind["leveraged"] if a.margin_mode == mode]
        hit = liq[liq["account"].isin({a.account for a in crowd}) & liq["kind"].isin(["book", "backstop", "adl"])]
        first[mode] = hit.groupby("account")["time_us"].min().median()
        gone = [a for a in crowd if a.liquidations]
        assert gone, mode
        loss[mode] = sum(a.p.deposit_usdc - a.equity() / 1e6 for a in gone) / len(gone)
    assert first["isolated"] < first["cross"]
    assert loss["cross"] > 2 * loss["isolated"]


def test_insurance_depletion_drains_the_fund_and_deleverages_profitable_shorts():
    r = abm.run("insurance_depletion")
    liq = r.liquidations
    # the 20k USDC fund is gone, and no further: what it could not pay the ADL counterparties carried
    assert 0 <= r.summary["insurance_fund_end"] < 0.1 * 20_000
    assert (liq["insurance_after"] >= 0).all()
    adl = liq[liq["kind"] == "adl"]
    cps = liq[liq["kind"] == "adl_counterparty"]
    assert len(adl) > 10 and len(cps) == len(adl)
    assert (cps["size"] > 0).all()  # shorts bought back against the bankrupt longs
    assert (adl["time_us"] >= 240e6).all()


def test_multi_market_contagion_carries_an_eth_crash_into_btc_through_cross_margin():
    import numpy as np

    from abm.model import MarketModel
    pass  #

    m = MarketModel(load_scenario("multi_market_contagion")).run()
    df = m.steps_frame()
    liq = m.tables()["liquidations"]
    btc = liq[(liq["market"] == 0) & liq["kind"].isin(["book", "backstop", "adl"])]
    baskets = {a.account for a in m.agents_by_kind["basket"]}
    assert len(btc) > 20 and set(btc["account"]) <= baskets  # only the cross baskets are hit in BTC
    assert (btc["time_us"] >= 300e6).all()  # after the ETH crash, not before
    window = df["index"].iloc[290:500]
    assert window.max() / window.min() - 1 < 0.01  # BTC's own index barely moved
    # the two indexes are correlated as configured (pre-shock one-second log returns)
    r = np.diff(np.log(df[["index", "index[ETH-PERP]"]].iloc[:290].to_numpy()), axis=0)
    assert 0.1 < np.corrcoef(r.T)[0, 1] < 0.6
