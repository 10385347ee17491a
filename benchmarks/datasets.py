"""Benchmark data sets S, M and L drawn with the project's generator, cached as Parquet.

``S`` is 10,000 customers, ``M`` 100,000 and ``L`` 1,000,000 (about 37 order lines per customer
with the generator's default two-year window). Customers are drawn in chunks of at most 100,000
(seed ``42 + chunk``) so that L never holds more than one chunk in memory; ids carry the chunk
number so they stay unique. Files land in ``benchmarks/data/<size>/`` (ignored by git) with a run
config ``config.yaml`` pointing at them, so ``analysis run`` and the contract read them as they
would a user's export.

Usage: ``.venv/bin/python benchmarks/datasets.py S M`` (generates what is missing).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data"
SIZES = {"S": 10_000, "M": 100_000, "L": 1_000_000}
CHUNK = 100_000
TABLES = ("customers", "transactions", "survey", "events", "truth")


def folder(size: str) -> Path:
    return DATA / size


def ensure(size: str, *, echo=print) -> Path:
    """The folder of data set ``size``, generated first when it is missing or incomplete."""
    out = folder(size)
    if (out / "config.yaml").exists():
        return out
    sys.path.insert(0, str(ROOT / "src"))
    from analysis.sample import generate_sample

    out.mkdir(parents=True, exist_ok=True)
    n = SIZES[size]
    writers: dict[str, pq.ParquetWriter] = {}
    start = time.perf_counter()
    try:
        for chunk, first in enumerate(range(0, n, CHUNK)):
            frames = generate_sample(min(CHUNK, n - first), random_state=42 + chunk)
            tag = f"{chunk:02d}"
            for name in TABLES:
                frame = frames[name]
                frame["customer_id"] = frame["customer_id"].str.replace(r"^C", f"C{tag}", regex=True)
                if name == "transactions":
                    frame["order_id"] = frame["order_id"].str.replace(r"^(R?)O", rf"\g<1>O{tag}", regex=True)
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if name not in writers:
                    writers[name] = pq.ParquetWriter(out / f"{name}.parquet.tmp", table.schema)
                writers[name].write_table(table.cast(writers[name].schema))
            echo(f"  {size}: customers {first + min(CHUNK, n - first):,}/{n:,} ({time.perf_counter() - start:.0f} s)")
    finally:
        for writer in writers.values():
            writer.close()
    for name in TABLES:
        (out / f"{name}.parquet.tmp").replace(out / f"{name}.parquet")
    sample_cfg = yaml.safe_load((ROOT / "config" / "sample.yaml").read_text(encoding="utf-8"))
    cfg = {
        "name": f"bench-{size}",
        "description": f"Benchmark data set {size}: {n:,} generated customers.",
        "as_of": "2025-01-01",
        "seed": 42,
        "sources": {t: {"path": f"{t}.parquet", "format": "parquet"} for t in TABLES if t != "truth"},
        "survey": sample_cfg["survey"],
    }
    (out / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", default=["S", "M"], choices=list(SIZES))
    for size in parser.parse_args().sizes:
        path = ensure(size)
        rows = pq.ParquetFile(path / "transactions.parquet").metadata.num_rows
        print(f"{size}: {path} ({rows:,} transaction lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
