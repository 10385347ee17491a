"""Every basis in the registry goes through the same protocol, on the sample and on data with no structure."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from analysis import contract, features, io, workspace
from analysis.config import load_config
from analysis.segment import base, behavioral, registry

from .conftest import SAMPLE_CONFIG

TRUTH = SAMPLE_CONFIG.parent.parent / "data" / "sample" / "truth.csv"


@pytest.fixture(scope="module")
def sample_inputs():
    """The sample's validated tables and features, keyed by the argument names of ``segment_<basis>``."""
    cfg = load_config(SAMPLE_CONFIG)
    tables = contract.prepare(workspace.read_raw(cfg), cfg).tables
    feats = features.customer_features(tables["transactions"], cfg.as_of, returns=tables["returns"], events=tables["events"])
    survey = cfg.survey
    return {
        "customers": tables["customers"], "transactions": tables["transactions"], "survey": tables["survey"],
        "features": feats, "as_of": pd.Timestamp(cfg.as_of), "rfm_rules": io.read_yaml(None, "rfm_segments.yaml"),
        "items": survey.items, "scales": survey.scales, "reverse": survey.reverse,
        "min_segment_size": cfg.min_segment_size, "random_state": cfg.seed,
    }


def _call(basis: registry.Basis, inputs: dict) -> base.SegmentationResult:
    """Call ``segment_<basis>`` with the inputs its signature names: one protocol, no per-basis wiring."""
    fn = basis.function
    params = inspect.signature(fn).parameters
    kwargs = {name: inputs[name] for name in params if name in inputs}
    missing = [n for n, p in params.items() if p.default is inspect.Parameter.empty and n not in kwargs]
    assert not missing, f"segment_{basis.name} needs inputs the protocol does not know: {missing}"
    with threadpool_limits(1):
        return fn(**kwargs)


class _Results(dict):
    """Results by basis, each computed on first use (a failing basis does not hide the others)."""

    def __init__(self, inputs: dict):
        super().__init__()
        self.inputs = inputs

    def __missing__(self, name: str) -> base.SegmentationResult:
        self[name] = _call(registry.BASES[name], self.inputs)
        return self[name]


@pytest.fixture(scope="module")
def results(sample_inputs):
    return _Results(sample_inputs)


def test_registry_lists_every_basis_with_its_notebook():
    assert list(registry.BASES) == ["demographic", "geographic", "psychographic", "behavioral", "value"]
    notebooks = {p.stem for p in (SAMPLE_CONFIG.parent.parent / "notebooks").glob("*.ipynb")}
    for b in registry.BASES.values():
        assert b.notebook in notebooks, f"{b.name}: notebook {b.notebook} missing"
        assert callable(b.function)


@pytest.mark.parametrize("name", list(registry.BASES))
def test_every_basis_returns_the_one_result_type(results, name):
    result = results[name]
    b = registry.BASES[name]
    assert isinstance(result, base.SegmentationResult)
    assert result.basis == name and result.available, result.message
    # labels: one row per customer id, with the basis's segment column
    assert {"customer_id", b.segment_column} <= set(result.labels.columns)
    assert result.labels["customer_id"].is_unique
    # profiles: the shared columns, one row per segment, sizes adding up to the labelled customers
    shared = ["segment", "customers", "customers_pct", "revenue", "revenue_pct", "revenue_per_customer"]
    assert set(shared) <= set(result.profiles.columns), result.profiles.columns.tolist()
    labelled = result.labels[b.segment_column].value_counts()
    sizes = result.profiles.set_index("segment")["customers"]
    assert sizes.sum() == labelled.reindex(sizes.index).fillna(0).sum()
    summary = result.summary()
    assert summary["title"] and summary["lines"] and "verdict" in summary
    payload = result.model_payload()
    assert payload["available"] is True and payload["verdict"] in base.VERDICTS


@pytest.mark.parametrize("name", [n for n, b in registry.BASES.items() if b.kind != "rules"])
def test_clustering_bases_recover_the_planted_segments_with_a_clear_verdict(results, name):
    result = results[name]
    truth = pd.read_csv(TRUTH, dtype=str).set_index("customer_id")[f"true_{name}_segment"]
    labels = result.labels.set_index("customer_id")[registry.BASES[name].segment_column]
    common = labels.index.intersection(truth.index)
    assert adjusted_rand_score(truth[common], labels[common]) >= 0.8
    assert result.verdict.level == "clear", result.verdict.reason
    assert result.model_payload()["verdict_evidence"]["margin_low"] >= base.CLEAR_MARGIN


