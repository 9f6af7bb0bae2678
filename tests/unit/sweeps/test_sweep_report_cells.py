"""Sweep heatmaps write each cell's mean and seed spread: checked against the rows computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from abm.sweeps.report import cell_text, short, sweep_figure, sweep_report


def rows(tmp_path, seeds=3):
    rng = np.random.default_rng(4)
    recs = []
    for a in (1, 2, 3):
        for b in (10, 20):
            for s in range(seeds):
                recs.append({"run_id": f"r{a}{b}{s}", "error": "", "seed": s, "param.a": a, "param.b": b,
                             "liquidation_events": float(rng.integers(0, 50)), "bad_debt_total": float(rng.normal(5e4, 2e4))})
    recs[0]["bad_debt_total"] = math.nan  # undefined in one run: left out of its cell
    (tmp_path / "rows").mkdir()
    pd.DataFrame(recs).to_parquet(tmp_path / "rows" / "part.parquet")
    return pd.DataFrame(recs)


def texts(fig, title):
    ax = next(a for a in fig.axes if a.get_title() == title)
    return {(round(t.get_position()[0]), round(t.get_position()[1])): t.get_text() for t in ax.texts}


def test_each_heatmap_cell_says_its_mean_range_and_seeds(tmp_path):
    df = rows(tmp_path)
    fig = sweep_figure(tmp_path, ["liquidation_events", "bad_debt_total"])
    for metric in ("liquidation_events", "bad_debt_total"):
        got = texts(fig, metric)
        assert len(got) == 6
        for j, a in enumerate((1, 2, 3)):  # columns: the first parameter; rows: the second
            for i, b in enumerate((10, 20)):
                v = df[(df["param.a"] == a) & (df["param.b"] == b)][metric].dropna().tolist()
                want = f"{short(math.fsum(v) / len(v))}\n{short(min(v))}–{short(max(v))}\n(n={len(v)})"
                assert got[(j, i)] == want, (metric, a, b)
    assert texts(fig, "bad_debt_total")[(0, 0)].endswith("(n=2)")  # the NaN run is not counted
    assert sweep_report(tmp_path).is_file()


def test_cell_text_and_short_numbers():
    assert cell_text(12.5, 10, 15, 1) == "12.5"  # one seed: no spread to show
    assert cell_text(math.nan, math.nan, math.nan, 0) == "no data"
    assert cell_text(1234.0, 1000.0, 1500.0, 3) == "1.23k\n1k–1.5k\n(n=3)"
    assert [short(x) for x in (0.012345, 999.4, -25_300.0, 4.2e6, 7.77e9)] == ["0.0123", "999", "-25.3k", "4.2M", "7.77B"]
