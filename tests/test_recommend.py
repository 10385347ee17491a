"""Recommendations: the recommenders, the time-split evaluation, and the lift they must show."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from analysis import clienteling, recommend
from analysis.config import load_config
from .conftest import PROJECT_ROOT, shared_path

SAMPLE_TX = PROJECT_ROOT / "data" / "sample" / "transactions.csv.gz"
SAMPLE_TRUTH = PROJECT_ROOT / "data" / "sample" / "truth.csv"


def _basket():
    return pd.DataFrame({
        "customer_id": ["c1", "c1", "c2", "c2", "c3", "c4", "c5"],
        "product_id": ["bread", "butter", "bread", "butter", "bread", "tv", "tv"],
        "timestamp": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-02-01", "2024-02-01", "2024-03-01", "2024-03-01", "2024-04-01"]),
    })


@pytest.mark.parametrize("model", [recommend.EASERecommender(l2=1.0), recommend.ItemKNNRecommender(), recommend.PopularityRecommender(),
                                   recommend.SegmentPopularityRecommender(pd.Series(["a", "a", "a", "b", "b"], index=["c1", "c2", "c3", "c4", "c5"]))])
def test_recommenders_skip_owned_and_chunking_is_invisible(model):
    tx = _basket()
    recs = model.fit(tx).recommend(n=2)
    owned = tx.groupby("customer_id")["product_id"].agg(set)
    assert len(recs) and not any(p in owned[c] for c, p in zip(recs.customer_id, recs.product_id))
    pd.testing.assert_frame_equal(recs, model.recommend(n=2, chunk=1))


def test_ease_follows_co_purchase_and_names_the_reason():
    model = recommend.EASERecommender(l2=1.0).fit(_basket())
    recs = model.recommend(pd.Index(["c3"]), n=1)
    assert recs["product_id"].tolist() == ["butter"]
    assert model.because(recs).tolist() == ["bread"]


def test_unfitted_and_unknown_recommender_say_what_to_do():
    with pytest.raises(RuntimeError, match="fit"):
        recommend.EASERecommender().recommend()
    with pytest.raises(ValueError, match="params.30_clienteling.recommender"):
        clienteling.recommender("magic")


def test_split_outside_the_data_names_the_config_key():
    with pytest.raises(ValueError, match="params.30_clienteling.evaluation_split"):
        recommend.time_split(_basket(), "2030-01-01")
    train, test, cut = recommend.time_split(_basket())
    assert len(train) + len(test) == 7 and train["timestamp"].max() < cut <= test["timestamp"].min()


def test_evaluation_scores_known_hits():
    # c1 bought bread before the split and butter after: everyone else who bought bread bought butter too
    tx = pd.DataFrame({
        "customer_id": ["c1", "c2", "c2", "c3", "c3", "c1", "c4"],
        "product_id": ["bread", "bread", "butter", "bread", "butter", "butter", "jam"],
        "timestamp": pd.to_datetime(["2024-01-01"] * 5 + ["2024-06-01", "2024-06-01"]),
    })
    res = recommend.evaluate_recommenders(tx, {"ease": recommend.EASERecommender(l2=1.0), "popularity": recommend.PopularityRecommender()},
                                          split="2024-05-01", k=1)
    assert res.n_test_clients == 1  # c4 is new, so not a test client
    assert res.table.set_index("recommender")["hit_rate"].tolist() == [1.0, 1.0]
    entry = res.manifest("ease")
    assert entry["hit_at_1"] == 1.0 and entry["recall_at_1"] == 1.0 and entry["split"] == "2024-05-01"


def test_sample_lift_over_popularity():
    """On the planted sample the project's recommender beats both baselines clearly (seeded data, deterministic)."""
    tx = pd.read_csv(SAMPLE_TX, parse_dates=["timestamp"])
    clients = pd.read_csv(SAMPLE_TRUTH, index_col="customer_id").rename(columns={"true_behavioral_segment": "behavioral_segment"})
    entry = clienteling.evaluate_recommendations(tx, clients[["behavioral_segment"]]).manifest("ease")
    assert {"hit_at_10", "popularity_hit_at_10", "segment_popularity_hit_at_10", "recall_at_10"} <= set(entry)
    assert entry["hit_at_10"] >= 1.5 * entry["popularity_hit_at_10"]
    assert entry["hit_at_10"] > entry["segment_popularity_hit_at_10"]


