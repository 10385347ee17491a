"""Shared fixtures: project paths, the public data root, small configs written on the fly."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

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


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """One full run of every notebook on the bundled sample, through the real CLI.

    Shared by the notebook, browser and safety tests: a full run takes minutes, so it runs once.
    Returns the finished process and the reports folder (the run is ``<reports>/ci-sample``).
    """
    reports = tmp_path_factory.mktemp("reports")
    proc = subprocess.run(
        [sys.executable, "-m", "analysis", "run", "--config", str(SAMPLE_CONFIG), "--run-id", "ci-sample", "--reports-dir", str(reports)],
        check=False, capture_output=True, text=True, timeout=1800,
    )
    return proc, reports


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
def hostile_runs(tmp_path_factory):
    """Two full runs of one config started at once (run ids ``hostile-a``, ``hostile-b``):
    ``hostile-a`` runs its notebooks one after another (``--jobs 1``), ``hostile-b`` side by side.

    The data are a 1,000-customer generated sample carrying hostile strings (see ``HOSTILE_*``).
    Used for determinism (same config and seed: byte-identical exports), concurrency (two runs
    at once do not corrupt each other) and HTML safety. Returns (config, reports, {run_id: proc}).
    """
    folder = tmp_path_factory.mktemp("hostile")
    config_path = _hostile_sample(folder / "data")
    reports = folder / "reports"
    procs = {
        run_id: subprocess.Popen(
            [sys.executable, "-m", "analysis", "run", "--config", str(config_path), "--run-id", run_id, "--reports-dir", str(reports),
             "--jobs", jobs],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for run_id, jobs in (("hostile-a", "1"), ("hostile-b", "2"))
    }
    done = {}
    for run_id, proc in procs.items():
        try:
            out, err = proc.communicate(timeout=1800)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        done[run_id] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return config_path, reports, done
