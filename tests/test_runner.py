"""The run pipeline: failure handling, atomic publication, reports/latest."""

from __future__ import annotations

import json
import shutil

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from analysis import runner

from .conftest import SAMPLE_CONFIG


def _notebook(path, body: str):
    nb = new_notebook(cells=[
        new_markdown_cell("# Test page"),
        new_code_cell('config_path = ""\nrun_dir = ""', metadata={"tags": ["parameters"]}),
        new_code_cell(body),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def tiny_notebooks(tmp_path):
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    _notebook(nbdir / "00_data_prep.ipynb", "from analysis import workspace\nrun = workspace.open_run(config_path, run_dir)\nprint(len(run.table('customers')))")
    return nbdir


def test_select_notebooks_by_name():
    nbs = [runner.NOTEBOOK_DIR / n for n in ("00_data_prep.ipynb", "13_behavioral.ipynb")]
    assert runner.select_notebooks(nbs, ["behavioral"]) == nbs[1:]
    assert runner.select_notebooks(nbs, ["00"]) == nbs[:1]
    with pytest.raises(ValueError, match="no such notebook"):
        runner.select_notebooks(nbs, ["nope"])


@pytest.mark.slow
def test_failing_notebook_gets_html_exit_error_and_latest_unchanged(tmp_path, tiny_notebooks):
    reports = tmp_path / "reports"
    ok = runner.run(SAMPLE_CONFIG, run_id="good", reports_dir=reports, notebook_dir=tiny_notebooks, echo=lambda s: None)
    assert ok.status == "complete" and (reports / "latest").resolve() == (reports / "good").resolve()
    _notebook(tiny_notebooks / "10_broken.ipynb", "x = 1\nraise ValueError('planted failure')")
    with pytest.raises(runner.RunError, match=r"10_broken \(cell \d+\): ValueError: planted failure"):
        runner.run(SAMPLE_CONFIG, run_id="bad", reports_dir=reports, notebook_dir=tiny_notebooks, echo=lambda s: None)
    manifest = json.loads((reports / "bad" / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert [n["status"] for n in manifest["notebooks"]] == ["ok", "failed"]
    html = (reports / "bad" / "10_broken.html").read_text()
    assert "planted failure" in html
    assert (reports / "latest").resolve() == (reports / "good").resolve()
    assert not any((reports / ".staging").iterdir())


def test_existing_run_id_is_refused(tmp_path, tiny_notebooks):
    (tmp_path / "reports" / "taken").mkdir(parents=True)
    with pytest.raises(ValueError, match="already exists"):
        runner.run(SAMPLE_CONFIG, run_id="taken", reports_dir=tmp_path / "reports", notebook_dir=tiny_notebooks)


def test_stale_staging_of_dead_process_is_removed(tmp_path):
    staging = tmp_path / ".staging"
    (staging / "old-run-999999999").mkdir(parents=True)
    runner._cleanup_stale_staging(staging)
    assert not (staging / "old-run-999999999").exists()
    shutil.rmtree(staging)


@pytest.mark.slow
def test_not_applicable_page_shows_only_the_reason(tmp_path, tiny_notebooks):
    _notebook(tiny_notebooks / "10_nothing.ipynb",
              "from analysis.config import NotApplicable\nraise NotApplicable('this data has no survey')")
    nb = nbformat.read(tiny_notebooks / "10_nothing.ipynb", as_version=4)
    nb.cells.append(new_markdown_cell("## A heading that must not render"))
    nbformat.write(nb, tiny_notebooks / "10_nothing.ipynb")
    result = runner.run(SAMPLE_CONFIG, run_id="na", reports_dir=tmp_path / "reports", notebook_dir=tiny_notebooks, echo=lambda s: None)
    assert result.status == "complete"
    assert [n.status for n in result.notebooks] == ["ok", "not applicable"]
    html = (tmp_path / "reports" / "na" / "10_nothing.html").read_text()
    assert "this data has no survey" in html
    assert "An Exception was encountered" not in html and "must not render" not in html and "Traceback" not in html
