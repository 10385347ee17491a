"""The feature step's engines: exact integer sums on any thread count, the config keys, and
DuckDB and Spark giving the same features on the sample."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from analysis import contract, engines, features, workspace
from analysis.config import ConfigError, load_config
from analysis.engines.spark import spark_available
from analysis.sample import generate_sample

from .conftest import SAMPLE_CONFIG


@pytest.fixture(scope="module")
def generated():
    frames = generate_sample(1500, random_state=5)
    tx = frames["transactions"]
    return tx[tx["amount"] > 0].reset_index(drop=True), frames["events"]


def test_sums_are_exact_decimal_sums():
    # ten lines of 0.1: a float sum gives 0.9999999999999999, the integer sum exactly 1.0
    tx = pd.DataFrame({"customer_id": ["a"] * 10, "order_id": [str(i) for i in range(10)],
                       "timestamp": pd.date_range("2024-01-01", periods=10, freq="D"), "product_id": ["p"] * 10,
                       "category": ["Home"] * 10, "quantity": [1.0] * 10, "amount": [0.1] * 10})
    assert sum([0.1] * 10) != 1.0
    f = features.customer_features(tx, "2024-02-01")
    assert f.loc["a", "total_spend"] == 1.0 and f.loc["a", "mean_order_value"] == 0.1


def test_features_do_not_depend_on_duckdb_threads(generated):
    tx, events = generated
    runs = []
    for threads in (1, 2, 4, 4):
        with engines.DuckDBEngine(threads=threads) as engine:
            runs.append(features.customer_features(tx, "2025-01-01", events=events, engine=engine))
    for other in runs[1:]:
        pd.testing.assert_frame_equal(runs[0], other, check_exact=True)


def test_an_unknown_engine_is_named():
    with pytest.raises(ValueError, match="engine 'polars' is not known"):
        engines.connect("polars")


def test_duckdb_is_the_default_engine_and_spark_takes_a_master(write_config):
    base = {"name": "t", "as_of": "2025-01-01", "sources": {"transactions": {"path": "tx.csv"}}}
    cfg = load_config(write_config(base))
    assert cfg.engine == "duckdb" and cfg.spark.master == "local[*]"
    cfg = load_config(write_config({**base, "engine": "spark",
                                    "spark": {"master": "spark://head:7077", "conf": {"spark.executor.memory": "8g"}}}))
    assert (cfg.engine, cfg.spark.master, cfg.spark.conf) == ("spark", "spark://head:7077", {"spark.executor.memory": "8g"})
    with pytest.raises(ConfigError, match="engine"):
        load_config(write_config({**base, "engine": "hadoop"}))
    with pytest.raises(ConfigError, match="spark"):
        load_config(write_config({**base, "spark": {"mastr": "local[2]"}}))


def _spark_or_skip() -> None:
    reason = spark_available()
    if reason:
        if os.environ.get("CLIENTELE_REQUIRE_SPARK"):
            pytest.fail(f"CLIENTELE_REQUIRE_SPARK is set but {reason}")
        pytest.skip(reason)


def _assert_same_features(spark_features: pd.DataFrame, duck: pd.DataFrame) -> None:
    """Exact for counts, dates and names; 1e-9 relative for sums and ratios."""
    assert list(spark_features.columns) == list(duck.columns) and spark_features.index.equals(duck.index)
    exact = {"frequency", "n_categories", "recency_days", "tenure_days", "interpurchase_days"}
    for column in duck.columns:
        mine, theirs = duck[column], spark_features[column]
        if column in exact or mine.dtype.kind != "f":
            pd.testing.assert_series_equal(theirs, mine, check_dtype=False, check_exact=True)
        else:
            assert np.allclose(theirs, mine, rtol=1e-9, atol=0, equal_nan=True), column


@pytest.mark.spark
@pytest.mark.slow
def test_spark_and_duckdb_give_the_same_features_on_the_sample(tmp_path):
    _spark_or_skip()
    cfg = load_config(SAMPLE_CONFIG)
    tables = contract.prepare(workspace.read_raw(cfg), cfg).tables
    paths = {}
    for name in ("transactions", "returns", "events"):
        paths[name] = tmp_path / f"{name}.parquet"
        tables[name].to_parquet(paths[name], index=False)  # nanosecond timestamps, as a run writes them
    from_files = {"returns": paths["returns"], "events": paths["events"]}
    duck_files = features.customer_features(paths["transactions"], cfg.as_of, **from_files)
    duck_frames = features.customer_features(tables["transactions"], cfg.as_of, returns=tables["returns"])
    assert len(duck_files) == tables["transactions"]["customer_id"].nunique() > 1000
    spark = engines.connect("spark", master="local[2]")
    try:
        _assert_same_features(features.customer_features(paths["transactions"], cfg.as_of, **from_files, engine=spark),
                              duck_files)
        _assert_same_features(features.customer_features(tables["transactions"], cfg.as_of, returns=tables["returns"],
                                                         engine=spark), duck_frames)
    finally:
        spark.close()
        spark.session_.stop()  # the JVM's memory back to the rest of the suite


def test_duckdb_may_use_an_eighth_of_the_machine(monkeypatch):
    """Notebooks run side by side, each with its own DuckDB: an eighth of the memory each, exactly (in MB)."""
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 23_400 * 2**20 // 4096}  # a 23.4 GB machine
    monkeypatch.setattr(engines.os, "sysconf", lambda name: pages[name])
    assert engines.default_memory_limit() == f"{23_400 // 8}MB"  # 2,925 MB, not 2 GB rounded down
    pages["SC_PHYS_PAGES"] = 4 * 2**30 // 4096  # a small machine still gets 1 GB
    assert engines.default_memory_limit() == "1024MB"
    with engines.DuckDBEngine(memory_limit="512MB") as engine:
        assert engine.con_.execute("SELECT current_setting('memory_limit')").fetchone()[0].startswith("488")


def test_a_parquet_path_with_a_quote_is_scanned_in_place(tmp_path):
    """One quoting of the path for every in-place read (register, the summary, the recommenders)."""
    from analysis import clv, recommend

    tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "product_id": ["p", "q", "p"], "amount": [1.0, 2.0, 3.0],
                       "timestamp": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-01-15"])})
    path = tmp_path / "o'brien.parquet"
    tx.to_parquet(path)
    assert engines.parquet_scan(path, row_numbers=True).endswith("o''brien.parquet', file_row_number = true)")
    with engines.DuckDBEngine() as engine:
        engine.register("tx", path)
        assert engine.query("SELECT count(*) AS n FROM tx")["n"].tolist() == [3]
    pd.testing.assert_frame_equal(clv.rfm_summary(path, observation_period_end="2024-03-01", aggregate_by=None),
                                  clv.rfm_summary(tx, observation_period_end="2024-03-01", aggregate_by=None))
    assert recommend._interactions(path, 90.0)[0].nnz == 3


def test_usable_cores_are_bounded(monkeypatch):
    monkeypatch.setattr(engines.os, "sched_getaffinity", lambda pid: set(range(16)))
    assert engines.usable_cores(4) == 4 and engines.usable_cores(32) == 16
    monkeypatch.setattr(engines.os, "sched_getaffinity", lambda pid: {0})
    assert engines.usable_cores() == 1
