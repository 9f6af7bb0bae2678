"""The spot venues in a run's outputs: every spot fill in ``spot_trades``, every spot account in ``spot_accounts``,
their money checked against an independent computation from the fills, conserved per venue, and the run
folder writing and reading them back exactly (and still reading folders without them)."""

from __future__ import annotations

import json
import shutil
from typing import Any

import numpy as np
import pandas as pd
import pytest

import abm
from abm.errors import InvalidInput
from abm.model import MarketModel
from abm.results import load_run, save_run
from abm.results.fingerprint import TABLES, fingerprint
from abm.results.spot import SPOT_TABLES, empty_spot_tables
from abm.scenarios import load_scenario
from abm.scenarios.runner import collect_result, frozen_config
from abm.units import BUY
from tests.integration.test_spot_venues import SPOT

# the perp whale sells at 3 s: the perp trades below spot, so the arbitrageurs buy perp and sell spot they do not
# hold (a borrow from the pool, interest each step) and move cash from the spot venue to the perp one (transfers)
CFG: dict[str, Any] = {
    **SPOT, "run.duration_s": 200,
    "spot": {"binance": {"weight": 1, "lending": 200.0, "borrow_bps_per_day": 500.0, "maker_bps": -0.5}},
    "agents.arbitrageur.spot_venue": "binance", "agents.arbitrageur.carry": False,
    "agents.arbitrageur.transfer_s": 10.0, "agents.arbitrageur.topup_usage": 0.02,
    "agents.long_crowd.count": 0, "agents.whale.start_s": 3, "agents.whale.size": 150,
}
UNIT = 10**6  # quote units per USDC


@pytest.fixture(scope="module")
def spot_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[MarketModel, Any, Any]:
    """(the finished model, audited every step; its result; the saved folder)."""
    scn = load_scenario("whale_dump", CFG, seed=7)
    model = MarketModel(scn, audit=True).run()
    result = collect_result(scn, model)
    out = save_run(result, tmp_path_factory.mktemp("runs") / "spot", frozen_config(scn))
    return model, result, out


def units(x: pd.Series) -> np.ndarray:
    """USDC floats back to the integer quote units they were divided from (exact below 2**53 units)."""
    return np.round(x.to_numpy() * UNIT).astype(np.int64)


