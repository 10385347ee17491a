from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from analysis.config import NOTEBOOK_DIR, ConfigError, available_parameters, load_config, notebook_parameters

from .conftest import PROJECT_ROOT, SAMPLE_CONFIG


def test_sample_config_loads_and_resolves_paths():
    cfg = load_config(SAMPLE_CONFIG)
    assert cfg.name == "sample"
    assert cfg.as_of == dt.date(2025, 1, 1)
    assert cfg.resolve_path("customers") == str(PROJECT_ROOT / "config" / ".." / "data" / "sample" / "customers.csv")


@pytest.mark.parametrize("name", ["sample", "online_retail", "cdnow", "marketing_campaign", "superstore"])
def test_shipped_configs_are_valid(name):
    cfg = load_config(PROJECT_ROOT / "config" / f"{name}.yaml")
    assert cfg.name == name


def test_data_root_env_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("CLIENTELE_DATA_ROOT", str(tmp_path))
    cfg = load_config(PROJECT_ROOT / "config" / "online_retail.yaml")
    assert cfg.resolve_path("transactions") == str(tmp_path / "online_retail" / "online_retail_*.csv.gz")


def test_missing_required_key_is_named(write_config):
    path = write_config({"name": "x", "sources": {"transactions": {"path": "t.csv"}}})
    with pytest.raises(ConfigError, match=r"as_of: required key is missing"):
        load_config(path)


def test_unknown_key_suggests_the_right_one(write_config):
    path = write_config({"name": "x", "as_of": "2024-01-01", "sources": {"transactions": {"path": "t.csv", "separator": ";"}}})
    with pytest.raises(ConfigError, match=r"sources\.transactions\.separator: unknown key \(did you mean 'sep'\?\)"):
        load_config(path)


def test_bad_date_names_the_key(write_config):
    path = write_config({"name": "x", "as_of": "first of May", "sources": {"transactions": {"path": "t.csv"}}})
    with pytest.raises(ConfigError, match=r"as_of"):
        load_config(path)


def test_misspelt_contract_column_is_named(write_config):
    path = write_config(
        {"name": "x", "as_of": "2024-01-01", "sources": {"transactions": {"path": "t.csv"}},
         "columns": {"transactions": {"custmer_id": "CustomerID"}}}
    )
    with pytest.raises(ConfigError, match=r"columns\.transactions\.custmer_id.*Did you mean 'customer_id'"):
        load_config(path)


def test_reverse_items_must_be_items(write_config):
    path = write_config(
        {"name": "x", "as_of": "2024-01-01", "sources": {"survey": {"path": "s.csv"}, "customers": {"path": "c.csv"}},
         "survey": {"items": ["q1", "q2"], "reverse": ["q3"]}}
    )
    with pytest.raises(ConfigError, match=r"survey\.reverse lists \['q3'\]"):
        load_config(path)


