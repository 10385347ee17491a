"""Run pipeline: execute the notebooks with papermill, render them with nbconvert, write the run.

A run is built in ``reports/.staging/<run_id>-<pid>/`` and moved to ``reports/<run_id>/`` only
when every notebook has been executed and rendered (``--no-html``: executed only), so a killed
run never leaves a folder that looks complete; ``reports/latest`` is switched (atomically) only
after a successful run.

This module imports no segmentation code: notebooks leave labels, models and facts in the run
folder (see :class:`analysis.io.RunFolder`) and the runner assembles them.

Notebooks receive ``config_path``, ``run_dir``, the top-level ``seed`` (when their parameters cell
declares one) and the config's checked ``params.<notebook>``; every injected cell is verified to
be plain literal assignments right before papermill runs it. Kernels get their environment
(:data:`KERNEL_ENV`) at launch; the calling process's environment, logging levels and warning
filters are left as they were.
"""

from __future__ import annotations

import ast
import concurrent.futures
import contextlib
import datetime as dt
import fcntl
import logging
import multiprocessing
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import pandas as pd

from . import io
from .config import (
    NOTEBOOK_DIR,
    PROJECT_ROOT,
    RESERVED_PARAMETERS,
    ConfigError,
    RunConfig,
    config_as_dict,
    is_parameter_name,
    load_config,
    notebook_parameters,
)
from .report import render_index
from .templating import render_template
from .text import disarm_markdown

REPORTS_DIR = PROJECT_ROOT / "reports"
TEMPLATE_DIR = Path(__file__).parent / "templates"
KEY_PACKAGES = (
    "pandas", "numpy", "scikit-learn", "kmodes", "duckdb", "pandera", "pymc-marketing", "pymc",
    "papermill", "nbconvert", "seaborn", "matplotlib", "scipy", "pyarrow",
)
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")  # use with fullmatch: "$" accepts "abc\n"
#: Names under ``reports/`` the runner itself uses (compared case-insensitively).
RESERVED_RUN_IDS = ("latest",)
LATEST = "latest"
STAGING = ".staging"
#: Fact of a scoring run naming the run whose models scored it (also ``scored_from`` in the manifest;
#: the pages read it through :func:`analysis.scoring.scored_from`).
SCORED_FROM = "scored_from"
#: Suffix of the page that scores one basis (``13_behavioral_scored``).
SCORED_SUFFIX = "_scored"

# Environment for notebook kernels: quiet, deterministic, offline. Given to each kernel at launch;
# the calling process's os.environ is not changed.
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
    parameters: dict[str, Any] = field(default_factory=dict)  # as injected, without config_path/run_dir


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
        out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False)
        commit = out.stdout.strip() or None
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=5, check=False)
        return f"{commit}{'+dirty' if dirty.stdout.strip() else ''}" if commit else None
    except (OSError, subprocess.SubprocessError):
        return None


def markdown_as_text(markdown: str) -> str:
    """Markdown with live markup disarmed: raw HTML, links, images and bare URLs show as text.

    Markdown *outputs* are built from data (``Markdown(f"Top region: {name}")``), and Markdown
    passes raw HTML through and turns ``[text](url)``, ``![alt](url)`` and bare ``https://``
    addresses into links and images, so a region called
    ``[Urgent](https://evil.example/login) ![t](https://evil.example/t.png)`` would become a
    live link and an outside request. Emphasis, code and lists still work; the report emits no
    Markdown links of its own (see :func:`analysis.text.disarm_markdown`). Authored Markdown
    cells are left alone.
    """
    return disarm_markdown(markdown)


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
    page = render_template("failure.html.j2", name=name, error=f"{type(exc).__name__}: {exc}")
    out_html.write_text(page, encoding="utf-8")


