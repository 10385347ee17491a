"""``io.RunFolder`` owns the run-folder layout: nobody else spells a run-folder path.

The rule the grep test enforces, on code only (``src/analysis`` except ``io.py``, and the code
cells of ``notebooks/``; docstrings, comments and Markdown cells are prose for readers and may
mention ``exports/customers.csv``):

1. No string literal (f-string pieces included) that *is* a run-folder path: a literal without
   whitespace that starts with, or contains, ``data/``, ``labels/``, ``models/``, ``facts/``,
   ``set_aside/`` or ``exports/``, or ends in ``.parquet`` or ``.joblib``, or is ``manifest.json``
   or ``ledger.json``. A sentence shown to a reader (it has spaces) is not a path.
2. No run-folder sub-folder name (``"data"``, ``"labels"``, ...) joined onto a run folder's
   ``.path`` with ``/``, or handed to ``RunFolder.sub``/``read_json``/``write_json``/``read_all_json``:
   use the named methods (``write_fact``, ``read_ledger``, ``labels_path``, ...).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from analysis import io

from .conftest import PROJECT_ROOT

SUBFOLDERS = {"data", "labels", "models", "facts", "set_aside", "exports"}
PATH_LITERAL = re.compile(
    r"(^|/)(data|labels|models|facts|set_aside|exports)/|\.(parquet|joblib)$|^(manifest|ledger)\.json$"
)
FOLDER_METHODS = {"sub", "read_json", "write_json", "read_all_json"}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                ids.add(id(first.value))
    return ids


def layout_violations(source: str) -> list[str]:
    """Run-folder path spellings in Python ``source`` (see the module docstring for the rule)."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            text = node.value
            if text and not any(ch.isspace() for ch in text) and PATH_LITERAL.search(text):
                found.append(f"line {node.lineno}: {text!r}")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            right = node.right
            if (isinstance(node.left, ast.Attribute) and node.left.attr == "path"
                    and isinstance(right, ast.Constant) and right.value in SUBFOLDERS):
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in FOLDER_METHODS:
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and first.value in SUBFOLDERS:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def _notebook_code(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    # IPython magics and shell lines are not Python; they never spell run-folder paths here
    return "\n".join("\n".join(line for line in cell.splitlines() if not line.lstrip().startswith(("%", "!"))) for cell in cells)


def _project_sources() -> list[tuple[str, str]]:
    src = PROJECT_ROOT / "src" / "analysis"
    files = [(str(p.relative_to(PROJECT_ROOT)), p.read_text(encoding="utf-8")) for p in sorted(src.rglob("*.py")) if p != src / "io.py"]
    notebooks = [(str(p.relative_to(PROJECT_ROOT)), _notebook_code(p)) for p in sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))]
    return files + notebooks


def test_the_layout_check_catches_what_it_is_meant_to():
    planted = '''
"""Docstring naming exports/customers.csv for readers: fine."""
a = "labels/behavioral.parquet"
b = f"labels/{basis}"
c = sorted((folder.path / "data").glob("segments_*.parquet"))
folder.write_json("facts", "inputs", {})
d = previous.read_json("models", "x")
e = folder.sub("exports") / name
f = "models/behavioral_clusters.joblib"
g = "manifest.json"
ok1 = Markdown("Saved in `exports/customers.csv` for the CRM team.")
ok2 = PROJECT_ROOT / "data" / "sample"
ok3 = frame["set_aside"]
ok4 = folder.write_fact("inputs", {})
'''
    found = layout_violations(planted)
    lines = sorted(int(v.split(":")[0].split()[1]) for v in found)
    assert lines == [3, 4, 5, 5, 6, 7, 8, 9, 10], found  # line 5 twice: the "/ 'data'" and the glob


SOURCES = _project_sources()


@pytest.mark.parametrize(("name", "source"), SOURCES, ids=[name for name, _ in SOURCES])
def test_no_run_folder_path_outside_io(name, source):
    violations = layout_violations(source)
    assert not violations, (f"{name} spells run-folder paths; use io.RunFolder's methods "
                            f"(labels_path, write_fact, read_ledger, segments_tables, ...): {violations}")


# ------------------------------------------------------------------------------------------
# RunFolder: named artefacts
# ------------------------------------------------------------------------------------------


def test_run_folder_names_every_artefact(tmp_path):
    folder = io.RunFolder(tmp_path)
    rel = lambda p: p.relative_to(tmp_path).as_posix()
    assert rel(folder.table_path("customers")) == "data/customers.parquet"
    assert rel(folder.labels_path("behavioral")) == "labels/behavioral.parquet"
    assert rel(folder.model_path("behavioral")) == "models/behavioral.json"
    assert rel(folder.estimator_path("behavioral_clusters")) == "models/behavioral_clusters.joblib"
    assert rel(folder.fact_path("inputs")) == "facts/inputs.json"
    assert rel(folder.set_aside_path("transactions")) == "set_aside/transactions.csv"
    assert rel(folder.segments_path("value")) == "data/segments_value.parquet"
    assert rel(folder.ledger_path) == "data/ledger.json"
    assert rel(folder.manifest_path) == "manifest.json" and rel(folder.index_path) == "index.html"
    assert rel(folder.export_path("customers.csv")) == "exports/customers.csv"
    for bad in ("../x", "a/b", ""):
        with pytest.raises(ValueError, match="plain name"):
            folder.labels_path(bad)
    with pytest.raises(ValueError, match="unknown run artefact kind 'label'"):
        folder.has("label", "behavioral")


