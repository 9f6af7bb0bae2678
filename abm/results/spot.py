"""The spot venues' tables: every fill on a simulated spot venue, and every spot account and how it ended.

Why tables of their own and not rows of ``trades`` and ``accounts``: a spot fill has no liquidation
flag and moves no position, a spot account has cash and inventory, a debt and interest, not a margin
mode, a position and liquidations; and account ids are numbered on each venue, so the perp tables'
``account`` would not identify a spot account without a venue beside it. Keeping them apart leaves the
perp tables' schema, and every existing fingerprint, as they were. An agent is found in both by its
``group`` and ``index`` (the arbitrageur's perp and spot accounts are one agent).

- ``spot_trades``: one row per fill, in the order the fills happened across venues: the exact integer
  columns (``time_us``, ``market`` (the pair's index on its venue), order ids, accounts, ``price``
  ticks, ``qty`` lots, ``taker_side``, ``maker_fee`` and ``taker_fee`` in quote units as charged, a
  rebate negative) and, as ``abm.results.decode`` does for the perp, ``time``, ``venue``, ``symbol``
  (the pair) and ``side`` categoricals, ``price_usdc``, ``size_base``, ``notional_usdc`` and the fees
  in quote currency.
- ``spot_accounts``: one row per spot account and pair of its venue (one row per account on a venue
  listing one pair): its owner, the pair's inventory (brought, final) and debt, and the account's
  cash (opened with, transferred in since, final: free, held by resting buys and locked as collateral),
  fees, interest paid and unpaid, equity and PnL, actions and rejects on that venue. The inventory
  columns are the row's pair; every other column is the account's, the same on each of its rows (sum
  cash or PnL over one row per ``(venue, account)``).
- Valuation: each pair at the reference price ``ref_price_usdc``, the oracle of the perp on the same
  underlying at the end of the run (its mark before the oracle's first update): the price every
  venue's inventory is compared at, which the venue's interest is charged on, exact in ticks, and
  not the end state of a thin book a last sale can empty. ``equity = cash + (inventory - borrowed) x
  ref``; ``pnl = equity - start_cash - transfers - start_inventory x ref``: what the account's
  trading gained against holding what it brought, at that one price.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

import numpy as np
import pandas as pd

from abm.results.decode import _notional, _scaled, _time
from abm.spot.tape import COLUMNS as TAPE_COLUMNS
from abm.units import SIDE_NAMES

SPOT_TRADES = "spot_trades"
SPOT_ACCOUNTS = "spot_accounts"
SPOT_TABLES = (SPOT_TRADES, SPOT_ACCOUNTS)


def spot_links(agent: Any) -> list[Any]:
    """The agent's contexts on spot venues: its own when it trades on one, and a second link's (the
    arbitrageur's ``spot``) when it has one."""
    from abm.agents.spot_context import SpotContext

    return [c for c in (getattr(agent, "ctx", None), getattr(agent, "spot", None)) if isinstance(c, SpotContext)]


def spot_markets(model: Any) -> dict[str, list[dict[str, Any]]]:
    """``{venue: [{symbol, tick_size, lot_size, multiplier, perp}]}`` per market index, in the scenario's order."""
    return {name: [{"symbol": m.symbol, "tick_size": float(m.spec.tick_size), "lot_size": float(m.spec.lot_size),
                    "multiplier": int(m.multiplier), "perp": model.perp_of_spot[name][m.symbol]} for m in sx.markets]
            for name, sx in model.spot_venues.items()}


def _flat(markets: Mapping[str, Sequence[Mapping[str, Any]]]) -> tuple[list[str], list[Mapping[str, Any]], list[int],
                                                                        list[str]]:
    """Venues, every venue's markets in one list, each venue's offset in it, and the pairs (categories)."""
    venues = list(markets)
    flat: list[Mapping[str, Any]] = []
    offsets = []
    for v in venues:
        offsets.append(len(flat))
        flat.extend(markets[v])
    pairs = list(dict.fromkeys(str(m["symbol"]) for m in flat))
    return venues, flat, offsets, pairs


def spot_trades_frame(columns: Mapping[str, np.ndarray], markets: Mapping[str, Sequence[Mapping[str, Any]]],
                      quote: str = "USDC", quote_decimals: int = 6, start_time: Optional[str] = None) -> pd.DataFrame:
    """The table from the tape's integer columns (``abm.spot.tape.COLUMNS``) and the venues' markets.

    Empty columns give the empty table with every column and dtype, what a run without spot venues has."""
    venues, flat, offsets, pairs = _flat(markets)
    q = quote.lower()
    unit = 10.0**quote_decimals
    t = pd.DataFrame({c: np.asarray(columns[c], dtype=np.int8 if c == "taker_side" else np.int64)
                      for c in TAPE_COLUMNS})
    vcode = t["venue"].to_numpy(np.int64)
    glob = np.asarray(offsets, dtype=np.int64)[vcode] + t["market"].to_numpy(np.int64) if len(t) else vcode
    key = pd.DataFrame({"market": glob})  # a row's market in the flat list: what the decoders index
    t["venue"] = pd.Categorical.from_codes(vcode, venues)
    _time(t, pd.Timestamp(start_time, tz="UTC") if start_time else None)
    pair_code = np.array([pairs.index(str(m["symbol"])) for m in flat], dtype=np.int64)
    t["symbol"] = pd.Categorical.from_codes(pair_code[glob] if len(t) else glob, pairs)
    price, qty = t["price"].to_numpy(np.int64), t["qty"].to_numpy(np.int64)
    t[f"price_{q}"] = _scaled(key, price, flat, "tick_size")
    t["size_base"] = _scaled(key, qty, flat, "lot_size")
    t[f"notional_{q}"] = _notional(key, qty, price, flat, unit)
    t["side"] = pd.Categorical.from_codes(t["taker_side"].to_numpy(np.int64), SIDE_NAMES)
    for c in ("maker_fee", "taker_fee"):
        t[f"{c}_{q}"] = t[c].to_numpy(np.int64) / unit
    return t


def spot_trades_table(model: Any, quote: str = "USDC", quote_decimals: int = 6,
                      start_time: Optional[str] = None) -> pd.DataFrame:
    """Every fill on every spot venue of a finished ``MarketModel``."""
    return spot_trades_frame(model.spot_tape.columns(), spot_markets(model), quote, quote_decimals, start_time)


def spot_accounts_frame(rows: Sequence[Mapping[str, Any]], venues: Sequence[str], pairs: Sequence[str],
                        quote: str = "USDC") -> pd.DataFrame:
    """The table from its rows (the keys ``spot_accounts_table`` writes, money in quote currency and sizes in
    base units, each already one integer divided once); no rows give the empty table with every column and
    dtype."""
    q = quote.lower()
    cols: dict[str, Any] = {
        "venue": pd.Categorical([r["venue"] for r in rows], categories=list(venues)),
        "account": np.array([r["account"] for r in rows], dtype=np.int64),
        "group": pd.Series([r["group"] for r in rows], dtype=object).astype("category"),
        "kind": pd.Series([r["kind"] for r in rows], dtype=object).astype("category"),
        "index": np.array([r["index"] for r in rows], dtype=np.int64),
        "symbol": pd.Categorical([r["symbol"] for r in rows], categories=list(pairs)),
    }
    for c in ("start_cash", "transfers", "cash"):
        cols[f"{c}_{q}"] = np.array([r[c] for r in rows], dtype=np.float64)
    for c in ("start_inventory", "inventory", "borrowed"):
        cols[f"{c}_base"] = np.array([r[c] for r in rows], dtype=np.float64)
    for c in ("fees", "interest", "arrears", "ref_price", "equity", "pnl"):
        cols[f"{c}_{q}"] = np.array([r[c] for r in rows], dtype=np.float64)
    for c in ("actions", "rejects"):
        cols[c] = np.array([r[c] for r in rows], dtype=np.int64)
    return pd.DataFrame(cols)


def spot_accounts_table(model: Any, quote: str = "USDC", quote_decimals: int = 6) -> pd.DataFrame:
    """One row per spot account and pair of its venue, of a finished ``MarketModel`` (venues in the scenario's
    order, accounts in id order, pairs in listing order)."""
    from fractions import Fraction

    unit = 10**quote_decimals
    owner: dict[tuple[str, int], tuple[str, str, int, Any]] = {}
    for group, agents in model.agents_by_group.items():
        for i, a in enumerate(agents):
            for link in spot_links(a):
                owner[(link.venue, link.account)] = (group, a.kind, i, link)
    ex = model.exchange
    rows: list[dict[str, Any]] = []
    pairs: list[str] = []
    for name, sx in model.spot_venues.items():
        refs = []
        for m in sx.markets:
            sym = model.perp_of_spot[name][m.symbol]
            refs.append(model.feeds[sym].oracle.price or ex.risk.mark(ex.market(sym).index))
            if m.symbol not in pairs:
                pairs.append(m.symbol)
        for aid in sorted(sx.accounts):
            a = sx.accounts[aid]
            group, kind, index, link = owner.get((name, aid), ("", "", -1, None))
            cash = a.total_cash()
            equity = cash + sum((a.total_inventory(m.index) - a.debt[m.index]) * refs[m.index] * m.multiplier
                                for m in sx.markets)
            held = sum(a.lots_in[m.index] * refs[m.index] * m.multiplier for m in sx.markets)
            for m in sx.markets:
                i = m.index
                lot = Fraction(m.spec.lot_size)
                tick = Fraction(m.spec.tick_size)
                rows.append({
                    "venue": name, "account": aid, "group": group, "kind": kind, "index": index, "symbol": m.symbol,
                    "start_cash": a.opening_cash / unit, "transfers": (a.cash_in - a.opening_cash) / unit,
                    "cash": cash / unit, "start_inventory": float(a.lots_in[i] * lot),
                    "inventory": float(a.total_inventory(i) * lot), "borrowed": float(a.debt[i] * lot),
                    "fees": a.fees_paid / unit, "interest": a.interest_paid / unit, "arrears": a.arrears / unit,
                    "ref_price": float(refs[i] * tick), "equity": equity / unit,
                    "pnl": (equity - a.cash_in - held) / unit,
                    "actions": link.actions if link is not None else 0,
                    "rejects": link.rejects if link is not None else 0,
                })
    return spot_accounts_frame(rows, list(model.spot_venues), pairs, quote)


def empty_spot_tables(quote: str = "USDC") -> dict[str, pd.DataFrame]:
    """The spot tables of a run without spot venues (and of a folder written before they existed)."""
    return {SPOT_TRADES: spot_trades_frame({c: np.zeros(0, np.int64) for c in TAPE_COLUMNS}, {}, quote),
            SPOT_ACCOUNTS: spot_accounts_frame([], [], [], quote)}
