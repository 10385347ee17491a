"""Saved models score new data without refitting, and refuse data they were not fitted for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import io, scoring, workspace
from analysis.config import load_config

from .conftest import SAMPLE_CONFIG


def _run(path, **tables) -> workspace.Run:
    """A run handle on a folder holding ``tables`` as validated tables (config: the sample's)."""
    folder = io.RunFolder(path)
    for name, frame in tables.items():
        folder.write_table(name, frame)
    folder.write_ledger({"rows": [], "notes": []})
    return workspace.Run(config=load_config(SAMPLE_CONFIG), folder=folder)


def _features(n: int = 300, seed: int = 0, sessions: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    half = n // 2
    frame = pd.DataFrame({
        "customer_id": [f"c{i:04d}" for i in range(n)],
        "recency_days": np.r_[rng.uniform(200, 400, half), rng.uniform(1, 30, n - half)],
        "frequency": np.r_[rng.poisson(2, half), rng.poisson(20, n - half)] + 1.0,
        "mean_order_value": rng.lognormal(3, 0.3, n),
        "tenure_days": rng.uniform(400, 700, n),
        "total_spend": rng.lognormal(5, 0.5, n),
    })
    frame["interpurchase_days"] = frame["tenure_days"] / frame["frequency"]
    if sessions:
        frame["sessions_per_month"] = np.r_[rng.uniform(0, 1, half), rng.uniform(3, 6, n - half)]
    return frame


@pytest.fixture(scope="module")
def behavioral_run(tmp_path_factory):
    """Behavioral segments fitted on small synthetic features and saved through the run handle."""
    from analysis.segment import behavioral

    run = _run(tmp_path_factory.mktemp("fitted"), features=_features())
    result = behavioral.segment_behavioral(run.customer_features(), rfm_rules=io.read_yaml(None, "rfm_segments.yaml"),
                                           k=2, n_bootstrap=1, random_state=0)
    run.save_result(result)
    return run, result


def test_saved_model_carries_its_card(behavioral_run):
    run, result = behavioral_run
    card = run.folder.read_model("behavioral")["saved_model"]
    assert card["features"] == [*result.model.columns_, "total_spend"]
    assert "sessions_per_month" in card["features"]
    assert card["package_version"] == scoring.package_version() and card["contract_version"] == scoring.contract_version()
    assert card["trained_on"]["as_of"] == "2025-01-01" and card["trained_on"]["customers"] == 300
    assert card["fit_parameters"]["seed"] == 42 and card["fit_parameters"]["k_max"] == 8  # notebook defaults, config seed
    assert set(card["state"]["segments"].values()) == set(result.labels["behavioral_segment"])


def test_scoring_new_customers_uses_the_saved_model_without_refit(behavioral_run, tmp_path):
    run, result = behavioral_run
    model = scoring.load_model(run.folder, "behavioral")
    fresh = _features(seed=1)
    scored = scoring.score_basis(model, _run(tmp_path, features=fresh))
    expected = result.model.predict(fresh.set_index("customer_id"))
    assert scored.labels["behavioral_cluster"].tolist() == expected.tolist()
    assert set(scored.labels["behavioral_segment"]) <= set(result.labels["behavioral_segment"])
    # RFM from the saved cut points, not this data's: a customer with the fitted data's values gets its score
    assert scored.labels.columns.tolist() == result.labels.columns.tolist()
    assert scored.profiles["customers"].sum() == len(fresh)


def test_model_saved_with_other_features_is_refused_naming_the_differences(behavioral_run, tmp_path):
    run, _ = behavioral_run
    model = scoring.load_model(run.folder, "behavioral")
    without_sessions = _run(tmp_path / "a", features=_features(seed=2, sessions=False))
    with pytest.raises(scoring.ModelMismatch) as missing:
        scoring.score_basis(model, without_sessions)
    text = str(missing.value)
    assert "missing here ['sessions_per_month']" in text and "run fitted" in text.replace("saved by run fitted", "run fitted")
    shares = np.random.default_rng(3).uniform(0.2, 1.0, len(_features(seed=3)))
    extra = _features(seed=3).assign(favourite_category_share=shares)
    with pytest.raises(scoring.ModelMismatch, match=r"not in the model \['favourite_category_share'\]"):
        scoring.score_basis(model, _run(tmp_path / "b", features=extra))
    # the same column with one value for everyone (no categories in these data) separates no one: the model scores
    same = _features(seed=3).assign(favourite_category_share=1.0)
    assert len(scoring.score_basis(model, _run(tmp_path / "c", features=same)).labels) == len(same)


def test_model_saved_under_another_contract_is_refused(behavioral_run, tmp_path):
    run, _ = behavioral_run
    model = scoring.load_model(run.folder, "behavioral")
    model.card = {**model.card, "contract_version": "0123456789ab"}
    with pytest.raises(scoring.ModelMismatch, match="data contract 0123456789ab"):
        scoring.score_basis(model, _run(tmp_path, features=_features(seed=4)))


def test_a_run_without_saved_models_has_nothing_to_load(tmp_path):
    assert scoring.load_model(io.RunFolder(tmp_path), "behavioral") is None


# ------------------------------------------------------------------------------------------
# The bundled sample: its own saved models reproduce its labels exactly, on every basis
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_fits(tmp_path_factory):
    """Every clustering basis fitted on the bundled sample (fixed k, few refits: the labels, not the
    choice of k, are under test) and saved through the run handle; plus areas without coordinates."""
    from analysis.segment import behavioral, demographic, geographic, psychographic, value

    run = workspace.open_run(SAMPLE_CONFIG, tmp_path_factory.mktemp("sample-run"))
    customers, transactions = run.table("customers"), run.table("transactions")
    survey = run.config.survey
    results = {
        "behavioral": behavioral.segment_behavioral(run.customer_features(refresh=True), rfm_rules=io.read_yaml(None, "rfm_segments.yaml"),
                                                    k=4, n_bootstrap=1, random_state=42),
        "demographic": demographic.segment_demographic(customers, transactions, k=4, n_bootstrap=1, random_state=42),
        "geographic": geographic.segment_geographic(customers, transactions, as_of=run.as_of, lookup=io.read_yaml(None, "us_states.yaml"),
                                                    k=5, n_bootstrap=1, random_state=42),
        "psychographic": psychographic.segment_psychographic(run.table("survey"), customers, transactions, items=survey.items,
                                                             scales=survey.scales, reverse=survey.reverse, k=4, n_bootstrap=1, random_state=42),
    }
    for result in results.values():
        run.save_result(result)
    results["value"] = value.segment_value(transactions, run.customer_features(), as_of=run.as_of, labels=run.folder.read_labels(),
                                           random_state=42)
    run.save_result(results["value"])
    areas_run = _run(tmp_path_factory.mktemp("areas-run"), customers=customers.drop(columns=["latitude", "longitude"]),
                     transactions=transactions)
    areas = geographic.segment_geographic(areas_run.table("customers"), transactions, as_of=run.as_of, lookup=io.read_yaml(None, "us_states.yaml"))
    areas_run.save_result(areas)
    return {**{b: (run, r) for b, r in results.items()}, "geographic areas": (areas_run, areas)}


@pytest.mark.slow
@pytest.mark.parametrize("basis", ["behavioral", "demographic", "geographic", "psychographic", "geographic areas"])
def test_scoring_the_sample_with_its_own_models_reproduces_its_labels(sample_fits, basis):
    run, result = sample_fits[basis]
    assert result.available, result.message
    model = scoring.load_model(run.folder, result.basis)
    scored = scoring.score_basis(model, run)
    pd.testing.assert_frame_equal(scored.labels.reset_index(drop=True), result.labels.reset_index(drop=True))
    assert (model.estimator is None) == (basis == "geographic areas")


@pytest.mark.slow
def test_scoring_the_sample_with_its_own_value_model_reproduces_its_value_labels(sample_fits):
    run, result = sample_fits["value"]
    scored = scoring.score_basis(scoring.load_model(run.folder, "value"), run)
    # every label but the CLV intervals, which come from the fit's posterior draws (the page says so)
    draws = ["clv_low", "clv_high", "p_alive_low", "p_alive_high"]
    assert scored.labels.columns.tolist() == [c for c in result.labels.columns if c not in draws]
    assert any("clv_low" in note for note in scored.notes)
    fitted = result.labels.drop(columns=draws).set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(scored.labels.set_index("customer_id").sort_index(), fitted)
    assert scored.labels["value_tier"].value_counts().to_dict() == result.labels["value_tier"].value_counts().to_dict()


@pytest.mark.slow
def test_areas_new_to_the_scored_data_go_to_their_pool(sample_fits, tmp_path):
    run, result = sample_fits["geographic areas"]
    fitted = set(result.labels["geographic_segment"])
    assert "Other United Kingdom" in fitted  # small British cities were pooled within their country
    model = scoring.load_model(run.folder, "geographic")
    customers = run.table("customers").copy()
    british = customers.index[customers["country"] == "United Kingdom"][:5]
    customers.loc[british, "city"] = "Atlantis"
    customers.loc[customers.index[~customers.index.isin(british)][:3], "country"] = "Utopia"
    scored = scoring.score_basis(model, _run(tmp_path, customers=customers)).labels.set_index(customers.index)["geographic_segment"]
    assert (scored[british] == "Other United Kingdom").all()
    assert (scored[customers["country"] == "Utopia"] == "(new area)").all()
    unchanged = ~customers.index.isin(british) & (customers["country"] != "Utopia")
    assert scored[unchanged].tolist() == result.labels["geographic_segment"][unchanged].tolist()