def test_every_spot_fill_is_a_row_with_exact_and_decoded_columns(spot_run: tuple[MarketModel, Any, Any]) -> None:
    model, r, _ = spot_run
    t = r.spot_trades
    sx = model.spot_venues["binance"]
    m = sx.markets[0]
    assert len(t) > 500 and len(r.trades) > 0  # the perp's fills stay in trades, the spot venue's are here
    for c in ("time_us", "market", "maker_oid", "maker_account", "taker_oid", "taker_account", "price", "qty",
              "taker_side", "maker_fee", "taker_fee"):
        assert t[c].dtype.kind == "i", c
    assert t["time_us"].is_monotonic_increasing and (t["time"] == pd.to_timedelta(t["time_us"], unit="us")).all()
    assert list(t["venue"].cat.categories) == ["binance"] and list(t["symbol"].cat.categories) == ["BTC/USDC"]
    assert list(t["side"].cat.categories) == ["buy", "sell"] and (t["side"].cat.codes == t["taker_side"]).all()
    assert (t["price_usdc"] == t["price"] / 10).all() and (t["size_base"] == t["qty"] / 1000).all()
    value = t["price"] * t["qty"] * m.multiplier
    assert (t["notional_usdc"] == value / UNIT).all() and (t["taker_fee_usdc"] == t["taker_fee"] / UNIT).all()
    # each fee as the venue's rates give it, rounded in its favour: a taker fee up, a maker rebate down
    assert m.taker_ppm == 500 and m.maker_ppm == -50
    assert (t["taker_fee"] == -((-value * 500) // 10**6)).all()
    assert (t["maker_fee"] == -((value * 50) // 10**6)).all() and (t["maker_fee"] < 0).all()
    # what the agents counted themselves: the arbitrageurs' hedges are their market orders, taking
    for a in model.agents_by_group["arbitrageur"]:
        mine = t[t["taker_account"] == a.spot.account]
        assert mine["qty"].sum() == a.spot_volume > 0
    assert (t["maker_oid"] != t["taker_oid"]).all() and set(t["maker_account"]) | set(t["taker_account"]) <= \
        set(sx.accounts)
    assert sx.ledgers["fees"] == (t["maker_fee"] + t["taker_fee"]).sum()


def test_spot_accounts_find_each_agent_and_the_arbitrageur_in_both_tables(spot_run: tuple[MarketModel, Any, Any]) -> None:
    model, r, _ = spot_run
    a = r.spot_accounts
    sx = model.spot_venues["binance"]
    assert list(a["account"]) == sorted(sx.accounts) and len(a) == len(sx.accounts)  # one pair: one row each
    for group in ("arbitrageur", "spot_mm", "spot_noise"):
        rows = a[a["group"] == group]
        assert list(rows["index"]) == list(range(len(model.agents_by_group[group])))
    perp = r.accounts.set_index(["group", "index"])
    for i, agent in enumerate(model.agents_by_group["arbitrageur"]):
        spot_row = a[(a["group"] == "arbitrageur") & (a["index"] == i)].iloc[0]
        perp_row = perp.loc[("arbitrageur", i)]
        assert spot_row["account"] == agent.spot.account and perp_row["account"] == agent.account
        assert spot_row["kind"] == perp_row["kind"] == "arbitrageur"
        # each venue counts its own link's actions and rejects; together they are the agent's
        assert spot_row["actions"] == agent.spot.actions > 0 and perp_row["actions"] == agent.ctx.actions > 0
        assert spot_row["actions"] + perp_row["actions"] == agent.actions
        assert spot_row["rejects"] + perp_row["rejects"] == agent.rejects
    for agent, row in zip(model.agents_by_group["spot_mm"], a[a["group"] == "spot_mm"].itertuples()):
        assert (row.actions, row.rejects) == (agent.actions, agent.rejects) and row.kind == "market_maker"
    assert not set(a["account"]) - set(sx.accounts)
    # the story of the run is in the table: the arbitrageurs borrowed, paid interest and moved cash to the perp
    arbs = a[a["group"] == "arbitrageur"]
    assert (arbs["interest_usdc"] > 0).all()  # every one borrowed at some point
    # a buy-back repays the borrow first: none holds spot and owes spot at once (it would pay interest for nothing)
    assert ((arbs["inventory_base"] == 0) | (arbs["borrowed_base"] == 0)).all() and (arbs["borrowed_base"] == 0).any()
    assert (arbs["rejects"] == 0).all()  # no sale counted lots a repay or an earlier sale in flight would take
    assert (arbs["transfers_usdc"] < 0).any()
    assert (a.loc[a["group"] == "spot_mm", "start_inventory_base"] == 20.0).all()


def test_spot_account_money_equals_an_independent_computation_from_the_fills(
        spot_run: tuple[MarketModel, Any, Any]) -> None:
    """cash = start cash + transfers - buys (notional + fee) + sells (notional - fee) - interest;
    inventory = brought + bought - sold + borrowed (a borrow adds lots and debt, a repay takes both);
    fees = the fee of each of the account's fills as maker or taker; equity and PnL at the reference price."""
    model, r, _ = spot_run
    t, a = r.spot_trades, r.spot_accounts
    mult = model.spot_venues["binance"].markets[0].multiplier
    value = t["price"].to_numpy() * t["qty"].to_numpy() * mult
    buy = t["taker_side"].to_numpy() == BUY
    checked = 0
    for row in a.itertuples():
        acct = row.account
        as_taker = t["taker_account"].to_numpy() == acct
        as_maker = t["maker_account"].to_numpy() == acct
        bought = (as_taker & buy) | (as_maker & ~buy)
        sold = (as_taker & ~buy) | (as_maker & buy)
        fees = int(t["taker_fee"].to_numpy()[as_taker].sum() + t["maker_fee"].to_numpy()[as_maker].sum())
        cash = (units(pd.Series([row.start_cash_usdc]))[0] + units(pd.Series([row.transfers_usdc]))[0]
                - int(value[bought].sum()) + int(value[sold].sum()) - fees
                - units(pd.Series([row.interest_usdc]))[0])
        assert cash / UNIT == row.cash_usdc, row
        assert fees / UNIT == row.fees_usdc, row
        lots = (round(row.start_inventory_base * 1000) + int(t["qty"].to_numpy()[bought].sum())
                - int(t["qty"].to_numpy()[sold].sum()) + round(row.borrowed_base * 1000))
        assert lots == round(row.inventory_base * 1000), row
        ref = round(row.ref_price_usdc * 10)
        net = lots - round(row.borrowed_base * 1000)
        equity = cash + net * ref * mult
        assert equity / UNIT == row.equity_usdc, row
        brought = units(pd.Series([row.start_cash_usdc + row.transfers_usdc]))[0]
        assert (equity - brought - round(row.start_inventory_base * 1000) * ref * mult) / UNIT == row.pnl_usdc
        checked += bool(as_taker.any() or as_maker.any())
    assert checked > 20
    # the reference price is the perp's oracle at the end
    assert (a["ref_price_usdc"] == model.feeds["BTC-PERP"].oracle.price / 10).all()


def test_cash_and_inventory_are_conserved_per_venue_in_the_tables(spot_run: tuple[MarketModel, Any, Any]) -> None:
    model, r, _ = spot_run
    a, sx = r.spot_accounts, model.spot_venues["binance"]
    sx.check_conservation()
    cash, brought = units(a["cash_usdc"]).sum(), units(a["start_cash_usdc"]).sum() + units(a["transfers_usdc"]).sum()
    fees, interest = units(a["fees_usdc"]).sum(), units(a["interest_usdc"]).sum()
    assert cash + fees + interest == brought == sx.external_cash  # what the accounts hold and the venue earned
    assert (fees, interest) == (sx.ledgers["fees"], sx.ledgers["interest"])
    m = sx.markets[0]
    inv, debt, start = (np.round(a[c].to_numpy() * 1000).astype(np.int64).sum()
                        for c in ("inventory_base", "borrowed_base", "start_inventory_base"))
    assert inv - debt == start and debt == m.lent > 0 and inv + m.pool == m.external  # lots: accounts and pool


def test_the_run_folder_writes_and_reads_the_spot_tables_back(spot_run: tuple[MarketModel, Any, Any],
                                                              tmp_path: Any) -> None:
    _, r, out = spot_run
    assert {"spot_trades.parquet", "spot_accounts.parquet"} <= {p.name for p in out.iterdir()}
    meta = json.loads((out / "meta.json").read_text())
    assert meta["spot_markets"] == {"binance": [{"symbol": "BTC/USDC", "tick_size": 0.1, "lot_size": 0.001,
                                                 "multiplier": 100, "perp": "BTC-PERP"}]}
    assert meta["dtypes"]["spot_trades"]["venue"] == {"categories": ["binance"]}
    loaded = load_run(out)
    for name in SPOT_TABLES + ("accounts", "trades"):
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(r, name), check_exact=True, obj=name)
    assert loaded.spot_markets == r.spot_markets
    fp = fingerprint(r)
    assert set(fp) == set(TABLES) | set(SPOT_TABLES) | {"summary"} and fingerprint(loaded) == fp
    # a folder with one of the two spot tables is damaged, named
    half = tmp_path / "half"
    shutil.copytree(out, half)
    (half / "spot_accounts.parquet").unlink()
    with pytest.raises(InvalidInput, match="spot_accounts.parquet is missing"):
        load_run(half)


def test_a_run_without_spot_venues_keeps_its_folder_and_fingerprint_keys(tmp_path: Any) -> None:
    """No spot files and no new meta keys are written; the result and the folder read back have the empty spot
    tables with their columns and dtypes, as a folder written before they existed does."""
    r = abm.run("baseline", {"run.duration_s": 20}, seed=1, out=tmp_path / "plain", report=False)
    names = {p.name for p in (tmp_path / "plain").iterdir()}
    assert not names & {"spot_trades.parquet", "spot_accounts.parquet"}
    meta = json.loads((tmp_path / "plain" / "meta.json").read_text())
    assert "spot_markets" not in meta and set(meta["dtypes"]) == {*TABLES, "accounts"}
    assert set(fingerprint(r)) == {*TABLES, "summary"}
    empty = empty_spot_tables()
    loaded = load_run(tmp_path / "plain")
    for name in SPOT_TABLES:
        for got in (getattr(r, name), getattr(loaded, name)):
            pd.testing.assert_frame_equal(got, empty[name], check_exact=True, obj=name)
            assert len(got) == 0 and len(got.columns) > 10
    assert {"time_us", "venue", "price", "qty", "maker_fee", "price_usdc", "notional_usdc", "side"} \
        <= set(empty["spot_trades"].columns)
    assert {"venue", "account", "group", "index", "cash_usdc", "inventory_base", "pnl_usdc"} \
        <= set(empty["spot_accounts"].columns)


def test_a_spot_folder_without_the_spot_files_still_loads(spot_run: tuple[MarketModel, Any, Any], tmp_path: Any) -> None:
    """A folder written before the spot tables existed (a spot run of an older version): empty spot tables."""
    _, r, out = spot_run
    old = tmp_path / "old"
    shutil.copytree(out, old)
    for name in SPOT_TABLES:
        (old / f"{name}.parquet").unlink()
    meta = json.loads((old / "meta.json").read_text())
    for name in SPOT_TABLES:
        del meta["dtypes"][name]
    del meta["spot_markets"]
    (old / "meta.json").write_text(json.dumps(meta))
    loaded = load_run(old)
    assert len(loaded.spot_trades) == 0 and list(loaded.spot_trades.columns) == list(r.spot_trades.columns)
    assert list(loaded.spot_accounts.columns) == list(r.spot_accounts.columns)
    pd.testing.assert_frame_equal(loaded.accounts, r.accounts, check_exact=True)


# two venues, one listing both markets' pairs: an account there has a row per pair (its inventory columns that pair's,
# the rest the account's), and a pair's index on its venue decodes with that venue's grid
TWO_VENUES: dict[str, Any] = {
    "run.duration_s": 40, "markets[1].shocks": [], "agents.basket_crowd.count": 0,
    "spot": {"cex": {}, "dex": {"markets": ["ETH-PERP"]}},
    "agents.s_mm": {"kind": "market_maker", "count": 2, "venue": "cex", "deposit_usdc": 2_000_000,
                    "spot_inventory": 20.0, "reference": "mid", "max_inventory": 15.0},
    "agents.s_noise": {"kind": "noise", "count": 10, "venue": "cex", "deposit_usdc": 1_000_000, "spot_inventory": 10.0},
    "agents.d_mm": {"kind": "market_maker", "count": 2, "venue": "dex", "deposit_usdc": 2_000_000,
                    "spot_inventory": 200.0, "reference": "mid", "max_inventory": 150.0, "level_size": 10.0},
    "agents.d_noise": {"kind": "noise", "count": 10, "venue": "dex", "deposit_usdc": 1_000_000,
                       "spot_inventory": 10.0, "size_lots": 100},
    "agents.eth_arbs.spot_venue": "dex", "agents.btc_arbs.spot_venue": "cex",
}


def test_two_venues_and_two_pairs_on_one_venue() -> None:
    scn = load_scenario("multi_market_contagion", TWO_VENUES, seed=3)
    model = MarketModel(scn, audit=True).run()
    r = collect_result(scn, model)
    t, a = r.spot_trades, r.spot_accounts
    assert list(t["venue"].cat.categories) == ["cex", "dex"] and list(a["venue"].cat.categories) == ["cex", "dex"]
    assert list(t["symbol"].cat.categories) == ["BTC/USDC", "ETH/USDC"]
    for v in ("cex", "dex"):
        assert (t["venue"] == v).sum() > 10
    for name, sx in model.spot_venues.items():
        rows = a[a["venue"] == name]
        assert len(rows) == len(sx.accounts) * len(sx.markets)
        assert list(rows.groupby("account", observed=True)["symbol"].apply(list)) == \
            [[m.symbol for m in sx.markets]] * len(sx.accounts)
        per_account = rows.drop_duplicates("account")
        for c in ("cash_usdc", "fees_usdc", "equity_usdc", "pnl_usdc", "actions"):  # the account's: one value
            assert (rows.groupby("account", observed=True)[c].nunique() == 1).all(), c
        assert units(per_account["cash_usdc"]).sum() + sx.ledgers["fees"] + sx.ledgers["interest"] == sx.external_cash
        for m in sx.markets:
            pair_rows = rows[rows["symbol"] == m.symbol]
            fills = t[(t["venue"] == name) & (t["market"] == m.index)]
            assert (fills["symbol"] == m.symbol).all()
            lot, tick = float(m.spec.lot_size), m.spec.tick_size
            assert (fills["price_usdc"] == fills["price"].to_numpy() / int(1 / tick)).all()
            inv = np.round(pair_rows["inventory_base"].to_numpy() / lot).astype(np.int64)
            assert inv.sum() == m.external and (inv == [sx.accounts[i].total_inventory(m.index)
                                                        for i in pair_rows["account"]]).all()
            for row in pair_rows.itertuples():  # a pair's inventory moves with that pair's fills only
                buy = fills["taker_side"] == BUY
                got = fills.loc[((fills["taker_account"] == row.account) & buy) |
                                ((fills["maker_account"] == row.account) & ~buy), "qty"].sum()
                gave = fills.loc[((fills["taker_account"] == row.account) & ~buy) |
                                 ((fills["maker_account"] == row.account) & buy), "qty"].sum()
                assert round(row.inventory_base / lot) == round(row.start_inventory_base / lot) + got - gave
    # the ETH arbitrageurs' spot leg is on dex, the BTC ones' on cex: each found by group and index on its venue
    for group, venue in (("eth_arbs", "dex"), ("btc_arbs", "cex")):
        rows = a[a["group"] == group]
        assert set(rows["venue"]) == {venue} and set(rows["index"]) == {0, 1}
        assert set(r.accounts.loc[r.accounts["group"] == group, "index"]) == {0, 1}
