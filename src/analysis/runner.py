"""Run pipeline: execute the notebooks with papermill, render them with nbconvert, write the run.

A run is built in ``reports/.staging/<run_id>-<pid>/`` and moved to ``reports/<run_id>/`` only
when every notebook has been executed and rendered, so a killed run never leaves a folder that
looks complete; ``reports/latest`` is switched (atomically) only after a successful run.

This module imports no segmentation code: notebooks leave labels, models and facts in the run
folder (see :class:`analysis.io.RunFolder`) and the runner assembles them.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any, Callable

import pandas as pd

from . import io
from .config import PROJECT_ROOT, RunConfig, config_as_dict, load_config
from .report import render_index

NOTEBOOK_DIR = PROJECT_ROOT / "notebooks"
REPORTS_DIR = PROJECT_ROOT / "reports"
TEMPLATE_DIR = Path(__file__).parent / "templates"
KEY_PACKAGES = (
    "pandas", "numpy", "scikit-learn", "kmodes", "duckdb", "pandera", "pymc-marketing", "pymc",
    "papermill", "nbconvert", "seaborn", "matplotlib", "scipy", "pyarrow",
)
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

# Environment for notebook kernels: quiet, deterministic, offline.
KERNEL_ENV = {
    "PYTHONWARNINGS": "ignore",
    "PYTENSOR_FLAGS": "cxx=,blas__ldflags=",  # no C compiler/BLAS probing noise in reports
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "PYTHONHASHSEED": "0",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "JUPYTER_PLATFORM_DIRS": "1",
}


class RunError(RuntimeError):
    """A run finished with a failed notebook."""


@dataclass
class NotebookResult:
    name: str
    status: str  # ok | failed | skipped
    seconds: float = 0.0
    error: str = ""
    html: str = ""
    failed_cell: int | None = None


@dataclass
class RunResult:
    run_id: str
    path: Path
    status: str
    notebooks: list[NotebookResult] = field(default_factory=list)


def discover_notebooks(notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """Notebooks of a run, in order: ``NN_name.ipynb``."""
    return sorted(p for p in notebook_dir.glob("[0-9][0-9]_*.ipynb"))


def select_notebooks(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """Filter by name: ``--only 13_behavioral`` or ``--only behavioral`` or ``--only 13``."""
    if not only:
        return notebooks
    chosen = [nb for nb in notebooks if any(nb.stem == o or nb.stem.startswith(o + "_") or nb.stem.split("_", 1)[1] == o for o in only)]
    unknown = [o for o in only if not any(nb.stem == o or nb.stem.startswith(o + "_") or nb.stem.split("_", 1)[1] == o for nb in notebooks)]
    if unknown:
        raise ValueError(f"--only {unknown}: no such notebook. Available: {[nb.stem for nb in notebooks]}")
    return chosen


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "clientele": _version("clientele")}
    out.update({pkg: _version(pkg) for pkg in KEY_PACKAGES})
    return out


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        commit = out.stdout.strip() or None
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5)
        return f"{commit}{'+dirty' if dirty.stdout.strip() else ''}" if commit else None
    except (OSError, subprocess.SubprocessError):
        return None


# "<" that could open an HTML tag, comment or processing instruction.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


def markdown_as_text(markdown: str) -> str:
    """Markdown with raw HTML disarmed: ``<script>`` shows as text, Markdown syntax still works.

    Markdown *outputs* are built from data (``Markdown(f"Top product: {name}")``), and Markdown
    passes raw HTML through, so a product called ``<img src=x onerror=...>`` would become markup.
    Authored Markdown cells are left alone.
    """
    return _TAG_START.sub("&lt;", markdown)


def _disarm_markdown_outputs(nb: Any) -> None:
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if isinstance(data.get("text/markdown"), str):
                data["text/markdown"] = markdown_as_text(data["text/markdown"])


def render_html(executed: Path, out_html: Path, not_applicable: str | None = None) -> None:
    """Render an executed notebook to a self-contained offline HTML page (code hidden).

    Data strings are shown as text: Markdown outputs have raw HTML escaped (see
    :func:`markdown_as_text`), DataFrames are escaped by pandas, and the page carries a
    Content-Security-Policy that allows no scripts and no requests beyond embedded ``data:``
    images, as a second line of defence for HTML outputs built by hand.
    """
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="clientele",
        extra_template_basedirs=[str(TEMPLATE_DIR / "nbconvert")],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    nb = nbformat.read(executed, as_version=4)
    if not_applicable is not None:
        _show_not_applicable(nb, not_applicable)
    _disarm_markdown_outputs(nb)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": executed.stem}})
    out_html.write_text(body, encoding="utf-8")


def _show_not_applicable(nb: Any, message: str) -> None:
    """A page that does not apply: drop papermill's error banners and the cells never run, and
    show the reason as a note where the page stopped."""
    import nbformat

    nb.cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]
    stop = next((i for i, c in enumerate(nb.cells) if any(o.get("output_type") == "error" for o in c.get("outputs", []))), None)
    if stop is None:
        return
    nb.cells = nb.cells[: stop + 1]
    cell = nb.cells[stop]
    cell.outputs = [o for o in cell.outputs if o.get("output_type") != "error"] + [
        nbformat.v4.new_output("display_data", data={"text/markdown": f"**Not applicable to this data:** {message}"})
    ]


def _render_failure_page(out_html: Path, name: str, exc: Exception) -> None:
    """A plain page saying the notebook ran but its HTML could not be rendered."""
    import html as _html

    out_html.write_text(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
        f"{_html.escape(name)}</title></head><body><p><a href=\"index.html\">&larr; Run overview</a></p>"
        f"<h1>{_html.escape(name)}</h1><p>The notebook ran, but its page could not be rendered: "
        f"<code>{_html.escape(f'{type(exc).__name__}: {exc}')}</code>. The executed notebook is "
        f"<a href=\"{_html.escape(name)}.ipynb\">{_html.escape(name)}.ipynb</a>.</p></body></html>",
        encoding="utf-8",
    )


def _ipc_kernel_manager(socket_dir: Path) -> type:
    """A kernel manager talking over local IPC sockets (no TCP ports, no plain-text warning)."""
    from jupyter_client.manager import KernelManager

    class IPCKernelManager(KernelManager):
        def __init__(self, **kw: Any) -> None:
            kw.setdefault("transport", "ipc")
            kw.setdefault("ip", str(socket_dir / "kernel"))
            super().__init__(**kw)

    return IPCKernelManager


def _execute(nb: Path, out: Path, parameters: dict[str, Any], cwd: Path, socket_dir: Path) -> tuple[str, str, int | None]:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    try:
        pm.execute_notebook(
            str(nb), str(out), parameters=parameters, kernel_name="python3", cwd=str(cwd),
            progress_bar=False, log_output=False, report_mode=False,
            kernel_manager_class=_ipc_kernel_manager(socket_dir),
        )
        return "ok", "", None
    except PapermillExecutionError as exc:
        if exc.ename == "NotApplicable":
            return "not applicable", exc.evalue, None
        return "failed", f"{exc.ename}: {exc.evalue}", exc.exec_count
    except Exception as exc:  # kernel died, nbformat error, ...
        return "failed", f"{type(exc).__name__}: {exc}", None


def _cleanup_stale_staging(staging_root: Path) -> None:
    """Remove staging folders (``<run_id>-<pid>``) and run-id claims of processes that are gone."""
    if not staging_root.exists():
        return
    for entry in staging_root.iterdir():
        if entry.is_dir():
            m = re.search(r"-(\d+)$", entry.name)
            if m and not _pid_alive(int(m.group(1))):
                shutil.rmtree(entry, ignore_errors=True)
        elif entry.suffix == ".lock":
            _remove_if_stale(entry)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _update_latest(reports_dir: Path, run_id: str) -> None:
    link = reports_dir / "latest"
    tmp = reports_dir / f".latest-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_id, target_is_directory=True)
    os.replace(tmp, link)


def assemble_exports(folder: io.RunFolder, cfg: RunConfig) -> dict[str, int]:
    """Join every notebook's per-customer labels into ``exports/customers.csv`` (no PII).

    Also concatenates segment profiles into ``exports/segments.csv``. Returns rows written per file.
    """
    written: dict[str, int] = {}
    customers = folder.read_table("customers")
    if customers is None:
        return written
    keep_cols = [c for c in ("customer_id", "country", "region", "state", "city") if c in customers.columns]
    out = customers[keep_cols].copy()
    for basis, labels in folder.read_labels().items():
        labels = labels.drop(columns=[c for c in labels.columns if c in out.columns and c != "customer_id"])
        out = out.merge(labels, on="customer_id", how="left")
    pii = set(cfg.pii_columns)
    out = out.drop(columns=[c for c in out.columns if c in pii]).sort_values("customer_id", kind="stable")
    folder.write_export("customers.csv", out)
    written["customers.csv"] = len(out)
    profiles = sorted((folder.path / "data").glob("segments_*.parquet"))
    if profiles:
        seg = pd.concat([pd.read_parquet(p) for p in profiles], ignore_index=True)
        front = [c for c in ("basis", "segment") if c in seg.columns]
        seg = seg[front + [c for c in seg.columns if c not in front]]
        folder.write_export("segments.csv", seg)
        written["segments.csv"] = len(seg)
    return written


def run(
    config_path: str | Path,
    run_id: str | None = None,
    only: list[str] | None = None,
    reports_dir: str | Path = REPORTS_DIR,
    notebook_dir: str | Path = NOTEBOOK_DIR,
    echo: Callable[[str], None] = print,
) -> RunResult:
    """Execute a run end to end.

    Parameters
    ----------
    config_path : path to the run config.
    run_id : folder name under ``reports/``; default ``<config name>-<UTC timestamp>``.
    only : notebook names to run (default all).
    reports_dir, notebook_dir : where runs go and where notebooks are.
    echo : progress printer.

    Returns
    -------
    RunResult

    Raises
    ------
    ConfigError
        Before any notebook starts, when the config or the column mapping is wrong.
    RunError
        When a notebook fails (the run folder is still written, with the error visible).
    """
    t_start = time.perf_counter()
    cfg = load_config(config_path)
    for table in cfg.sources:  # fail fast on a wrong path or mapping: header only
        io.check_source(cfg, table)
    reports_dir = Path(reports_dir).resolve()
    notebooks = select_notebooks(discover_notebooks(Path(notebook_dir)), only)
    run_id = run_id or f"{cfg.name}-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%S')}"
    if not RUN_ID_PATTERN.match(run_id):
        raise ValueError(f"--run-id {run_id!r}: use letters, digits, '.', '_' and '-' only (max 100).")
    final = reports_dir / run_id
    if final.exists():
        raise ValueError(f"{final} already exists: choose another --run-id or remove that folder.")
    staging_root = reports_dir / ".staging"
    staging_root.mkdir(parents=True, exist_ok=True)
    _cleanup_stale_staging(staging_root)
    lock = _claim_run_id(staging_root, run_id)
    staging = staging_root / f"{run_id}-{os.getpid()}"
    try:
        if final.exists():
            raise ValueError(f"{final} already exists: choose another --run-id or remove that folder.")
        staging.mkdir()
        return _run_in_staging(cfg, run_id, notebooks, staging, final, reports_dir, Path(notebook_dir), echo, t_start)
    except BaseException:
        # Interrupted (Ctrl-C) or crashed outside a notebook: nothing half-built stays behind.
        # A SIGKILL cannot be caught; its staging folder is removed by the next run.
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        _release(lock)


def _claim_run_id(staging_root: Path, run_id: str) -> IO[str]:
    """Reserve ``run_id`` for this process, so two runs started at once cannot both publish it.

    The claim is an exclusive ``flock`` on ``.staging/<run_id>.lock`` (holding the pid, for
    people). The operating system releases it when the process ends, however it ends, so a
    killed run never blocks its run id. Returns the open lock file; see :func:`_release`.
    """
    path = staging_root / f"{run_id}.lock"
    for _ in range(5):
        handle = open(path, "a+", encoding="ascii")  # noqa: SIM115 - held open for the run: the lock lives on it
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise ValueError(
                f"--run-id {run_id!r} is in use by a run still in progress (pid {holder}). "
                f"Choose another --run-id or wait for that run to finish."
            ) from None
        try:
            same_file = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            handle.truncate(0)
            handle.write(str(os.getpid()))
            handle.flush()
            return handle
        handle.close()  # the file was removed (by the run we raced) between open and lock: retry
    raise ValueError(f"--run-id {run_id!r}: could not lock {path}; remove it if no run is in progress.")


def _release(lock: IO[str]) -> None:
    Path(lock.name).unlink(missing_ok=True)
    lock.close()


def _remove_if_stale(path: Path) -> None:
    """Remove the claim ``path`` when no process holds it (it was left by a killed run).

    The file is removed while locked, so a run claiming it at the same moment sees it vanish
    and retries on a fresh file (see :func:`_claim_run_id`).
    """
    try:
        with open(path, encoding="ascii") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return
            path.unlink(missing_ok=True)
    except FileNotFoundError:
        return


def _run_in_staging(
    cfg: RunConfig, run_id: str, notebooks: list[Path], staging: Path, final: Path, reports_dir: Path,
    notebook_dir: Path, echo: Callable[[str], None], t_start: float,
) -> RunResult:
    folder = io.RunFolder(staging)
    folder.write_json("facts", "config", config_as_dict(cfg))
    os.environ.update(KERNEL_ENV)
    logging.getLogger("papermill").setLevel(logging.WARNING)
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="zmq")

    echo(f"Run {run_id}: config {cfg.display_path()}, as of {cfg.as_of}, {len(notebooks)} notebook(s)")
    results: list[NotebookResult] = []
    prep_failed = False
    for i, nb in enumerate(notebooks, 1):
        if prep_failed:
            results.append(NotebookResult(nb.stem, "skipped", error="data preparation failed"))
            echo(f"  [{i}/{len(notebooks)}] {nb.stem:<22} skipped (data preparation failed)")
            continue
        params = {"config_path": str(cfg.config_path), "run_dir": str(staging), **cfg.notebook_params(nb.stem)}
        executed = staging / f"{nb.stem}.ipynb"
        echo(f"  [{i}/{len(notebooks)}] {nb.stem:<22} running ...")
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="clientele-kernel-") as socket_dir:
            status, error, cell = _execute(nb, executed, params, notebook_dir.resolve(), Path(socket_dir))
        seconds = time.perf_counter() - t0
        html = f"{nb.stem}.html"
        if executed.exists():
            try:
                render_html(executed, staging / html, not_applicable=error if status == "not applicable" else None)
            except Exception as exc:  # noqa: BLE001 - a page that cannot be rendered must not lose the run
                _render_failure_page(staging / html, nb.stem, exc)
                status, error = "failed", f"rendering the page failed: {type(exc).__name__}: {exc}"
        else:
            html = ""
        results.append(NotebookResult(nb.stem, status, round(seconds, 2), error, html, cell))
        mark = {"ok": "ok", "not applicable": f"not applicable: {error}"}.get(status, f"FAILED at cell {cell}: {error}")
        echo(f"  [{i}/{len(notebooks)}] {nb.stem:<22} {mark} ({seconds:.1f} s)")
        if status != "ok" and nb.stem.startswith("00_"):
            prep_failed = True

    exports = assemble_exports(folder, cfg)
    status = "complete" if all(r.status in ("ok", "not applicable") for r in results) else "failed"
    manifest = build_manifest(cfg, folder, run_id, results, status, exports, time.perf_counter() - t_start)
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str), encoding="utf-8")
    render_index(folder, manifest)
    if final.exists():
        raise ValueError(f"{final} appeared while this run was in progress; its result is discarded. Choose another --run-id.")
    os.replace(staging, final)
    if status == "complete":
        _update_latest(reports_dir, run_id)
    elapsed = time.perf_counter() - t_start
    echo(f"Run {run_id} {status} in {elapsed:.1f} s -> {final / 'index.html'}")
    result = RunResult(run_id, final, status, results)
    if status != "complete":
        failed = [r for r in results if r.status == "failed"]
        detail = "; ".join(f"{r.name} (cell {r.failed_cell}): {r.error}" for r in failed)
        raise RunError(f"run {run_id} failed: {detail}. See {final / 'index.html'}.")
    return result


def build_manifest(cfg: RunConfig, folder: io.RunFolder, run_id: str, results: list[NotebookResult], status: str, exports: dict[str, int], seconds: float) -> dict[str, Any]:
    """Everything needed to reproduce or audit a run."""
    inputs = folder.read_json("facts", "inputs") or {}
    return {
        "run_id": run_id,
        "status": status,
        "created_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(seconds, 2),
        "config": config_as_dict(cfg),
        "inputs": inputs.get("files", {}),
        "column_mappings": inputs.get("mappings", {}),
        "unmapped_columns": inputs.get("unmapped_columns", {}),
        "ledger": folder.read_json("data", "ledger"),
        "notebooks": [r.__dict__ for r in results],
        "exports": exports,
        "exports_sha256": {
            p.name: io.sha256_file(p) for p in sorted((folder.path / "exports").glob("*")) if p.is_file()
        } if (folder.path / "exports").exists() else {},
        "models": folder.read_all_json("models"),
        "facts": {k: v for k, v in folder.read_all_json("facts").items() if k not in ("config", "inputs")},
        "versions": _versions(),
        "git_commit": _git_commit(),
        "platform": {"python": sys.version.split()[0], "machine": platform.machine(), "system": platform.system()},
        "kernel_env": dict(KERNEL_ENV),
        "reproducibility": (
            "Exports (exports_sha256) depend only on the input files (inputs: sha256), the config "
            "(seed, as_of, min_date, min_segment_size, pii_columns, sources, columns, survey, params), "
            "the notebooks and package code (git_commit), the package versions (versions) and the kernel "
            "environment (kernel_env: hash seed, one BLAS/OpenMP thread). run_id, created_utc, seconds and "
            "the run folder's location do not affect them: two runs with the same inputs give byte-identical "
            "exports."
        ),
    }