def _ipc_kernel_manager(socket_dir: Path, env: dict[str, str] | None = None) -> type:
    """A kernel manager for one notebook run.

    * Local IPC sockets (no TCP ports, no plain-text warning).
    * The kernel's environment is the caller's plus ``env`` (default :data:`KERNEL_ENV`), given
      at launch, so the calling process's ``os.environ`` stays as it is.
    * No SIGINT on shutdown: jupyter_client interrupts a kernel before asking it to shut down.
      After a run the kernel is idle, and the signal only races the kernel's last reply: when it
      lands inside a message handler, ipykernel logs ``[IPKernelApp] ERROR | KeyboardInterrupt
      caught in kernel`` on the run's console. The shutdown request alone stops an idle kernel;
      a kernel that does not stop is killed after ``shutdown_wait_time``.
    """
    from jupyter_client.manager import KernelManager

    kernel_env = dict(KERNEL_ENV if env is None else env)

    class IPCKernelManager(KernelManager):
        def __init__(self, **kw: Any) -> None:
            kw.setdefault("transport", "ipc")
            kw.setdefault("ip", str(socket_dir / "kernel"))
            super().__init__(**kw)

        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            kw["env"] = {**(kw.get("env") or os.environ), **kernel_env}
            return await super()._async_pre_start_kernel(**kw)

        async def _async_interrupt_kernel(self) -> None:
            if self.shutting_down:
                return
            await super()._async_interrupt_kernel()

    return IPCKernelManager