def test_run_folder_round_trips(tmp_path):
    folder = io.RunFolder(tmp_path / "run")
    frame = pd.DataFrame({"customer_id": ["a", "b"], "segment": [1, 2]})
    folder.write_labels("behavioral", frame)
    folder.write_segments("value", frame.assign(basis="value"))
    folder.write_segments("behavioral", frame.assign(basis="behavioral"))
    folder.write_fact("inputs", {"files": 1})
    folder.write_model("behavioral", {"k": 2})
    folder.write_ledger({"rows": [], "notes": []})
    folder.write_set_aside("transactions", frame)
    folder.write_export("customers.csv", frame)
    folder.write_manifest({"status": "complete"})
    io.write_estimator(folder, "behavioral_clusters", {"fitted": True})
    assert folder.has_tables() and folder.read_ledger() == {"rows": [], "notes": []}
    assert folder.read_fact("inputs") == {"files": 1} and folder.read_facts() == {"inputs": {"files": 1}}
    assert folder.read_model("behavioral") == {"k": 2} and folder.read_models() == {"behavioral": {"k": 2}}
    assert list(folder.segments_tables()) == ["behavioral", "value"]
    assert [p.name for p in folder.set_aside_files()] == ["transactions.csv"]
    assert [p.name for p in folder.export_files()] == ["customers.csv"]
    assert folder.read_manifest() == {"status": "complete"}
    assert io.read_estimator(folder, "behavioral_clusters") == {"fitted": True}
    for kind, name in (("labels", "behavioral"), ("estimator", "behavioral_clusters"), ("model", "behavioral"),
                       ("fact", "inputs"), ("segments", "value"), ("set_aside", "transactions"), ("export", "customers.csv")):
        assert folder.has(kind, name), (kind, name)
    assert not folder.has("table", "features")
    # the generic JSON accessors keep working for existing callers
    assert folder.read_json("data", "ledger") == folder.read_ledger()


def _finished_run(reports: Path, run_id: str, stamp: str, artefacts=()) -> io.RunFolder:
    folder = io.RunFolder(reports / run_id)
    folder.write_manifest({"status": "complete", "created_utc": stamp, "config": {"name": "sample"}})
    for kind, name in artefacts:
        if kind == "labels":
            folder.write_labels(name, pd.DataFrame({"customer_id": ["a"]}))
        elif kind == "table":
            folder.write_table(name, pd.DataFrame({"customer_id": ["a"]}))
        elif kind == "estimator":
            io.write_estimator(folder, name, {"fitted": True})
    return folder


def test_previous_run_is_found_by_named_needs(tmp_path):
    needs = (("labels", "behavioral"), ("table", "features"), ("estimator", "behavioral_clusters"))
    full = _finished_run(tmp_path, "full", "2024-01-01T00:00:00+00:00", needs)
    _finished_run(tmp_path, "partial", "2024-02-01T00:00:00+00:00", needs[:1])  # newer, but an --only run
    current = _finished_run(tmp_path, "current", "2024-03-01T00:00:00+00:00", needs)
    found = io.find_previous_run(tmp_path, "sample", exclude=current.path, needs=needs)
    assert found is not None and found.path == full.path
    assert io.find_previous_run(tmp_path, "sample", exclude=current.path).path.name == "partial"
    assert io.find_previous_run(tmp_path, "other", needs=needs) is None
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{", encoding="utf-8")
    assert io.find_previous_run(tmp_path, "sample", exclude=current.path, needs=needs).path == full.path
    assert json.loads(full.manifest_path.read_text())["status"] == "complete"


def test_a_table_appears_whole_or_not_at_all(tmp_path, monkeypatch):
    """Pages run side by side may read a run table (``features``) while another page writes it:
    the table is written elsewhere and moved into place, never written where a reader looks."""
    folder = io.RunFolder(tmp_path / "run")
    final = folder.table_path("features")
    seen = []  # (path written, whether the final table was visible then)
    to_parquet = pd.DataFrame.to_parquet

    def recording(frame, path, *args, **kwargs):
        seen.append((Path(path), final.exists()))
        return to_parquet(frame, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", recording)
    frame = pd.DataFrame({"customer_id": ["a", "b"], "frequency": [1, 2]})
    assert folder.write_table("features", frame) == final
    assert seen and all(path != final and not visible for path, visible in seen)
    pd.testing.assert_frame_equal(folder.read_table("features"), frame)
    folder.write_table("features", frame.assign(frequency=[3, 4]))
    assert folder.read_table("features")["frequency"].tolist() == [3, 4]
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name]
