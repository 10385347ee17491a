"""Shared fixtures: project paths, the public data root, small configs written on the fly, and the
runs the tests read, executed in the background.

A full run takes minutes, so the runs that more than one module reads are executed once per
session (:func:`sample_run`, :func:`hostile_runs`, :func:`online_retail_run`) and read, never
changed, by the tests: a test that must change a run copies it first (``shutil.copytree``).
These and the modules' own run fixtures (registered with :func:`background_run`) start in the
background as soon as the session starts, one after another in the order the tests need them,
and the modules that read them run last (:func:`pytest_collection_modifyitems`), so the rest of
the suite runs on the other core meanwhile instead of waiting.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

# One BLAS/OpenMP thread, as a run gives its notebook kernels (analysis.runner.KERNEL_ENV): the
# small fits in tests gain nothing from threads, and on a shared machine scikit-learn's OpenMP
# threads spin against other work (k-means tests ran a third slower). Set before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CLIENTELE_DATA_ROOT") or PROJECT_ROOT.parent / "shared" / "data")
SAMPLE_CONFIG = PROJECT_ROOT / "config" / "sample.yaml"


def shared_path(*parts: str) -> Path:
    """A path under the public data root; skips the test when the data set is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"public data set not available at {path} (set CLIENTELE_DATA_ROOT to its folder)")
    return path


@pytest.fixture
def write_config(tmp_path):
    """Write a run config (dict or YAML text) next to data files in tmp_path; return its path."""

    def _write(cfg: dict | str, name: str = "run.yaml") -> Path:
        path = tmp_path / name
        text = textwrap.dedent(cfg) if isinstance(cfg, str) else yaml.safe_dump(cfg, sort_keys=False)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


# ------------------------------------------------------------------------------------------
# Runs executed in the background: the shared ones below, and the modules' own run fixtures
# ------------------------------------------------------------------------------------------

RUN_TIMEOUT = 2400  # seconds for one run; the full Online Retail run is the longest


class _Processes:
    """The background runs' processes, each in its own process group (the run, its workers and its
    kernels), so that a session that ends before a run does (``-x``, Ctrl-C, a failure) ends the whole run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started: list[subprocess.Popen] = []
        self._ended = False

    def start(self, args: list[str]) -> subprocess.Popen:
        # a little below the tests' own priority: timed tests (``analysis check`` in under 5 s) keep their core
        nice = ["nice", "-n", "5"] if shutil.which("nice") else []
        with self._lock:
            if self._ended:
                raise RuntimeError("the test session has ended: no further run starts")
            proc = subprocess.Popen([*nice, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
            self._started.append(proc)
        return proc

    def end_all(self) -> None:
        """End every run still going, and start no other."""
        with self._lock:
            self._ended = True
            running = [p for p in self._started if p.poll() is None]
        for proc in running:
            _kill_group(proc)
            proc.wait()  # its output is read by the thread that waits for it


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


_PROCESSES = _Processes()


def start_process(args: list[str]) -> subprocess.Popen:
    """Start ``args`` (an ``analysis`` command) for a background run: output captured, ended with the session."""
    return _PROCESSES.start(args)


def finish_process(proc: subprocess.Popen, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    """Wait for ``proc``; past ``timeout`` end its whole process group and return what it printed."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        err += f"\n(killed by the test session after {timeout} s)"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def analysis_command(*args: str) -> list[str]:
    """``analysis <args>`` with this interpreter."""
    return [sys.executable, "-m", "analysis", *args]


def analysis(*args: str, timeout: float = RUN_TIMEOUT) -> subprocess.CompletedProcess:
    """``analysis <args>`` for a background run: started with :func:`start_process`, waited for."""
    return finish_process(start_process(analysis_command(*args)), timeout=timeout)


def _analysis_run(config: Path, run_id: str, reports: Path, *extra: str) -> list[str]:
    return analysis_command("run", "--config", str(config), "--run-id", run_id, "--reports-dir", str(reports), *extra)


