"""The explorer of a saved run folder: a time scrubber over zoomable linked panels, the book's depth at the
scrubbed time, the cascade tree whose clicked node filters the liquidation table, and one account's fills and
equity picked from ``accounts.parquet``.

It reads the folder as ``abm report`` does (``abm.report.run_data._Run``: the same analysis, so the cascade
tree is the one the summary counts). One market is drawn at a time (a picker switches the panels to another); the
tables cover every market.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from abm.dashboard.app import HEIGHT, KIND_HEX, LINE, OI_LABELS, _figure
from abm.dashboard.live import BANDS, DEPTH_ROWS, LIQ_KINDS
from abm.dashboard.viz import panel, widget
from abm.report.run_data import _Run
from abm.results.run_result import RunResult

LIQ_COLUMNS = ("time", "symbol", "account", "trigger", "kind", "mode_name", "size_base", "price_usdc", "notional_usdc",
               "bad_debt_usdc")
FILL_COLUMNS = ("time", "symbol", "role", "side", "size_base", "price_usdc", "notional_usdc", "liquidation")
ROOT_HEX = "#555555"
TRANSFER_KINDS = ("backstop", "adl", "adl_counterparty")  # position moves of the log that are not tape fills


def load_explored(run_dir: str | Path) -> RunResult:
    """The run folder, with a problem named under ``RUN_DIR`` (as ``abm report`` does)."""
    from abm.report.compare import load_named

    return load_named(run_dir, "RUN_DIR")


def account_label(row: Any) -> str:
    who = f"{row['group']} #{row['index']}" if row["index"] >= 0 else str(row["group"] or "house")
    liq = ", liquidated" if row["liquidated"] else ""
    return f"{who} (account {row['account']}, {row['margin_mode']}{liq})"


def account_fills(result: RunResult, account: int) -> pd.DataFrame:
    """The account's fills on the tape, each with its role and its own side (a maker's side is the taker's opposite)."""
    tr = result.trades
    if tr is None or not len(tr):
        return pd.DataFrame(columns=list(FILL_COLUMNS) + ["time_us", "market", "signed"])
    mine = tr[(tr["maker_account"] == account) | (tr["taker_account"] == account)].copy()
    taker = mine["taker_account"].to_numpy() == account
    buy = (mine["side"].astype(str).to_numpy() == "buy") == taker
    mine["role"] = np.where(taker, "taker", "maker")
    mine["side"] = np.where(buy, "buy", "sell")
    mine["signed"] = np.where(buy, 1.0, -1.0) * mine["size_base"].to_numpy(dtype=float)
    return mine


def equity_path(result: RunResult, account: int, market: int, t_s: np.ndarray, mark: np.ndarray,
                deposit: float) -> np.ndarray:
    """The account's equity at each step in one market: deposit + cash from its trades + position at the mark.

    From the tape's fills and the log's position transfers (backstop takeovers, ADL) at their prices. Fees, funding
    and the margin a takeover keeps are in no saved table, so the path leaves them out: it can end away from the
    final equity of ``accounts.parquet``, which the note beside it shows."""
    f = account_fills(result, account)
    f = f[f["market"] == market]
    times = [f["time_us"].to_numpy(dtype=float) / 1e6]
    sizes = [f["signed"].to_numpy(dtype=float)]
    prices = [f["price_usdc"].to_numpy(dtype=float)]
    lq = result.liquidations
    if lq is not None and len(lq):
        moves = lq[(lq["account"] == account) & (lq["market"] == market) & lq["kind"].astype(str).isin(TRANSFER_KINDS)]
        times.append(moves["time_us"].to_numpy(dtype=float) / 1e6)
        sizes.append(moves["size_base"].to_numpy(dtype=float))
        prices.append(moves["price_usdc"].to_numpy(dtype=float))
    ts, qs, ps = (np.concatenate(x) for x in (times, sizes, prices))
    order = np.argsort(ts, kind="stable")
    ts, qs, ps = ts[order], qs[order], ps[order]
    pos = np.concatenate([[0.0], np.cumsum(qs)])
    cash = np.concatenate([[0.0], np.cumsum(-qs * ps)])
    k = np.searchsorted(ts, t_s, side="right")
    out: np.ndarray = deposit + cash[k] + pos[k] * np.nan_to_num(mark)
    return out


