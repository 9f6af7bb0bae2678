"""The same sweep with 1 and 2 local workers: speed-up and per-run overhead.

    python bench/sweep_scaling.py [--runs 32] [--duration-s 900]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from abm.sweeps import sweep


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=32)
    ap.add_argument("--duration-s", type=float, default=900.0)
    args = ap.parse_args()
    grid = [f"run.duration_s={args.duration_s}", "agents.noise.count=" + ",".join(str(50 + i) for i in range(args.runs))]
    tmp = Path(tempfile.mkdtemp())
    try:
        times = {}
        rows = {}
        for w in (1, 2):
            t0 = time.perf_counter()
            df = sweep("baseline", grid, seeds=1, workers=w, out=tmp / f"w{w}")
            times[w] = time.perf_counter() - t0
            rows[w] = df
        inside = rows[1]["wall_s"].sum()
        print(f"runs: {args.runs} x {args.duration_s:.0f} s simulated (baseline)")
        print(f"1 worker: {times[1]:.1f} s   2 workers: {times[2]:.1f} s   speed-up: {times[1] / times[2]:.2f}x")
        print(f"per-run overhead (1 worker, wall minus time inside runs): {(times[1] - inside) / args.runs * 1000:.0f} ms")
        same = rows[1].drop(columns=["wall_s"]).equals(rows[2].drop(columns=["wall_s"]))
        print("results identical across worker counts" if same else "RESULTS DIFFER across worker counts")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
