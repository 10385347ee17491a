"""Runs are deterministic and atomic: same inputs, same bytes; a killed run leaves nothing behind.

* Determinism: two full runs of one config (started at once) give byte-identical exports and
  identical labels, and the manifest records what would change them.
* Atomicity: ``analysis run`` killed (SIGKILL to its process group) after the first notebook
  leaves ``reports/latest`` and ``reports/`` as they were; the next run cleans up after it.
* Concurrency: two runs started at once with different run ids both complete, uncorrupted; two
  with the same run id cannot both publish.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from analysis import io, runner

from .conftest import PROJECT_ROOT
from .test_bad_inputs import CUSTOMERS, TRANSACTIONS


def _wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def _tiny_config(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    (folder / "transactions.csv").write_text(TRANSACTIONS, encoding="utf-8")
    path = folder / "tiny.yaml"
    path.write_text(
        "name: tiny\nas_of: 2024-12-31\nsources:\n  customers:\n    path: customers.csv\n"
        "  transactions:\n    path: transactions.csv\n",
        encoding="utf-8",
    )
    return path


def _start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "analysis", "run", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, start_new_session=True,  # its own process group, so the test can kill the whole run
    )


def _finish(proc: subprocess.Popen, timeout: float = 600) -> subprocess.CompletedProcess:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"{proc.args} did not finish in {timeout} s:\n{out}\n{err}")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


# ------------------------------------------------------------------------------------------
# Determinism
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_same_config_and_seed_give_byte_identical_exports(hostile_runs):
    """Also whether notebooks run one after another (hostile-a) or side by side (hostile-b)."""
    _, reports, procs = hostile_runs
    assert "side by side" in procs["hostile-b"].stdout and "side by side" not in procs["hostile-a"].stdout
    for run_id, proc in procs.items():
        assert proc.returncode == 0, f"{run_id}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    a, b = reports / "hostile-a", reports / "hostile-b"
    exports_a = sorted(p.name for p in (a / "exports").iterdir())
    assert exports_a == sorted(p.name for p in (b / "exports").iterdir())
    assert {"customers.csv", "segments.csv"} <= set(exports_a)
    for name in exports_a:
        assert (a / "exports" / name).read_bytes() == (b / "exports" / name).read_bytes(), f"exports/{name} differs"
    manifest_a = json.loads((a / "manifest.json").read_text())
    manifest_b = json.loads((b / "manifest.json").read_text())
    assert manifest_a["exports_sha256"] == {name: io.sha256_file(a / "exports" / name) for name in exports_a}
    assert manifest_a["exports_sha256"] == manifest_b["exports_sha256"]


@pytest.mark.slow
def test_customer_features_are_identical_across_runs(hostile_runs):
    _, reports, _ = hostile_runs
    a, b = reports / "hostile-a", reports / "hostile-b"
    pd.testing.assert_frame_equal(pd.read_parquet(a / "data" / "features.parquet"), pd.read_parquet(b / "data" / "features.parquet"),
                                  check_exact=True)


@pytest.mark.slow
def test_same_config_and_seed_give_identical_labels_and_models(hostile_runs):
    _, reports, _ = hostile_runs
    a, b = reports / "hostile-a", reports / "hostile-b"
    labels = sorted(p.name for p in (a / "labels").glob("*.parquet"))
    assert labels and labels == sorted(p.name for p in (b / "labels").glob("*.parquet"))
    for name in labels:
        pd.testing.assert_frame_equal(pd.read_parquet(a / "labels" / name), pd.read_parquet(b / "labels" / name), check_exact=True)
    manifest_a = json.loads((a / "manifest.json").read_text())
    manifest_b = json.loads((b / "manifest.json").read_text())
    assert manifest_a["models"] == manifest_b["models"]
    assert manifest_a["ledger"] == manifest_b["ledger"]


@pytest.mark.slow
def test_manifest_records_what_would_change_the_exports(hostile_runs):
    config_path, reports, _ = hostile_runs
    manifest = json.loads((reports / "hostile-a" / "manifest.json").read_text())
    assert manifest["config"]["seed"] == 42 and manifest["config"]["as_of"] == "2025-01-01"
    assert manifest["config"]["config_path"] == str(config_path)
    for table in ("customers", "transactions", "survey", "events"):
        (entry,) = manifest["inputs"][table]
        assert entry["sha256"] == io.sha256_file(entry["path"])
    assert {"python", "pandas", "numpy", "scikit-learn", "pymc-marketing"} <= set(manifest["versions"])
    assert manifest["kernel_env"]["PYTHONHASHSEED"] == "0" and manifest["kernel_env"]["OMP_NUM_THREADS"] == "1"
    assert "git_commit" in manifest and "exports_sha256" in manifest
    for word in ("seed", "as_of", "params", "sha256", "versions", "kernel_env"):
        assert word in manifest["reproducibility"]


@pytest.mark.slow
def test_two_full_runs_at_once_are_both_complete_and_uncorrupted(hostile_runs):
    _, reports, procs = hostile_runs
    for run_id in procs:
        run = reports / run_id
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["run_id"] == run_id and manifest["status"] == "complete"
        assert all(nb["status"] in ("ok", "not applicable") for nb in manifest["notebooks"])
        for nb in manifest["notebooks"]:
            executed = nbformat.read(run / f"{nb['name']}.ipynb", as_version=4)
            params = next(c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", []))
            assert f"/{run_id}-" in params.source, f"{run_id}/{nb['name']} ran against another run's folder"
        assert f"Run <b>{run_id}</b>" in (run / "index.html").read_text(encoding="utf-8")
    assert os.readlink(reports / "latest") in procs
    assert not [p for p in (reports / ".staging").iterdir()], "staging folders or locks left behind"


# ------------------------------------------------------------------------------------------
# Atomicity: kill a run after its first notebook
# ------------------------------------------------------------------------------------------


def _project_copy(root: Path) -> dict[str, str]:
    """A copy of the package with the real data-prep notebook and a second notebook that waits.

    ``analysis run`` finds notebooks next to the package (``<project>/notebooks``), so running
    the real CLI on this copy (``PYTHONPATH``) gives a run that is reliably still busy after its
    first notebook. Returns the environment for the CLI.
    """
    shutil.copytree(PROJECT_ROOT / "src" / "analysis", root / "src" / "analysis", ignore=shutil.ignore_patterns("__pycache__"))
    notebooks = root / "notebooks"
    notebooks.mkdir()
    shutil.copy(PROJECT_ROOT / "notebooks" / "00_data_prep.ipynb", notebooks)
    nb = new_notebook(cells=[
        new_markdown_cell("# A slow page"),
        new_code_cell('config_path = ""\nrun_dir = ""', metadata={"tags": ["parameters"]}),
        new_code_cell("import os, pathlib, time\npathlib.Path(run_dir, 'kernel.pid').write_text(str(os.getpid()))\ntime.sleep(600)"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, notebooks / "10_slow.ipynb")
    return {**os.environ, "PYTHONPATH": str(root / "src")}


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie still answers kill(0); it has finished running
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"


@pytest.mark.slow
def test_killed_run_leaves_latest_unchanged_and_no_run_folder(tmp_path):
    env = _project_copy(tmp_path / "project")
    config_path = _tiny_config(tmp_path / "data")
    reports = tmp_path / "reports"
    common = ["--config", str(config_path), "--reports-dir", str(reports)]
    first = _finish(_start([*common, "--run-id", "before", "--only", "00_data_prep"], env))
    assert first.returncode == 0, first.stdout + first.stderr
    assert os.readlink(reports / "latest") == "before"
    before = sorted(p.name for p in reports.iterdir())

    victim = _start([*common, "--run-id", "killed"], env)
    staging = _wait_for(lambda: next((reports / ".staging").glob("killed-*/00_data_prep.html"), None), 180,
                        "the first notebook's page in staging").parent
    kernel_pid = int(_wait_for(lambda: (staging / "kernel.pid").exists() and (staging / "kernel.pid").read_text(), 120,
                               "the second notebook to start"))
    os.killpg(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    assert victim.returncode == -signal.SIGKILL

    assert os.readlink(reports / "latest") == "before"
    assert sorted(p.name for p in reports.iterdir()) == before, "a killed run must not publish anything"
    assert not (reports / "killed").exists()
    assert not (staging / "manifest.json").exists() and not (staging / "index.html").exists()
    # the kernel notices its runner is gone and exits by itself (ipykernel's parent poller)
    try:
        _wait_for(lambda: _pid_gone(kernel_pid), 30, f"the orphaned kernel (pid {kernel_pid}) to exit", interval=0.2)
    finally:
        if not _pid_gone(kernel_pid):
            os.kill(kernel_pid, signal.SIGKILL)

    # the next run may reuse the run id, and removes the dead run's staging folder and claim
    again = _finish(_start([*common, "--run-id", "killed", "--only", "00_data_prep"], env))
    assert again.returncode == 0, again.stdout + again.stderr
    assert os.readlink(reports / "latest") == "killed"
    assert json.loads((reports / "killed" / "manifest.json").read_text())["status"] == "complete"
    assert not list((reports / ".staging").iterdir())


# ------------------------------------------------------------------------------------------
# Concurrency (data prep only, for speed)
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_runs_at_once_with_different_ids_both_complete(tmp_path):
    config_path = _tiny_config(tmp_path / "data")
    reports = tmp_path / "reports"
    procs = {rid: _start(["--config", str(config_path), "--run-id", rid, "--only", "00_data_prep", "--reports-dir", str(reports)])
             for rid in ("left", "right")}
    results = {rid: _finish(proc) for rid, proc in procs.items()}
    for rid, proc in results.items():
        assert proc.returncode == 0, f"{rid}: {proc.stdout}{proc.stderr}"
        manifest = json.loads((reports / rid / "manifest.json").read_text())
        assert manifest["run_id"] == rid and manifest["status"] == "complete"
        totals = {t["table"]: t for t in manifest["ledger"]["totals"]}
        assert totals["transactions"]["read"] == 14 and totals["customers"]["read"] == 6
    for table in ("customers", "transactions"):
        pd.testing.assert_frame_equal(pd.read_parquet(reports / "left" / "data" / f"{table}.parquet"),
                                      pd.read_parquet(reports / "right" / "data" / f"{table}.parquet"))
    assert (reports / "left" / "exports" / "customers.csv").read_bytes() == (reports / "right" / "exports" / "customers.csv").read_bytes()
    assert os.readlink(reports / "latest") in ("left", "right")
    assert not list((reports / ".staging").iterdir())


@pytest.mark.slow
def test_two_runs_at_once_with_the_same_id_cannot_both_publish(tmp_path):
    config_path = _tiny_config(tmp_path / "data")
    reports = tmp_path / "reports"
    args = ["--config", str(config_path), "--run-id", "same", "--only", "00_data_prep", "--reports-dir", str(reports)]
    procs = [_start(args), _start(args)]
    results = [_finish(p) for p in procs]
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 2], [r.stdout + r.stderr for r in results]
    loser = next(r for r in results if r.returncode == 2)
    assert "--run-id 'same' is in use by a run still in progress" in loser.stderr or "already exists" in loser.stderr
    assert "Traceback" not in loser.stderr
    manifest = json.loads((reports / "same" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert not list((reports / ".staging").iterdir())


# ------------------------------------------------------------------------------------------
# Run-id claims (fast, in process)
# ------------------------------------------------------------------------------------------


def test_a_claimed_run_id_is_refused_until_released(tmp_path):
    lock = runner._claim_run_id(tmp_path, "r1")
    assert (tmp_path / "r1.lock").read_text() == str(os.getpid())
    with pytest.raises(ValueError, match=rf"--run-id 'r1' is in use by a run still in progress \(pid {os.getpid()}\)"):
        runner._claim_run_id(tmp_path, "r1")
    runner._cleanup_stale_staging(tmp_path)
    assert (tmp_path / "r1.lock").exists(), "a held claim is not stale"
    runner._release(lock)
    assert not (tmp_path / "r1.lock").exists()
    runner._release(runner._claim_run_id(tmp_path, "r1"))


def test_a_claim_left_by_a_killed_run_is_stale(tmp_path):
    (tmp_path / "dead.lock").write_text("999999999")  # nobody holds a lock on it
    runner._cleanup_stale_staging(tmp_path)
    assert not (tmp_path / "dead.lock").exists()
    (tmp_path / "dead.lock").write_text("999999999")
    runner._release(runner._claim_run_id(tmp_path, "dead"))  # taken over, not refused
