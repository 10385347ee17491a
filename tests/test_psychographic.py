"""Psychographic segmentation: reliability by hand, reverse items through a config, factors, planted segments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from analysis import contract, workspace
from analysis.config import load_config
from analysis.segment import psychographic

from .conftest import SAMPLE_CONFIG


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def sample_tables():
    cfg = load_config(SAMPLE_CONFIG)
    tables = contract.prepare(workspace.read_raw(cfg), cfg).tables
    truth = pd.read_csv(SAMPLE_CONFIG.parent.parent / "data" / "sample" / "truth.csv", dtype=str).set_index("customer_id")
    return cfg, tables, truth["true_psychographic_segment"]


@pytest.fixture(scope="module")
def sample_result(sample_tables):
    cfg, t, _ = sample_tables
    return psychographic.segment_psychographic(t["survey"], t["customers"], t["transactions"], items=cfg.survey.items,
                                               scales=cfg.survey.scales, reverse=cfg.survey.reverse, n_bootstrap=2, random_state=0)


def test_recovers_planted_segments(sample_tables, sample_result):
    truth = sample_tables[2]
    result = sample_result
    assert result.k_choice.k == 4, result.evidence
    assert result.verdict.level == "clear"
    labels = result.labels.set_index("customer_id")["psychographic_segment"]
    known = truth.reindex(labels.index).dropna()
    assert adjusted_rand_score(known, labels[known.index]) >= 0.8
    # respondents not in the customer table are counted and segmented, without value
    assert result.responses.not_in_customers == 30
    assert result.profiles["known_customers"].sum() == len(labels) - 30
    # reliable scales, factors named after them, segments named after factors
    assert (result.reliability["alpha"] > 0.85).all()
    assert "Price consciousness" in result.factors.factor_names_
    bargain = result.profiles.loc[result.profiles["mean_price_consciousness"].idxmax(), "segment"]
    assert bargain.startswith("High price consciousness")
    assert [c for c in result.labels.columns if c.startswith("factor_")]


def test_cronbach_alpha_by_hand():
    items = pd.DataFrame({"a": [1, 2, 3, 4], "b": [2, 2, 4, 4], "c": [1, 3, 3, 5]})
    # item variances 5/3, 4/3, 8/3 (sum 17/3); totals 4, 7, 10, 13 have variance 15
    # alpha = 3/2 * (1 - (17/3) / 15) = 14/15
    assert psychographic.cronbach_alpha(items) == pytest.approx(14 / 15)
    # respondents with a gap are left out; one item or constant totals give NaN
    assert psychographic.cronbach_alpha(pd.concat([items, pd.DataFrame({"a": [5], "b": [None], "c": [1]})])) == pytest.approx(14 / 15)
    assert np.isnan(psychographic.cronbach_alpha(items[["a"]]))


def _likert_survey(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, 2))
    def item(factor, reverse=False):
        raw = np.clip(np.round(3 + 1.2 * f[:, factor] + 0.5 * rng.normal(size=n)), 1, 5)
        return 6 - raw if reverse else raw
    return pd.DataFrame({"respondent": [f"r{i}" for i in range(n)], "thrill_1": item(0), "thrill_2": item(0),
                         "thrill_3_neg": item(0, reverse=True), "thrift_1": item(1), "thrift_2": item(1),
                         "thrift_3_neg": item(1, reverse=True)})


def _prepare_survey(write_config, tmp_path, reverse):
    _likert_survey().to_csv(tmp_path / "survey.csv", index=False)
    pd.DataFrame({"id": [f"r{i}" for i in range(300)]}).to_csv(tmp_path / "customers.csv", index=False)
    items = ["thrill_1", "thrill_2", "thrill_3_neg", "thrift_1", "thrift_2", "thrift_3_neg"]
    path = write_config({
        "name": "survey_test", "as_of": "2024-12-31",
        "sources": {"customers": {"path": "customers.csv"}, "survey": {"path": "survey.csv"}},
        "columns": {"customers": {"customer_id": "id"}, "survey": {"customer_id": "respondent"}},
        "survey": {"items": items, "reverse": reverse, "scales": {"thrill_seeking": items[:3], "thriftiness": items[3:]}},
    })
    cfg = load_config(path)
    return cfg, contract.prepare(workspace.read_raw(cfg), cfg).tables


def test_reverse_items_come_from_the_config(write_config, tmp_path):
    cfg, tables = _prepare_survey(write_config, tmp_path, reverse=["thrill_3_neg", "thrift_3_neg"])
    result = psychographic.segment_psychographic(tables["survey"], tables["customers"], items=cfg.survey.items, scales=cfg.survey.scales,
                                                 reverse=cfg.survey.reverse, k_range=(2, 3), n_bootstrap=1, random_state=0)
    assert (result.reliability["alpha"] > 0.8).all()
    assert result.factors.n_factors_ == 2
    assert sorted(result.factors.factor_names_) == ["Thriftiness", "Thrill seeking"]
    assert (result.factors.loadings_.max(axis=1) > 0.6).all()  # every item, reversed ones included, loads positively
    assert any("(reversed)" in row for row in result.loadings_table().index)


def test_unflagged_reverse_items_show_in_reliability(write_config, tmp_path):
    cfg, tables = _prepare_survey(write_config, tmp_path, reverse=[])
    observed = tables["survey"].set_index("customer_id")
    rel = psychographic.reliability(observed, cfg.survey.scales)
    assert (rel["alpha"] < 0.5).all()  # a reverse-worded item left unflipped breaks the scale
    assert rel["verdict"].str.startswith("poor").all()


def test_partial_responses_imputed_within_scale_or_set_aside():
    survey = pd.DataFrame({"customer_id": ["a", "b", "c"], "q1": [5.0, 1.0, None], "q2": [None, 2.0, None],
                           "q3": [1.0, None, None], "q4": [2.0, 4.0, 3.0]})
    r = psychographic.prepare_responses(survey, ["q1", "q2", "q3", "q4"], scales={"s": ["q1", "q2"]}, customer_ids=["a"])
    assert r.answers.loc["a", "q2"] == 5.0  # own answer on the same scale
    assert r.answers.loc["b", "q3"] == 1.0  # no scale: the item's mean over respondents
    assert r.set_aside["customer_id"].tolist() == ["c"] and r.imputed == 2
    assert r.not_in_customers == 1
    assert r.counts().set_index("respondents")["count"].to_dict()["set aside: too few answers"] == 1


def test_parallel_analysis_finds_the_configured_scales_on_the_sample(sample_tables, sample_result):
    cfg, _, _ = sample_tables
    fa = sample_result.factors
    # the Kaiser rule gives 3 (two correlated scales merge); parallel analysis keeps the 4 configured scales
    assert int((fa.eigenvalues_ > 1).sum()) == 3
    assert fa.n_factors_ == 4 == len(cfg.survey.scales)
    assert (fa.common_eigenvalues_[:4] > fa.reference_eigenvalues_[:4]).all() and fa.common_eigenvalues_[4] < fa.reference_eigenvalues_[4]
    assert "parallel analysis" in fa.n_factors_reason_ and "matches the 4 scales" in fa.n_factors_reason_
    assert sorted(fa.factor_names_) == ["Adventure", "Eco values", "Price consciousness", "Social status"]
    # the planted attitudes correlate (adventure with status, price with eco), so the rotation is oblique and says so
    assert fa.rotation_ == "oblimin" and "Oblique" in fa.rotation_reason_
    phi = fa.factor_correlations_
    assert phi.loc["Adventure", "Social status"] > 0.6 and phi.loc["Price consciousness", "Eco values"] < -0.5
    np.testing.assert_allclose(np.diag(phi), 1.0)
    # every item loads on its own scale's factor
    main = fa.loadings_.abs().idxmax(axis=1)
    for scale, items in cfg.survey.scales.items():
        assert set(main[items]) == {scale.replace("_", " ").capitalize()}
    # the scales are told apart: scale correlations shown, none flagged
    assert sample_result.scale_correlations.loc["adventure", "social_status"] == pytest.approx(0.73, abs=0.05)
    assert sample_result.scale_flags.empty and "distinct attitudes" in sample_result.scale_sentence()
    payload = sample_result.model_payload()
    assert payload["rotation"] == "oblimin" and payload["parallel_analysis"]["n_factors"] == 4


def test_parallel_analysis_reference_matches_simulated_answers():
    # the Wishart shortcut gives the same reference as drawing the random answers themselves
    direct = psychographic.parallel_analysis(200, 10, n_iter=200, random_state=1)
    rng = np.random.default_rng(2)
    answers = rng.standard_normal((200, 200, 10))
    answers -= answers.mean(axis=1, keepdims=True)
    simulated = np.quantile(psychographic.reduced_eigenvalues(psychographic._correlation(answers.transpose(0, 2, 1) @ answers)), 0.95, axis=0)
    np.testing.assert_allclose(direct, simulated, atol=0.03)
    few = psychographic.parallel_analysis(8, 10, n_iter=20, random_state=1)  # fewer respondents than items: answers drawn
    assert few.shape == (10,)


def test_no_structure_gives_no_factor_beyond_chance():
    rng = np.random.default_rng(5)
    noise = pd.DataFrame(rng.integers(1, 6, size=(600, 12)).astype(float), columns=[f"q{i:02d}" for i in range(12)])
    fa = psychographic.PsychographicFactors(random_state=0).fit(noise)
    assert fa.parallel_n_factors_ == 0 and fa.n_factors_ == 1
    assert "no attitude beyond chance" in fa.n_factors_reason_


def _merged_scales_survey(n: int = 600, seed: int = 3) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """Three configured scales, but "thrift" and "deals" are one attitude (same latent factor)."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, 2))
    items = {f"{name}_{i}": np.clip(np.round(3 + 1.1 * f[:, factor] + 0.6 * rng.normal(size=n)), 1, 5)
             for name, factor in (("thrift", 0), ("deals", 0), ("thrill", 1)) for i in range(1, 4)}
    scales = {name: [f"{name}_{i}" for i in range(1, 4)] for name in ("thrift", "deals", "thrill")}
    return pd.DataFrame({"customer_id": [f"r{i}" for i in range(n)], **items}), scales


