"""Tests for the synthetic sample generator: contract, noise and planted-structure recovery."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from sklearn.cluster import KMeans
from sklearn.decomposition import FactorAnalysis
from sklearn.metrics import adjusted_rand_score
from sklearn.preprocessing import StandardScaler

from analysis.sample import (
    AGE_BANDS,
    BEHAVIORAL_SEGMENTS,
    CATEGORIES,
    DEMOGRAPHIC_SEGMENTS,
    GEOGRAPHIC_REGIONS,
    INCOME_BANDS,
    PSYCHOGRAPHIC_FACTORS,
    PSYCHOGRAPHIC_SEGMENTS,
    SAMPLE_COLUMNS,
    SURVEY_ITEMS,
    VALUE_TIERS,
    generate_sample,
    product_catalogue,
    write_sample,
)

N = 2000
SEED = 42
END = pd.Timestamp("2024-12-31")

EXPECTED_COLUMNS = {
    "customers": [
        "customer_id", "name", "email", "age", "gender", "income", "education", "occupation",
        "marital_status", "children", "country", "region", "city", "latitude", "longitude",
        "urban_rural", "climate_zone", "signup_date",
    ],
    "transactions": [
        "customer_id", "order_id", "timestamp", "product_id", "product_name", "category", "brand",
        "channel", "quantity", "unit_price", "amount", "margin",
    ],
    "survey": ["customer_id", "response_date"] + [f"q{i:02d}" for i in range(1, 17)],
    "events": ["customer_id", "timestamp", "event_type", "product_id", "channel"],
    "truth": [
        "customer_id", "true_demographic_segment", "true_geographic_segment",
        "true_psychographic_segment", "true_behavioral_segment", "true_value_tier",
    ],
}


@pytest.fixture(scope="module")
def sample() -> dict[str, pd.DataFrame]:
    return generate_sample(N, random_state=SEED)


@pytest.fixture(scope="module")
def truth(sample: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return sample["truth"].set_index("customer_id")


@pytest.fixture(scope="module")
def purchases(sample: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Order lines without returns and duplicate lines."""
    tx = sample["transactions"]
    return tx[~tx["order_id"].str.startswith("R")].drop_duplicates()


@pytest.fixture(scope="module")
def rfm(purchases: pd.DataFrame) -> pd.DataFrame:
    orders = (purchases.groupby(["customer_id", "order_id"])
              .agg(timestamp=("timestamp", "first"), value=("amount", "sum"))
              .reset_index())
    features = orders.groupby("customer_id").agg(
        first=("timestamp", "min"), last=("timestamp", "max"),
        frequency=("order_id", "size"), mean_order_value=("value", "mean"))
    features["recency_days"] = (END - features["last"].dt.normalize()).dt.days
    features["tenure_days"] = (END - features["first"].dt.normalize()).dt.days
    spend = purchases.groupby(["customer_id", "category"])["amount"].sum().unstack(fill_value=0.0)
    features["category_concentration"] = spend.max(axis=1) / spend.sum(axis=1)
    return features.drop(columns=["first", "last"])


def _kmeans_labels(X: np.ndarray, k: int) -> np.ndarray:
    return KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(X)


# --- contract -------------------------------------------------------------------------------


def test_frames_have_exactly_the_contract_columns(sample):
    assert set(sample) == set(EXPECTED_COLUMNS)
    for key, columns in EXPECTED_COLUMNS.items():
        assert list(sample[key].columns) == columns, key
        assert list(SAMPLE_COLUMNS[key]) == columns, key


def test_same_seed_gives_identical_frames():
    first = generate_sample(300, random_state=7)
    second = generate_sample(300, random_state=7)
    for key in first:
        assert_frame_equal(first[key], second[key])


def test_different_seed_gives_different_frames():
    first = generate_sample(300, random_state=7)
    second = generate_sample(300, random_state=8)
    for key in ("customers", "transactions", "survey", "events", "truth"):
        assert not first[key].equals(second[key]), key