def check_injection(notebook: str, parameters: dict[str, Any]) -> str:
    """The cell papermill will inject, verified to be plain literal assignments; else ConfigError.

    :func:`analysis.config.load_config` already refuses anything else; this is the second line,
    run right before papermill: whatever reaches a kernel from a config is data, never code.

    Returns
    -------
    str
        The source of the injected cell.
    """
    from papermill.translators import PythonTranslator

    def refuse(detail: str) -> ConfigError:
        return ConfigError(f"{notebook}: refusing to run: the injected parameters {detail}. Only literal "
                           f"values under identifier names may be passed (see params.{notebook} in the config).")

    bad = [name for name in parameters if not is_parameter_name(name)]
    if bad:
        raise refuse(f"have names that are not identifiers: {[str(b)[:60] for b in bad]}")
    source = PythonTranslator.codify(parameters)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        raise refuse("do not parse as Python") from None
    assigned = []
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            raise refuse(f"hold a statement that is not an assignment (line {stmt.lineno})")
        try:
            ast.literal_eval(stmt.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            raise refuse(f"assign something other than a literal to {stmt.targets[0].id}") from None
        assigned.append(stmt.targets[0].id)
    if assigned != list(parameters):
        raise refuse(f"assign {assigned}, not {list(parameters)}")
    return source


def notebook_run_parameters(cfg: RunConfig, notebook: Path, run_dir: Path) -> dict[str, Any]:
    """Everything injected into one notebook: the config's ``params.<notebook>``, the top-level
    ``seed`` when the parameters cell declares it, then ``config_path`` and ``run_dir``."""
    declared = notebook_parameters(notebook)
    return {
        **cfg.notebook_params(notebook.stem),
        **cfg.run_parameters(declared),
        "config_path": str(cfg.config_path),
        "run_dir": str(run_dir),
    }


def _execute(nb: Path, out: Path, parameters: dict[str, Any], cwd: Path, socket_dir: Path) -> tuple[str, str, int | None]:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    check_injection(nb.stem, parameters)  # raises before anything runs
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
    except Exception as exc:  # noqa: BLE001 - kernel died, nbformat error, ...: the page shows it
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


def check_run_id(run_id: str, source: str = "--run-id") -> None:
    """Refuse a run id that is not a plain folder name or that the runner uses itself.

    Parameters
    ----------
    run_id : str
        The proposed folder name under ``reports/``.
    source : str
        Where it came from, for the message (``--run-id``, or the config's ``name``).

    Raises
    ------
    ValueError
        One sentence saying why and what to use instead.
    """
    shown = f"{source} {run_id!r}"
    control = next((ch for ch in run_id if unicodedata.category(ch).startswith("C")), None)
    if control is not None:
        what = {"\n": "a line break, ", "\r": "a carriage return, ", "\t": "a tab, ", "\x1b": "an escape, "}.get(control, "")
        raise ValueError(f"{shown} contains a control character ({what}U+{ord(control):04X}); "
                         f"use letters, digits, '.', '_' and '-' only.")
    if run_id.lower() in RESERVED_RUN_IDS:
        raise ValueError(f"{shown} is reserved: reports/{LATEST} always points at the newest complete run; "
                         f"choose another run id.")
    if run_id[:1] in (".", "_"):
        raise ValueError(f"{shown}: names starting with '.' or '_' are reserved for the runner's own folders "
                         f"({STAGING}, _scratch); start with a letter or digit.")
    if not RUN_ID_PATTERN.fullmatch(run_id):
        raise ValueError(f"{shown}: use letters, digits, '.', '_' and '-' only, starting with a letter or digit "
                         f"(at most 100 characters).")


def _update_latest(reports_dir: Path, run_id: str) -> bool:
    """Point ``reports/latest`` at ``run_id`` atomically; False (and nothing left behind) when a
    file or folder that is not a link is in the way."""
    link = reports_dir / LATEST
    tmp = reports_dir / f".{LATEST}-{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    if link.exists() and not link.is_symlink():
        return False
    tmp.symlink_to(run_id, target_is_directory=True)
    try:
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True


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
    for labels in folder.read_labels().values():
        labels = labels.drop(columns=[c for c in labels.columns if c in out.columns and c != "customer_id"])
        out = out.merge(labels, on="customer_id", how="left")
    pii = set(cfg.pii_columns)
    out = out.drop(columns=[c for c in out.columns if c in pii]).sort_values("customer_id", kind="stable")
    folder.write_export("customers.csv", out)
    written["customers.csv"] = len(out)
    profiles = folder.segments_tables()
    if profiles:
        seg = pd.concat(list(profiles.values()), ignore_index=True)
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
    jobs: int | None = None,
    html: bool = True,
) -> RunResult:
    """Execute a run end to end.

    Parameters
    ----------
    config_path : path to the run config.
    run_id : folder name under ``reports/``; default ``<config name>-<UTC timestamp>``.
    only : notebook names to run (default all).
    reports_dir, notebook_dir : where runs go and where notebooks are.
    echo : progress printer.
    jobs : notebooks run side by side (default: the machine's cores, at most 4). Data preparation
        runs first, then every notebook as soon as those it reads from are done
        (:func:`notebook_dependencies`); exports are the same whatever the number of jobs.
    html : render each notebook's page and the index (default). False (``--no-html``) still
        executes every notebook and writes the executed notebooks, labels, models, exports and
        manifest (``pages_rendered: false``), without any HTML.

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
    with _quiet_libraries():
        return _run(config_path, run_id, only, Path(reports_dir), Path(notebook_dir), echo, jobs, html=html)


def _run(
    config_path: str | Path, run_id: str | None, only: list[str] | None, reports_dir: Path, notebook_dir: Path,
    echo: Callable[[str], None], jobs: int | None = None, *, notebooks: list[Path] | None = None,
    facts: dict[str, Any] | None = None, html: bool = True,
) -> RunResult:
    t_start = time.perf_counter()
    if run_id is not None:
        check_run_id(run_id)
    cfg = load_config(config_path, notebook_dir=notebook_dir)
    for table in cfg.sources:  # fail fast on a wrong path or mapping: header only
        io.check_source(cfg, table)
    reports_dir = Path(reports_dir).resolve()
    if notebooks is None:
        notebooks = select_notebooks(discover_notebooks(Path(notebook_dir)), only)
    for nb in notebooks:  # every injected cell is checked before the first notebook starts
        check_injection(nb.stem, notebook_run_parameters(cfg, nb, reports_dir))
    if run_id is None:
        run_id = f"{cfg.name}-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}"
        check_run_id(run_id, source=f"the run id made from name in {cfg.display_path()}")
    final = reports_dir / run_id
    if final.exists():
        raise ValueError(f"{final} already exists: choose another --run-id or remove that folder.")
    staging_root = reports_dir / STAGING
    staging_root.mkdir(parents=True, exist_ok=True)
    _cleanup_stale_staging(staging_root)
    lock = _claim_run_id(staging_root, run_id)
    staging = staging_root / f"{run_id}-{os.getpid()}"
    try:
        if final.exists():
            raise ValueError(f"{final} already exists: choose another --run-id or remove that folder.")
        staging.mkdir()
        return _run_in_staging(cfg, run_id, notebooks, staging, final, reports_dir, Path(notebook_dir), echo, t_start, jobs, facts,
                               html=html)
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
    notebook_dir: Path, echo: Callable[[str], None], t_start: float, jobs: int | None = None,
    facts: dict[str, Any] | None = None, *, html: bool = True,
) -> RunResult:
    folder = io.RunFolder(staging)
    folder.write_fact("config", config_as_dict(cfg))
    for name, payload in (facts or {}).items():  # e.g. scored_from: the pages read it
        folder.write_fact(name, payload)
    return _run_notebooks(cfg, run_id, notebooks, folder, final, reports_dir, notebook_dir, echo, t_start, jobs, html=html)


# Loggers of the execution libraries, quietened while notebooks run (their chatter is not ours).
# tornado.general: a kernel stopped right after a failing cell can leave a ZMQ stream callback
# that logs an "uncaught exception" during shutdown; the notebook's own outcome is already recorded.
_QUIET_LOGGERS = {"papermill": logging.WARNING, "traitlets": logging.ERROR, "tornado.general": logging.CRITICAL}


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Quieten papermill, traitlets and zmq for the run; restore the caller's logging levels and
    warning filters afterwards, however the run ends.

    Filters that libraries install when the run first imports them (urllib3, jupyter_client) go
    too: the caller's ``warnings.filters`` is exactly what it was."""
    saved = {name: logging.getLogger(name).level for name in _QUIET_LOGGERS}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="zmq")
        try:
            for name, level in _QUIET_LOGGERS.items():
                logging.getLogger(name).setLevel(level)
            yield
        finally:
            for name, level in saved.items():
                logging.getLogger(name).setLevel(level)


