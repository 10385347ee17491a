from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from analysis import contract, features, io, workspace
from analysis.config import load_config
from analysis.segment import behavioral

from .conftest import SAMPLE_CONFIG, shared_path


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
    assert s["f_score"].tolist() == [1] * 6 + [2, 3, 4, 5]  # ties share a score, and no level is skipped
    fixed = behavioral.rfm_scores(f, edges={"r": [2.5, 5.5]})
    assert fixed["r_score"].tolist() == [3, 3, 2, 2, 2, 1, 1, 1, 1, 1]
    assert fixed.attrs["edges"]["r"] == [2.5, 5.5]


def test_tied_frequencies_still_use_every_score_level():
    """52% one-order customers (as on CDNOW): average-rank-then-ceiling gave only F = 2, 4, 5."""
    rng = np.random.default_rng(3)
    freq = np.r_[np.ones(520), rng.integers(2, 30, 480)].astype(float)
    f = pd.DataFrame({"recency_days": rng.uniform(1, 500, 1000), "frequency": freq, "total_spend": rng.lognormal(4, 1, 1000)})
    s = behavioral.rfm_scores(f)
    assert sorted(s["f_score"].unique()) == [1, 2, 3, 4, 5]
    assert (s.loc[freq == 1, "f_score"] == 1).all()
    assert s["r_score"].value_counts().min() >= 195 and s["m_score"].value_counts().min() >= 195


def test_few_distinct_values_are_said():
    f = pd.DataFrame({"recency_days": np.arange(10.0), "frequency": [1.0, 2.0] * 5, "total_spend": np.arange(10.0)})
    s = behavioral.rfm_scores(f)
    assert sorted(s["f_score"].unique()) == [1, 2]
    assert any("frequency takes only 2 distinct values" in n and "F uses 2 of the 5" in n for n in s.attrs["notes"])


def test_default_rules_cover_every_score_combination_exactly_once():
    rules = io.read_yaml(None, "rfm_segments.yaml")
    behavioral.check_rules(rules)  # raises on a gap or an overlap
    grid = pd.DataFrame([(r, f, m) for r in range(1, 6) for f in range(1, 6) for m in range(1, 6)], columns=["r_score", "f_score", "m_score"])
    hits = sum(
        grid["r_score"].between(*rule.get("r", (1, 5))) & grid["f_score"].between(*rule.get("f", (1, 5)))
        & grid["m_score"].between(*rule.get("m", (1, 5)))
        for rule in rules["rules"]
    )
    assert len(grid) == 125 and (hits == 1).all()
    names = behavioral.rule_grid(rules)
    assert names.loc[5, 5] == "Champions" and names.loc[1, 1] == "Lost" and names.loc[1, 5] == "New"
    assert names.loc[1, 3] == "About to sleep / Need attention"
    assert names.loc[3, 4] == "Potential loyalist"  # reachable now (it was shadowed by Loyal)


def test_rules_with_gaps_or_overlaps_are_refused():
    scores = pd.DataFrame({"r_score": [5, 1], "f_score": [5, 5], "m_score": [5, 5]})
    with pytest.raises(ValueError, match=r"match no rule: 111, 112"):
        behavioral.rfm_segments(scores, {"rules": [{"segment": "VIP", "r": [4, 5], "f": [4, 5]}]})
    overlapping = {"rules": [{"segment": "All"}, {"segment": "VIP", "r": [5, 5]}]}
    with pytest.raises(ValueError, match=r"25 match more than one rule"):
        behavioral.rfm_segments(scores, overlapping)
    custom = {"scores": 5, "rules": [{"segment": "Recent", "r": [3, 5]}, {"segment": "Old", "r": [1, 2]}]}
    assert behavioral.rfm_segments(scores, custom).tolist() == ["Recent", "Old"]


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize("config_name", ["cdnow", "online_retail"])
def test_rfm_on_public_data_uses_every_r_and_m_level_and_no_segment_dominates(config_name):
    shared_path(config_name)  # skips with the reason when the public data set is absent
    cfg = load_config(SAMPLE_CONFIG.parent / f"{config_name}.yaml")
    t = contract.prepare(workspace.read_raw(cfg), cfg).tables
    feats = features.customer_features(t["transactions"], cfg.as_of)
    s = behavioral.rfm_scores(feats)
    for key in ("r", "m"):
        assert sorted(s[f"{key}_score"].unique()) == [1, 2, 3, 4, 5], key
    assert s["f_score"].nunique() == min(5, feats["frequency"].nunique())
    shares = behavioral.rfm_segments(s, io.read_yaml(None, "rfm_segments.yaml")).value_counts(normalize=True)
    assert shares.max() <= 0.30, shares.round(3).to_dict()


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


def test_k_is_chosen_on_a_sample_of_large_data_and_everyone_is_labelled():
    """Above ``selection_size`` customers the evidence for k comes from a random sample; the final fit labels all."""
    rng = np.random.default_rng(3)
    n = 12_000
    planted = rng.integers(0, 3, n)
    features = pd.DataFrame({"frequency": np.array([2, 12, 40])[planted] + rng.poisson(1, n),
                             "recency_days": np.array([300.0, 90.0, 10.0])[planted] * rng.uniform(0.8, 1.2, n)},
                            index=pd.Index([f"C{i}" for i in range(n)], name="customer_id"))
    model = behavioral.BehavioralClusters(k_range=(2, 5), n_bootstrap=2, selection_size=2_000, random_state=0).fit(features)
    assert any("random sample of 2,000 of the 12,000 customers" in note for note in model.notes_)
    assert len(model.labels_) == n and model.k_choice_.k == 3
    assert adjusted_rand_score(planted, model.labels_) > 0.95
    everyone = behavioral.BehavioralClusters(k_range=(2, 5), n_bootstrap=2, selection_size=None, random_state=0).fit(features)
    assert not any("random sample" in note for note in everyone.notes_) and everyone.k_choice_.k == 3


def test_a_feature_with_one_value_for_everyone_is_not_clustered_on():
    """Online Retail has no product category: favourite_category_share is 1 for every customer."""
    rng = np.random.default_rng(0)
    feats = pd.DataFrame({c: rng.gamma(2.0, 10.0, 50) for c in behavioral.CLUSTER_FEATURES})
    assert behavioral.cluster_columns(feats) == list(behavioral.CLUSTER_FEATURES)
    feats["favourite_category_share"] = 1.0
    assert "favourite_category_share" not in behavioral.cluster_columns(feats)
    assert len(behavioral.cluster_columns(feats)) == len(behavioral.CLUSTER_FEATURES) - 1
