"""The environment `make setup` builds: the project kernel JupyterLab offers imports the package."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import PROJECT_ROOT

KERNEL = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "clientele" / "kernel.json"


def test_makefile_front_door_targets():
    out = subprocess.run(["make", "-s", "help"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30).stdout
    for target in ("setup", "report", "test", "lab", "clean"):
        assert f"make {target}" in out


@pytest.mark.slow
def test_project_kernel_is_registered_and_imports_analysis():
    if not KERNEL.exists():
        pytest.skip(f"project kernel not registered in this environment ({KERNEL}); run `make setup`")
    spec = json.loads(KERNEL.read_text())
    assert Path(spec["argv"][0]).resolve().parent == Path(sys.executable).resolve().parent
    from nbclient import NotebookClient
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell("import analysis, analysis.workspace\nprint(analysis.__file__)")])
    NotebookClient(nb, kernel_name="clientele", timeout=120).execute()
    printed = nb.cells[0].outputs[0]["text"]
    assert str(PROJECT_ROOT / "src" / "analysis") in printed
