"""The built-in per-step metrics: small reporters, each one number, in human units (prices in quote
currency, sizes in base units). ``abm.model.reporters`` registers them in column order.

A market reporter is ``fn(model, i) -> number`` for market ``i`` (``model.symbols[i]``); a global one
``fn(model) -> number``. The volume and liquidation figures are per step (since the previous
collection: ``model._taker_seen`` and ``model._liq_seen``, which the model advances after each
collection); the rest are levels at the end of the step. ``mid`` and ``spread_bps`` are NaN while a
side of the book is empty (a missing price, never 0). Columns that come from one pass over the state
(the depth bands from one walk of the book, the liquidation figures from one scan of the step's log
rows, the market makers' figures) share that pass through
``model.metric_cache``, emptied before each collection. Each step costs O(new liquidation events +
market makers + book levels inside the widest depth band), never a scan of positions or orders (the
leveraged crowd's lots and the makers' resting totals are the exchange's running totals) or of idle
agents' state. Counts are ints
(an int column), everything else floats.

This module is compiled (setup.py): a new metric goes into ``abm.model.reporters.register_metric``
from any module, never here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from abm.margin.engine import CROSS_UNIT
from abm.margin.events import KIND_CODE
from abm.units import USDC

if TYPE_CHECKING:
    from abm.model.model import MarketModel

DEPTH_BANDS_BPS = (50, 100, 200)
LIQ_KINDS = ("book", "backstop", "adl")
LEV_KEYS = ("lev_long_cross", "lev_short_cross", "lev_long_isolated", "lev_short_isolated")  # as TAGGED_KEYS
LEVERAGED_TAG = "leveraged"  # the exchange's account tag of role "leveraged" accounts (set by the model)
NAN = float("nan")

MarketReporter = Callable[["MarketModel", int], Any]
GlobalReporter = Callable[["MarketModel"], Any]


# ------------------------------------------------------------------ global

def time_s(model: MarketModel) -> float:
    return model.sched.now / 1e6


def insurance_fund(model: MarketModel) -> float:
    """The fund's ledger plus, on a venue where the fund takes positions over (Binance), what its account holds."""
    ex = model.exchange
    fund = ex.risk.fund_account
    held = ex.risk.equity(ex.accounts[fund], (fund, CROSS_UNIT)) if fund is not None else 0
    return (ex.ledgers["insurance"] + held) / USDC


def vault_equity(model: MarketModel) -> float:
    ex = model.exchange
    vault = ex.risk.vault
    return ex.risk.equity(ex.accounts[vault], (vault, CROSS_UNIT)) / USDC if vault is not None else 0.0


def conservation_gap(model: MarketModel) -> float:
    return model.conservation_gap_last


# ------------------------------------------------------------------ prices

def index(model: MarketModel, i: int) -> float:
    path = model.index_of(model.symbols[i])  # drawn, or made by the venues
    return path.value_at(min(model.sched.now, path.end_us))


def oracle(model: MarketModel, i: int) -> float:
    tick = float(model.exchange.markets[i].spec.tick_size)
    return (model.feeds[model.symbols[i]].oracle.price or 0) * tick


def mark(model: MarketModel, i: int) -> float:
    ex = model.exchange
    return (ex.risk.mark(i) or 0) * float(ex.markets[i].spec.tick_size)


def mid(model: MarketModel, i: int) -> float:
    m = model.views[model.symbols[i]].mid()
    # a one-sided book has no mid: missing, not 0
    return m * float(model.exchange.markets[i].spec.tick_size) if m is not None else NAN


def last(model: MarketModel, i: int) -> float:
    m = model.exchange.markets[i]
    return (m.last_price or 0) * float(m.spec.tick_size)


def spread_bps(model: MarketModel, i: int) -> float:
    s = model.views[model.symbols[i]].spread_bps()
    return s if s is not None else NAN


# ------------------------------------------------------------------ depth: one walk of the book for every band

def _bands(model: MarketModel, i: int) -> Any:
    key = ("depth", i)
    cache = model.metric_cache
    bands = cache.get(key)
    if bands is None:
        bands = cache[key] = model.views[model.symbols[i]].depth_bands(DEPTH_BANDS_BPS)
    return bands


def depth(side: str, bps: int) -> MarketReporter:
    """Resting notional on ``side`` ("bid" or "ask") within ±``bps`` of the mid."""
    pos = DEPTH_BANDS_BPS.index(bps)
    col = 1 if side == "bid" else 3

    def reporter(model: MarketModel, i: int) -> float:
        return _bands(model, i)[pos][col] / USDC

    return reporter


# ------------------------------------------------------------------ flow since the previous collection

def volume_taker_buy(model: MarketModel, i: int) -> float:
    m = model.exchange.markets[i]
    return (m.taker_volume[0] - model._taker_seen[i][0]) * float(m.spec.lot_size)


