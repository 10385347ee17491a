"""The benchmark's baselines compute the project's features: otherwise its ratios compare unlike work.

``benchmarks/baselines.py`` holds what a user would write instead of ``customer_features`` (hand-written
DuckDB, polars, idiomatic pandas and the tutorial style ``groupby().agg(lambda ...)``); ``make bench``
times them against the project. Here each runs on the bundled sample's validated tables and must give
the project's columns and values.
"""

from __future__ import annotations

import importlib.util

import pandas as pd
import pytest

from analysis import features, io, workspace
from analysis.config import load_config

from .conftest import PROJECT_ROOT, SAMPLE_CONFIG

# the benchmark folder is not a package; load its module by path (no sys.path change for the session)
_spec = importlib.util.spec_from_file_location("bench_baselines", PROJECT_ROOT / "benchmarks" / "baselines.py")
baselines = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(baselines)

pytestmark = pytest.mark.slow  # it checks the benchmark's code, not the product's

TABLES = ("transactions", "returns", "events")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The bundled sample's validated tables (no notebooks run), their paths and the run's as_of."""
    cfg = load_config(SAMPLE_CONFIG)
    folder = io.RunFolder(tmp_path_factory.mktemp("bench-baselines"))
    workspace.prepare_run(cfg, folder)
    paths = {name: folder.table_path(name) for name in TABLES}
    return paths, str(cfg.as_of)


@pytest.fixture(scope="module")
def project(prepared):
    paths, as_of = prepared
    return features.customer_features(paths["transactions"], as_of, returns=paths["returns"], events=paths["events"])


@pytest.mark.parametrize("tool", ["duckdb", "polars", "pandas", "tutorial"])
def test_full_baselines_compute_the_project_features(prepared, project, tool):
    paths, as_of = prepared
    theirs = getattr(baselines, f"full_{tool}")(paths, as_of)
    assert len(project.columns) >= 25  # counts, dates, spend, basket, loyalty, shares, returns, usage
    assert theirs.index.equals(project.index)
    result = baselines.compare(project, theirs)
    assert result["missing"] == [] and result["columns"] == len(project.columns)
    assert result["differ"] == []
    assert set(result["names_agree"]) == {"favourite_category", "favourite_channel"}
    # the favourite names may differ only where two categories (by spend) or channels (by orders) tie
    assert _not_a_tie(project, theirs, paths["transactions"]) == {"favourite_category": [], "favourite_channel": []}


def test_a_favourite_that_is_not_a_tie_is_reported(prepared, project):
    """The tie check above can fail: a baseline naming a channel that is not among a customer's most used."""
    paths, _ = prepared
    best = _favourites(paths["transactions"])["favourite_channel"]
    untied = best[best.map(len) == 1].index[0]
    others = sorted(set(project["favourite_channel"].dropna()) - best[untied])
    wrong = project.copy()
    wrong.loc[untied, "favourite_channel"] = others[0]
    assert _not_a_tie(project, wrong, paths["transactions"])["favourite_channel"] == [untied]


def _not_a_tie(project: pd.DataFrame, theirs: pd.DataFrame, transactions) -> dict[str, list]:
    """Per favourite-* column, the customers where ``theirs`` names something else than the project
    and that name is not tied for the most spend (category) or orders (channel)."""
    out = {}
    for column, best in _favourites(transactions).items():
        differs = theirs[column] != project[column]
        out[column] = [customer for customer, name in theirs.loc[differs, column].items()
                       if name not in best.get(customer, set())]
    return out


def _favourites(transactions) -> dict[str, pd.Series]:
    """Per customer, every category with the most spend and every channel with the most orders."""
    tx = pd.read_parquet(transactions)
    out = {}
    for column, key, how in [("favourite_category", "category", ("amount", "sum")),
                             ("favourite_channel", "channel", ("order_id", "nunique"))]:
        per = tx.groupby(["customer_id", key])[how[0]].agg(how[1]).round(6)  # float sums of tied spend
        top = per[per == per.groupby("customer_id").transform("max")].reset_index()
        out[column] = top.groupby("customer_id")[key].agg(set)
    return out


@pytest.mark.parametrize("tool", ["duckdb", "polars", "pandas", "tutorial"])
def test_core_baselines_compute_the_project_core_features(prepared, project, tool):
    paths, as_of = prepared
    theirs = getattr(baselines, f"core_{tool}")(paths, as_of)
    assert list(theirs.columns) == baselines.CORE
    assert baselines.compare(project, theirs) == {"columns": 6, "missing": [], "differ": [], "names_agree": {}} | {
        "missing": sorted(set(project.columns) - set(baselines.CORE))}


def test_compare_reports_a_baseline_that_differs(prepared, project):
    """The check above can fail: a baseline with a wrong column is reported."""
    wrong = project.copy()
    wrong["total_spend"] = wrong["total_spend"] * 1.01
    wrong.loc[wrong.index[0], "favourite_channel"] = "nowhere"
    result = baselines.compare(project, wrong.drop(columns=["return_rate"]))
    assert result["differ"] == ["total_spend"] and result["missing"] == ["return_rate"]
    assert result["names_agree"]["favourite_channel"] < 1.0