#: Notebooks that read what another notebook of the same decade writes (besides every notebook
#: of a lower decade, which each notebook waits for): geography cross-tabulates the other
#: bases' labels; value reuses the behavioral page's features and RFM segments.
READS_FROM = {
    "11_geographic": ("10_demographic", "12_psychographic", "13_behavioral"),
    "14_value": ("13_behavioral",),
}

#: Pages that read only what data preparation and the segment pages (decades 0 and 1, scoring pages
#: included) write, so they wait for those and not for the pages of the decades in between.
#: Clienteling reads the validated tables, the customer features and every basis's labels (its
#: playbook is the one the config names, not the personas page's output); monitoring reads the
#: labels, features and saved models of this run and of the run it compares with. Neither reads
#: what the personas page or the other writes (their exports, facts, ``models/personas.json``,
#: ``models/recommendations.json``, the ``migration`` table), and the personas page reads only the
#: bases' models (:func:`analysis.personas.bases.segmentation_verdicts`). When no segment page made
#: the customer features (a run ``--only`` without 13_behavioral), each of them computes the same
#: table and saves it whole (:meth:`analysis.io.RunFolder.write_table`).
READS_ONLY_SEGMENTS = ("30_clienteling", "40_monitoring")


def notebook_dependencies(notebooks: list[Path]) -> dict[str, set[str]]:
    """The notebooks each must wait for (among those being run): every one of a lower decade (00
    before 1x before 20 ...), or only decades 0 and 1 for :data:`READS_ONLY_SEGMENTS`, plus
    :data:`READS_FROM` within its decade.

    Examples
    --------
    >>> names = ("00_data_prep", "13_behavioral", "14_value", "20_personas", "30_clienteling", "40_monitoring")
    >>> deps = notebook_dependencies([Path(f"{n}.ipynb") for n in names])
    >>> sorted(deps["14_value"]), sorted(deps["20_personas"])
    (['00_data_prep', '13_behavioral'], ['00_data_prep', '13_behavioral', '14_value'])
    >>> deps["30_clienteling"] == deps["40_monitoring"] == deps["20_personas"]
    True
    """
    stems = [nb.stem for nb in notebooks]
    decade = {s: int(s[:2]) // 10 for s in stems}
    last = {s: 1 if s in READS_ONLY_SEGMENTS else decade[s] - 1 for s in stems}  # the last decade each waits for
    return {s: {o for o in stems if decade[o] < decade[s] and decade[o] <= last[s]} | {o for o in READS_FROM.get(s, ()) if o in stems}
            for s in stems}


def default_jobs() -> int:
    """Notebooks to run side by side: the machine's cores, at most 4."""
    from .engines import usable_cores

    return usable_cores(4)


def _execute_timed(nb: Path, executed: Path, params: dict[str, Any], notebook_dir: Path) -> tuple[str, str, int | None, float]:
    """Execute one notebook in a fresh kernel: (status, error, failed cell, seconds)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="clientele-kernel-") as socket_dir:
        status, error, cell = _execute(nb, executed, params, notebook_dir, Path(socket_dir))
    return status, error, cell, time.perf_counter() - t0


def _worker(*args: Any) -> tuple[str, str, int | None, float]:
    """:func:`_execute_timed` in a worker process, as quiet as the parent run."""
    with _quiet_libraries():
        return _execute_timed(*args)


def _render_page(stem: str, executed: Path, html_path: Path, status: str, error: str) -> tuple[str, str, str]:
    """Render an executed notebook's page: (status, error, page file name).

    A page that cannot be rendered gets a plain failure page and fails its notebook (the run keeps
    the executed notebook); a notebook that never produced an executed copy gets no page.
    """
    if not executed.exists():
        return status, error, ""
    try:
        render_html(executed, html_path, not_applicable=error if status == "not applicable" else None)
    except Exception as exc:  # noqa: BLE001 - a page that cannot be rendered must not lose the run
        _render_failure_page(html_path, stem, exc)
        return "failed", f"rendering the page failed: {type(exc).__name__}: {exc}", html_path.name
    return status, error, html_path.name


def _worker_stderr_to(path: str) -> None:
    """Pool initializer: the worker's (and its kernels') stderr goes to ``path``, not the terminal.

    Kernel shutdown in a worker can print library noise (tornado, zmq) that says nothing about
    the run; the parent shows the log only when a notebook failed (see :func:`_run_notebooks`).
    """
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(handle, 2)
    os.close(handle)


def _run_notebooks(
    cfg: RunConfig, run_id: str, notebooks: list[Path], folder: io.RunFolder, final: Path, reports_dir: Path,
    notebook_dir: Path, echo: Callable[[str], None], t_start: float, jobs: int | None = None, *, html: bool = True,
) -> RunResult:
    """Execute the notebooks, each as soon as those it reads from are done, and assemble the run.

    Worker processes only execute notebooks; pages are rendered here, in one background thread, as
    notebooks finish, so a page's rendering delays no notebook waiting on its outputs (and
    nbconvert is imported once per run, not once per worker). ``html=False`` renders no page and
    no index.
    """
    staging = folder.path
    jobs = max(1, int(jobs)) if jobs else default_jobs()
    echo(f"Run {run_id}: config {cfg.display_path()}, as of {cfg.as_of}, {len(notebooks)} notebook(s)"
         + (f", up to {jobs} side by side" if jobs > 1 and len(notebooks) > 1 else ""))
    position = {nb.stem: i for i, nb in enumerate(notebooks, 1)}
    deps = notebook_dependencies(notebooks)
    by_stem = {nb.stem: nb for nb in notebooks}
    done: dict[str, NotebookResult] = {}
    prep_failed = False
    tag = lambda stem: f"  [{position[stem]}/{len(notebooks)}] {stem:<22}"

    renderer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="clientele-pages") if html else None
    pages: dict[str, concurrent.futures.Future] = {}

    def finish(stem: str, outcome: tuple[str, str, int | None, float], recorded: dict[str, Any]) -> None:
        nonlocal prep_failed
        status, error, cell, seconds = outcome
        done[stem] = NotebookResult(stem, status, round(seconds, 2), error, "", cell, recorded)
        mark = {"ok": "ok", "not applicable": f"not applicable: {error}"}.get(status, f"FAILED at cell {cell}: {error}")
        echo(f"{tag(stem)} {mark} ({seconds:.1f} s)")
        if status != "ok" and stem.startswith("00_"):
            prep_failed = True
        if renderer is not None:
            pages[stem] = renderer.submit(_render_page, stem, staging / f"{stem}.ipynb", staging / f"{stem}.html", status, error)

    def start(stem: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
        nb = by_stem[stem]
        params = notebook_run_parameters(cfg, nb, staging)
        recorded = {k: v for k, v in params.items() if k not in RESERVED_PARAMETERS}
        echo(f"{tag(stem)} running ...")
        return (nb, staging / f"{stem}.ipynb", params, notebook_dir.resolve()), recorded

    pending = [nb.stem for nb in notebooks]
    parallel = jobs > 1 and len(notebooks) > 1
    worker_log = tempfile.NamedTemporaryFile(prefix="clientele-workers-", suffix=".log", delete=False)  # noqa: SIM115
    worker_log.close()
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_stderr_to, initargs=(worker_log.name,),
    ) if parallel else None
    running: dict[concurrent.futures.Future, tuple[str, dict[str, Any]]] = {}
    try:
        while pending or running:
            if prep_failed:
                for stem in pending:
                    done[stem] = NotebookResult(stem, "skipped", error="data preparation failed")
                    echo(f"{tag(stem)} skipped (data preparation failed)")
                pending = []
                if not running:
                    break
            ready = [s for s in pending if deps[s] <= set(done)]
            while ready and (pool is None or len(running) < jobs):
                stem = ready.pop(0)
                pending.remove(stem)
                args, recorded = start(stem)
                if pool is None:
                    finish(stem, _execute_timed(*args), recorded)
                    break
                running[pool.submit(_worker, *args)] = (stem, recorded)
            if pool is None:
                continue
            if not running:
                if pending and not prep_failed:
                    raise RuntimeError(f"notebooks {pending} wait on each other: check READS_FROM in analysis.runner.")
                continue
            finished, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in sorted(finished, key=lambda f: position[running[f][0]]):
                stem, recorded = running.pop(future)
                finish(stem, future.result(), recorded)
        for stem, page in pages.items():
            status, error, page_name = page.result()
            result = done[stem]
            if status != result.status:
                echo(f"{tag(stem)} FAILED: {error}")
            result.status, result.error, result.html = status, error, page_name
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if renderer is not None:
            renderer.shutdown(wait=True, cancel_futures=True)
        log = Path(worker_log.name)
        noise = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        log.unlink(missing_ok=True)
        if noise.strip() and any(r.status == "failed" for r in done.values()):
            print(f"Output of the notebook workers:\n{noise[-5000:]}", file=sys.stderr)
    results = [done[nb.stem] for nb in notebooks]

    exports = assemble_exports(folder, cfg)
    status = "complete" if all(r.status in ("ok", "not applicable") for r in results) else "failed"
    manifest = build_manifest(cfg, folder, run_id, results, status, exports, time.perf_counter() - t_start, pages_rendered=html)
    folder.write_manifest(manifest)
    if html:
        render_index(folder, manifest)
    if final.exists():
        raise ValueError(f"{final} appeared while this run was in progress; its result is discarded. Choose another --run-id.")
    os.replace(staging, final)
    if status == "complete" and not _update_latest(reports_dir, run_id):
        echo(f"Note: {reports_dir / LATEST} is not a link, so it was left as it is; remove it to have it follow new runs.")
    elapsed = time.perf_counter() - t_start
    shown = io.RunFolder(final).index_path if html else io.RunFolder(final).manifest_path
    echo(f"Run {run_id} {status} in {elapsed:.1f} s -> {shown}" + ("" if html else " (no HTML pages: --no-html)"))
    result = RunResult(run_id, final, status, results)
    if status != "complete":
        failed = [r for r in results if r.status == "failed"]
        detail = "; ".join(f"{r.name} (cell {r.failed_cell}): {r.error}" for r in failed)
        raise RunError(f"run {run_id} failed: {detail}. See {shown}.")
    return result


def build_manifest(cfg: RunConfig, folder: io.RunFolder, run_id: str, results: list[NotebookResult], status: str, exports: dict[str, int],
                   seconds: float, *, pages_rendered: bool = True) -> dict[str, Any]:
    """Everything needed to reproduce or audit a run (``pages_rendered``: False for ``--no-html``)."""
    inputs = folder.read_fact("inputs") or {}
    return {
        "run_id": run_id,
        "status": status,
        "created_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "seconds": round(seconds, 2),
        "config": config_as_dict(cfg),
        "inputs": inputs.get("files", {}),
        "column_mappings": inputs.get("mappings", {}),
        "unmapped_columns": inputs.get("unmapped_columns", {}),
        "ledger": folder.read_ledger(),
        "notebooks": [r.__dict__ for r in results],
        "pages_rendered": pages_rendered,
        "exports": exports,
        "exports_sha256": {p.name: io.sha256_file(p) for p in folder.export_files()},
        "models": folder.read_models(),
        **({"scored_from": folder.read_fact(SCORED_FROM)} if folder.read_fact(SCORED_FROM) else {}),
        "facts": {k: v for k, v in folder.read_facts().items() if k not in ("config", "inputs", SCORED_FROM)},
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


# --------------------------------------------------------------------------------------------
# Scoring runs: this config's data, labelled by another run's saved models (no refit)
# --------------------------------------------------------------------------------------------

def scoring_template(notebook_dir: Path = NOTEBOOK_DIR) -> Path:
    """The page that labels one basis's customers with a saved model (``basis`` is a parameter)."""
    return Path(notebook_dir) / "scoring" / "score_basis.ipynb"