def test_customer_table_is_plausible(sample):
    customers = sample["customers"]
    assert customers["customer_id"].str.fullmatch(r"C\d{6}").all()
    assert customers["customer_id"].is_unique
    assert customers["email"].is_unique
    assert customers["email"].str.fullmatch(r"[a-z0-9._]+@example\.(com|net|org)").all()
    assert customers["name"].str.contains(" ").all()
    assert customers["age"].between(18, 100).all()
    assert set(customers["gender"]) == {"F", "M", "X"}
    assert (customers["gender"] == "X").mean() < 0.05
    assert set(customers["marital_status"]) == {"Single", "Married", "Divorced", "Widowed"}
    assert set(customers["education"].dropna()) == {"Secondary", "Bachelor", "Master", "Doctorate"}
    assert set(customers["urban_rural"]) == {"urban", "suburban", "rural"}
    assert {"temperate", "continental", "mediterranean", "subarctic"} <= set(customers["climate_zone"])
    assert customers["children"].ge(0).all()
    assert customers["latitude"].between(35, 60).all() and customers["longitude"].between(-8, 14).all()
    assert pd.api.types.is_datetime64_any_dtype(customers["signup_date"])


def test_missing_values_are_planted_in_income_and_education_only(sample):
    customers = sample["customers"]
    assert 0.01 <= customers["income"].isna().mean() <= 0.035
    assert 0.003 <= customers["education"].isna().mean() <= 0.02
    other = customers.drop(columns=["income", "education"])
    assert not other.isna().any().any()


def test_every_customer_has_a_purchase_and_no_strangers_buy(sample, purchases):
    customer_ids = set(sample["customers"]["customer_id"])
    assert set(purchases["customer_id"]) == customer_ids
    assert set(sample["transactions"]["customer_id"]) == customer_ids
    assert set(sample["events"]["customer_id"]) <= customer_ids


def test_order_lines_are_consistent(sample, purchases):
    tx = sample["transactions"]
    assert tx["order_id"].str.fullmatch(r"R?O\d{7}").all()
    assert np.allclose(tx["amount"], (tx["quantity"] * tx["unit_price"]).round(2))
    assert (purchases["quantity"] >= 1).all() and (purchases["unit_price"] > 0).all()
    assert set(tx["channel"]) == {"web", "app", "store"}
    assert set(tx["category"]) == set(CATEGORIES)
    assert tx["timestamp"].between(pd.Timestamp("2023-01-01"), pd.Timestamp("2024-12-31 23:59:59")).all()
    lines_per_order = len(purchases) / purchases["order_id"].nunique()
    assert 1.7 <= lines_per_order <= 2.3
    # Margin is a category-specific share of revenue: electronics thin, beauty fat.
    rate = purchases.groupby("category")["margin"].sum() / purchases.groupby("category")["amount"].sum()
    assert rate["Electronics"] < 0.3 < rate["Beauty"]
    # A product id always means the same product.
    assert (tx.groupby("product_id")[["product_name", "category", "brand"]].nunique() == 1).all().all()


def test_returns_and_duplicates_are_planted(sample):
    tx = sample["transactions"]
    is_return = tx["order_id"].str.startswith("R")
    assert 0.005 <= is_return.mean() <= 0.015
    returns = tx[is_return]
    assert (returns["quantity"] < 0).all() and (returns["amount"] < 0).all()
    assert returns["order_id"].str[1:].isin(set(tx.loc[~is_return, "order_id"])).all()
    duplicate_share = tx.duplicated().mean()
    assert 0.0005 <= duplicate_share <= 0.005


def test_survey_has_partial_responses_and_unknown_ids(sample):
    survey = sample["survey"]
    customer_ids = set(sample["customers"]["customer_id"])
    answers = survey[[f"q{i:02d}" for i in range(1, 17)]]
    known = survey["customer_id"].isin(customer_ids)
    assert known.sum() == round(0.75 * N)
    assert 0.01 <= (~known).mean() <= 0.03
    assert survey["customer_id"].is_unique
    assert 0.03 <= answers.isna().to_numpy().mean() <= 0.07
    values = answers.stack().dropna().astype(int)
    assert values.between(1, 5).all() and set(values) == {1, 2, 3, 4, 5}


def test_survey_response_rate_is_respected():
    survey = generate_sample(200, random_state=3, survey_response_rate=0.5)["survey"]
    assert survey["customer_id"].str.fullmatch(r"C\d{6}").sum() == 100


