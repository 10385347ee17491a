"""Time demographic k-prototypes on 1M synthetic customers (stratified sample fit + vectorised assign).

Run: ``.venv/bin/python benchmarks/bench_kprototypes.py`` (options: ``--customers``, ``--compare``,
``--fit-sample``, ``--seed``). Two parts:

1. **Scale**: 1,000,000 customers drawn with the sample generator's vectorised demographic model
   (the planted segments of :data:`analysis.sample.DEMOGRAPHIC_SEGMENTS`, 2% missing income, 1%
   missing education), prepared with :func:`analysis.segment.demographic.prepare_attributes`,
   then :class:`~analysis.segment.demographic.DemographicSegmenter` chooses k (2..8, on a 1,000
   customer selection sample), fits kmodes' KPrototypes on a stratified sample and assigns every
   customer. Target: at most 5 minutes end to end.
2. **Fidelity**: on 50,000 customers, the sample fit + assign against kmodes fitted on all of them
   (same k, same gamma): adjusted Rand index between the two labelings, and each against the truth.

Not a test (minutes, machine-dependent); run it by hand and record the figures in the README or PR.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # as in report kernels; small BLAS/OpenMP calls only lose to threads here

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from analysis.sample import _draw_demographics  # the generator's own vectorised demographic model
from analysis.segment import demographic


def synthetic_customers(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """n customers with contract columns and their planted segment (vectorised, a few seconds per million)."""
    rng = np.random.default_rng(seed)
    demo = _draw_demographics(n, rng)
    income = np.where(rng.random(n) < 0.02, np.nan, demo["income"])
    education = np.where(rng.random(n) < 0.01, None, demo["education"])
    frame = pd.DataFrame({
        "customer_id": np.char.add("C", np.arange(n).astype(str)),
        "age": demo["age"].astype(float), "gender": demo["gender"], "income": income, "education": education,
        "occupation": demo["occupation"], "marital_status": demo["marital_status"], "children": demo["children"].astype(float),
    })
    return frame, demo["segment"]


def timed(label: str, func, rows: list[tuple[str, float]]):
    start = time.perf_counter()
    out = func()
    rows.append((label, time.perf_counter() - start))
    print(f"  {label:<58} {rows[-1][1]:8.1f} s", flush=True)
    return out


def scale(n: int, fit_sample: int, seed: int) -> None:
    print(f"Scale: {n:,} customers, fit on a stratified sample of {fit_sample:,}")
    rows: list[tuple[str, float]] = []
    customers, truth = timed("generate customers (vectorised)", lambda: synthetic_customers(n, seed), rows)
    attrs = timed("prepare attributes (derived life stage, missing, rare)", lambda: demographic.prepare_attributes(customers), rows)
    model = demographic.DemographicSegmenter(fit_sample_size=fit_sample, random_state=seed)
    timed("choose k (2..8) + fit on sample + assign everyone", lambda: model.fit(attrs.frame), rows)
    labels = timed("predict again for all customers (assign only)", lambda: model.predict(attrs.frame), rows)
    segmentation = sum(sec for label, sec in rows[2:3])
    print(f"  chosen k = {model.k_choice_.k}: {model.k_choice_.reason}")
    print(f"  ARI vs planted segments: {adjusted_rand_score(truth, labels):.3f}")
    print(f"  segmentation (k choice + sample fit + assign): {segmentation:.1f} s; "
          f"end to end incl. generation and preparation: {sum(s for _, s in rows[:3]):.1f} s "
          f"({'within' if segmentation <= 300 else 'OVER'} the 5-minute target)")


def fidelity(n: int, fit_sample: int, seed: int) -> None:
    print(f"\nFidelity: {n:,} customers, sample fit ({fit_sample:,}) + assign vs kmodes fitted on all {n:,}")
    customers, truth = synthetic_customers(n, seed + 1)
    attrs = demographic.prepare_attributes(customers)
    rows: list[tuple[str, float]] = []
    sampled = demographic.DemographicSegmenter(n_clusters=4, k_range=(4, 4), n_bootstrap=1, fit_sample_size=fit_sample, random_state=seed)
    timed(f"sample fit ({fit_sample:,}) + assign", lambda: sampled.fit(attrs.frame), rows)
    Xnum, Xcat = sampled.encode(attrs.frame)
    full = demographic._Prototypes(4, Xnum.shape[1], sampled.gamma_, n_init=2, max_iter=30, random_state=seed)
    timed(f"kmodes KPrototypes on all {n:,} (k=4, 2 starts)", lambda: full.fit(np.hstack([Xnum, Xcat.astype(float)])), rows)
    print(f"  ARI sample-fit vs full-fit: {adjusted_rand_score(full.labels_, sampled.labels_):.3f}")
    print(f"  ARI vs planted segments: sample-fit {adjusted_rand_score(truth, sampled.labels_):.3f}, "
          f"full-fit {adjusted_rand_score(truth, full.labels_):.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--compare", type=int, default=50_000)
    parser.add_argument("--fit-sample", type=int, default=20_000)
    parser.add_argument("--compare-sample", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    scale(args.customers, args.fit_sample, args.seed)
    fidelity(args.compare, args.compare_sample, args.seed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
