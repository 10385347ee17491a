"""The run pipeline: failure handling, atomic publication, reports/latest."""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from analysis import cli, runner
from analysis.config import ConfigError, load_config, notebook_parameters

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


def _sample_config(folder: Path, **changes) -> Path:
    """The sample config with absolute source paths, without ``params`` (they name notebooks a
    test's own notebook folder does not have), with ``changes`` applied."""
    cfg = yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    for source in cfg["sources"].values():
        source["path"] = str((SAMPLE_CONFIG.parent / source["path"]).resolve())
    cfg.pop("params", None)
    cfg.update(changes)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{cfg['name']}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def tiny_config(tmp_path):
    return _sample_config(tmp_path / "config")


def test_select_notebooks_by_name():
    nbs = [runner.NOTEBOOK_DIR / n for n in ("00_data_prep.ipynb", "13_behavioral.ipynb")]
    assert runner.select_notebooks(nbs, ["behavioral"]) == nbs[1:]
    assert runner.select_notebooks(nbs, ["00"]) == nbs[:1]
    with pytest.raises(ValueError, match="no such notebook"):
        runner.select_notebooks(nbs, ["nope"])


@pytest.mark.slow
def test_failing_notebook_gets_html_exit_error_and_latest_unchanged(tmp_path, tiny_notebooks, tiny_config):
    reports = tmp_path / "reports"
    ok = runner.run(tiny_config, run_id="good", reports_dir=reports, notebook_dir=tiny_notebooks, echo=lambda s: None)
    assert ok.status == "complete" and (reports / "latest").resolve() == (reports / "good").resolve()
    _notebook(tiny_notebooks / "10_broken.ipynb", "x = 1\nraise ValueError('planted failure')")
    with pytest.raises(runner.RunError, match=r"10_broken \(cell \d+\): ValueError: planted failure"):
        runner.run(tiny_config, run_id="bad", reports_dir=reports, notebook_dir=tiny_notebooks, echo=lambda s: None)
    manifest = json.loads((reports / "bad" / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert [n["status"] for n in manifest["notebooks"]] == ["ok", "failed"]
    html = (reports / "bad" / "10_broken.html").read_text()
    assert "planted failure" in html
    assert (reports / "latest").resolve() == (reports / "good").resolve()
    assert not any((reports / ".staging").iterdir())


def test_existing_run_id_is_refused(tmp_path, tiny_notebooks, tiny_config):
    (tmp_path / "reports" / "taken").mkdir(parents=True)
    with pytest.raises(ValueError, match="already exists"):
        runner.run(tiny_config, run_id="taken", reports_dir=tmp_path / "reports", notebook_dir=tiny_notebooks)


def test_stale_staging_of_dead_process_is_removed(tmp_path):
    staging = tmp_path / ".staging"
    (staging / "old-run-999999999").mkdir(parents=True)
    runner._cleanup_stale_staging(staging)
    assert not (staging / "old-run-999999999").exists()
    shutil.rmtree(staging)


@pytest.mark.slow
def test_not_applicable_page_shows_only_the_reason(tmp_path, tiny_notebooks, tiny_config):
    _notebook(tiny_notebooks / "10_nothing.ipynb",
              "from analysis.config import NotApplicable\nraise NotApplicable('this data has no survey')")
    nb = nbformat.read(tiny_notebooks / "10_nothing.ipynb", as_version=4)
    nb.cells.append(new_markdown_cell("## A heading that must not render"))
    nbformat.write(nb, tiny_notebooks / "10_nothing.ipynb")
    result = runner.run(tiny_config, run_id="na", reports_dir=tmp_path / "reports", notebook_dir=tiny_notebooks, echo=lambda s: None)
    assert result.status == "complete"
    assert [n.status for n in result.notebooks] == ["ok", "not applicable"]
    html = (tmp_path / "reports" / "na" / "10_nothing.html").read_text()
    assert "this data has no survey" in html
    assert "An Exception was encountered" not in html and "must not render" not in html and "Traceback" not in html


# ------------------------------------------------------------------------------------------
# Parameters reach kernels as data only; the top-level seed reaches every seeded notebook
# ------------------------------------------------------------------------------------------


def test_injected_cells_are_checked_right_before_papermill(tmp_path, monkeypatch):
    import papermill

    calls = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda *a, **kw: calls.append(a))
    nb = tmp_path / "13_x.ipynb"
    _notebook(nb, "print(1)")
    bad = {"config_path": "c.yaml", "run_dir": "r", "x = 1\nimport os; os.system('touch PWNED')\ny": 1}
    with pytest.raises(ConfigError, match=r"13_x: refusing to run: the injected parameters have names that are not identifiers"):
        runner._execute(nb, tmp_path / "out.ipynb", bad, tmp_path, tmp_path)
    with pytest.raises(ConfigError, match=r"assign something other than a literal to k"):
        runner._execute(nb, tmp_path / "out.ipynb", {"k": float("nan")}, tmp_path, tmp_path)  # papermill writes float('nan')
    assert calls == [] and not (tmp_path / "PWNED").exists()
    source = runner.check_injection("13_x", {"k": 3, "labels": {"q1": "it's \"quoted\"\nand\\n more"}, "seed": 7})
    assert "seed = 7" in source
    assert runner._execute(nb, tmp_path / "out.ipynb", {"k": 3}, tmp_path, tmp_path) == ("ok", "", None) and len(calls) == 1


RANDOM_USE = re.compile(r"random_state|np\.random|default_rng|\.sample\(|\bseed\b")


@pytest.mark.parametrize("path", runner.discover_notebooks(), ids=lambda p: p.stem)
def test_notebooks_that_draw_random_numbers_take_the_seed_from_the_config(path, tmp_path):
    """Every notebook whose code draws random numbers declares ``seed`` (so the runner injects the
    top-level ``seed``) and hands that, never a literal, to every ``random_state=``."""
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
    declared = notebook_parameters(path)
    if not any(RANDOM_USE.search(src) for src in code):
        return
    assert "seed" in declared, f"{path.stem} draws random numbers but its parameters cell has no seed"
    for src in code:
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.keyword) and node.arg in ("random_state", "seed"):
                assert isinstance(node.value, ast.Name) and node.value.id == "seed", f"{path.stem}: {ast.unparse(node)}"
    cfg = load_config(_sample_config(tmp_path, seed=7))
    assert runner.notebook_run_parameters(cfg, path, tmp_path)["seed"] == 7