def test_not_yaml_mapping(write_config):
    path = write_config("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


# ------------------------------------------------------------------------------------------
# Duplicate YAML keys
# ------------------------------------------------------------------------------------------


def test_duplicate_top_level_key_names_the_key_and_both_lines(write_config):
    path = write_config(
        """\
        name: x
        as_of: 2024-01-01
        sources:
          transactions: {path: t.csv}
        sources:
          customers: {path: c.csv}
        """
    )
    with pytest.raises(ConfigError, match=r"run\.yaml: line 5: duplicate key 'sources' \(first given on line 3\)"):
        load_config(path)


def test_duplicate_nested_key_names_its_full_key(write_config):
    path = write_config(
        """\
        name: x
        as_of: 2024-01-01
        sources:
          transactions:
            path: t.csv
            sep: ";"
            path: u.csv
        """
    )
    with pytest.raises(ConfigError, match=r"line 7: duplicate key 'sources\.transactions\.path' \(first given on line 5\)"):
        load_config(path)


def test_merge_keys_may_be_overridden_and_aliases_reused(tmp_path, write_config):
    (tmp_path / "t.csv").write_text("customer_id,timestamp,amount\n1,2024-01-01,3\n", encoding="utf-8")
    path = write_config(
        """\
        name: x
        as_of: 2024-01-01
        sources:
          transactions: &src {path: t.csv, sep: ","}
          customers:
            <<: *src
            path: t.csv
        params:
          10_demographic: {spend_columns: &spend [a, b]}
          11_geographic: {spend_columns: *spend}
        """
    )
    cfg = load_config(path)
    assert cfg.sources["customers"].sep == "," and cfg.params["11_geographic"]["spend_columns"] == ["a", "b"]


# ------------------------------------------------------------------------------------------
# Notebook parameters: checked against each notebook's parameters cell
# ------------------------------------------------------------------------------------------

BASE = {"name": "x", "as_of": "2024-01-01", "sources": {"transactions": {"path": "t.csv"}}}
CODE_KEY = "x = 1\nimport pathlib; pathlib.Path('PWNED').write_text('1')\ny"


def _with_params(write_config, params, **extra):
    return write_config({**BASE, **extra, "params": params})


def test_notebook_parameters_are_read_from_the_parameters_cell_without_running_it():
    params = notebook_parameters(NOTEBOOK_DIR / "13_behavioral.ipynb")
    assert list(params)[:2] == ["config_path", "run_dir"]
    assert params["k"] is None and params["k_min"] == 2 and params["seed"] == 42 and params["rfm_rules"] == ""
    assert set(available_parameters()) == {p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb")}


def test_a_parameters_cell_that_computes_is_refused(tmp_path):
    nb = new_notebook(cells=[new_code_cell("config_path = ''\nk = len('abc')", metadata={"tags": ["parameters"]})])
    nbformat.write(nb, tmp_path / "10_x.ipynb")
    with pytest.raises(ConfigError, match=r"10_x\.ipynb: parameters cell line 2: k is not a plain literal"):
        notebook_parameters(tmp_path / "10_x.ipynb")


def test_unknown_notebook_offers_the_close_match_and_lists_notebooks(write_config):
    path = _with_params(write_config, {"13_behavioural": {"k": 3}})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert "params.13_behavioural: no notebook named '13_behavioural'. Did you mean '13_behavioral'?" in message
    assert "'00_data_prep'" in message and "'40_monitoring'" in message


def test_unknown_parameter_offers_the_close_match_and_lists_parameters(write_config):
    path = _with_params(write_config, {"13_behavioral": {"kk": 3}})
    with pytest.raises(ConfigError, match=r"params\.13_behavioral\.kk: 13_behavioral has no parameter 'kk'\. Did you mean 'k'\? "
                                          r"Parameters of 13_behavioral: \['k', 'k_max', 'k_min', 'n_bootstrap', 'rfm_rules'\]"):
        load_config(path)


@pytest.mark.parametrize(
    ("value", "pattern"),
    [
        ("three", r"params\.13_behavioral\.k_min: expected a whole number like the notebook's default 2, found 'three' \(text\)"),
        (2.5, r"k_min: expected a whole number .* found 2\.5 \(a number\)"),
        (True, r"k_min: expected a whole number .* found True \(true or false\)"),
        ([2], r"k_min: expected a whole number"),
    ],
)
def test_wrong_type_is_refused_naming_the_default(write_config, value, pattern):
    path = _with_params(write_config, {"13_behavioral": {"k_min": value}})
    with pytest.raises(ConfigError, match=pattern):
        load_config(path)


def test_values_of_the_defaults_type_pass_as_plain_literals(write_config):
    path = _with_params(write_config, {
        "13_behavioral": {"k": 4, "k_min": 3, "rfm_rules": "rules.yaml"},  # k defaults to None: any literal
        "14_value": {"discount_rate_annual": 1, "calibration_end": dt.date(2024, 6, 30)},  # int where float; a YAML date
        "12_psychographic": {"item_labels": {"q01": "I like new things"}, "n_factors": 3},
    })
    cfg = load_config(path)
    assert cfg.params["14_value"] == {"discount_rate_annual": 1, "calibration_end": "2024-06-30"}
    assert cfg.notebook_params("13_behavioral") == {"k": 4, "k_min": 3, "rfm_rules": "rules.yaml"}


@pytest.mark.parametrize(
    ("params", "pattern"),
    [
        ({"13_behavioral": {CODE_KEY: 1}}, r"params\.13_behavioral\.\"x = 1\\nimport pathlib.*: not a parameter name"),
        ({CODE_KEY: {"k": 1}}, r"params\.[\'\"]x = 1\\nimport pathlib.*: no notebook named"),
        ({"13_behavioral": {"class": 1}}, r"params\.13_behavioral\.class: not a parameter name"),
        ({"13_behavioral": {"config_path": "/etc/passwd"}}, r"params\.13_behavioral\.config_path: set by the runner"),
        ({"13_behavioral": {"run_dir": "/tmp"}}, r"params\.13_behavioral\.run_dir: set by the runner"),
        ({"13_behavioral": {"seed": 7}}, r"params\.13_behavioral\.seed: set the top-level 'seed' instead"),
        ({"13_behavioral": {"k": float("nan")}}, r"params\.13_behavioral\.k: nan is not a finite number"),
        ({"12_psychographic": {"item_labels": {1: "x"}}}, r"params\.12_psychographic\.item_labels: key 1 must be text"),
    ],
)
def test_names_that_are_not_identifiers_and_non_literals_are_refused(write_config, params, pattern):
    path = _with_params(write_config, params)
    with pytest.raises(ConfigError, match=pattern):
        load_config(path)


def test_every_problem_is_listed_at_once(write_config):
    path = _with_params(write_config, {"13_behavioral": {"kk": 1, "k_min": "x"}, "99_nope": {}})
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert len([line for line in str(err.value).splitlines() if line.startswith("  - ")]) == 3


def test_yaml_python_tags_are_refused(write_config):
    path = write_config("name: x\nas_of: 2024-01-01\nsources: {transactions: {path: t.csv}}\n"
                        "params: {13_behavioral: {k: !!python/object/apply:os.system ['touch PWNED']}}\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_seed_reaches_exactly_the_notebooks_that_declare_it(write_config):
    cfg = load_config(write_config({**BASE, "seed": 7}))
    for stem, declared in available_parameters().items():
        assert cfg.run_parameters(declared) == ({"seed": 7} if "seed" in declared else {}), stem


# ------------------------------------------------------------------------------------------
# Through the real CLI: fast, one clear message, nothing run
# ------------------------------------------------------------------------------------------


def _cli(*args, cwd=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "analysis", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, check=False)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"13_behavioural": {"k": 3}}, ("params.13_behavioural", "Did you mean '13_behavioral'?", "'13_behavioral'", "'14_value'")),
        ({"13_behavioral": {"kk": 3}}, ("params.13_behavioral.kk", "Did you mean 'k'?", "['k', 'k_max', 'k_min', 'n_bootstrap', 'rfm_rules']")),
    ],
)
def test_check_refuses_bad_params_quickly_naming_the_key_and_the_valid_ones(write_config, params, expected):
    path = _with_params(write_config, params)
    t0 = time.perf_counter()
    proc = _cli("check", "--config", str(path))
    seconds = time.perf_counter() - t0
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert seconds < 5, f"analysis check took {seconds:.1f} s"
    assert str(path) in proc.stderr and "Traceback" not in proc.stderr and "config ok" not in proc.stdout
    for text in expected:
        assert text in proc.stderr


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_params_key_holding_code_is_refused_and_nothing_runs(tmp_path, command):
    witness = tmp_path / "PWNED"
    code = f"x = 1\nimport pathlib; pathlib.Path({str(witness)!r}).write_text('1')\ny"
    cfg = yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    for source in cfg["sources"].values():
        source["path"] = str((SAMPLE_CONFIG.parent / source["path"]).resolve())
    cfg["params"] = {"13_behavioral": {code: 1}, code: {"k": 1}}
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    reports = tmp_path / "reports"
    args = ["--config", str(path)] + (["--run-id", "evil", "--only", "13_behavioral", "--reports-dir", str(reports)] if command == "run" else [])
    proc = _cli(command, *args, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not a parameter name" in proc.stderr and "no notebook named" in proc.stderr and "Traceback" not in proc.stderr
    assert not witness.exists() and not (tmp_path / "PWNED").exists() and not (NOTEBOOK_DIR / "PWNED").exists()
    assert not reports.exists() or not [p for p in reports.rglob("*") if p.name != ".staging"]