class _RunSpec(NamedTuple):
    prepare: Callable[[Path], Any] | None
    execute: Callable[..., Any]
    data: tuple[str, ...] | None


#: fixture name -> how the session executes that fixture's run in the background
BACKGROUND_RUNS: dict[str, _RunSpec] = {}


def background_run(name: str, execute: Callable[..., Any], *, prepare: Callable[[Path], Any] | None = None,
                   data: tuple[str, ...] | None = None) -> None:
    """Have the session execute the run of the fixture ``name`` in the background.

    ``prepare(folder)``, if given, writes the run's inputs into a fresh ``folder`` in the test
    process's own thread; ``execute(folder[, prepared])`` then starts and waits for the run's
    processes (:func:`start_process`, :func:`finish_process`) in the background thread, and what it
    returns (or raises) is what ``background_runs.result(name)`` returns (or raises) to the fixture.
    ``data``: the public data set the run needs (without it, nothing starts and the fixture skips).
    Call at module level, so the session knows the run before its first test.
    """
    known = BACKGROUND_RUNS.get(name)
    if known is not None and known.execute.__qualname__ != execute.__qualname__:
        raise ValueError(f"background run {name!r} is registered twice ({known.execute.__qualname__}, {execute.__qualname__})")
    BACKGROUND_RUNS[name] = _RunSpec(prepare, execute, data)


def _runs_needed(items: list[pytest.Item]) -> list[str]:
    """The background runs these tests read, in the order the first of them needs each."""
    needed: list[str] = []
    for item in items:
        for name in getattr(item, "fixturenames", ()):
            if name in BACKGROUND_RUNS and name not in needed:
                needed.append(name)
    return needed


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Modules that read a background run go last (in their usual order, each module whole, so its
    module fixtures are set up once): the runs execute while the other modules' tests run."""
    readers = {item.nodeid.split("::")[0] for item in items if _runs_needed([item])}
    items[:] = [i for i in items if i.nodeid.split("::")[0] not in readers] + [i for i in items if i.nodeid.split("::")[0] in readers]


class _BackgroundRuns:
    """The background runs of one session, executed one after another in one background thread."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="background-run")
        self._futures: dict[str, Future] = {}

    def start(self, name: str) -> None:
        if name in self._futures:
            return
        spec = BACKGROUND_RUNS[name]
        if spec.data is not None and not SHARED_DATA.joinpath(*spec.data).exists():
            return  # the fixture skips its tests
        # folders and inputs are made here, not in the background thread, which only waits for processes
        folder = self._tmp.mktemp(name.replace("_", "-"))
        prepared = () if spec.prepare is None else (spec.prepare(folder),)
        self._futures[name] = self._pool.submit(spec.execute, folder, *prepared)

    def result(self, name: str) -> Any:
        """What the run of fixture ``name`` returned, once it has finished (started now if it was not)."""
        spec = BACKGROUND_RUNS[name]
        if spec.data is not None:
            shared_path(*spec.data)
        self.start(name)
        return self._futures[name].result()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        _PROCESSES.end_all()


_SESSION_RUNS: list[_BackgroundRuns] = []


@pytest.fixture(scope="session", autouse=True)
def background_runs(request, tmp_path_factory):
    """Start the background runs this session's tests read, before the first test."""
    runs = _BackgroundRuns(tmp_path_factory)
    _SESSION_RUNS.append(runs)
    for name in _runs_needed(request.session.items):
        runs.start(name)
    yield runs
    runs.close()


def pytest_sessionfinish(session, exitstatus):
    """A session that ends early (``-x``, Ctrl-C) leaves no background run going and starts no queued one."""
    for runs in _SESSION_RUNS:
        runs.close()
    _PROCESSES.end_all()


# ---- the runs several modules read -----------------------------------------------------------


def _execute_sample_run(folder: Path) -> tuple[subprocess.CompletedProcess, Path]:
    reports = folder / "reports"
    return finish_process(start_process(_analysis_run(SAMPLE_CONFIG, "ci-sample", reports))), reports