def _injected(executed: Path) -> str:
    nb = nbformat.read(executed, as_version=4)
    return next(c.source for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))


@pytest.mark.slow
def test_top_level_seed_is_injected_into_notebooks_that_declare_it_and_recorded(tmp_path, tiny_notebooks):
    _notebook(tiny_notebooks / "13_seeded.ipynb", "import numpy as np\nprint(np.random.default_rng(seed).integers(1000))")
    nb = nbformat.read(tiny_notebooks / "13_seeded.ipynb", as_version=4)
    nb.cells[1].source += "\nseed = 42"
    nbformat.write(nb, tiny_notebooks / "13_seeded.ipynb")
    reports = tmp_path / "reports"
    drawn = {}
    for seed in (7, 11):
        config = _sample_config(tmp_path / f"config{seed}", seed=seed)
        runner.run(config, run_id=f"seed{seed}", reports_dir=reports, notebook_dir=tiny_notebooks, echo=lambda s: None)
        run = reports / f"seed{seed}"
        assert re.search(rf"^seed = {seed}$", _injected(run / "13_seeded.ipynb"), re.MULTILINE)
        assert not re.search(r"^seed =", _injected(run / "00_data_prep.ipynb"), re.MULTILINE)
        manifest = json.loads((run / "manifest.json").read_text())
        assert manifest["config"]["seed"] == seed
        recorded = {n["name"]: n["parameters"] for n in manifest["notebooks"]}
        assert recorded == {"00_data_prep": {}, "13_seeded": {"seed": seed}}
        executed = nbformat.read(run / "13_seeded.ipynb", as_version=4)
        drawn[seed] = executed.cells[-1].outputs[0]["text"]
    assert drawn[7] != drawn[11]


