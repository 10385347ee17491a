"""``make bench``: the feature step against what users would write, and every pipeline step, at S/M/L.

Each measurement runs in a fresh process (so its peak RSS is its own): the step is timed
``--repeat`` times (median reported, every time kept) after its inputs are loaded. Data sets come
from :mod:`datasets` (the project's generator, cached in ``benchmarks/data/``, ignored by git) and
go through the data contract once per size (``prep``, timed once). Results are merged into
``benchmarks/results.json`` (a run of some sizes keeps the others' figures) and written out as
``benchmarks/RESULTS.md``.

Usage::

    .venv/bin/python benchmarks/run.py                  # S, M and L
    .venv/bin/python benchmarks/run.py --sizes S M      # what CI-sized machines manage quickly
    .venv/bin/python benchmarks/run.py --sizes S --only features.project features.duckdb
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))

import datasets

AS_OF = "2025-01-01"
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "RESULTS.md"
#: The feature step as it was before the one-query rewrite (DuckDB, one thread, float sums).
BEFORE_COMMIT = "106040d"


# --- tasks (each runs in its own process) -----------------------------------------------------------


def _paths(size: str) -> dict[str, Path]:
    data = datasets.folder(size) / "run" / "data"
    return {name: data / f"{name}.parquet" for name in ("transactions", "returns", "events", "customers", "survey")}


def _project_features(size: str):
    from analysis import features

    p = _paths(size)
    return features.customer_features(p["transactions"], AS_OF, returns=p["returns"], events=p["events"])


def _before_features() -> Callable[..., Any]:
    """``customer_features`` from :data:`BEFORE_COMMIT`, loaded from git into a scratch module."""
    import importlib.util
    import tempfile

    source = subprocess.run(["git", "show", f"{BEFORE_COMMIT}:src/analysis/features.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "features_before.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("features_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.customer_features


def _task(name: str, size: str) -> Callable[[], Any]:
    """The callable to time for task ``name`` at ``size``; its inputs are loaded here (untimed)."""
    import baselines
    import pandas as pd

    p = _paths(size)
    if name == "features.project":
        return lambda: _project_features(size)
    if name == "features.before":
        before = _before_features()
        return lambda: before(p["transactions"], AS_OF, returns=p["returns"], events=p["events"])
    if name.startswith(("features.", "core.")):
        kind, tool = name.split(".")
        func = getattr(baselines, f"{'full' if kind == 'features' else 'core'}_{tool}")
        return lambda: func(p, AS_OF)
    if name == "idle":
        import analysis.features  # noqa: F401 - what every task imports anyway
        return lambda: None

    from analysis import clienteling, io
    from analysis.segment import behavioral, demographic, geographic, psychographic, value

    feats = _project_features(size)
    if name == "rfm":
        rules = io.read_yaml(None, "rfm_segments.yaml")
        return lambda: behavioral.rfm_segments(behavioral.rfm_scores(feats), rules)
    if name == "behavioral":
        rules = io.read_yaml(None, "rfm_segments.yaml")
        return lambda: behavioral.segment_behavioral(feats, rfm_rules=rules, random_state=42)
    customers = pd.read_parquet(p["customers"])
    transactions = p["transactions"]  # as the pages pass them: the order lines' Parquet file, read in place
    if name == "demographic":
        return lambda: demographic.segment_demographic(customers, transactions, random_state=42)
    if name == "geographic":
        lookup = io.read_yaml(None, "us_states.yaml")
        return lambda: geographic.segment_geographic(customers, transactions, as_of=AS_OF, lookup=lookup, random_state=42)
    if name == "psychographic":
        from analysis.config import load_config

        survey_cfg = load_config(datasets.folder(size) / "config.yaml").survey
        survey = pd.read_parquet(p["survey"])
        return lambda: psychographic.segment_psychographic(
            survey, customers, transactions, items=survey_cfg.items, scales=survey_cfg.scales,
            reverse=survey_cfg.reverse, random_state=42)
    if name == "clv":
        return lambda: value.segment_value(transactions, feats, as_of=AS_OF, labels={}, random_state=42)
    if name == "recommendations":
        top = feats["total_spend"].nlargest(200).index
        return lambda: clienteling.recommend_products(transactions, n=3, customers=top)
    raise SystemExit(f"unknown task {name!r}")


def _end_to_end(size: str) -> Callable[[], Any]:
    """Features, RFM, behavioral clusters, k-prototypes on a sample, CLV, recommendations: one process.

    As the run's notebooks do, every step that aggregates the order lines reads the validated Parquet
    file in place (``run.parquet("transactions")``: DuckDB reads only the columns it needs), so the
    order lines are never held in pandas. (The clienteling page still loads three columns for its
    evaluation and client cards; ``recommend_products`` itself reads in place.)
    """
    def run() -> None:
        import pandas as pd

        from analysis import clienteling, io
        from analysis.segment import behavioral, demographic, value

        p = _paths(size)
        feats = _project_features(size)
        rules = io.read_yaml(None, "rfm_segments.yaml")
        behavioral.segment_behavioral(feats, rfm_rules=rules, random_state=42)
        customers = pd.read_parquet(p["customers"])
        demographic.segment_demographic(customers, p["transactions"], random_state=42)
        value.segment_value(p["transactions"], feats, as_of=AS_OF, labels={}, random_state=42)
        clienteling.recommend_products(p["transactions"], n=3, customers=feats["total_spend"].nlargest(200).index)

    return run


def _analysis_run(size: str) -> Callable[[], Any]:
    import shutil
    import tempfile

    def run() -> None:
        reports = Path(tempfile.mkdtemp(prefix="bench-run-"))
        try:
            proc = subprocess.run([sys.executable, "-m", "analysis", "run", "--config", str(datasets.folder(size) / "config.yaml"),
                                   "--run-id", f"bench-{size}", "--reports-dir", str(reports), "--no-html"],
                                  check=False, capture_output=True, text=True)
            if proc.returncode:
                raise RuntimeError(f"analysis run failed ({proc.returncode}): {proc.stderr[-2000:]}")
        finally:
            shutil.rmtree(reports, ignore_errors=True)

    return run


def prep_sql(size: str) -> None:
    """The contract's rules for this generated data, in DuckDB SQL, writing ``run/data/*.parquet``.

    For L, where the contract itself (pandas + pandera) needs more memory than the machine has:
    returns (negative amounts) set aside into ``returns`` as they are, exact duplicate purchase lines
    dropped, reverse-worded survey items flipped, personal columns left out. At M this gives the
    contract's tables row for row and identical features.
    """
    import duckdb

    from analysis.config import load_config

    cfg = load_config(datasets.folder(size) / "config.yaml")
    raw = {t: str(datasets.folder(size) / f"{t}.parquet") for t in ("customers", "transactions", "survey", "events")}
    out = datasets.folder(size) / "run.tmp" / "data"
    out.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    line = ("customer_id, order_id, timestamp, CAST(quantity AS DOUBLE) AS quantity, unit_price, amount, product_id, "
            "product_name, category, margin, channel, brand")
    con.execute(f"COPY (SELECT DISTINCT {line} FROM read_parquet('{raw['transactions']}') WHERE amount > 0) "
                f"TO '{out / 'transactions.parquet'}' (FORMAT parquet)")
    con.execute(f"COPY (SELECT customer_id, order_id, timestamp, -CAST(quantity AS DOUBLE) AS quantity, "
                f"-amount AS amount, 'return' AS reason FROM read_parquet('{raw['transactions']}') WHERE amount < 0) "
                f"TO '{out / 'returns.parquet'}' (FORMAT parquet)")
    con.execute(f"COPY (SELECT * EXCLUDE (name, email) FROM read_parquet('{raw['customers']}')) "
                f"TO '{out / 'customers.parquet'}' (FORMAT parquet)")
    con.execute(f"COPY (SELECT * FROM read_parquet('{raw['events']}')) TO '{out / 'events.parquet'}' (FORMAT parquet)")
    s = cfg.survey
    items = ", ".join(f"{s.likert_min + s.likert_max} - {q} AS {q}" if q in s.reverse else q for q in s.items)
    con.execute(f"COPY (SELECT customer_id, response_date, {items} FROM read_parquet('{raw['survey']}')) "
                f"TO '{out / 'survey.parquet'}' (FORMAT parquet)")


def child(name: str, size: str, repeat: int, check_out: str | None) -> None:
    if name == "prep_sql":
        func = lambda: prep_sql(size)
        repeat = 1
    elif name == "prep":
        from analysis import io, workspace
        from analysis.config import load_config

        cfg = load_config(datasets.folder(size) / "config.yaml")
        folder = io.RunFolder(datasets.folder(size) / "run.tmp")
        folder.path.mkdir(parents=True, exist_ok=True)
        func = lambda: workspace.prepare_run(cfg, folder)
        repeat = 1
    elif name == "end_to_end":
        func = _end_to_end(size)
    elif name == "analysis_run":
        func = _analysis_run(size)
    else:
        func = _task(name, size)
    times, cpu, result = [], [], None
    for _ in range(repeat):
        used = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu.append(after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime)
    if name == "analysis_run":  # the notebooks run in kernel processes
        kernels = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = [(kernels.ru_utime + kernels.ru_stime) / repeat] * repeat
    if name in ("prep", "prep_sql"):
        (datasets.folder(size) / "run.tmp").replace(datasets.folder(size) / "run")
    if check_out and result is not None:
        result.to_parquet(check_out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"times": times, "cpu": cpu, "peak_rss_mb": round(max(peak, children), 1)}))


# --- the plan ---------------------------------------------------------------------------------------------

FEATURES = ["features.project", "features.duckdb", "features.polars", "features.pandas", "features.before"]
TUTORIAL = "features.tutorial"
CORE = ["core.duckdb", "core.polars", "core.pandas", "core.tutorial"]
STEPS = ["rfm", "behavioral", "demographic", "geographic", "psychographic", "clv", "recommendations"]
#: (task, sizes it runs at, repeats); what is left out at a size is recorded with the reason.
PLAN: list[tuple[str, tuple[str, ...], int]] = (
    [("idle", ("S",), 1)]
    + [(t, ("S", "M", "L"), 3) for t in FEATURES + CORE[:3]]  # pandas at L: 13.6 GB peak, so on a machine with room
    + [("core.tutorial", ("S", "M"), 3), (TUTORIAL, ("S", "M"), 3), (TUTORIAL, ("L",), 1)]  # L: about 20 minutes
    + [(t, ("S", "M", "L"), 3) for t in ("rfm", "recommendations")]
    + [(t, ("S", "M", "L"), 1) for t in ("behavioral", "demographic", "geographic", "psychographic")]
    + [("clv", ("S", "M", "L"), 1), ("end_to_end", ("S", "M", "L"), 1), ("analysis_run", ("M",), 1)]
)
SKIPPED = {
    ("prep", "L"): "stopped: the data contract (pandas + pandera) needs more memory than this machine can give one "
                   "process at L: after the copies were removed (M: 3.9 GB -> 2.2 GB), a 12 GB watchdog still stopped it "
                   "after 34 s, holding the 37M-line sources (about 9 GB in pandas); L's tables were prepared by the same "
                   "rules in DuckDB SQL instead (prep_sql)",
    ("core.tutorial", "L"): "extrapolated from S and M (one Python call per customer and column)",
    ("analysis_run", "L"): "not run by make bench: its first notebook, the data contract (pandas + pandera), peaks at "
                           "19.1 GB at L. Run once by hand on the quiet machine (1 Dec 2026): complete in 623 s wall "
                           "(889 s CPU), the data contract 257 s of it and the 19.1 GB peak (see NOTES.md)",
}


def run_child(task: str, size: str, repeat: int, check_out: Path | None = None, timeout: float = 3600) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", task, "--size", size, "--repeat", str(repeat)]
    if check_out:
        cmd += ["--check-out", str(check_out)]
    from analysis.runner import KERNEL_ENV

    # the environment a run gives its notebook kernels (one BLAS/OpenMP thread: on a shared machine
    # scikit-learn's OpenMP threads otherwise spin against each other); DuckDB and polars keep theirs
    env = {**os.environ, **KERNEL_ENV, "MPLBACKEND": "Agg"}
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["median_s"] = round(statistics.median(out["times"]), 3)
    out["times"] = [round(t, 3) for t in out["times"]]
    out["cpu_s"] = round(statistics.median(out.pop("cpu")), 3)
    out["wall_s"] = round(time.perf_counter() - start, 1)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["S", "M", "L"], choices=list(datasets.SIZES))
    parser.add_argument("--only", nargs="+", default=None, help="task names (default: all)")
    parser.add_argument("--repeat", type=int, default=None, help="override every task's repeats (at least 3 for the record)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds one task (all its repeats) may take")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--size", help=argparse.SUPPRESS)
    parser.add_argument("--check-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.size, args.repeat or 1, args.check_out)
        return 0

    results = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
    results.setdefault("tasks", {})
    results.setdefault("sizes", {})
    results["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                          "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    for size in args.sizes:
        folder = datasets.ensure(size)
        import pyarrow.parquet as pq

        results["sizes"][size] = {"customers": datasets.SIZES[size],
                                  "lines": pq.ParquetFile(folder / "transactions.parquet").metadata.num_rows}
        if not (folder / "run").exists():
            # the contract holds the whole table in pandas several times over: at L that is more
            # memory than this machine has, so L is prepared by the same rules in SQL (prep_sql)
            prep = "prep_sql" if size == "L" else "prep"
            print(f"[{size}] {prep} ...", flush=True)
            results["tasks"].setdefault(prep, {})[size] = run_child(prep, size, 1, timeout=args.timeout)
            if size == "L":
                results["tasks"].setdefault("prep", {})[size] = {"skipped": SKIPPED[("prep", "L")]}
        checks = {}
        plan = [(t, r) for t, sizes, r in PLAN if size in sizes and (not args.only or t in args.only)]
        for task, sizes, _ in PLAN:
            if (task, size) in SKIPPED and size not in sizes and (not args.only or task in args.only):
                results["tasks"].setdefault(task, {})[size] = {"skipped": SKIPPED[(task, size)]}
        # The feature step and its baselines run in rounds (one repeat of each, then the next round),
        # so that other work on a shared machine slows them alike; each repeat is a fresh process.
        compared = [(t, r) for t, r in plan if t.startswith(("features.", "core."))]
        rounds: dict[str, list[dict[str, Any]]] = {t: [] for t, _ in compared}
        for i in range(max([args.repeat or r for _, r in compared], default=0)):
            for task, repeat in compared:
                if i >= (args.repeat or repeat) or any("error" in o for o in rounds[task]):
                    continue
                check = folder / f"check-{task}.parquet" if size == "S" and i == 0 else None
                print(f"[{size}] {task} round {i + 1} ...", end=" ", flush=True)
                outcome = run_child(task, size, 1, check, timeout=args.timeout)
                rounds[task].append(outcome)
                print(outcome.get("error") or f"{outcome['times'][0]} s, peak {outcome['peak_rss_mb']} MB", flush=True)
                if check and check.exists():
                    checks[task] = check
        for task, outcomes in rounds.items():
            failed = [o for o in outcomes if "error" in o]
            if failed:
                results["tasks"].setdefault(task, {})[size] = failed[0]
                continue
            times = [o["times"][0] for o in outcomes]
            results["tasks"].setdefault(task, {})[size] = {
                "times": times, "median_s": round(statistics.median(times), 3),
                "cpu_s": round(statistics.median(o["cpu_s"] for o in outcomes), 3),
                "peak_rss_mb": max(o["peak_rss_mb"] for o in outcomes)}
        results = _save(results, size)
        for task, repeat in plan:
            if task in rounds:
                continue
            print(f"[{size}] {task} x{args.repeat or repeat} ...", end=" ", flush=True)
            entry = results["tasks"].setdefault(task, {})
            entry[size] = run_child(task, size, args.repeat or repeat, None, timeout=args.timeout)
            shown = entry[size].get("error") or f"median {entry[size]['median_s']} s, peak {entry[size]['peak_rss_mb']} MB"
            print(shown, flush=True)
            results = _save(results, size)
        if checks:
            results["agreement_at_S"] = {**results.get("agreement_at_S", {}), **_agreement(checks)}
        results = _save(results, size)
    results = _save(results, "")  # read back what every size wrote
    checks = {path.stem.removeprefix("check-"): path for path in datasets.folder("S").glob("check-*.parquet")}
    if checks:
        results["agreement_at_S"] = _agreement(checks)
        RESULTS_JSON.write_text(json.dumps(results, indent=1) + "\n")
    RESULTS_MD.write_text(render(results), encoding="utf-8")
    print(f"wrote {RESULTS_JSON.relative_to(ROOT)} and {RESULTS_MD.relative_to(ROOT)}")
    return 0


def _save(results: dict[str, Any], size: str | None) -> dict[str, Any]:
    """Merge this run's figures for ``size`` into results.json and return the file's content (another
    size may be running beside this one; ``size=""`` only reads)."""
    import fcntl

    with open(HERE / ".results.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        disk = json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {}
        disk.setdefault("tasks", {})
        disk.setdefault("sizes", {}).update(results.get("sizes", {}))
        disk["machine"] = results["machine"]
        disk["agreement_at_S"] = {**disk.get("agreement_at_S", {}), **results.get("agreement_at_S", {})}
        for task, by in results["tasks"].items():
            for s, entry in by.items():
                if size is None or s == size:
                    disk["tasks"].setdefault(task, {})[s] = entry
        if "notes" in results:
            disk["notes"] = results["notes"]
        RESULTS_JSON.write_text(json.dumps(disk, indent=1) + "\n")
        return disk


def _agreement(checks: dict[str, Path]) -> dict[str, Any]:
    import baselines
    import pandas as pd

    reference = checks.get("features.project")
    if reference is None:
        return {}
    project = pd.read_parquet(reference)
    return {task: baselines.compare(project, pd.read_parquet(path)) for task, path in checks.items()
            if task != "features.project"}


# --- the report -----------------------------------------------------------------------------------------


def _median(results: dict[str, Any], task: str, size: str) -> float | None:
    entry = results["tasks"].get(task, {}).get(size, {})
    return entry.get("median_s")


def _cost(results: dict[str, Any], task: str, size: str) -> float | None:
    """CPU time where recorded (steady under other work on the machine), else wall time."""
    entry = results["tasks"].get(task, {}).get(size, {})
    return entry.get("cpu_s") or entry.get("median_s")


def _slope(results: dict[str, Any], task: str, a: str, b: str) -> str:
    ea, eb = (results["tasks"].get(task, {}).get(x, {}) for x in (a, b))
    key = "cpu_s" if "cpu_s" in ea and "cpu_s" in eb else "median_s"  # like with like
    ta, tb = ea.get(key), eb.get(key)
    if not ta or not tb:
        return "–"
    na, nb = results["sizes"][a]["lines"], results["sizes"][b]["lines"]
    return f"{math.log(tb / ta) / math.log(nb / na):.2f}"


def _cell(results: dict[str, Any], task: str, size: str) -> str:
    entry = results["tasks"].get(task, {}).get(size)
    if not entry:
        return "–"
    if "skipped" in entry:
        return "not run"
    if "error" in entry:
        return "failed"
    cpu = f" (CPU {entry['cpu_s']:.1f} s)" if "cpu_s" in entry else ""
    return f"{entry['median_s']:.2f} s{cpu} / {entry['peak_rss_mb']:,.0f} MB"


def render(results: dict[str, Any]) -> str:
    sizes = [s for s in ("S", "M", "L") if s in results["sizes"]]
    lines = ["# Benchmark results", "",
             ("Written by `make bench` (`benchmarks/run.py`); the numbers are this machine's, not targets. Each cell: "
             "median wall time of the repeats (CPU time: user + system of all threads of the process) / peak RSS of the "
             "process (inputs included). On a machine shared with other work, wall time is stretched by waiting for a core "
             "(the benchmark runs at lower priority); CPU time is not. Growth: exponent of time in the number "
             "of order lines between two sizes, on CPU time where both sizes have it (1.00 = linear). What the numbers show and what was changed: "
              "[NOTES.md](NOTES.md)."), "",
             (f"Machine: {results['machine']['cpus']} CPUs, {results['machine']['platform']}, Python "
             f"{results['machine']['python']}; load average when the run started "
             f"{results['machine']['load_average_at_start']} (other work shares the machine)."), "",
             "| size | customers | order lines |", "|---|---:|---:|"]
    lines += [f"| {s} | {results['sizes'][s]['customers']:,} | {results['sizes'][s]['lines']:,} |" for s in sizes]

    def table(title: str, tasks: list[tuple[str, str]]) -> None:
        lines.extend(["", f"## {title}", "", "| step | " + " | ".join(sizes) + " | growth S→M | growth M→L |",
                      "|---|" + "---:|" * (len(sizes) + 2)])
        for task, label in tasks:
            if task not in results["tasks"]:
                continue
            row = [_cell(results, task, s) for s in sizes]
            lines.append(f"| {label} | " + " | ".join(row) + f" | {_slope(results, task, 'S', 'M')} | "
                         f"{_slope(results, task, 'M', 'L')} |")

    table("Feature step: the project against what users would write (same 29 features)", [
        ("features.project", "**project** `customer_features` (one SQL query, DuckDB, all threads, exact sums)"),
        ("features.duckdb", "hand-written DuckDB (float sums, default threads)"),
        ("features.polars", "hand-written polars (lazy)"),
        ("features.pandas", "idiomatic pandas `groupby().agg`"),
        ("features.before", f"the project's step before this change ({BEFORE_COMMIT}: DuckDB, one thread)"),
        (TUTORIAL, "tutorial `groupby().agg(lambda ...)`, one Python call per group"),
    ])
    table("Six core features (frequency, recency, tenure, spend, order value, items)", [
        ("core.duckdb", "hand-written DuckDB"), ("core.polars", "polars"), ("core.pandas", "idiomatic pandas"),
        ("core.tutorial", "tutorial `groupby().agg(lambda ...)`"),
    ])
    lines += ["", "### CPU time (user + system, all threads; less sensitive than wall time to other work on the machine)", "",
              "| step | " + " | ".join(sizes) + " |", "|---|" + "---:|" * len(sizes)]
    for task in FEATURES + [TUTORIAL] + CORE:
        by = results["tasks"].get(task, {})
        if by:
            lines.append(f"| {task} | " + " | ".join(f"{by[s]['cpu_s']:.2f} s" if "cpu_s" in by.get(s, {}) else "–"
                                                      for s in sizes) + " |")
    lines += ["", ("### Ratios (time of the other / time of the project's full feature step; > 1: the project is faster; "
              "in brackets the same for CPU time; the last two rows: the tutorial's time / hand-written DuckDB's)"), "",
              "| compared with | " + " | ".join(sizes) + " |", "|---|" + "---:|" * len(sizes)]
    for task, label in [("features.duckdb", "hand-written DuckDB"), ("features.polars", "polars"),
                        ("features.pandas", "idiomatic pandas"), ("features.before", "the step before this change"),
                        (TUTORIAL, "tutorial lambdas (same 29 features)"),
                        ("core.tutorial", "tutorial lambdas (6 features only)")]:
        row = []
        for s in sizes:
            mine, theirs = _median(results, "features.project", s), _median(results, task, s)
            cpu_mine = results["tasks"].get("features.project", {}).get(s, {}).get("cpu_s")
            cpu_theirs = results["tasks"].get(task, {}).get(s, {}).get("cpu_s")
            if mine and theirs:
                row.append(f"{theirs / mine:.2f}×" + (f" (CPU {cpu_theirs / cpu_mine:.2f}×)" if cpu_mine and cpu_theirs else ""))
            elif mine and s == "L" and "skipped" in results["tasks"].get(task, {}).get("L", {}):
                row.append(_extrapolation(results, task, mine))
            else:
                row.append("–")
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    # what the engine itself allows: the tutorial against the hand-written query of the same features
    for duckdb, tutorial, label in [("features.duckdb", TUTORIAL, "the same 29 features"),
                                    ("core.duckdb", "core.tutorial", "the 6 core features")]:
        row = []
        for s in sizes:
            theirs, mine = _median(results, tutorial, s), _median(results, duckdb, s)
            cpu_theirs, cpu_mine = (results["tasks"].get(t, {}).get(s, {}).get("cpu_s") for t in (tutorial, duckdb))
            row.append(f"{theirs / mine:.1f}×" + (f" (CPU {cpu_theirs / cpu_mine:.1f}×)" if cpu_mine and cpu_theirs else "")
                       if mine and theirs else "–")
        lines.append(f"| tutorial lambdas against hand-written DuckDB, both on {label} | " + " | ".join(row) + " |")
    table("Pipeline steps (on the project's features; the order lines as the pages pass them: the Parquet file, read in place by DuckDB)", [
        ("prep", "data contract: read, validate, write Parquet (once)"),
        ("prep_sql", "the contract's rules for this data in DuckDB SQL (used for L)"),
        ("rfm", "RFM scores and segments"),
        ("behavioral", "behavioral: RFM + k-means clusters (k chosen on a sample, bootstrap)"),
        ("demographic", "demographic k-prototypes (fit on a 20,000 sample + assign)"),
        ("geographic", "geographic rollups + spatial clusters"),
        ("psychographic", "psychographic factors + clusters"),
        ("clv", "CLV: BG/NBD-family fits, holdout, Gamma-Gamma, scoring"),
        ("recommendations", "recommendations (co-purchase, top 200 clients)"),
        ("end_to_end", "**end to end**: features, RFM, behavioral, k-prototypes, CLV, recommendations"),
        ("analysis_run", "`analysis run --no-html` (all notebooks: data contract, every page's computations, exports; no HTML)"),
        ("idle", "Python + pandas + DuckDB imported, nothing run"),
    ])
    skipped = [(t, s, e["skipped"]) for t, by in results["tasks"].items() for s, e in by.items() if "skipped" in e]
    failed = [(t, s, e["error"]) for t, by in results["tasks"].items() for s, e in by.items() if "error" in e]
    if skipped or failed:
        lines += ["", "## Not run or failed", ""]
        lines += [f"- {t} at {s}: {why}" for t, s, why in skipped]
        lines += [f"- {t} at {s} FAILED: {why}" for t, s, why in failed]
    if results.get("agreement_at_S"):
        lines += ["", "## Same features? (each baseline against the project at S)", "",
                  ("Numeric columns within 1e-6 relative; favourite-* names agree except on ties (the project breaks "
                  "ties by name, `arg_max` and `idxmax` by position)."), "",
                  "| baseline | columns compared | numeric columns that differ | names agree |", "|---|---:|---|---|"]
        for task, c in results["agreement_at_S"].items():
            lines.append(f"| {task} | {c['columns']} | {', '.join(c['differ']) or 'none'} | "
                         f"{', '.join(f'{k} {v:.1%}' for k, v in c['names_agree'].items()) or '–'} |")
    notes = results.get("notes")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _extrapolation(results: dict[str, Any], task: str, project_l: float) -> str:
    """The L time of a step not run at L, from its S and M CPU times (at least linear growth)."""
    project_l = _cost(results, "features.project", "L") or project_l
    s, m = _cost(results, task, "S"), _cost(results, task, "M")
    if not s or not m:
        return "–"
    ns, nm, nl = (results["sizes"][k]["lines"] for k in ("S", "M", "L"))
    exponent = max(1.0, math.log(m / s) / math.log(nm / ns))
    estimate = m * (nl / nm) ** exponent
    return f"≈{estimate / project_l:.1f}× (extrapolated from S and M: {estimate:.0f} s of CPU)"


if __name__ == "__main__":
    raise SystemExit(main())
