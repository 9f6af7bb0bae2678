"""The run folder: decoded columns, accounts, provenance, a frozen venue, atomic writing and damaged files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import abm
import abm.venues
from abm.errors import InvalidInput
from abm.report import html_available
from abm.results import load_run, save_run
from abm.results.fingerprint import fingerprint, table_digest
from abm.results.run_result import _host, remove_stale_partials
from abm.scenarios import load_scenario
from abm.scenarios.identity import scenario_hash
from tests.support import cli

WHALE = {"run.duration_s": 400}  # the whale sells at 5 min into the shock; the crowd is liquidated by 400 s


@pytest.fixture(scope="module")
def whale(tmp_path_factory):
    """whale_dump cut to 400 s, saved with a venue override; (result in memory, its folder)."""
    out = tmp_path_factory.mktemp("runs") / "whale"
    r = abm.run("whale_dump", {**WHALE, "venue.overrides": {"fees.taker_bps": 5}}, seed=1, out=out)
    assert len(r.liquidations) > 0 and r.accounts["liquidated"].any()
    return r, out


def test_folder_holds_every_file(whale):
    _, out = whale
    names = {p.name for p in out.iterdir()}
    assert names == {"steps.parquet", "trades.parquet", "liquidations.parquet", "funding.parquet",
                     "accounts.parquet", "config.toml", "venue.toml", "provenance.json", "meta.json",
                     "summary.json", "report.png"} | ({"report.html"} if html_available() else set())
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".partial")]


def test_decoded_columns_sit_beside_the_integer_ones(whale):
    r, _ = whale
    t, liq, f = r.trades, r.liquidations, r.funding
    spec = r.markets[0]
    for c in ("time_us", "price", "qty", "taker_side", "maker_account"):
        assert t[c].dtype.kind in "iub", c  # the exact columns stay as they were
    assert t["time"].dtype.kind == "m" and (t["time"] == pd.to_timedelta(t["time_us"], unit="us")).all()
    assert isinstance(t["symbol"].dtype, pd.CategoricalDtype) and set(t["symbol"]) == {"BTC-PERP"}
    assert list(t["side"].cat.categories) == ["buy", "sell"]
    np.testing.assert_allclose(t["price_usdc"], t["price"] * spec["tick_size"], rtol=1e-12)
    np.testing.assert_allclose(t["size_base"], t["qty"] * spec["lot_size"], rtol=1e-12)
    np.testing.assert_allclose(t["notional_usdc"], t["qty"] * t["price"] * spec["multiplier"] / 1e6, rtol=1e-12)
    assert (liq["bad_debt_usdc"] == liq["bad_debt"] / 1e6).all()
    assert set(liq["mode_name"].cat.categories) == {"cross", "isolated", "strict_isolated"}
    assert {"time", "symbol", "price_usdc", "paid_usdc", "received_usdc"} <= set(f.columns)


def test_accounts_join_to_the_trades_and_the_liquidations(whale):
    r, _ = whale
    a = r.accounts
    assert a["account"].is_unique and a["account"].is_monotonic_increasing
    assert set(r.trades["taker_account"]) | set(r.trades["maker_account"]) <= set(a["account"])
    liquidated = set(r.liquidations.loc[r.liquidations["kind"].isin(["book", "backstop", "adl"]), "account"])
    assert set(a.loc[a["liquidated"], "account"]) == liquidated
    crowd = a[a["group"] == "long_crowd"]
    assert len(crowd) == 200 and set(crowd["kind"]) == {"leveraged"} and list(crowd["index"]) == list(range(200))
    assert a["first_liquidation"].dtype.kind == "m" and a.loc[~a["liquidated"], "first_liquidation"].isna().all()
    assert (a.loc[a["group"] == "whale", "deposit_usdc"] > 0).all()


def test_load_run_equals_the_run_in_memory(whale):
    r, out = whale
    loaded = load_run(out)
    for name in ("steps", "trades", "liquidations", "funding", "accounts"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(r, name), check_exact=True, obj=name)
        assert table_digest(getattr(loaded, name)) == table_digest(getattr(r, name)), name
    assert fingerprint(loaded) == fingerprint(r)
    assert (loaded.summary, loaded.markets, loaded.shocks, loaded.scenario) == (r.summary, r.markets, r.shocks,
                                                                                 r.scenario)
    assert (loaded.quote, loaded.quote_decimals) == ("USDC", 6)
    # the config is the folder's: the frozen venue instead of the profile name and overrides
    assert loaded.config["venue"] == {"profile": "venue.toml", "overrides": {}}
    same = load_scenario(out / "config.toml").model_dump(mode="json")
    assert {k: v for k, v in same.items() if k != "venue"} == {k: v for k, v in r.config.items() if k != "venue"}


def test_empty_categoricals_keep_their_categories(tmp_path):
    r = abm.run("baseline", {"run.duration_s": 30}, seed=1, out=tmp_path / "calm", report=False)
    assert len(r.liquidations) == 0  # Parquet alone returns an empty categorical without categories
    loaded = load_run(tmp_path / "calm")
    assert list(loaded.liquidations["kind"].cat.categories) == list(r.liquidations["kind"].cat.categories)
    pd.testing.assert_frame_equal(loaded.liquidations, r.liquidations, check_exact=True)
    pd.testing.assert_frame_equal(loaded.accounts, r.accounts, check_exact=True)


def test_provenance_names_versions_build_seed_and_scenario_hash(whale):
    r, out = whale
    p = json.loads((out / "provenance.json").read_text())
    assert p["versions"]["abm"] == abm.__version__ and p["versions"]["numpy"] == np.__version__
    assert p["versions"]["pandas"] == pd.__version__ and p["versions"]["pyarrow"] and p["versions"]["mesa"]
    assert p["build"] in ("pure", "compiled") and p["python"] == ".".join(map(str, sys.version_info[:3]))
    assert p["seed"] == 1 and p["scenario"] == "whale_dump"
    scn = load_scenario("whale_dump", {**WHALE, "venue.overrides": {"fees.taker_bps": 5}}, seed=1)
    assert p["scenario_sha256"] == scenario_hash(scn)
    assert p["venue"] == {"profile": "hyperliquid", "overrides": {"fees.taker_bps": 5}, "frozen": "venue.toml"}
    assert "git_commit" in p


def test_saved_config_repeats_the_run_from_the_folder_alone(whale, tmp_path, monkeypatch):
    r, out = whale
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["venue"] == {"profile": "venue.toml", "overrides": {}}
    venue = tomllib.loads((out / "venue.toml").read_text())
    assert venue["name"] == "hyperliquid" and venue["fees"]["taker_bps"] == 5  # the override, applied
    # the shipped profiles are no longer read: the repeat cannot follow a later change to them
    real = abm.venues.read_profile

    def no_shipped(name_or_path):
        assert name_or_path not in abm.venues.PROFILES, f"read the shipped profile {name_or_path!r}"
        return real(name_or_path)

    monkeypatch.setattr(abm.venues, "read_profile", no_shipped)
    monkeypatch.chdir(tmp_path)  # venue.toml is found beside config.toml, not in the working directory
    again = abm.run(out / "config.toml", out=tmp_path / "again")
    assert fingerprint(again) == fingerprint(r)
    assert table_digest(again.accounts) == table_digest(r.accounts)
    first, second = (json.loads((p / "provenance.json").read_text()) for p in (out, tmp_path / "again"))
    assert second["scenario_sha256"] == first["scenario_sha256"]  # the same content, the venue included
    assert (tmp_path / "again" / "venue.toml").read_text() == (out / "venue.toml").read_text()


def test_the_report_is_drawn_before_the_folder_gets_its_name(tmp_path, monkeypatch):
    import abm.report

    seen = []
    real = abm.report.render_run_reports  # report.png, and report.html with the extra viz

    def draw(result, path):
        seen.append(Path(path))
        assert Path(path).parent.name.endswith(".partial") and not (tmp_path / "r").exists()
        out = real(result, path)
        assert (Path(path).with_name("report.html").is_file()) == html_available()  # both before the rename
        return out

    monkeypatch.setattr(abm.report, "render_run_reports", draw)
    abm.run("baseline", {"run.duration_s": 20}, seed=1, out=tmp_path / "r")
    assert len(seen) == 1 and (tmp_path / "r" / "report.png").is_file()

    def broken(result, path):
        raise RuntimeError("the report failed")

    monkeypatch.setattr(abm.report, "render_run_reports", broken)
    with pytest.raises(RuntimeError, match="the report failed"):
        abm.run("baseline", {"run.duration_s": 20}, seed=1, out=tmp_path / "r2")
    assert not (tmp_path / "r2").exists()  # no folder without its report
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_partial_folders_of_dead_runs_are_removed_live_ones_kept(tmp_path):
    host = _host()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folders = {
            "dead": tmp_path / f".killed.{host}.{_dead_pid()}.abc123.partial",  # a run killed mid-write
            "live": tmp_path / f".running.{host}.{live.pid}.def456.partial",  # a run still writing
            "mine": tmp_path / f".me.{host}.{os.getpid()}.ghi789.partial",
            "other_host": tmp_path / f".elsewhere.{host}x.{_dead_pid()}.jkl012.partial",  # its pid means nothing here
            "not_ours": tmp_path / ".something.partial",
        }
        for p in folders.values():
            p.mkdir()
            (p / "steps.parquet").write_bytes(b"half")
        save_run(abm.run("baseline", {"run.duration_s": 10}, seed=1), tmp_path / "next", "name = 'x'\n")
        assert not folders["dead"].exists()
        assert all(folders[k].exists() for k in ("live", "mine", "other_host", "not_ours"))
        assert (tmp_path / "next" / "steps.parquet").is_file()
        assert remove_stale_partials(tmp_path) == []  # nothing else is stale
    finally:
        live.kill()
        live.wait()
    assert remove_stale_partials(tmp_path) == [folders["live"]]  # once its process is gone


def test_a_folder_without_accounts_is_refused_by_name(whale, tmp_path):
    import shutil

    _, out = whale
    old = tmp_path / "old"
    shutil.copytree(out, old)
    (old / "accounts.parquet").unlink()
    with pytest.raises(InvalidInput, match="accounts.parquet is missing"):
        load_run(old)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_report_of_a_damaged_parquet_file_is_one_line_naming_it(whale, tmp_path, damage):
    import shutil

    _, out = whale
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    data = (bad / "trades.parquet").read_bytes()
    (bad / "trades.parquet").write_bytes({"truncated": data[: len(data) // 2], "garbage": b"not parquet\n",
                                          "empty": b""}[damage])
    with pytest.raises(InvalidInput, match="trades.parquet"):
        load_run(bad)
    r = cli("report", str(bad))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("abm: error: run_dir: ") and "trades.parquet" in lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_a_start_time_gives_utc_timestamps_that_survive_the_folder(tmp_path):
    r = abm.run("whale_dump", {"run.duration_s": 320, "run.start_time": "2025-10-10T23:00:00+02:00"},
                out=tmp_path / "r", report=False)
    assert r.config["run"]["start_time"] == "2025-10-10T21:00:00Z"
    start = pd.Timestamp("2025-10-10T21:00:00Z")
    for t in ("trades", "liquidations"):
        df = r.__dict__[t]
        assert len(df) and (df["timestamp"] == start + pd.to_timedelta(df["time_us"], unit="us")).all()
    back = abm.load_run(tmp_path / "r")
    assert back.trades["timestamp"].equals(r.trades["timestamp"])
    with pytest.raises(InvalidInput, match="run.start_time: must be an ISO-8601 time"):
        abm.run("whale_dump", {"run.start_time": "yesterday"})