@pytest.mark.slow
def test_sample_run_injects_the_config_seed_into_every_seeded_notebook(sample_run):
    _, reports = sample_run
    run = reports / "ci-sample"
    manifest = json.loads((run / "manifest.json").read_text())
    seeded = [n for n in manifest["notebooks"] if "seed" in notebook_parameters(runner.NOTEBOOK_DIR / f"{n['name']}.ipynb")]
    assert {n["name"] for n in seeded} >= {"10_demographic", "11_geographic", "12_psychographic", "13_behavioral", "14_value"}
    for entry in seeded:
        assert entry["parameters"]["seed"] == manifest["config"]["seed"] == 42
        assert re.search(r"^seed = 42$", _injected(run / f"{entry['name']}.ipynb"), re.MULTILINE), entry["name"]


# ------------------------------------------------------------------------------------------
# Run ids; reports/latest cannot be broken
# ------------------------------------------------------------------------------------------


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize(
    ("run_id", "reason"),
    [
        ("latest", "is reserved"), ("LATEST", "is reserved"), (".staging", "reserved for the runner's own folders"),
        ("_scratch", "reserved for the runner's own folders"), (".hidden", "reserved for the runner's own folders"),
        ("abc\n", "contains a control character (a line break, U+000A)"), ("a\tb", "contains a control character"),
        ("a\x1b[31mb", "contains a control character (an escape, U+001B)"), ("a/b", "use letters, digits"), ("x" * 101, "at most 100"),
        ("..", "reserved for the runner's own folders"),
    ],
)
def test_bad_run_ids_are_refused_in_one_sentence_and_latest_survives(tmp_path, tiny_config, run_id, reason, capsys):
    """Through the CLI's entry point in this process (``analysis run`` calls the same ``main``); the
    next test makes one refusal through a real ``analysis run`` process."""
    reports = _reports_with_latest(tmp_path)
    code = cli.main(["run", "--config", str(tiny_config), "--run-id", run_id, "--only", "00_data_prep", "--reports-dir", str(reports)])
    out = capsys.readouterr()
    assert code == 2, out.out + out.err
    _assert_refused_in_one_sentence(out.err, reason, reports)


def test_a_bad_run_id_is_refused_by_the_real_command_in_one_sentence(tmp_path, tiny_config):
    reports = _reports_with_latest(tmp_path)
    proc = _cli("run", "--config", str(tiny_config), "--run-id", "a\tb", "--only", "00_data_prep", "--reports-dir", str(reports))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    _assert_refused_in_one_sentence(proc.stderr, "contains a control character", reports)


def _reports_with_latest(tmp_path: Path) -> Path:
    reports = tmp_path / "reports"
    (reports / "good").mkdir(parents=True)
    (reports / "latest").symlink_to("good", target_is_directory=True)
    return reports


def _assert_refused_in_one_sentence(stderr: str, reason: str, reports: Path) -> None:
    assert stderr.startswith("error: --run-id ") and reason in stderr, stderr
    assert stderr.count("\n") == 1 and "Traceback" not in stderr
    assert os.readlink(reports / "latest") == "good"
    assert sorted(p.name for p in reports.iterdir()) == ["good", "latest"], "nothing created, no temporary link left"


def test_run_id_check_uses_fullmatch():
    runner.check_run_id("sample-2024.12_31")
    with pytest.raises(ValueError, match="control character"):
        runner.check_run_id("abc\n")


def test_latest_in_the_way_is_left_alone_without_a_temporary_link(tmp_path):
    (tmp_path / "r1").mkdir()
    (tmp_path / "latest").mkdir()  # e.g. left by an old version that accepted --run-id latest
    assert runner._update_latest(tmp_path, "r1") is False
    assert (tmp_path / "latest").is_dir() and not (tmp_path / "latest").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "r1"]
    (tmp_path / "latest").rmdir()
    assert runner._update_latest(tmp_path, "r1") is True and os.readlink(tmp_path / "latest") == "r1"