def test_no_structure_no_lift():
    """Products bought at random: nothing to learn, so no recommender may claim a large lift."""
    rng = np.random.default_rng(0)
    n = 20_000
    tx = pd.DataFrame({"customer_id": rng.integers(0, 800, n).astype(str), "product_id": rng.integers(0, 150, n).astype(str),
                       "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")})
    entry = recommend.evaluate_recommenders(tx, {"ease": recommend.EASERecommender(), "popularity": recommend.PopularityRecommender()}).manifest()
    assert entry["hit_at_10"] < 1.2 * entry["popularity_hit_at_10"]


@pytest.fixture(scope="module")
def online_retail_transactions(tmp_path_factory):
    from analysis import contract, workspace

    data = shared_path("online_retail")
    path = tmp_path_factory.mktemp("or") / "run.yaml"
    path.write_text((PROJECT_ROOT / "config" / "online_retail.yaml").read_text().replace("{data_root}", str(data.parent)))
    cfg = load_config(path)
    return contract.prepare(workspace.read_raw(cfg), cfg).tables["transactions"]


@pytest.mark.shared_data
@pytest.mark.slow
def test_online_retail_lift_and_speed(online_retail_transactions):
    tx = online_retail_transactions
    country = tx.groupby("customer_id")["country"].first() if "country" in tx else None
    clients = pd.DataFrame({"behavioral_segment": country}) if country is not None else pd.DataFrame(index=tx["customer_id"].unique())
    entry = clienteling.evaluate_recommendations(tx, clients, split="2011-09-01").manifest("ease")
    assert entry["hit_at_10"] >= 1.5 * entry["popularity_hit_at_10"], entry
    if "segment_popularity_hit_at_10" in entry:
        assert entry["hit_at_10"] > entry["segment_popularity_hit_at_10"], entry
    t0 = time.perf_counter()
    recs = clienteling.recommend_products(tx, n=10)
    elapsed = time.perf_counter() - t0
    assert recs["customer_id"].nunique() == tx["customer_id"].nunique()
    assert elapsed <= 30, f"recommending for every Online Retail customer took {elapsed:.1f} s"


@pytest.mark.slow
def test_sample_run_manifest_carries_the_recommendation_scores(sample_run):
    import json

    proc, reports = sample_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    entry = json.loads((reports / "ci-sample" / "manifest.json").read_text())["models"]["recommendations"]
    assert {"hit_at_10", "popularity_hit_at_10", "segment_popularity_hit_at_10", "recall_at_10"} <= set(entry)
    assert entry["hit_at_10"] >= 1.5 * entry["popularity_hit_at_10"] and entry["hit_at_10"] > entry["segment_popularity_hit_at_10"]


@pytest.mark.parametrize("half_life_days", [None, 90.0])
def test_interactions_read_in_place_equal_those_of_the_dataframe(tmp_path, half_life_days):
    """A Parquet path gives the same client x product matrix (same sorted client and product order,
    counts and recency weights to the last bit) as the DataFrame: DuckDB reads the lines where they lie."""
    rng = np.random.default_rng(4)
    names = ["Épée", "epee", "Zebra", "zèbre", "10", "9", "a'b", "B"]
    n = 3_000
    tx = pd.DataFrame({
        "customer_id": rng.choice([f"c{i}" for i in range(40)] + ["Ünal", "ünal", "007"], n),
        "product_id": rng.choice(names, n),
        "timestamp": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 400 * 86_400, n), unit="s"),
    })
    path = tmp_path / "transactions.parquet"
    tx.to_parquet(path)
    loaded, in_place = recommend._interactions(tx, half_life_days), recommend._interactions(path, half_life_days)
    pd.testing.assert_index_equal(loaded[1], in_place[1])
    pd.testing.assert_index_equal(loaded[2], in_place[2])
    assert (loaded[0] != in_place[0]).nnz == 0 and loaded[0].nnz == in_place[0].nnz > 0
    fitted = recommend.ItemKNNRecommender(half_life_days=half_life_days).fit(path)
    pd.testing.assert_frame_equal(fitted.recommend(n=3), recommend.ItemKNNRecommender(half_life_days=half_life_days).fit(tx).recommend(n=3))
    pd.testing.assert_frame_equal(clienteling.recommend_products(path, n=2), clienteling.recommend_products(tx, n=2))


def test_interactions_of_an_empty_file_are_an_empty_matrix(tmp_path):
    empty = _basket().iloc[:0]
    empty.to_parquet(tmp_path / "empty.parquet")
    for half_life_days in (None, 90.0):
        X, customers, products = recommend._interactions(tmp_path / "empty.parquet", half_life_days)
        assert X.shape == (0, 0) and len(customers) == len(products) == 0
        assert recommend._interactions(empty, half_life_days)[0].shape == (0, 0)
