"""Demographic segmentation: recovery of the planted segments, mixed-data mechanics, edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kmodes.kprototypes import KPrototypes
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from analysis import contract, io
from analysis.config import load_config
from analysis.sample import generate_sample
from analysis.segment import common, demographic, selection

from .conftest import SAMPLE_CONFIG


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with threadpool_limits(1):  # small fits: thread start-up costs more than it saves
        yield


@pytest.fixture(scope="module")
def generated():
    """A fresh synthetic population (not the committed sample), validated like the contract would."""
    sample = generate_sample(2000, random_state=11)
    cfg = load_config(SAMPLE_CONFIG)
    raw = {"customers": io.RawTable(frame=sample["customers"], original=sample["customers"], files=[], mapping={})}
    customers = contract.prepare(raw, cfg).tables["customers"]
    truth = sample["truth"].set_index("customer_id")["true_demographic_segment"]
    return customers, truth


def customers_frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    return pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)], **columns})


def test_recovers_planted_segments_and_chooses_k(generated):
    customers, truth = generated
    result = demographic.segment_demographic(customers, k_range=(3, 5), n_bootstrap=2, selection_sample_size=600, random_state=1)
    assert result.available
    assert result.k_choice.k == 4, result.evidence
    labels = result.labels.set_index("customer_id")["demographic_segment"]
    ari = adjusted_rand_score(truth.reindex(labels.index), labels)
    assert ari >= 0.8, ari
    # evidence per candidate k: cost falls, the chosen k is stable
    ev = result.evidence.set_index("k")
    assert list(ev.index) == [3, 4, 5]
    assert ev["cost"].is_monotonic_decreasing
    assert ev.loc[4, "stability_ari"] >= 0.75
    # profiles: one row per segment, shares add up, names unique and readable
    p = result.profiles
    assert p["customers"].sum() == len(customers)
    assert p["customers_pct"].sum() == pytest.approx(100.0)
    assert p["segment"].is_unique and not p["segment"].str.contains("nan").any()
    retirees = p.loc[p["median_age"].idxmax(), "segment"]
    assert "66+" in retirees or "Retired" in retirees


def test_sample_fit_then_assign_everyone(generated):
    customers, truth = generated
    result = demographic.segment_demographic(customers, k=4, k_range=(4, 4), fit_sample_size=500, selection_sample_size=300,
                                             n_bootstrap=1, random_state=2)
    model = result.model
    assert 450 <= len(model.fit_sample_) <= 510
    assert len(result.labels) == len(customers)
    assert any("stratified sample of" in n for n in result.notes)
    labels = result.labels.set_index("customer_id")["demographic_segment"]
    assert adjusted_rand_score(truth.reindex(labels.index), labels) >= 0.8
    np.testing.assert_array_equal(model.predict(result.attributes.frame), model.labels_)


def test_vectorised_assignment_matches_kmodes_predict():
    rng = np.random.default_rng(0)
    n = 300
    Xnum = rng.normal(size=(n, 2))
    Xcat = rng.integers(0, 3, size=(n, 2))
    X = np.hstack([Xnum, Xcat.astype(float)])
    kp = KPrototypes(n_clusters=3, init="Huang", n_init=1, gamma=0.7, random_state=0).fit(X, categorical=[2, 3])
    centroids = np.asarray(kp.cluster_centroids_, dtype=float)
    ours, _ = demographic.assign_prototypes(Xnum, Xcat, centroids[:, :2], centroids[:, 2:].astype(int), 0.7, chunk_size=64)
    np.testing.assert_array_equal(ours, kp.predict(X, categorical=[2, 3]))


def test_gower_distance_by_hand():
    Xnum = np.array([[20.0], [40.0], [60.0]])  # range 40
    Xcat = np.array([[0, 1], [0, 2], [1, 2]])
    D = demographic.gower_distances(Xnum, Xcat)
    # rows 0 and 1: |20-40|/40 = 0.5 numeric, mismatches 0 + 1 -> (0.5 + 1) / 3
    assert D[0, 1] == pytest.approx(1.5 / 3)
    assert D[0, 2] == pytest.approx((1.0 + 1 + 1) / 3)
    assert np.allclose(D, D.T) and np.allclose(np.diag(D), 0)


def test_missing_values_are_explicit():
    cust = customers_frame(age=[25.0, 30.0, np.nan, 70.0, 72.0, 75.0],
                           education=["PhD", None, "PhD", "Basic", "Basic", None])
    attrs = demographic.prepare_attributes(cust, min_category_share=0.0)
    assert attrs.frame["education"].tolist().count(common.MISSING) == 2
    assert any("imputed with the median" in n for n in attrs.notes)
    model = demographic.DemographicSegmenter(k_range=(2, 2), n_bootstrap=1, random_state=0).fit(attrs.frame)
    assert model.medians_[0] == pytest.approx(np.log1p(70.0)) or model.medians_[0] == pytest.approx(70.0)
    assert model.categories_["education"] == sorted(["(missing)", "Basic", "PhD"])


def test_rare_categories_pooled():
    cust = customers_frame(marital_status=["Married"] * 120 + ["Single"] * 78 + ["YOLO", "Absurd"], age=np.arange(200.0))
    attrs = demographic.prepare_attributes(cust)
    assert set(attrs.frame["marital_status"]) == {"Married", "Single", common.OTHER}


def test_single_category_and_all_missing_columns_are_dropped_with_a_note():
    rng = np.random.default_rng(1)
    cust = customers_frame(age=np.r_[rng.normal(25, 2, 50), rng.normal(70, 2, 50)], gender=["F"] * 100,
                           income=[np.nan] * 100, education=["Master"] * 50 + ["Basic"] * 50)
    result = demographic.segment_demographic(cust, k_range=(2, 4), n_bootstrap=1, random_state=0)
    assert result.available
    dropped = dict(result.attributes.dropped.values.tolist())
    assert "single value" in dropped["gender"]
    assert dropped["income"] == "all values missing"
    assert any(n.startswith("gender: not used") for n in result.notes)
    assert result.k_choice.k == 2


def test_fewer_distinct_rows_than_k_reduces_the_range():
    cust = customers_frame(education=["A", "B", "C"] * 40, marital_status=["x", "y", "z"] * 40)
    result = demographic.segment_demographic(cust, k_range=(2, 8), n_bootstrap=1, random_state=0)
    assert result.available
    assert result.evidence["k"].tolist() == [2]
    assert any("only 3 distinct customer profiles" in n and "limited to 2..2" in n for n in result.notes)


def test_too_few_distinct_rows_gives_a_clear_message():
    cust = customers_frame(education=["A", "B"] * 20)
    result = demographic.segment_demographic(cust, n_bootstrap=1)
    assert not result.available
    assert "only 2 distinct customer profiles in the demographic data" in result.message
    assert result.summary()["lines"] == [result.message]


def test_no_demographic_columns_gives_a_clear_message():
    result = demographic.segment_demographic(customers_frame(city=["Paris", "Lyon"] * 10))
    assert not result.available
    assert "not available in this data" in result.message and "columns.customers" in result.message
    assert result.labels.empty


def test_all_categorical_uses_kmodes():
    cust = customers_frame(education=["A"] * 50 + ["B"] * 50, marital_status=["x"] * 50 + ["y"] * 50,
                           occupation=["p"] * 45 + ["q"] * 5 + ["q"] * 45 + ["p"] * 5)
    result = demographic.segment_demographic(cust, k_range=(2, 3), n_bootstrap=1, random_state=0)
    assert result.model_payload()["method"] == "kmodes"
    assert sorted(result.profiles["customers"]) == [50, 50]


def test_spend_from_columns_feeds_revenue_share():
    raw = pd.DataFrame({"ID": ["1", "2", "3", "3"], "MntA": ["10", "5", "1", "99"], "MntB": ["0", "15", None, "1"]})
    spend = common.spend_from_columns(raw, "ID", ["MntA", "MntB"])
    customers = pd.DataFrame({"customer_id": ["1", "2", "3", "4"]})
    value, source = common.customer_value(customers, spend=spend)
    assert value.tolist() == [10.0, 20.0, 1.0, 0.0]  # the first row of a repeated id, like the contract keeps
    assert "spend" in source
    with pytest.raises(KeyError, match="MntC"):
        common.spend_from_columns(raw, "ID", ["MntC"])
    sizes = common.segment_sizes(pd.Series(["a", "a", "b", "b"], index=customers["customer_id"]), value)
    assert sizes.set_index("segment")["revenue_pct"].to_dict() == pytest.approx({"a": 100 * 30 / 31, "b": 100 * 1 / 31})


@pytest.mark.parametrize("ids", [["a", "b", "c"], [7, 8, 9]])
def test_customer_value_from_a_dataframe_or_its_parquet_file(tmp_path, ids):
    """Spend per customer is the same from the order lines or from their Parquet file (summed by DuckDB in place),
    whether the ids are text or integers; NaN amounts are skipped as pandas skips them; an empty file falls back."""
    customers = pd.DataFrame({"customer_id": [str(i) for i in ids] + ["none"], "spend": [1.0, 2.0, 3.0, 4.0]})
    tx = pd.DataFrame({"customer_id": [ids[0], ids[0], ids[1], ids[2]], "amount": [10.0, 5.0, 7.0, np.nan]})
    path = tmp_path / "tx.parquet"
    tx.to_parquet(path)
    loaded, source = common.customer_value(customers, tx)
    in_place, source_in_place = common.customer_value(customers, path)
    assert loaded.tolist() == in_place.tolist() == [15.0, 7.0, 0.0, 0.0]
    assert source == source_in_place == "revenue from 4 order lines"
    tx.iloc[:0].to_parquet(path)
    assert common.customer_value(customers, path)[1] == "the customer table's spend column"


def test_lift_by_hand():
    attrs = pd.DataFrame({"status": ["S", "S", "S", "M", "M", "M", "M", "M"]}, index=list("abcdefgh"))
    labels = pd.Series([0, 0, 0, 0, 1, 1, 1, 1], index=attrs.index)
    lift = common.lift_table(attrs, labels, min_customers=1).set_index(["segment", "category"])
    # segment 0: 3 of 4 are S (75%); overall 3 of 8 (37.5%) -> lift 2
    assert lift.loc[(0, "S"), "lift"] == pytest.approx(2.0)
    assert lift.loc[(1, "M"), "lift"] == pytest.approx(1.0 / (5 / 8))


def test_stratified_sample_keeps_small_strata():
    strata = pd.Series(["big"] * 950 + ["small"] * 50)
    idx = common.stratified_sample(strata, 100, random_state=0)
    assert len(idx) == 100
    assert (strata.iloc[idx] == "small").sum() == 5


def test_size_order_numbers_segments_largest_first():
    raw = np.array([2, 0, 2, 1, 2, 1])
    mapping = common.size_order(raw)
    assert mapping.tolist() == [2, 1, 0]
    assert mapping[raw].tolist() == [0, 2, 0, 1, 0, 1]
    # a cluster with no member still gets an id (last), and ties keep the raw order
    assert common.size_order(np.array([0, 1]), n_segments=3).tolist() == [0, 1, 2]


def test_candidate_ks_adds_configured_k_and_drops_infeasible():
    assert selection.candidate_ks((2, 4), None, n_distinct=10) == ([2, 3, 4], [2, 3, 4])
    assert selection.candidate_ks((2, 4), 6, n_distinct=10) == ([2, 3, 4, 6], [2, 3, 4, 6])
    assert selection.candidate_ks((2, 4), 3, n_distinct=3) == ([2, 3, 4], [2])
    assert selection.candidate_ks((2, 4), None, n_distinct=2) == ([2, 3, 4], [])


@pytest.mark.slow
def test_degenerate_data_still_completes_the_run(tmp_path, write_config):
    """Single category, all-missing column, few distinct rows, no geography, no survey: pages say so, the run completes."""
    import json
    import subprocess
    import sys

    n = 120
    pd.DataFrame({"id": range(n), "gender": "F", "income": "", "education": ["A", "B", "C"] * (n // 3),
                  "marital": ["x", "y", "z"] * (n // 3)}).to_csv(tmp_path / "customers.csv", index=False)
    config = write_config({"name": "degenerate", "as_of": "2024-12-31", "sources": {"customers": {"path": "customers.csv"}},
                           "columns": {"customers": {"customer_id": "id", "marital_status": "marital"}}})
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "analysis", "run", "--config", str(config), "--run-id", "edge", "--reports-dir", str(reports),
                           "--only", "00_data_prep", "10_demographic", "11_geographic", "12_psychographic"],
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((reports / "edge" / "manifest.json").read_text())
    status = {nb["name"]: nb["status"] for nb in manifest["notebooks"]}
    assert status == {"00_data_prep": "ok", "10_demographic": "ok", "11_geographic": "not applicable", "12_psychographic": "not applicable"}
    page = (reports / "edge" / "10_demographic.html").read_text(encoding="utf-8")
    assert "only 3 distinct customer profiles" in page
    assert "a single value (&#x27;F&#x27;) for every customer" in page or "a single value ('F') for every customer" in page
    assert "all values missing" in page
    assert "Traceback" not in page
    exported = pd.read_csv(reports / "edge" / "exports" / "customers.csv")
    assert exported["demographic_segment"].notna().all()


def test_a_single_numeric_attribute_is_not_written_in_place():
    """pandas 3 hands out a read-only array for a single-dtype block; the log transform must not write into it."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"income": np.r_[rng.normal(20_000, 2_000, 60), rng.normal(90_000, 5_000, 60)],
                          "marital_status": ["Single"] * 60 + ["Married"] * 60})
    before = frame["income"].to_numpy().copy()
    model = demographic.DemographicSegmenter(k_range=(2, 3), n_bootstrap=1, random_state=0).fit(frame)
    np.testing.assert_array_equal(model.predict(frame), model.labels_)
    np.testing.assert_array_equal(frame["income"].to_numpy(), before)  # the caller's data untouched


def test_a_life_stage_reads_in_lower_case_within_a_name():
    """The project's life-stage labels are capitalised as values; inside a name they follow a comma."""
    lift = pd.DataFrame({"segment": [0, 0, 1], "attribute": ["income_band", "life_stage", "life_stage"],
                         "category": ["low", "Family with children", "Retired"],
                         "share_pct": [80.0, 70.0, 90.0], "lift": [2.4, 1.5, 3.0]})
    traits = demographic.segment_traits(lift)
    names = demographic.name_segments(traits, [0, 1])
    assert names.tolist() == ["Low income, family with children", "Retired"]
    assert traits.loc[traits["attribute"] == "life_stage", "category"].tolist() == ["Family with children", "Retired"]