# ------------------------------------------------------------------------------------------
# The calling process is left as it was; kernels get their own environment; quiet console
# ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_run_leaves_the_calling_process_as_it_found_it(tmp_path):
    loggers = ("papermill", "traitlets", "")
    saved_levels = {name: logging.getLogger(name).level for name in loggers}
    logging.getLogger("papermill").setLevel(logging.DEBUG)  # a caller's own choice, to be kept
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="a caller's own filter")
            env_before = dict(os.environ)
            levels_before = {name: logging.getLogger(name).level for name in loggers}
            filters_before = list(warnings.filters)
            cwd_before = os.getcwd()
            result = runner.run(SAMPLE_CONFIG, run_id="state", only=["00_data_prep"], reports_dir=tmp_path / "reports", echo=lambda s: None)
            assert result.status == "complete"
            assert dict(os.environ) == env_before
            assert {name: logging.getLogger(name).level for name in loggers} == levels_before
            assert list(warnings.filters) == filters_before
            assert os.getcwd() == cwd_before
            assert not set(runner.KERNEL_ENV.items()) <= set(os.environ.items())
    finally:
        for name, level in saved_levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.mark.slow
def test_kernels_get_their_environment_at_launch_and_no_sigint_at_shutdown(tmp_path, monkeypatch):
    """The kernel sees KERNEL_ENV; ending it sends no SIGINT (which, racing the kernel's last reply,
    made ipykernel log ``KeyboardInterrupt caught in kernel`` on successful runs)."""
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    env_before = dict(os.environ)
    km = runner._ipc_kernel_manager(tmp_path)(kernel_name="python3")
    km.start_kernel()
    signals = []
    send_signal = km.provisioner.send_signal

    async def recording(signum):
        signals.append(signum)
        await send_signal(signum)

    km.provisioner.send_signal = recording
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        out = []
        kc.execute_interactive("import os; print(os.environ.get('PYTHONHASHSEED'), os.environ.get('OMP_NUM_THREADS'))",
                               output_hook=lambda msg: out.append(msg["content"].get("text", "")), timeout=60)
        assert "".join(out).split() == [runner.KERNEL_ENV["PYTHONHASHSEED"], runner.KERNEL_ENV["OMP_NUM_THREADS"]]
    finally:
        kc.stop_channels()
        km.shutdown_kernel()
    assert signal.SIGINT not in signals
    assert not km.is_alive()
    assert dict(os.environ) == env_before


@pytest.mark.slow
def test_successful_run_console_shows_no_kernel_errors(tmp_path):
    proc = _cli("run", "--config", str(SAMPLE_CONFIG), "--run-id", "quiet", "--only", "00_data_prep",
                "--reports-dir", str(tmp_path / "reports"), timeout=600)
    console = proc.stdout + proc.stderr
    assert proc.returncode == 0, console
    assert "KeyboardInterrupt" not in console and "ERROR" not in console and "Traceback" not in console, console
    assert proc.stderr == "", proc.stderr


# ------------------------------------------------------------------------------------------
# Order of the pages: who waits for whom
# ------------------------------------------------------------------------------------------


def test_pages_after_the_segments_wait_for_every_segment_page_and_not_for_each_other():
    """Personas, clienteling and monitoring each read data preparation's tables and every basis's
    labels, features and models; none reads what another of them writes, so they run side by side."""
    deps = runner.notebook_dependencies(runner.discover_notebooks())
    segment_pages = {stem for stem in deps if stem[0] in "01"}
    assert {"00_data_prep", "13_behavioral", "14_value"} <= segment_pages
    for later in ("20_personas", "30_clienteling", "40_monitoring"):
        assert deps[later] == segment_pages, later
    assert deps["14_value"] == {"00_data_prep", "13_behavioral"}
    assert deps["11_geographic"] == {"00_data_prep", "10_demographic", "12_psychographic", "13_behavioral"}
    # a later page not listed in READS_ONLY_SEGMENTS still waits for every lower decade
    stems = ["00_data_prep", "13_behavioral", "20_personas", "30_clienteling", "50_digest"]
    deps = runner.notebook_dependencies([Path(f"{stem}.ipynb") for stem in stems])
    assert deps["50_digest"] == set(stems[:4])