def test_events_volume_and_vocabulary(sample):
    events = sample["events"]
    per_customer = len(events) / N
    assert 15 <= per_customer <= 40
    assert set(events["event_type"]) == {"session", "product_view", "add_to_cart", "email_open", "email_click"}
    has_product = events["event_type"].isin(["product_view", "add_to_cart"])
    assert events.loc[has_product, "product_id"].notna().all()
    assert events.loc[~has_product, "product_id"].isna().all()
    is_email = events["event_type"].str.startswith("email")
    assert (events.loc[is_email, "channel"] == "email").all()
    assert set(events.loc[~is_email, "channel"]) == {"web", "app"}


# --- planted structure ----------------------------------------------------------------------


def test_truth_covers_every_customer(sample, truth):
    assert sample["truth"]["customer_id"].equals(sample["customers"]["customer_id"])
    assert not truth.drop(columns="true_psychographic_segment").isna().any().any()
    respondents = set(sample["survey"]["customer_id"])
    has_psychographic = truth["true_psychographic_segment"].notna()
    assert set(truth.index[has_psychographic]) == respondents & set(truth.index)


@pytest.mark.parametrize(
    ("column", "segments"),
    [
        ("true_demographic_segment", DEMOGRAPHIC_SEGMENTS),
        ("true_geographic_segment", GEOGRAPHIC_REGIONS),
        ("true_psychographic_segment", PSYCHOGRAPHIC_SEGMENTS),
        ("true_behavioral_segment", BEHAVIORAL_SEGMENTS),
    ],
)
def test_planted_segments_are_all_non_trivial(truth, column, segments):
    shares = truth[column].value_counts(normalize=True)
    assert set(shares.index) == set(segments)
    assert shares.min() >= 0.08


def test_value_tiers_follow_behaviour(truth):
    counts = truth["true_value_tier"].value_counts()
    assert set(counts.index) == set(VALUE_TIERS)
    assert counts["top 1%"] == 20 and counts["top 20%"] == 380
    lapsed = truth["true_behavioral_segment"] == "Lapsed"
    assert (truth.loc[lapsed, "true_value_tier"] == "rest").all()


def test_behavioural_timelines(sample, truth, purchases, rfm):
    segment = truth.loc[rfm.index, "true_behavioral_segment"]
    lapsed = rfm[segment == "Lapsed"]
    assert (lapsed["recency_days"] >= 270).all()
    new = rfm[segment == "New & promising"]
    assert (new["tenure_days"] <= 122).all()
    # Churned customers leave no digital trace after their last purchase window.
    events = sample["events"].merge(sample["truth"], on="customer_id")
    last_lapsed_event = events.loc[events["true_behavioral_segment"] == "Lapsed", "timestamp"].max()
    assert last_lapsed_event < END - pd.Timedelta(days=269)


def test_geographic_recovery(sample, truth):
    customers = sample["customers"]
    labels = _kmeans_labels(customers[["latitude", "longitude"]].to_numpy(), 5)
    ari = adjusted_rand_score(truth.loc[customers["customer_id"], "true_geographic_segment"], labels)
    assert ari >= 0.9


def test_demographic_recovery(sample, truth):
    customers = sample["customers"].dropna(subset=["income"])
    X = StandardScaler().fit_transform(customers[["age", "income", "children"]])
    ari = adjusted_rand_score(truth.loc[customers["customer_id"], "true_demographic_segment"],
                              _kmeans_labels(X, 4))
    assert ari >= 0.7


def test_psychographic_recovery(sample, truth):
    items = list(SURVEY_ITEMS)
    complete = sample["survey"].set_index("customer_id")[items].dropna()
    complete = complete[complete.index.isin(truth.index)]
    assert len(complete) >= 0.5 * 0.75 * N
    scores = FactorAnalysis(n_components=4, random_state=0).fit_transform(complete.to_numpy(float))
    ari = adjusted_rand_score(truth.loc[complete.index, "true_psychographic_segment"], _kmeans_labels(scores, 4))
    assert ari >= 0.8


def test_behavioral_recovery(truth, rfm):
    X = StandardScaler().fit_transform(
        np.log1p(rfm[["recency_days", "frequency", "mean_order_value", "tenure_days"]]))
    ari = adjusted_rand_score(truth.loc[rfm.index, "true_behavioral_segment"], _kmeans_labels(X, 4))
    assert ari >= 0.8