def test_scales_that_cannot_be_told_apart_are_flagged():
    survey, scales = _merged_scales_survey()
    result = psychographic.segment_psychographic(survey, scales=scales, k_range=(2, 3), n_bootstrap=1, random_state=0)
    assert result.factors.n_factors_ == 2
    assert "fewer factors than scales" in result.factors.n_factors_reason_
    flags = result.scale_flags
    assert flags[["scale_a", "scale_b"]].values.tolist() == [["thrift", "deals"]]
    assert flags.loc[0, "r"] > 0.85 and flags.loc[0, "factor"] == "Thrift & deals"
    assert "thrift and deals" in result.scale_sentence() and "cannot be told apart" in result.scale_sentence()
    # uncorrelated attitudes: the oblique fit finds no factor correlation worth keeping, so varimax
    assert result.factors.rotation_ == "varimax" and "Orthogonal" in result.factors.rotation_reason_
    assert any("cannot be told apart" in line for line in result.summary_lines())


def test_parallel_analysis_and_names_from_wording():
    survey = _likert_survey(seed=1).rename(columns={"respondent": "customer_id"})
    answers = survey.drop(columns="customer_id").set_index(survey["customer_id"])
    answers[["thrill_3_neg", "thrift_3_neg"]] = 6 - answers[["thrill_3_neg", "thrift_3_neg"]]
    labels = {"thrill_1": "I love roller coasters", "thrift_1": "I always use coupons"}
    fa = psychographic.PsychographicFactors(item_labels=labels, random_state=0).fit(answers)
    assert fa.n_factors_ == 2 and fa.parallel_n_factors_ == 2
    assert sorted(fa.factor_names_) == ["I always use coupons", "I love roller coasters"]
    scales = fa.item_scales()
    assert sorted(map(sorted, scales.values())) == [["thrift_1", "thrift_2", "thrift_3_neg"], ["thrill_1", "thrill_2", "thrill_3_neg"]]
    assert psychographic.PsychographicFactors(n_factors=1).fit(answers).n_factors_ == 1
    with pytest.raises(ValueError, match="params.12_psychographic.rotation"):
        psychographic.PsychographicFactors(rotation="spin").fit(answers)


