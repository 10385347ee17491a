"""Benchmark: customer features for the full UCI Online Retail data (target <= 2 s).

Usage: .venv/bin/python benchmarks/bench_features.py [--repeat 5]
Prepares the data once through the contract (not timed), writes the validated Parquet, then
times analysis.features.customer_features over it with DuckDB (cold first call, then warm).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from analysis import features, io, workspace
from analysis.config import load_config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cfg = load_config(ROOT / "config" / "online_retail.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        folder = io.RunFolder(tmp)
        t0 = time.perf_counter()
        workspace.prepare_run(cfg, folder)
        print(f"data prep (read 541,909 lines, validate, write Parquet): {time.perf_counter() - t0:.2f} s")
        tx, rt = folder.table_path("transactions"), folder.table_path("returns")
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            feats = features.customer_features(tx, cfg.as_of, returns=rt)
            times.append(time.perf_counter() - t0)
        print(f"customer_features: {len(feats):,} customers x {feats.shape[1]} features")
        print(f"  first call {times[0]:.3f} s; warm median {statistics.median(times[1:] or times):.3f} s; max {max(times):.3f} s (target <= 2 s)")


if __name__ == "__main__":
    main()