def resolve_model_run(model_run: str | Path, reports_dir: str | Path = REPORTS_DIR) -> io.RunFolder:
    """The complete run ``--model-run`` names: a run id under ``reports_dir`` or a run folder.

    Raises
    ------
    ValueError
        One sentence: no such run, not complete, or no saved model card (and what to do).
    """
    reports = Path(reports_dir)
    candidates = [io.RunFolder(reports / str(model_run)), io.RunFolder(model_run)] if Path(model_run).name == str(model_run) \
        else [io.RunFolder(model_run)]
    folder = next((c for c in candidates if c.manifest_path.exists()), None)
    if folder is None:
        known = sorted((p.parent.name for p in reports.glob(f"*/{io.RunFolder.MANIFEST}")), reverse=True)[:5]
        raise ValueError(f"--model-run {str(model_run)!r}: no run with that id under {reports} and no run folder at that path. "
                         f"Give the id of a complete run{f' (recent: {known})' if known else ''} or its folder.")
    manifest = folder.read_manifest() or {}
    if manifest.get("status") != "complete":
        raise ValueError(f"--model-run {folder.path.name}: the run's status is {manifest.get('status')!r}, not complete; its models "
                         f"may be partial. Score with a complete run (see {folder.index_path}).")
    if not any(isinstance(m, dict) and m.get("saved_model") for m in (manifest.get("models") or {}).values()):
        raise ValueError(f"--model-run {folder.path.name}: the run saved no model with a model card (runs made before models "
                         f"carried one, or runs whose segment pages did not apply). Fit with `analysis run` first, then score with that run.")
    return folder