def _execute_online_retail_run(folder: Path) -> tuple[subprocess.CompletedProcess, Path]:
    reports = folder / "reports"
    return finish_process(start_process(_analysis_run(PROJECT_ROOT / "config" / "online_retail.yaml", "retail", reports))), reports


def _prepare_hostile_runs(folder: Path) -> Path:
    return _hostile_sample(folder / "data")


def _execute_hostile_runs(folder: Path, config_path: Path) -> tuple[Path, Path, dict[str, subprocess.CompletedProcess]]:
    reports = folder / "reports"
    procs = {run_id: start_process(_analysis_run(config_path, run_id, reports, "--jobs", jobs))
             for run_id, jobs in (("hostile-a", "1"), ("hostile-b", "2"))}
    return config_path, reports, {run_id: finish_process(proc) for run_id, proc in procs.items()}


background_run("sample_run", _execute_sample_run)
background_run("hostile_runs", _execute_hostile_runs, prepare=_prepare_hostile_runs)
background_run("online_retail_run", _execute_online_retail_run, data=("online_retail",))


@pytest.fixture(scope="session")
def sample_run(background_runs):
    """One full run of every notebook on the bundled sample, through the real CLI.

    Read by the notebook, page, browser, PDF, persona, recommendation and safety tests.
    Returns the finished process and the reports folder (the run is ``<reports>/ci-sample``).
    """
    return background_runs.result("sample_run")


@pytest.fixture(scope="session")
def online_retail_run(background_runs):
    """One full run of every notebook on UCI Online Retail (public data: skipped without it), through the
    real CLI. Read by the page scan and the end-to-end check of the ledger and the value model.
    Returns the finished process and the reports folder (the run is ``<reports>/retail``).
    """
    return background_runs.result("online_retail_run")


# Strings a hostile or careless data export can carry; they must show as text in every page.
HOSTILE_PRODUCT = "<script>alert(1)</script>"
HOSTILE_NAME = 'Zoë <img src=x onerror="alert(2)">'
HOSTILE_CITY = '<b onmouseover="alert(3)">Springfield</b><img src=x onerror=alert(4)>'
HOSTILE_DESCRIPTION = "Hostile strings <script>alert(5)</script> & friends"


def _hostile_sample(folder: Path) -> Path:
    """A small generated sample with hostile strings in a product name, a customer name, a city and
    the config description; returns the run config."""
    import pandas as pd

    from analysis.sample import write_sample

    paths = write_sample(folder, n_customers=1000, random_state=11)
    customers = pd.read_csv(paths["customers"], dtype=str, keep_default_na=False)
    customers.loc[0, "name"] = HOSTILE_NAME
    top_city = customers["city"].value_counts().index[0]
    customers.loc[customers["city"] == top_city, "city"] = HOSTILE_CITY
    customers.to_csv(paths["customers"], index=False)
    tx = pd.read_csv(paths["transactions"], dtype=str, keep_default_na=False)
    top_product = tx["product_id"].value_counts().index[0]
    tx.loc[tx["product_id"] == top_product, "product_name"] = HOSTILE_PRODUCT
    tx.to_csv(paths["transactions"], index=False)
    cfg = yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    cfg["name"] = "hostile"
    cfg["description"] = HOSTILE_DESCRIPTION
    for table, source in cfg["sources"].items():
        source["path"] = str(paths[table])
    config_path = folder / "hostile.yaml"
    config_path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return config_path


@pytest.fixture(scope="session")
def hostile_runs(background_runs):
    """Two full runs of one config started at once (run ids ``hostile-a``, ``hostile-b``):
    ``hostile-a`` runs its notebooks one after another (``--jobs 1``), ``hostile-b`` side by side.

    The data are a 1,000-customer generated sample carrying hostile strings (see ``HOSTILE_*``).
    Used for determinism (same config and seed: byte-identical exports), concurrency (two runs
    at once do not corrupt each other) and HTML safety. Returns (config, reports, {run_id: proc}).
    """
    return background_runs.result("hostile_runs")