def test_factor_names_are_never_cut_off_sentences():
    survey = _likert_survey(seed=2).rename(columns={"respondent": "customer_id"})
    answers = survey.drop(columns="customer_id").set_index(survey["customer_id"])
    answers[["thrill_3_neg", "thrift_3_neg"]] = 6 - answers[["thrill_3_neg", "thrift_3_neg"]]
    labels = {"thrill_1": "I spend a lot of money on partying and socialising with my friends at weekends",
              "thrill_2": "I look for excitement in everything I do, even when it is risky",
              "thrift_1": "I compare prices in several shops before I buy anything that costs more than a few euros",
              "thrift_2": "I keep every receipt."}
    fa = psychographic.PsychographicFactors(item_labels=labels, random_state=0).fit(answers)
    for name in fa.factor_names_:
        assert not name.endswith(("...", "…")) and len(name) <= 40, name
        assert not any(text.startswith(name) and len(text.rstrip(" .")) > len(name) for text in labels.values()), name  # no cut wording
    assert set(fa.factor_names_) <= {"Spend / money / partying", "Look / excitement / everything", "Compare / prices / several", "I keep every receipt"}
    assert psychographic.short_label("I keep every receipt.") == "I keep every receipt"


def test_sample_factor_and_segment_names_are_not_cut_off(sample_tables):
    cfg, t, _ = sample_tables
    labels = cfg.params["12_psychographic"]["item_labels"]
    result = psychographic.segment_psychographic(t["survey"], items=cfg.survey.items, item_labels=labels, reverse=cfg.survey.reverse,
                                                 k_range=(4, 4), n_bootstrap=1, random_state=0)  # no scales: names from the wording
    names = result.factors.factor_names_ + result.profiles["segment"].tolist()
    assert result.factors.n_factors_ == 4
    for name in names:
        assert "..." not in name and "…" not in name, name
    for name in result.factors.factor_names_:
        assert not any(text.startswith(name) and len(text.rstrip(".")) > len(name) for text in labels.values()), name


def test_gaussian_mixture_option(sample_tables):
    cfg, t, truth = sample_tables
    result = psychographic.segment_psychographic(t["survey"], items=cfg.survey.items, scales=cfg.survey.scales, method="gmm",
                                                 k=4, k_range=(4, 4), n_bootstrap=1, random_state=0)
    labels = result.labels.set_index("customer_id")["psychographic_segment"]
    known = truth.reindex(labels.index).dropna()
    assert adjusted_rand_score(known, labels[known.index]) >= 0.8
    assert result.model_payload()["method"] == "gmm"


def test_no_survey_and_degenerate_surveys_give_clear_messages():
    none = psychographic.segment_psychographic(None)
    assert not none.available and "no survey" in none.message and "survey.items" in none.message
    flat = pd.DataFrame({"customer_id": [f"c{i}" for i in range(50)], "q1": 3.0, "q2": 3.0, "q3": 3.0, "q4": 4.0})
    result = psychographic.segment_psychographic(flat, items=["q1", "q2", "q3", "q4"])
    assert not result.available and "at least 10 and 3" in result.message
    assert any("single answer" in n for n in result.notes)