def volume_taker_sell(model: MarketModel, i: int) -> float:
    m = model.exchange.markets[i]
    return (m.taker_volume[1] - model._taker_seen[i][1]) * float(m.spec.lot_size)


def _liquidations(model: MarketModel, i: int) -> tuple[list[int], list[float], int]:
    """(counts, notionals by LIQ_KINDS, bad debt in quote units) of the step's log rows for market ``i``."""
    cache = model.metric_cache
    tallies = cache.get("liq")
    if tallies is None:
        tallies = cache["liq"] = _liq_tallies(model)
    got: tuple[list[int], list[float], int] = tallies[i]
    return got


def _liq_tallies(model: MarketModel) -> list[tuple[list[int], list[float], int]]:
    """Every market's tally of the step's new log rows, in one pass over them (none: O(markets)).

    Rows of no market (-1: a cross account's bad debt) count for the first market. Each market's
    notionals add up in row order, as they always have.
    """
    ex = model.exchange
    n_markets = len(ex.markets)
    log = ex.liquidations
    start = model._liq_seen
    end = len(log)
    counts = [[0 for _ in LIQ_KINDS] for _ in range(n_markets)]
    notional = [[0.0 for _ in LIQ_KINDS] for _ in range(n_markets)]
    bad = [0] * n_markets
    if start < end:
        kinds, markets, sizes, prices, debts = (log.column(c) for c in ("kind", "market", "size", "price", "bad_debt"))
        code_of = {KIND_CODE[k]: n for n, k in enumerate(LIQ_KINDS)}
        mults = [m.spec.multiplier for m in ex.markets]
        for j in range(start, end):
            mi = markets[j]
            if mi == -1:
                mi = 0
            if mi < 0 or mi >= n_markets:
                continue
            n = code_of.get(kinds[j])
            if n is not None:
                counts[mi][n] += 1
                notional[mi][n] += abs(sizes[j]) * prices[j] * mults[mi] / USDC
            bad[mi] += debts[j]
    return [(counts[i], notional[i], bad[i]) for i in range(n_markets)]


def liq_count(kind: str) -> MarketReporter:
    n = LIQ_KINDS.index(kind)

    def reporter(model: MarketModel, i: int) -> int:
        c: int = _liquidations(model, i)[0][n]
        return c

    return reporter


def liq_notional(kind: str) -> MarketReporter:
    n = LIQ_KINDS.index(kind)

    def reporter(model: MarketModel, i: int) -> float:
        v: float = _liquidations(model, i)[1][n]
        return v

    return reporter


def bad_debt(model: MarketModel, i: int) -> float:
    return _liquidations(model, i)[2] / USDC


# ------------------------------------------------------------------ funding and positions

def funding_predicted(model: MarketModel, i: int) -> float:
    return float(model.feeds[model.symbols[i]].predicted_rate())


def funding_last(model: MarketModel, i: int) -> float:
    return float(model.feeds[model.symbols[i]].last_rate)


def open_interest(model: MarketModel, i: int) -> float:
    m = model.exchange.markets[i]
    return m.open_interest * float(m.spec.lot_size)


# ------------------------------------------------------------------ by role

def _quotes(model: MarketModel, i: int) -> tuple[int, int]:
    """(market makers with an order in market ``i``, their resting tick·lots there): role "market_maker".

    Each account keeps its resting lots and tick·lots per market (``Account.resting``), so one pass
    over the makers' totals serves every market and no order is looked up.
    """
    cache = model.metric_cache
    got = cache.get("mm")
    if got is None:
        n = len(model.exchange.markets)
        quoting = [0] * n
        quoted = [0] * n
        accounts = model.exchange.accounts
        for mm in model.agents_by_role.get("market_maker", ()):
            for mi, r in accounts[mm.account].resting.items():
                if r[0] or r[1]:
                    quoting[mi] += 1
                    quoted[mi] += r[2]
        got = cache["mm"] = (quoting, quoted)
    return got[0][i], got[1][i]


def mm_quoting(model: MarketModel, i: int) -> int:
    n: int = _quotes(model, i)[0]
    return n


def mm_quoted_notional(model: MarketModel, i: int) -> float:
    return _quotes(model, i)[1] * model.exchange.markets[i].spec.multiplier / USDC


def lev_lots(key: str) -> MarketReporter:
    """Lots held by role "leveraged" accounts in market ``i`` on one side in one margin mode (``LEV_KEYS``).

    The exchange keeps them as running totals of the accounts the model tagged ``LEVERAGED_TAG``
    (``Exchange.tag_account``; ``TAGGED_KEYS`` is LEV_KEYS' order), so a reading costs O(1), not a
    walk of every holder.
    """
    n = LEV_KEYS.index(key)

    def reporter(model: MarketModel, i: int) -> float:
        m = model.exchange.markets[i]
        lots = m.tagged_lots.get(LEVERAGED_TAG)
        return (lots[n] if lots is not None else 0) * float(m.spec.lot_size)

    return reporter
