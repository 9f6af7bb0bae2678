"""Per-step model metrics for the DataCollector, in human units (prices in quote currency, sizes in base units).

Columns without a suffix are the first market's; other markets' columns end in ``[SYMBOL]``. The
volume and liquidation figures are per step (since the previous collection); the rest are levels at
the end of the step. ``mid`` and ``spread_bps`` are NaN while a side of the book is empty (a missing
price, never 0). Each step costs O(new liquidation events + market makers' orders + open
positions), never a scan of idle agents' state beyond that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from abm.accounts.account import CROSS
from abm.margin.engine import CROSS_UNIT
from abm.margin.events import KIND_CODE
from abm.units import USDC

if TYPE_CHECKING:
    from abm.model.model import MarketModel

DEPTH_BANDS_BPS = (50, 100, 200)
LIQ_KINDS = ("book", "backstop", "adl")
NAN = float("nan")

MARKET_METRICS = (
    "index", "oracle", "mark", "mid", "last", "spread_bps",
    *(f"depth_{side}_{b / 100:g}pct" for b in DEPTH_BANDS_BPS for side in ("bid", "ask")),
    "volume_taker_buy", "volume_taker_sell",
    *(f"liq_{k}_count" for k in LIQ_KINDS), *(f"liq_{k}_notional" for k in LIQ_KINDS),
    "bad_debt", "funding_predicted", "funding_last", "open_interest",
    "mm_quoting", "mm_quoted_notional",
    "lev_long_cross", "lev_short_cross", "lev_long_isolated", "lev_short_isolated",
)
GLOBAL_METRICS = ("time_s", "insurance_fund", "vault_equity", "conservation_gap")


def column(name: str, symbol: str, first: bool) -> str:
    return name if first else f"{name}[{symbol}]"


def column_names(symbols: list[str]) -> list[str]:
    out = list(GLOBAL_METRICS)
    for i, s in enumerate(symbols):
        out += [column(n, s, i == 0) for n in MARKET_METRICS]
    return out


def collect(model: MarketModel) -> dict[str, float | int]:
    ex = model.exchange
    t = model.sched.now
    out: dict[str, float | int] = {"time_s": t / 1e6}  # counts stay ints (compiled code would coerce them)
    log = model.exchange.liquidations
    start = model._liq_seen
    end = len(log)
    kinds, markets, sizes, prices, debts = (log.column(c) for c in ("kind", "market", "size", "price", "bad_debt"))
    code_of = {KIND_CODE[k]: k for k in LIQ_KINDS}
    for i, sym in enumerate(model.symbols):
        m = ex.markets[i]
        spec = m.spec
        tick = float(spec.tick_size)
        lot = float(spec.lot_size)
        first = i == 0
        feed = model.feeds[sym]
        v = model.views[sym]
        mid = v.mid()
        spread = v.spread_bps()
        row: dict[str, float | int] = {
            "index": model.paths[sym].value_at(min(t, model.paths[sym].end_us)),
            "oracle": (feed.oracle.price or 0) * tick,
            "mark": (ex.risk.mark(i) or 0) * tick,
            "mid": mid * tick if mid is not None else NAN,  # a one-sided book has no mid: missing, not 0
            "last": (m.last_price or 0) * tick,
            "spread_bps": spread if spread is not None else NAN,
        }
        for b, (_, bn, _, an) in zip(DEPTH_BANDS_BPS, v.depth_bands(DEPTH_BANDS_BPS)):
            row[f"depth_bid_{b / 100:g}pct"] = bn / USDC
            row[f"depth_ask_{b / 100:g}pct"] = an / USDC
        seen = model._taker_seen[i]
        buy, sell = m.taker_volume[0] - seen[0], m.taker_volume[1] - seen[1]
        row["volume_taker_buy"] = buy * lot
        row["volume_taker_sell"] = sell * lot
        model._taker_seen[i] = list(m.taker_volume)
        counts = {k: 0 for k in LIQ_KINDS}
        notional = {k: 0.0 for k in LIQ_KINDS}
        bad = 0
        for j in range(start, end):
            if markets[j] != i and not (markets[j] == -1 and first):
                continue
            k = code_of.get(kinds[j])
            if k is not None:
                counts[k] += 1
                notional[k] += abs(sizes[j]) * prices[j] * spec.multiplier / USDC
            bad += debts[j]
        for k in LIQ_KINDS:
            row[f"liq_{k}_count"] = counts[k]
            row[f"liq_{k}_notional"] = notional[k]
        row["bad_debt"] = bad / USDC
        row["funding_predicted"] = float(feed.predicted_rate())
        row["funding_last"] = float(feed.last_rate)
        row["open_interest"] = m.open_interest * lot
        quoting = 0
        quoted = 0
        for mm in model.agents_by_kind.get("market_maker", ()):
            acct = ex.accounts[mm.account]
            n = 0
            for oid, mi in acct.open_orders.items():
                if mi == i:
                    _, _, p, q = m.book.order(oid)
                    quoted += p * q
                    n += 1
            quoting += n > 0
        row["mm_quoting"] = quoting
        row["mm_quoted_notional"] = quoted * spec.multiplier / USDC
        lev = {"lev_long_cross": 0, "lev_short_cross": 0, "lev_long_isolated": 0, "lev_short_isolated": 0}
        leveraged = model.leveraged_accounts
        for aid, pos in m.holders.items():
            if aid in leveraged:
                key = ("lev_long_" if pos.size > 0 else "lev_short_") + ("cross" if pos.mode == CROSS else "isolated")
                lev[key] += abs(pos.size)
        for k2, q in lev.items():
            row[k2] = q * lot
        for k2, val in row.items():
            out[column(k2, sym, first)] = val
    model._liq_seen = end
    out["insurance_fund"] = ex.ledgers["insurance"] / USDC
    vault = ex.risk.vault
    out["vault_equity"] = ex.risk.equity(ex.accounts[vault], (vault, CROSS_UNIT)) / USDC if vault is not None else 0.0
    out["conservation_gap"] = model.conservation_gap_last
    return out