def test_demographic_and_geographic_traits_are_modal(sample, truth):
    customers = sample["customers"].set_index("customer_id").join(truth)
    age_edges = [lo - 0.5 for lo, _ in AGE_BANDS.values()] + [np.inf]
    customers["age_band"] = pd.cut(customers["age"], age_edges, labels=list(AGE_BANDS)).astype(str)
    income_edges = [lo for lo, _ in INCOME_BANDS.values()] + [np.inf]
    customers["income_band"] = pd.cut(customers["income"], income_edges, right=False,
                                      labels=list(INCOME_BANDS)).astype(str)
    for column, segments in (("true_demographic_segment", DEMOGRAPHIC_SEGMENTS),
                             ("true_geographic_segment", GEOGRAPHIC_REGIONS)):
        for name, spec in segments.items():
            members = customers[customers[column] == name]
            for trait, value in spec["traits"].items():
                assert members[trait].mode().iloc[0] == value, (name, trait)


def test_psychographic_and_behavioral_traits_are_extremes(sample, truth, rfm):
    survey = sample["survey"].set_index("customer_id").join(truth, how="inner")
    factor_scores = pd.DataFrame(index=survey.index)
    for factor in PSYCHOGRAPHIC_FACTORS:
        items = [survey[q].astype(float).rsub(6) if reverse else survey[q].astype(float)
                 for q, (f, reverse) in SURVEY_ITEMS.items() if f == factor]
        factor_scores[factor] = pd.concat(items, axis=1).mean(axis=1)
    checks = [
        (factor_scores.groupby(survey["true_psychographic_segment"]).mean(), PSYCHOGRAPHIC_SEGMENTS),
        (rfm.groupby(truth.loc[rfm.index, "true_behavioral_segment"]).mean(), BEHAVIORAL_SEGMENTS),
    ]
    for means, segments in checks:
        for name, spec in segments.items():
            for feature, direction in spec["traits"].items():
                extreme = means[feature].idxmax() if direction == "high" else means[feature].idxmin()
                assert extreme == name, (name, feature, direction)


# --- small populations, errors, catalogue, speed ----------------------------------------------


@pytest.mark.parametrize("n", [1, 5, 40])
def test_small_populations_work(n):
    sample = generate_sample(n, random_state=1)
    assert len(sample["customers"]) == n and len(sample["truth"]) == n
    tx = sample["transactions"]
    assert tx["customer_id"].nunique() == n


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_customers": 0}, "n_customers"),
        ({"n_customers": 10, "survey_response_rate": 1.5}, "survey_response_rate"),
        ({"n_customers": 10, "start": "2024-06-01"}, "at least 600"),
    ],
)
def test_invalid_arguments_are_explained(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_sample(**kwargs)


def test_product_catalogue():
    catalogue = product_catalogue()
    assert 180 <= len(catalogue) <= 220
    assert catalogue["product_id"].is_unique
    assert list(catalogue["category"].unique()) == list(CATEGORIES)
    assert catalogue.groupby("category")["brand"].nunique().min() >= 4
    assert catalogue.equals(product_catalogue())


def test_generation_is_fast():
    started = time.perf_counter()
    generate_sample(N, random_state=SEED)
    assert time.perf_counter() - started < 10.0


# --- files ------------------------------------------------------------------------------------


def test_write_sample_is_small_byte_identical_and_readable(tmp_path):
    first = write_sample(tmp_path / "a", n_customers=N, random_state=SEED)
    second = write_sample(tmp_path / "b", n_customers=N, random_state=SEED)
    assert sorted(p.name for p in first.values()) == [
        "customers.csv", "events.csv.gz", "survey.csv", "transactions.csv.gz", "truth.csv"]
    total_bytes = sum(p.stat().st_size for p in first.values())
    assert total_bytes <= 4_000_000
    for key, path in first.items():
        assert path.read_bytes() == second[key].read_bytes(), path.name

    customers = pd.read_csv(first["customers"])
    assert list(customers.columns) == EXPECTED_COLUMNS["customers"]
    assert customers["signup_date"].str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    transactions = pd.read_csv(first["transactions"])
    assert list(transactions.columns) == EXPECTED_COLUMNS["transactions"]
    assert transactions["timestamp"].str.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}").all()
    assert len(transactions) == len(generate_sample(N, random_state=SEED)["transactions"])
    for key in ("survey", "events", "truth"):
        assert list(pd.read_csv(first[key]).columns) == EXPECTED_COLUMNS[key]
