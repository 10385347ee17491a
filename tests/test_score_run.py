"""``analysis score``: a config's data labelled by another run's saved models, through the run machinery."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from analysis import io, runner
from analysis.config import notebook_parameters

from .conftest import PROJECT_ROOT, SAMPLE_CONFIG, analysis, background_run
from .test_notebooks import test_notebook_has_no_function_or_class_definitions as _no_definitions
from .test_notebooks import test_notebook_is_stripped_with_one_literal_parameters_cell as _stripped

TEMPLATE = runner.scoring_template(PROJECT_ROOT / "notebooks")


def test_scoring_page_is_a_clean_parameterized_notebook():
    _stripped(TEMPLATE)
    _no_definitions(TEMPLATE)
    assert set(notebook_parameters(TEMPLATE)) == {"config_path", "run_dir", "basis", "model_run"}


def _model_run(path, models: dict, status: str = "complete") -> io.RunFolder:
    folder = io.RunFolder(path)
    folder.write_manifest({"status": status, "config": {"name": "x", "as_of": "2011-06-30"}, "models": models})
    return folder


def test_scoring_plan_has_one_page_per_saved_basis(tmp_path):
    card = {"saved_model": {"features": ["frequency"]}}
    folder = _model_run(tmp_path / "fit", {"behavioral": card, "geographic": card, "demographic": {"available": False}, "personas": {}})
    work = tmp_path / "work"
    work.mkdir()
    notebooks, bases = runner.scoring_plan(folder, PROJECT_ROOT / "notebooks", work)
    assert bases == ["geographic", "behavioral"]  # registry order; demographic saved no model
    stems = [nb.stem for nb in notebooks]
    assert stems[:3] == ["00_data_prep", "11_geographic_scored", "13_behavioral_scored"]
    assert stems[3:] == [nb.stem for nb in runner.discover_notebooks(PROJECT_ROOT / "notebooks") if int(nb.stem[:2]) >= 20]
    assert notebook_parameters(work / "13_behavioral_scored.ipynb")["basis"] == "behavioral"
    assert notebook_parameters(work / "11_geographic_scored.ipynb")["basis"] == "geographic"


@pytest.mark.parametrize(("status", "models", "message"), [
    ("failed", {"behavioral": {"saved_model": {}}}, "not complete"),
    ("complete", {"behavioral": {"available": True, "verdict": "clear"}}, "saved no model with a model card"),
])
def test_model_run_that_cannot_score_is_refused(tmp_path, status, models, message):
    _model_run(tmp_path / "fit", models, status)
    with pytest.raises(ValueError, match=message):
        runner.resolve_model_run("fit", tmp_path)


def test_unknown_model_run_is_refused_in_one_sentence(tmp_path):
    _model_run(tmp_path / "reports" / "fit-2011h1", {"behavioral": {"saved_model": {"features": []}}})
    proc = subprocess.run([sys.executable, "-m", "analysis", "score", "--model-run", "fit-2011", "--config", str(SAMPLE_CONFIG),
                           "--reports-dir", str(tmp_path / "reports")], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "--model-run 'fit-2011': no run with that id" in proc.stderr and "fit-2011h1" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert runner.resolve_model_run("fit-2011h1", tmp_path / "reports").path.name == "fit-2011h1"


# ------------------------------------------------------------------------------------------
# End to end on the sample: fit some bases, score the same data, and data the models do not fit
# ------------------------------------------------------------------------------------------


def _cli(*args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analysis", *args], check=False, capture_output=True, text=True, timeout=timeout)


def _fit_and_score(folder: Path) -> tuple[Path, subprocess.CompletedProcess]:
    reports = folder / "reports"
    fit = analysis("run", "--config", str(SAMPLE_CONFIG), "--run-id", "fit", "--reports-dir", str(reports),
                   "--only", "00_data_prep", "11_geographic", "13_behavioral", timeout=1500)
    assert fit.returncode == 0, fit.stdout[-2000:] + fit.stderr[-2000:]
    scored = analysis("score", "--model-run", "fit", "--config", str(SAMPLE_CONFIG), "--run-id", "scored", "--reports-dir", str(reports),
                      timeout=1500)
    return reports, scored


background_run("fitted_and_scored", _fit_and_score)


@pytest.fixture(scope="module")
def fitted_and_scored(background_runs):
    """The sample fitted on three pages (run ``fit``), then scored with that run (``scored``), in the background."""
    return background_runs.result("fitted_and_scored")


@pytest.mark.slow
def test_scoring_the_sample_with_its_own_run_gives_the_same_exports_and_no_alert(fitted_and_scored):
    reports, proc = fitted_and_scored
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((reports / "scored" / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["scored_from"]["run_id"] == "fit" and manifest["scored_from"]["bases"] == ["geographic", "behavioral"]
    statuses = {n["name"]: n["status"] for n in manifest["notebooks"]}
    assert statuses["11_geographic_scored"] == statuses["13_behavioral_scored"] == statuses["40_monitoring"] == "ok"
    assert manifest["models"]["behavioral"]["scored_from"] == "fit" and manifest["models"]["behavioral"]["verdict"] == "clear"
    fitted = pd.read_csv(reports / "fit" / "exports" / "customers.csv", dtype=str)
    scored = pd.read_csv(reports / "scored" / "exports" / "customers.csv", dtype=str)
    pd.testing.assert_frame_equal(scored[fitted.columns], fitted)
    assert manifest["facts"]["summary_40_monitoring"]["alerts"] == []
    page = (reports / "scored" / "40_monitoring.html").read_text(encoding="utf-8")
    assert "No drift alerts." in page and "scored with run fit" in page
    # the scoring run saved the models it used, with the fitting run's card: it can score later data in turn
    card = io.RunFolder(reports / "scored").read_model("behavioral")["saved_model"]
    assert card == io.RunFolder(reports / "fit").read_model("behavioral")["saved_model"]


@pytest.mark.slow
def test_data_without_the_models_features_fail_with_the_difference_named(fitted_and_scored, tmp_path):
    reports, _ = fitted_and_scored
    cfg = yaml.safe_load(SAMPLE_CONFIG.read_text())
    for source in cfg["sources"].values():
        source["path"] = str((SAMPLE_CONFIG.parent / source["path"]).resolve())
    del cfg["sources"]["events"]  # no web events: no sessions_per_month feature
    path = tmp_path / "no-events.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = _cli("score", "--model-run", "fit", "--config", str(path), "--run-id", "no-events", "--reports-dir", str(reports))
    assert proc.returncode == 1
    assert "13_behavioral_scored" in proc.stderr and "missing here ['sessions_per_month']" in proc.stderr