def scoring_plan(model_folder: io.RunFolder, notebook_dir: Path, workdir: Path) -> tuple[list[Path], list[str]]:
    """The pages of a scoring run: data preparation, one scoring page per basis the model run saved a
    model of (``<notebook>_scored``, written into ``workdir`` with its ``basis`` set), then every page
    from the 20s on (personas, clienteling, monitoring). Returns (notebooks, bases)."""
    import nbformat

    from .segment.registry import BASES  # the registry imports no model code

    models = (model_folder.read_manifest() or {}).get("models") or {}
    bases = [b for b in BASES.values() if isinstance(models.get(b.name), dict) and models[b.name].get("saved_model")]
    pages = discover_notebooks(notebook_dir)
    template = nbformat.read(scoring_template(notebook_dir), as_version=4)
    scored = []
    for basis in bases:  # one page per saved basis (five at most)
        page = nbformat.from_dict(template)
        cell = next(c for c in page.cells if "parameters" in c.metadata.get("tags", []))
        cell.source = re.sub(r"(?m)^basis = .*$", f"basis = {basis.name!r}", cell.source)
        path = workdir / f"{basis.notebook}{SCORED_SUFFIX}.ipynb"
        nbformat.write(page, path)
        scored.append(path)
    first = [nb for nb in pages if nb.stem.startswith("00_")]
    later = [nb for nb in pages if int(nb.stem[:2]) >= 20]
    return first + scored + later, [b.name for b in bases]


