"""Time analysis.clv on CDNOW: summaries, fits of every family (closed form and pymc-marketing), scoring.

Run: ``.venv/bin/python benchmarks/bench_clv.py`` (needs ``../shared/data/cdnow`` or
``CLIENTELE_DATA_ROOT``).  The pymc "cold" fit is the first in the process: it includes the
PyMC / pymc-marketing import and graph compilation (PyTensor's compile cache in
``~/.pytensor`` makes it faster on later processes; point ``PYTENSOR_FLAGS`` at an
empty ``base_compiledir`` to time a truly first run).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

started = time.perf_counter()
from analysis import clv

IMPORT_SECONDS = time.perf_counter() - started


def _timed(label: str, func: Callable[[], Any], rows: list[tuple[str, float]]) -> Any:
    begin = time.perf_counter()
    result = func()
    rows.append((label, time.perf_counter() - begin))
    return result


def main() -> int:
    root = Path(
        os.environ.get("CLIENTELE_DATA_ROOT") or Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    cdnow = root / "cdnow"
    if not cdnow.is_dir():
        print(f"CDNOW data not found at {cdnow}; set CLIENTELE_DATA_ROOT.", file=sys.stderr)
        return 1
    rows: list[tuple[str, float]] = [("import analysis.clv (no PyMC)", IMPORT_SECONDS)]

    sample = pd.read_csv(
        cdnow / "CDNOW_sample.txt",
        sep=r"\s+",
        header=None,
        names=["master_id", "customer_id", "date", "cds", "amount"],
    )
    sample["timestamp"] = pd.to_datetime(sample["date"].astype(str), format="%Y%m%d")
    master = pd.read_csv(
        cdnow / "CDNOW_master.txt",
        sep=r"\s+",
        skiprows=1,
        header=None,
        names=["customer_id", "date", "cds", "amount"],
        dtype={"customer_id": str},
    )
    master["timestamp"] = pd.to_datetime(master["date"].astype(str), format="%Y%m%d")

    split = {"observation_period_end": "1998-06-30", "calibration_period_end": "1997-09-30"}
    summary = _timed("rfm_summary sample (6,919 tx)", lambda: clv.rfm_summary(sample, **split), rows)
    _timed("rfm_summary master (69,659 tx)", lambda: clv.rfm_summary(master, **split), rows)

    for model in ("bgnbd", "mbgnbd", "pareto_nbd"):
        _timed(f"fit {model} closed form", lambda model=model: clv.fit_purchase_model(summary, model=model), rows)
    bgnbd = clv.fit_bgnbd(summary)
    _timed("fit_bgnbd pymc cold (import + compile)", lambda: clv.fit_bgnbd(summary, engine="pymc", random_state=0), rows)
    _timed("fit_bgnbd pymc warm", lambda: clv.fit_bgnbd(summary, engine="pymc", random_state=0), rows)
    _timed("fit_bgnbd priors='default' (new graph)", lambda: clv.fit_bgnbd(summary, priors="default"), rows)
    gamma_gamma = _timed("fit_gamma_gamma closed form", lambda: clv.fit_gamma_gamma(summary), rows)
    _timed("fit_gamma_gamma pymc", lambda: clv.fit_gamma_gamma(summary, engine="pymc"), rows)

    rng = np.random.default_rng(0)
    n = 1_000_000
    T = rng.uniform(1, 52, n)
    recency = T * rng.uniform(0, 1, n)
    frequency = rng.poisson(2, n) * (recency > 0)
    _timed(
        "conditional_expected_purchases, 1M customers",
        lambda: clv.conditional_expected_purchases(bgnbd, frequency, recency, T, 39.0),
        rows,
    )
    _timed("p_alive, 1M customers", lambda: clv.p_alive(bgnbd, frequency, recency, T), rows)
    _timed(
        "customer_lifetime_value, 2,357 customers",
        lambda: clv.customer_lifetime_value(bgnbd, gamma_gamma, summary),
        rows,
    )
    for model in ("bgnbd", "pareto_nbd"):
        fit = clv.fit_purchase_model(summary, model=model)
        _timed(
            f"clv_intervals {model}, 2,357 customers x 200 draws",
            lambda fit=fit: clv.clv_intervals(fit, gamma_gamma, summary, random_state=0),
            rows,
        )

    width = max(len(label) for label, _ in rows)
    for label, seconds in rows:
        print(f"{label:<{width}}  {seconds:8.3f} s")
    print("params", {k: round(v, 3) for k, v in bgnbd.params_.items()}, "LL", round(bgnbd.log_likelihood_, 1))
    print("holdout", {k: round(v, 3) for k, v in clv.holdout_metrics(bgnbd, summary).items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
