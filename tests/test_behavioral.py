from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from analysis import contract, features, io, workspace
from analysis.config import load_config
from analysis.segment import behavioral

from .conftest import SAMPLE_CONFIG


@pytest.fixture(scope="module")
def sample_features():
    cfg = load_config(SAMPLE_CONFIG)
    prepared = contract.prepare(workspace.read_raw(cfg), cfg)
    t = prepared.tables
    feats = features.customer_features(t["transactions"], cfg.as_of, returns=t["returns"], events=t["events"])
    truth = pd.read_csv(SAMPLE_CONFIG.parent.parent / "data" / "sample" / "truth.csv", dtype=str).set_index("customer_id")
    return feats, truth.reindex(feats.index)


def test_rfm_scores_quintiles_and_ties():
    f = pd.DataFrame({"recency_days": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10.0], "frequency": [1, 1, 1, 1, 1, 1, 2, 3, 4, 5.0],
                      "total_spend": np.arange(10, 110, 10.0)})
    s = behavioral.rfm_scores(f)
    assert s["r_score"].tolist() == [5, 5, 4, 4, 3, 3, 2, 2, 1, 1]  # recent = high
    assert s["m_score"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert s["f_score"].iloc[:6].nunique() == 1  # ties share a score
    fixed = behavioral.rfm_scores(f, edges={"r": [2.5, 5.5]})
    assert fixed["r_score"].tolist() == [3, 3, 2, 2, 2, 1, 1, 1, 1, 1]


def test_rfm_rules_first_match_and_editable():
    scores = pd.DataFrame({"r_score": [5, 1, 5, 3], "f_score": [5, 5, 1, 3], "m_score": [5, 5, 1, 3]})
    rules = io.read_yaml(None, "rfm_segments.yaml")
    assert behavioral.rfm_segments(scores, rules).tolist() == ["Champions", "Can't lose them", "New", "Loyal"]
    custom = {"rules": [{"segment": "VIP", "r": [4, 5], "f": [4, 5]}]}
    assert behavioral.rfm_segments(scores, custom).tolist() == ["VIP", "Other", "Other", "Other"]


def test_default_rules_cover_every_score_cell():
    grid = pd.DataFrame([(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)], columns=["r_score", "f_score", "m_score"])
    assert (behavioral.rfm_segments(grid, io.read_yaml(None, "rfm_segments.yaml")) != "Other").all()


def test_behavioral_clusters_recover_planted_segments(sample_features):
    feats, truth = sample_features
    model = behavioral.BehavioralClusters(random_state=42).fit(feats)
    ari = adjusted_rand_score(truth["true_behavioral_segment"], model.labels_)
    assert model.k_choice_.k == 4, model.k_choice_.evidence
    assert ari >= 0.8, ari
    np.testing.assert_array_equal(model.predict(feats), model.labels_)


def test_cluster_descriptions_name_the_planted_behaviour(sample_features):
    feats, truth = sample_features
    model = behavioral.BehavioralClusters(n_clusters=4, random_state=42).fit(feats)
    desc = behavioral.describe_clusters(feats, model.labels_).set_index("cluster")["description"]
    majority = pd.crosstab(model.labels_, truth["true_behavioral_segment"].to_numpy()).idxmax(axis=0)
    assert "lapsed" in desc[majority["Lapsed"]]
    assert "new" in desc[majority["New & promising"]]
    assert "frequent" in desc[majority["Loyal regulars"]] and "loyal to one category" in desc[majority["Loyal regulars"]]
    assert "big baskets" in desc[majority["Big-ticket occasional"]]


def test_too_few_distinct_customers_is_a_clear_error():
    f = pd.DataFrame({"recency_days": [1.0, 1.0], "frequency": [1.0, 1.0], "mean_order_value": [5.0, 5.0], "tenure_days": [3.0, 3.0]})
    with pytest.raises(ValueError, match="only 1 distinct customers in the behavioral data"):
        behavioral.BehavioralClusters(random_state=0).fit(f)


def test_configured_k_is_used_or_refused_never_replaced(sample_features):
    feats, _ = sample_features
    assert behavioral.BehavioralClusters(n_clusters=9, k_range=(2, 4), n_bootstrap=2, random_state=0).fit(feats).k_choice_.k == 9
    tiny = pd.DataFrame({"recency_days": [1.0, 5.0, 9.0], "frequency": [1.0, 2.0, 3.0], "mean_order_value": [5.0, 6.0, 7.0], "tenure_days": [3.0, 8.0, 20.0]})
    with pytest.raises(ValueError, match=r"params\.13_behavioral\.k = 5: the behavioral data have only 3 distinct customers"):
        behavioral.BehavioralClusters(n_clusters=5, random_state=0).fit(tiny)
