"""A small, seeded exchange walk-through for newcomers (``abm demo``), until the scenario runner exists.

Three market makers quote a BTC perpetual, background traders take some liquidity, then a whale
market-sells into the book. It prints what a newcomer should look at: the book before and after,
how much depth within 1% of mid disappeared, what the whale paid in slippage, everyone's PnL and
fees, and the conservation check that proves no money was created or lost.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Callable

import numpy as np

from abm.exchange import Exchange
from abm.market import BUY, SELL, MarketSpec, Tape
from abm.units import USDC


def _fmt_usd(units: int) -> str:
    return f"{units / USDC:,.2f} USDC"


def run_demo(seed: int = 7, out: Callable[[str], None] = print) -> Exchange:
    rng = np.random.default_rng(seed)
    spec = MarketSpec("BTC-PERP", tick_size=Decimal("1"), lot_size=Decimal("0.001"), quote_decimals=6,
                      maker_fee_bps=Decimal("1.5"), taker_fee_bps=Decimal("4.5"))
    ex = Exchange()
    ex.list_market(spec)
    tape = Tape()
    ex.subscribe_fills(tape)
    data = ex.data("BTC-PERP")
    mid = 60_000  # ticks of 1 USDC

    makers = [ex.open_account(5_000_000 * USDC) for _ in range(3)]
    for i, mm in enumerate(makers):
        for lvl in range(1, 41):
            size = int(rng.integers(200, 600))  # 0.2-0.6 BTC per level
            ex.limit(mm, "BTC-PERP", BUY, size, mid - 3 * lvl - i)
            ex.limit(mm, "BTC-PERP", SELL, size, mid + 3 * lvl + i)
    traders = [ex.open_account(200_000 * USDC) for _ in range(20)]
    for t in traders:
        side = BUY if rng.random() < 0.5 else SELL
        ex.market_order(t, "BTC-PERP", side, int(rng.integers(50, 400)))

    def show_book(title: str) -> None:
        bids, asks = data.l2(5)
        out(f"\n{title}")
        out(f"  {'bid size (BTC)':>15} {'bid':>8} | {'ask':<8} {'ask size (BTC)':<15}")
        for (bp, bs), (ap, asz) in zip(bids, asks):
            out(f"  {bs / 1000:>15.3f} {bp:>8,} | {ap:<8,} {asz / 1000:<15.3f}")
        b, bn, a, an = data.depth_within(100)
        out(f"  depth within 1% of mid: bids {bn / USDC:,.0f} USDC, asks {an / USDC:,.0f} USDC;"
            f" spread {data.spread()} USDC")
        return None

    out("abm demo: one perpetual market, 3 market makers, 20 traders, then a whale sells 30 BTC at market.")
    show_book("Order book before the whale (top 5 levels):")
    depth_before = data.depth_within(100)[1]

    whale = ex.open_account(20_000_000 * USDC)
    best_before = data.best_bid()
    assert best_before is not None  # the makers quote both sides
    n_before = len(tape)
    r = ex.market_order(whale, "BTC-PERP", SELL, 30_000)
    show_book("Order book after the whale:")
    depth_after = data.depth_within(100)[1]

    avg = float(r.avg_price) if r.avg_price is not None else float("nan")
    out(f"\nThe whale's market sell: {r.filled / 1000:,.3f} BTC filled in {len(tape) - n_before} fills, "
        f"average price {avg:,.2f} vs best bid {best_before:,} before: slippage {(best_before - avg) / best_before * 1e4:,.1f} bp.")
    out(f"Bid depth within 1% of mid fell from {depth_before / USDC:,.0f} to "
        f"{depth_after / USDC:,.0f} USDC ({(1 - depth_after / depth_before) * 100:.0f}% gone).")

    last: int = data.best_bid() or best_before
    out("\nAccounts marked at the new best bid:")
    for name, acct in [("market maker 1", makers[0]), ("market maker 2", makers[1]), ("market maker 3", makers[2]),
                       ("whale", whale)]:
        p = ex.position(acct, "BTC-PERP")
        upnl = p.unrealized(last, spec.multiplier)
        out(f"  {name:<15} position {p.size / 1000:>+9.3f} BTC  realised {_fmt_usd(p.realized):>18}  "
            f"unrealised {_fmt_usd(upnl):>18}  fees {_fmt_usd(p.fees):>14}")
    out(f"\nFees collected by the venue: {_fmt_usd(ex.ledgers['fees'])}; trades on the tape: {len(tape)}; "
        f"open interest {ex.market('BTC-PERP').open_interest / 1000:,.3f} BTC.")
    ex.check_conservation()
    out("Conservation check passed: balances + unrealised PnL + fee ledger = deposits, to the last 1e-6 USDC.")
    return ex