@pytest.mark.parametrize("name", [n for n, b in registry.BASES.items() if b.kind != "rules"])
def test_saved_model_reassigns_the_same_segments(results, name):
    result = results[name]
    model = result.model
    assert model is not None and hasattr(model, "labels_")
    assert model.n_features_in_ >= 1
    np.testing.assert_array_equal(model.predict(_fit_input(name, result)), model.labels_)


def _fit_input(name: str, result: base.SegmentationResult):
    if name == "demographic":
        return result.attributes.frame
    if name == "psychographic":
        return result.scores
    if name == "geographic":
        located = result.customers[["latitude", "longitude"]].notna().all(axis=1)
        return result.customers.loc[located, ["latitude", "longitude"]]
    return result.features


def test_noise_gets_verdict_none():
    """Independent random features: k-means always returns clusters; the verdict must say there are none."""
    rng = np.random.default_rng(7)
    n = 2000
    noise = pd.DataFrame({
        "recency_days": rng.exponential(90, n), "frequency": rng.poisson(3, n) + 1.0,
        "mean_order_value": rng.lognormal(3, 0.6, n), "tenure_days": rng.uniform(30, 700, n),
        "favourite_category_share": rng.uniform(0.2, 1.0, n),
    })
    with threadpool_limits(1):
        model = behavioral.BehavioralClusters(n_bootstrap=3, random_state=0).fit(noise)
    assert model.verdict_.level == "none", model.verdict_.reason
    assert "No structure" in model.verdict_.reason


def test_judge_levels_and_margins():
    assert base.judge(0.45, [0.20, 0.22], 0.95).level == "clear"
    assert base.judge(0.45, [0.20, 0.22], 0.50).level == "weak"  # separated but unstable
    assert base.judge(0.27, [0.22, 0.23], 0.95).level == "weak"
    assert base.judge(0.13, [0.13, 0.12], 0.99).level == "none"
    # a margin over 0.10 but within two standard errors of the shuffled fits is not called clear
    borderline = base.judge(0.33, [0.215, 0.225, 0.23], 0.98)
    assert borderline.level == "weak" and "within the noise of the shuffled fits" in borderline.reason
    assert base.judge(0.33, [0.2233, 0.2233, 0.2233], 0.98).level == "clear"  # the same margin with no noise
    assert base.judge(0.26, [0.215, 0.225, 0.23], 0.98).level == "weak"  # weak/none is the plain margin (0.036)
    assert base.judge(float("nan"), [0.1], 0.9).level == "none"


@pytest.mark.parametrize("segmenter", [
    behavioral.BehavioralClusters(n_clusters=5, random_state=0),
])
def test_an_infeasible_k_is_refused_with_the_same_sentence(segmenter):
    tiny = pd.DataFrame({"recency_days": [1.0, 5.0, 9.0], "frequency": [1.0, 2.0, 3.0],
                         "mean_order_value": [5.0, 6.0, 7.0], "tenure_days": [3.0, 8.0, 20.0]})
    with pytest.raises(base.InfeasibleK, match=r"params\.13_behavioral\.k = 5: .* at most 2 segments can be fitted"):
        segmenter.fit(tiny)


def test_infeasible_k_message_is_shared_by_every_basis():
    from analysis.segment import demographic, geographic, psychographic

    tiny_coords = pd.DataFrame({"latitude": [51.5, 48.8, 40.4], "longitude": [-0.1, 2.3, -3.7]})
    tiny_scores = pd.DataFrame({"f1": [0.0, 1.0, 2.0], "f2": [1.0, 0.0, 2.0]})
    tiny_attrs = pd.DataFrame({"age": [20.0, 40.0, 60.0], "gender": ["f", "m", "f"]})
    cases = [
        (geographic.SpatialClusters(n_clusters=5, random_state=0), tiny_coords, "11_geographic"),
        (psychographic.PsychographicClusters(n_clusters=5, random_state=0), tiny_scores, "12_psychographic"),
        (demographic.DemographicSegmenter(n_clusters=5, random_state=0), tiny_attrs, "10_demographic"),
    ]
    for model, X, notebook in cases:
        with pytest.raises(base.InfeasibleK) as err:
            model.fit(X)
        message = str(err.value)
        assert message.startswith(f"params.{notebook}.k = 5: ") and "remove it to choose k from the evidence" in message
