"""The interactive reports: report.html beside report.png (self-contained, every panel's data, exactly), the
run folder without plotly (the PNG, a one-line note), ``abm report --html``, and ``abm compare`` (its
metrics' differences against the summaries read independently, markets it cannot compare, bad input)."""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import abm
from abm.errors import InvalidInput
from abm.report import interactive
from abm.report.compare import compare_runs, summary_metrics
from abm.report.panels import liquidation_bars
from abm.results import load_run
from tests.support import cli

pytest.importorskip("plotly", reason="the extra viz (plotly) is not installed")

SHORT = {"run.duration_s": 30}
WHALE = {"run.duration_s": 330}  # the shock starts at 300 s; liquidations from 316 s


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    abm.run("baseline", SHORT, seed=1, out=root / "b1")
    abm.run("baseline", SHORT, seed=5, out=root / "b2")
    abm.run("whale_dump", WHALE, seed=1, out=root / "whale")
    return root


def plotly_traces(text: str) -> list[dict]:
    """The traces of every plotly figure in a page, typed arrays decoded (as plotly.js reads them)."""
    out = []
    for m in re.finditer(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*", text):
        traces, _ = json.JSONDecoder().raw_decode(text, m.end())
        out += traces
    for t in out:
        for k in ("x", "y", "customdata"):
            v = t.get(k)
            if isinstance(v, dict) and "bdata" in v:
                t[k] = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
            elif isinstance(v, list):
                t[k] = np.array([math.nan if a is None else a for a in v], dtype=float)
    return out


def by_name(traces: list[dict], start: str) -> dict:
    found = [t for t in traces if str(t.get("name", "")).startswith(start)]
    assert len(found) == 1, (start, [t.get("name") for t in traces])
    return found[0]


def test_a_saved_run_has_a_self_contained_html_report(runs):
    text = (runs / "whale" / "report.html").read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    tags = re.findall(r"<(?:script|link|img|iframe)\b[^>]*>", text)
    assert tags and not [t for t in tags if re.search(r"\b(?:src|href)\s*=", t)], tags[:5]
    assert "Plotly.newPlot" in text and len(text) > 1_000_000  # plotly.js itself is inside


def test_the_html_holds_every_panels_data_exactly(runs):
    r = load_run(runs / "whale")
    text = (runs / "whale" / "report.html").read_text(encoding="utf-8")
    traces = plotly_traces(text)
    t = r.steps["time_s"].to_numpy(float) / 60
    fund = by_name(traces, "insurance fund")
    np.testing.assert_array_equal(fund["x"], t)
    np.testing.assert_array_equal(fund["y"], r.steps["insurance_fund"].to_numpy(float))
    np.testing.assert_array_equal(by_name(traces, "vault equity")["y"], r.steps["vault_equity"].to_numpy(float))
    np.testing.assert_array_equal(by_name(traces, "index")["y"], r.steps["index"].to_numpy(float))
    np.testing.assert_array_equal(by_name(traces, "bids within 2%")["y"], r.steps["depth_bid_2pct"].to_numpy(float))
    np.testing.assert_array_equal(by_name(traces, "asks within 1%")["y"], -r.steps["depth_ask_1pct"].to_numpy(float))
    np.testing.assert_array_equal(by_name(traces, "open interest")["y"], r.steps["open_interest"].to_numpy(float))
    bars = liquidation_bars(r, 0)
    assert bars["events"].sum() == r.summary["liquidation_events"] > 0
    np.testing.assert_array_equal(by_name(traces, "backstop (taken over by the vault): ")["y"], bars["notional"]["backstop"])
    np.testing.assert_array_equal(by_name(traces, "backstop (taken over by the vault): ")["customdata"], bars["events"])
    events = sum(len(t["x"]) for t in traces if t.get("mode") == "markers" and "text" in t)
    assert events == r.summary["liquidation_events"]  # the cascade: one marker per event
    # the summary table writes the run summary's numbers in full
    end = r.summary["insurance_fund_end"]
    assert f"data-key='insurance_fund_end'>{end!r}<" in text
    assert f"data-key='liquidated_notional.total'>{r.summary['liquidated_notional']['total']!r}<" in text


def test_html_report_is_the_default_and_abm_report_html_redraws_it(runs, tmp_path):
    folder = tmp_path / "b1"
    shutil.copytree(runs / "b1", folder)
    (folder / "report.html").unlink()
    r = cli("report", str(folder), "--html")
    assert r.returncode == 0, r.stderr
    assert (folder / "report.html").is_file() and (folder / "report.png").is_file()
    assert "report.html" in r.stdout
    again = (folder / "report.html").read_text(encoding="utf-8")
    first = (runs / "b1" / "report.html").read_text(encoding="utf-8")
    # the same charts, redrawn (the header names the venue by the frozen venue.toml once read back, as the PNG's does)
    assert again[again.index("<table"):] == first[first.index("<table"):]


def _no_plotly(monkeypatch) -> None:
    for name in [m for m in sys.modules if m == "plotly" or m.startswith("plotly.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "plotly", None)  # `import plotly...` raises ImportError
    monkeypatch.setattr(interactive, "_noted", False)


def test_without_plotly_the_run_is_saved_with_its_png_and_a_one_line_note(tmp_path, monkeypatch, capsys):
    _no_plotly(monkeypatch)
    assert not interactive.html_available()
    abm.run("baseline", {"run.duration_s": 10}, seed=1, out=tmp_path / "a")
    abm.run("baseline", {"run.duration_s": 10}, seed=2, out=tmp_path / "b")
    for f in ("a", "b"):
        assert (tmp_path / f / "report.png").is_file() and not (tmp_path / f / "report.html").exists()
        load_run(tmp_path / f)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["abm: note: report.html skipped (plotly is not installed: pip install -e '.[viz]')"]
    with pytest.raises(interactive.VizMissing, match=r"pip install -e '\.\[viz\]'"):
        interactive.render_html(load_run(tmp_path / "a"), tmp_path / "x.html")
    c = compare_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "cmp")
    assert sorted(c.files) == ["compare.png", "metrics.csv", "metrics.parquet"]


def test_a_failing_html_page_costs_the_run_only_its_page(tmp_path, monkeypatch):
    def broken(result, path):
        path.write_text("half a page")
        raise RuntimeError("plotly broke")

    monkeypatch.setattr(interactive, "render_html", broken)
    with pytest.warns(UserWarning, match="report.html could not be written.*plotly broke"):
        abm.run("baseline", {"run.duration_s": 10}, seed=1, out=tmp_path / "r")
    assert (tmp_path / "r" / "report.png").is_file() and not (tmp_path / "r" / "report.html").exists()


def test_abm_report_html_without_plotly_is_one_line(runs):
    code = "import sys; sys.modules['plotly'] = None; from abm.cli import main; main()"
    r = subprocess.run([sys.executable, "-c", code, "report", str(runs / "b1"), "--html"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["abm: error: the interactive report needs plotly, which is not installed: "
                                             "pip install -e '.[viz]'"]


def _summary(folder) -> dict:
    return json.loads((folder / "summary.json").read_text())


def test_compare_tabulates_the_summaries_differences(runs, tmp_path):
    r = cli("compare", str(runs / "b1"), str(runs / "b2"), str(runs / "whale"), "--out", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    table = pd.read_parquet(tmp_path / "c" / "metrics.parquet")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "c" / "metrics.csv"), table, check_exact=False, rtol=1e-15)
    assert list(table.columns) == ["metric", "b1", "b2", "whale", "b2 − b1", "whale − b1"]
    a, b, w = (_summary(runs / n) for n in ("b1", "b2", "whale"))
    rows = table.set_index("metric")
    html = (tmp_path / "c" / "compare.html").read_text(encoding="utf-8")
    for key, get in {"max_spread_bps": lambda s: s["max_spread_bps"],
                     "max_abs_basis_bps": lambda s: s["max_abs_basis_bps"],
                     "liquidated_notional.total": lambda s: s["liquidated_notional"]["total"],
                     "liquidation_events": lambda s: s["liquidation_events"],
                     "vault_equity_end": lambda s: s["vault_equity_end"],
                     "cascade.notional": lambda s: s["cascade"]["notional"]}.items():
        assert rows.loc[key, "b2 − b1"] == get(b) - get(a), key
        assert rows.loc[key, "whale − b1"] == get(w) - get(a), key
        assert rows.loc[key, "whale"] == get(w), key
    assert w["liquidation_events"] > 0 and rows.loc["liquidation_events", "whale − b1"] == w["liquidation_events"]
    assert math.isnan(rows.loc["R", "b2 − b1"])  # undefined without liquidations: no difference
    numbers = [summary_metrics(s) for s in (a, b, w)]
    assert set(rows.index) == {k for m in numbers for k, v in m.items() if math.isfinite(v)}
    assert "depth_drop_market" not in rows.index  # text or null in every run: not a metric
    assert f"<td>{w['vault_equity_end']!r}</td>" in html  # the HTML table writes the numbers in full
    assert "whale − b1" in r.stdout and "liquidated_notional.total" in r.stdout
    assert not [t for t in re.findall(r"<(?:script|link)\b[^>]*>", html) if re.search(r"\b(?:src|href)\s*=", t)]
    traces = plotly_traces(html)
    np.testing.assert_array_equal(by_name(traces, "whale: insurance fund")["y"],
                                  load_run(runs / "whale").steps["insurance_fund"].to_numpy(float))
    assert {t["name"] for t in traces} >= {f"{n}: mark" for n in ("b1", "b2", "whale")}
    assert (tmp_path / "c" / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_says_which_markets_it_cannot_compare(runs, tmp_path):
    eth = tmp_path / "eth"
    shutil.copytree(runs / "b2", eth)
    meta = json.loads((eth / "meta.json").read_text())
    meta["markets"][0]["symbol"] = "ETH-PERP"
    (eth / "meta.json").write_text(json.dumps(meta))
    c = compare_runs([runs / "b1", eth], tmp_path / "c")
    assert c.shared == [] and c.not_shared == {"BTC-PERP": ["b1"], "ETH-PERP": ["eth"]}
    assert "not compared: BTC-PERP (only in b1)" in c.text() and "not compared: ETH-PERP (only in eth)" in c.text()
    traces = plotly_traces((tmp_path / "c" / "compare.html").read_text(encoding="utf-8"))
    assert {t["name"] for t in traces} == {"b1: insurance fund", "b1: vault equity", "eth: insurance fund",
                                            "eth: vault equity"}


def test_compare_bad_input_is_one_line_naming_the_argument(runs, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("x")
    cases = {(str(runs / "b1"), str(tmp_path / "nope")): "abm: error: RUN_B: must be a run folder; it does not exist",
             (str(tmp_path / "empty"), str(runs / "b1")): "abm: error: RUN_A: must be a complete run folder; "
                                                          "steps.parquet is missing"}
    for args, start in cases.items():
        r = cli("compare", *args, "--out", str(tmp_path / "out"))
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith(start), (args, r.stderr)
        assert "Traceback" not in r.stderr and not (tmp_path / "out").exists()
    b1, b2 = runs / "b1", runs / "b2"
    for dirs, labels, match in (([b1, b2, tmp_path / "file"], None, "RUN_C: must be a run folder; it is a file"),
                                ([b1], None, "RUN_B: must be given"),
                                ([b1, b2], ["x"], "--label: must be given once per run")):
        with pytest.raises(InvalidInput, match=re.escape(match)):
            compare_runs(dirs, tmp_path / "o", labels)


def test_every_market_has_its_panels(tmp_path):
    r = abm.run("multi_market_contagion", {"run.duration_s": 30, "markets[1].shocks[0].start_s": 10}, seed=1)
    page = interactive.render_html(r, tmp_path / "m.html")
    text = page.read_text(encoding="utf-8")
    traces = plotly_traces(text)
    symbols = [m["symbol"] for m in r.markets]
    assert len(symbols) == 2
    index = [t for t in traces if t.get("name") == "index (spot reference)"]
    for i, (t, sym) in enumerate(zip(index, symbols)):
        col = "index" if i == 0 else f"index[{sym}]"
        np.testing.assert_array_equal(t["y"], r.steps[col].to_numpy(float))
        assert f"Prices of {sym}" in text and f"Liquidations in {sym}" in text
    assert len(index) == 2
    with pytest.raises(InvalidInput, match="must be an .html file name"):
        interactive.render_html(r, tmp_path / "m.png")


def test_a_venue_gateway_gets_its_panel(tmp_path):
    r = abm.run("venue_overload", {"run.duration_s": 60, "markets[0].shocks[0].start_s": 30}, seed=1)
    text = interactive.render_html(r, tmp_path / "g.html").read_text(encoding="utf-8")
    assert "Venue gateway" in text
    np.testing.assert_array_equal(by_name(plotly_traces(text), "latency p99")["y"],
                                  r.steps["gateway_latency_p99_ms"].to_numpy(float))