class Explorer:
    """The explorer's panels and widgets for one run; ``layout`` is what a server session or a notebook shows."""

    def __init__(self, run: str | Path | RunResult) -> None:
        from bokeh.models import ColumnDataSource, Range1d, Span, TapTool

        pn = panel()
        result = run if isinstance(run, RunResult) else load_explored(run)
        self.result = result
        self.run = r = _Run(result, None)
        self.markets = r.drawn  # every market of the run (``_Run(result, None)``)
        d = r.drawn[0]
        self.t = r.t
        n = len(r.steps)
        self.steps_src = ColumnDataSource(self._market_columns(d), name="steps")
        src = self.steps_src
        p = _figure(f"{d.symbol}: index, oracle, mark, book mid (USDC)", x_range=Range1d(0, r.t_end))
        x = p.x_range
        for c in ("index", "oracle", "mark", "mid"):
            p.line("t", c, source=src, color=LINE[c], legend_label=c)
        dep = _figure("Depth near the mid (USDC; bids above zero, asks below)", x_range=x)
        for i, b in enumerate(BANDS):
            dep.line("t", f"bid {b}", source=src, color="#2ca02c", alpha=1 - 0.3 * i, legend_label=f"bid {b}")
            dep.line("t", f"ask {b}", source=src, color="#d62728", alpha=1 - 0.3 * i, legend_label=f"ask {b}")
        lq = _figure("Liquidated notional per step by kind (USDC)", x_range=x)
        lq.vbar_stack(list(LIQ_KINDS), x="t", width=r.step_s / 60, source=src, color=[KIND_HEX[k] for k in LIQ_KINDS],
                      legend_label=list(LIQ_KINDS))
        fu = _figure("Funding rate (bps per payment, predicted; positive: longs pay)", x_range=x)
        fu.line("t", "funding", source=src, color=LINE["funding_predicted"], legend_label="funding (bps)")
        funds = _figure("Insurance fund and vault equity (USDC)", x_range=x)
        for c in ("insurance_fund", "vault_equity"):
            funds.line("t", c, source=src, color=LINE[c], legend_label=OI_LABELS.get(c, c.replace("_", " ")))
        oi = _figure("Open interest (base units) and the leveraged crowd's positions, long + short, by margin mode", x_range=x)
        for c in ("open_interest", "cross", "isolated"):
            oi.line("t", c, source=src, color=LINE[c], legend_label=OI_LABELS.get(c, c.replace("_", " ")))
        self.timed = [p, dep, lq, fu, funds, oi]
        self.cursors = []
        for fig in self.timed:
            span = Span(location=float(r.t[-1]), dimension="height", line_color="#444444", line_dash="dashed")
            fig.add_layout(span)
            self.cursors.append(span)
            fig.legend.location = "top_left"
            fig.legend.click_policy = "hide"

        # the book at the scrubbed time
        self.depth_now = ColumnDataSource({"row": list(DEPTH_ROWS), "usdc": [0.0] * len(DEPTH_ROWS),
                                           "colour": ["#2ca02c"] * len(BANDS) + ["#d62728"] * len(BANDS)}, name="depth_now")
        dn = _figure("The book's depth at the scrubbed time (USDC within each band)", x_range=list(DEPTH_ROWS),
                     x_axis_label="band around the mid")
        dn.vbar(x="row", top="usdc", width=0.8, source=self.depth_now, color="colour")

        # the cascade tree: click a node, the table shows its liquidations and all they set off
        g = r.analysis.graph
        self.graph = g
        nodes = self._tree_nodes(g)
        self.tree_src = ColumnDataSource(nodes, name="cascade_nodes")
        pos = dict(zip(nodes["node"], zip(nodes["t"], nodes["y"])))
        edges: dict[str, list[float]] = {"x0": [], "y0": [], "x1": [], "y1": []}
        for u, v in g.edges:
            if u in pos and v in pos:
                for k, val in zip(("x0", "y0", "x1", "y1"), (*pos[u], *pos[v])):
                    edges[k].append(val)
        tree = _figure("Cascade tree (click a node: the table below shows it and what it set off)",
                       y_axis_type="log", y_axis_label="notional (USDC, log; roots on top)", tools="tap,pan,wheel_zoom,reset")
        tree.segment("x0", "y0", "x1", "y1", source=ColumnDataSource(edges), color="#999999", alpha=0.6)
        tree.scatter("t", "y", size="size", color="colour", source=self.tree_src, line_color="white")
        tree.select_one(TapTool).mode = "replace"
        self.tree = tree
        self.liq_title = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.liq_table = pn.widgets.Tabulator(self._liq_rows(None), pagination="local", page_size=12, disabled=True,
                                              sizing_mode="stretch_width", height=380, show_index=False)
        self.tree_src.selected.on_change("indices", self._tapped)

        # one account
        acc = result.accounts
        self.accounts = acc
        options: dict[str, int] = {}
        if acc is not None and len(acc):
            order = acc.sort_values(["liquidated", "liquidated_notional_usdc"], ascending=False)
            options = {account_label(row): int(row["account"]) for _, row in order.iterrows()}
        self.agent = widget(pn.widgets.Select, "account (accounts.parquet)", options=options,
                                       value=next(iter(options.values()), None))
        self.fills_table = pn.widgets.Tabulator(pd.DataFrame(columns=list(FILL_COLUMNS)), pagination="local", page_size=10,
                                                disabled=True, sizing_mode="stretch_width", height=330, show_index=False)
        self.equity_src = ColumnDataSource({"t": r.t, "equity": np.full(n, np.nan)}, name="equity")
        eq = _figure("The account's equity at the mark (USDC; from its trades: no fees, funding or takeover margin)", x_range=x)
        eq.line("t", "equity", source=self.equity_src, color="#1f77b4")
        span = Span(location=float(r.t[-1]), dimension="height", line_color="#444444", line_dash="dashed")
        eq.add_layout(span)
        self.cursors.append(span)
        self.timed.append(eq)
        self.agent_note = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.agent.param.watch(lambda e: self._show_agent(e.new), "value")

        self.market = widget(pn.widgets.Select, "market", options={m.symbol: j for j, m in enumerate(self.markets)},
                             value=0, disabled=len(self.markets) == 1)
        self.market.param.watch(lambda e: self.show_market(e.new), "value")
        self.price_panel = p

        self.scrubber = widget(pn.widgets.IntSlider, "time scrubber (step)", start=0, end=max(n - 1, 1), value=n - 1,
                                             sizing_mode="stretch_width")
        self.time_label = pn.pane.Markdown("", sizing_mode="stretch_width")
        self.scrubber.param.watch(lambda e: self.scrub(e.new), "value")
        self.scrub(n - 1)
        self._show_agent(self.agent.value)
        bk = pn.pane.Bokeh
        head = f"## abm explore: {result.scenario}" + (f" ({result.path.name})" if result.path is not None else "")
        self.layout = pn.Column(
            head, pn.Row(self.market, self.scrubber, self.time_label, sizing_mode="stretch_width"),
            pn.Row(bk(p), bk(dn), sizing_mode="stretch_width"),
            pn.Row(bk(dep), bk(lq), sizing_mode="stretch_width"),
            pn.Row(bk(fu), bk(funds), bk(oi), sizing_mode="stretch_width"),
            pn.Row(pn.Column(bk(tree), sizing_mode="stretch_width"),
                   pn.Column(self.liq_title, self.liq_table, sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            pn.Row(pn.Column(self.agent, self.agent_note, bk(eq), sizing_mode="stretch_width"),
                   pn.Column(self.fills_table, sizing_mode="stretch_width"), sizing_mode="stretch_width"),
            sizing_mode="stretch_width")

    def _market_columns(self, d: Any) -> dict[str, Any]:
        """The timed panels' columns of one market (the fund columns are the venue's, the same for every market)."""
        steps = self.run.steps
        n = len(steps)
        col = d.col
        return {"t": self.run.t, **{c: col(c) for c in ("index", "oracle", "mark", "mid")},
                **{f"bid {b}": col(f"depth_bid_{b}") for b in BANDS}, **{f"ask {b}": -col(f"depth_ask_{b}") for b in BANDS},
                **{k: col(f"liq_{k}_notional") for k in LIQ_KINDS},
                "funding": col("funding_predicted") * 1e4,
                **{c: steps[c].to_numpy(dtype=float) if c in steps else np.full(n, np.nan)
                   for c in ("insurance_fund", "vault_equity")},
                "open_interest": col("open_interest"),
                "cross": col("lev_long_cross") + col("lev_short_cross"),
                "isolated": col("lev_long_isolated") + col("lev_short_isolated")}

    def show_market(self, j: int) -> None:
        """Draw market ``j`` (a position in ``markets``): every timed panel and the depth bars at the scrubbed time."""
        d = self.markets[j]
        self.steps_src.data = self._market_columns(d)
        self.price_panel.title.text = f"{d.symbol}: index, oracle, mark, book mid (USDC)"
        self.scrub(self.scrubber.value)

    # ------------------------------------------------------------------ the cascade tree

    def _tree_nodes(self, g: nx.DiGraph) -> dict[str, list[Any]]:
        liqs = {n: a for n, a in g.nodes(data=True) if a.get("type") == "liquidation"}
        top = max((float(a["notional"]) for a in liqs.values()), default=1.0) or 1.0
        out: dict[str, list[Any]] = {"node": [], "t": [], "y": [], "size": [], "colour": [], "label": []}
        for n, a in g.nodes(data=True):
            if a.get("type") == "liquidation":
                t, y = float(a["time_s"]) / 60, max(float(a["notional"]), 1e-6)
                size, colour = 6 + 16 * np.sqrt(float(a["notional"]) / top), KIND_HEX.get(str(a.get("kind")), "#1f77b4")
            else:  # a root: the market, a shock, a whale order; drawn above the events it set off
                kids = [liqs[c]["time_s"] for c in nx.descendants(g, n) if c in liqs]
                if not kids:
                    continue
                start = a.get("start_s")
                t = float(start) / 60 if start is not None else float(min(kids)) / 60
                y, size, colour = top * 3, 14.0, ROOT_HEX
            out["node"].append(str(n))
            out["t"].append(t)
            out["y"].append(y)
            out["size"].append(float(size))
            out["colour"].append(colour)
            out["label"].append(str(n))
        return out

    def subtree(self, node: str) -> set[tuple[int, int]]:
        """(account, trigger) of the liquidation node ``node`` and of every liquidation below it."""
        g = self.graph
        out = set()
        for n in {node} | nx.descendants(g, node):
            a = g.nodes[n]
            if a.get("type") == "liquidation":
                out.add((int(a["account"]), int(a["trigger"])))
        return out

    def _liq_rows(self, node: str | None) -> pd.DataFrame:
        lq = self.result.liquidations
        if lq is None or not len(lq):
            self.liq_title.object = "**Liquidations**: none in this run"
            return pd.DataFrame(columns=list(LIQ_COLUMNS))
        cols = [c for c in LIQ_COLUMNS if c in lq]
        if node is None:
            rows = lq
            self.liq_title.object = f"**Liquidations**: all {len(rows)} rows (click a node of the cascade tree to filter)"
        else:
            keys = self.subtree(node)
            hit = [(int(a), int(t)) in keys for a, t in zip(lq["account"], lq["trigger"])]
            rows = lq[np.asarray(hit, dtype=bool)]
            self.liq_title.object = f"**Liquidations under `{node}`**: {len(rows)} rows of {len(lq)}"
        out = rows[cols].copy()
        if "time" in out:
            out["time"] = out["time"].astype(str)
        return out.reset_index(drop=True)

    def _tapped(self, _attr: str, _old: Any, new: list[int]) -> None:
        node = self.tree_src.data["node"][new[0]] if new else None
        self.select_node(node)

    def select_node(self, node: str | None) -> None:
        """Filter the liquidation table to ``node``'s subtree (None: every row)."""
        self.liq_table.value = self._liq_rows(node)

    # ------------------------------------------------------------------ the scrubber and the account

    def scrub(self, i: int) -> None:
        """Move every panel's cursor and the depth bars to step ``i``."""
        r = self.run
        i = int(min(max(i, 0), len(r.t) - 1))
        t = float(r.t[i])
        for span in self.cursors:
            span.location = t
        data = self.steps_src.data
        self.depth_now.data = {**self.depth_now.data,
                               "usdc": [float(data[f"bid {b}"][i]) for b in reversed(BANDS)] +
                                       [float(-data[f"ask {b}"][i]) for b in BANDS]}
        mark = data["mark"][i]
        self.time_label.object = f"**t = {r.time_s[i]:,.0f} s** ({t:.2f} min) · mark {mark:,.2f}"

    def _show_agent(self, account: int | None) -> None:
        if account is None:
            self.agent_note.object = "no accounts table in this run folder"
            return
        acc = self.accounts
        row = acc[acc["account"] == account].iloc[0]
        symbol = str(row["symbol"])
        market = next((i for i, m in enumerate(self.result.markets) if m.get("symbol") == symbol), 0)
        fills = account_fills(self.result, account)
        out = fills[[c for c in FILL_COLUMNS if c in fills]].copy()
        if "time" in out:
            out["time"] = out["time"].astype(str)
        self.fills_table.value = out.reset_index(drop=True)
        steps = self.run.steps
        key = "mark" if market == 0 else f"mark[{symbol}]"
        mark = steps[key].to_numpy(dtype=float) if key in steps else np.full(len(steps), np.nan)
        eq = equity_path(self.result, account, market, self.run.time_s, mark, float(row["deposit_usdc"]))
        self.equity_src.data = {"t": self.run.t, "equity": eq}
        self.agent_note.object = (f"{len(fills)} fills · deposit {row['deposit_usdc']:,.2f} · final equity "
                                  f"{row['equity_usdc']:,.2f} (with fees and funding) · PnL {row['pnl_usdc']:,.2f}")


__all__ = ["Explorer", "load_explored", "account_fills", "equity_path", "HEIGHT"]
