from __future__ import annotations

import datetime as dt

import pytest

from analysis.config import ConfigError, load_config

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