def test_personas_read_only_the_models_of_the_segmentation_bases():
    """Clienteling may write models/recommendations.json while the personas page reads the run's
    models: what personas take from them must not depend on it."""
    from analysis.personas.bases import segmentation_inputs, segmentation_verdicts

    bases = {"behavioral": {"available": True, "verdict": "weak", "verdict_evidence": {"reason": "r"}, "features": ["recency_days"]}}
    others = {"recommendations": {"available": True, "verdict": "clear", "features": ["x"]}, "personas": {"playbook": "p"}}
    assert segmentation_verdicts({**bases, **others}) == segmentation_verdicts(bases)
    assert segmentation_inputs({**bases, **others}) == segmentation_inputs(bases)


# ------------------------------------------------------------------------------------------
# --no-html, and pages run without the pages they do not read
# ------------------------------------------------------------------------------------------

_PAGE_EXPORTS = ("customers.csv", "segments.csv", "contact_list.csv", "contact_lists.csv", "crm_contacts.csv")


@pytest.mark.slow
def test_no_html_run_executes_every_notebook_and_writes_the_same_exports_without_pages(sample_run, tmp_path):
    proc, reports = sample_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    full = json.loads((reports / "ci-sample" / "manifest.json").read_text())
    out = _cli("run", "--config", str(SAMPLE_CONFIG), "--run-id", "no-pages", "--no-html", "--reports-dir", str(tmp_path / "reports"),
               timeout=1800)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run = tmp_path / "reports" / "no-pages"
    assert "no HTML pages" in out.stdout and "index.html" not in out.stdout
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*.html")) == []
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["pages_rendered"] is False and full["pages_rendered"] is True
    assert [n["name"] for n in manifest["notebooks"]] == [n["name"] for n in full["notebooks"]]
    for entry in manifest["notebooks"]:
        assert entry["status"] in ("ok", "not applicable") and entry["html"] == "", entry
        assert (run / f"{entry['name']}.ipynb").is_file()
    assert set(_PAGE_EXPORTS) | {"personas.csv"} <= set(manifest["exports_sha256"])
    assert manifest["exports_sha256"] == full["exports_sha256"]
    assert manifest["models"].keys() == full["models"].keys() and any((run / "labels").glob("*.parquet"))
    assert (tmp_path / "reports" / "latest").resolve() == run.resolve()


@pytest.mark.slow
def test_clienteling_and_monitoring_need_nothing_from_the_personas_page(sample_run, tmp_path):
    """They run beside personas (READS_ONLY_SEGMENTS); here they run without it, and give what they
    give after it. Monitoring compares with a copy of the full run (same data, same seed)."""
    proc, reports = sample_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    full = reports / "ci-sample"
    shutil.copytree(full, tmp_path / "reports" / "ci-sample")
    pages = [nb.stem for nb in runner.discover_notebooks() if nb.stem != "20_personas"]
    out = _cli("run", "--config", str(SAMPLE_CONFIG), "--run-id", "no-personas", "--no-html", "--only", *pages,
               "--reports-dir", str(tmp_path / "reports"), timeout=1800)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    run = tmp_path / "reports" / "no-personas"
    for name in _PAGE_EXPORTS:
        assert (run / "exports" / name).read_bytes() == (full / "exports" / name).read_bytes(), name
    assert not (run / "exports" / "personas.csv").exists()
    facts = json.loads((run / "manifest.json").read_text())["facts"]
    assert facts["summary_30_clienteling"] == json.loads((full / "manifest.json").read_text())["facts"]["summary_30_clienteling"]
    monitoring = facts["monitoring"]
    assert monitoring["previous_run"] == "ci-sample" and monitoring["alerts"] == []
    assert monitoring["segmentations"] and all(row["stayed_pct"] == 100 for row in monitoring["segmentations"]), monitoring