def score(
    config_path: str | Path,
    model_run: str | Path,
    run_id: str | None = None,
    reports_dir: str | Path = REPORTS_DIR,
    notebook_dir: str | Path = NOTEBOOK_DIR,
    echo: Callable[[str], None] = print,
    jobs: int | None = None,
    html: bool = True,
) -> RunResult:
    """Label a config's customers with another run's saved models, without refitting.

    The same run machinery as :func:`run` (staging, run-id claim, exports, manifest, index):
    data preparation, then a scoring page per basis the model run saved (``<notebook>_scored``),
    then personas, clienteling and monitoring, which compares with the model run. The manifest
    records ``scored_from`` (run id, folder, as_of and bases of the model run).

    Parameters
    ----------
    config_path : path to the config of the data to score.
    model_run : run id under ``reports_dir`` (or a run folder) whose saved models score the data.
    run_id, reports_dir, notebook_dir, echo, jobs, html : as for :func:`run`.

    Raises
    ------
    ValueError
        When the model run is unknown, incomplete or saved no model.
    ConfigError
        As for :func:`run`.
    RunError
        When a page fails: among others when a saved model does not fit this data (its features or
        data contract differ), with the sentence naming the differences.
    """
    reports_dir = Path(reports_dir).resolve()
    model_folder = resolve_model_run(model_run, reports_dir)
    manifest = model_folder.read_manifest() or {}
    with _quiet_libraries(), tempfile.TemporaryDirectory(prefix="clientele-score-") as workdir:
        notebooks, bases = scoring_plan(model_folder, Path(notebook_dir), Path(workdir))
        echo(f"Scoring with the saved models of run {model_folder.path.name} (as of {manifest.get('config', {}).get('as_of', '?')}): "
             f"{', '.join(bases)}")
        fact = {"run_id": model_folder.path.name, "path": str(model_folder.path.resolve()),
                "config": manifest.get("config", {}).get("name"), "as_of": manifest.get("config", {}).get("as_of"),
                "created_utc": manifest.get("created_utc"), "bases": bases}
        return _run(config_path, run_id, None, reports_dir, Path(notebook_dir), echo, jobs, notebooks=notebooks,
                    facts={SCORED_FROM: fact}, html=html)
