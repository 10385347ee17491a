from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import features


@pytest.fixture
def tx():
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "b", "c"],
            "order_id": ["1", "1", "2", "3", "4", "5"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-21", "2024-03-01", "2024-03-31", "2024-03-30"]),
            "product_id": ["p1", "p2", "p1", "p3", "p3", "p4"],
            "category": ["Home", "Home", "Fashion", "Beauty", "Beauty", "Home"],
            "quantity": [1.0, 2.0, 1.0, 1.0, 3.0, 1.0],
            "amount": [10.0, 20.0, 30.0, 5.0, 15.0, 100.0],
            "margin": [2.0, 4.0, 6.0, 1.0, 3.0, -10.0],
            "channel": ["web", "web", "store", "app", "app", "web"],
            "brand": ["X", "Y", "X", "Z", "Z", "X"],
        }
    )


def test_customer_features_by_hand(tx):
    f = features.customer_features(tx, "2024-03-31", returns=pd.DataFrame({"customer_id": ["a"], "amount": [6.0]}))
    a, b, c = f.loc["a"], f.loc["b"], f.loc["c"]
    assert a["frequency"] == 2 and b["frequency"] == 2 and c["frequency"] == 1
    # as_of is the end of 2024-03-31
    assert a["recency_days"] == pytest.approx(71.0) and b["recency_days"] == pytest.approx(1.0)
    assert a["tenure_days"] == pytest.approx(91.0)
    assert a["total_spend"] == 60 and a["mean_order_value"] == 30
    assert a["items_per_order"] == pytest.approx(2.0) and a["lines_per_order"] == pytest.approx(1.5)
    assert a["interpurchase_days"] == pytest.approx(20.0) and np.isnan(c["interpurchase_days"])
    # Home and Fashion tie at 30: ties go to the first name in sort order, on every engine
    assert a["favourite_category"] == "Fashion" and a["favourite_category_share"] == pytest.approx(0.5)
    assert a["n_categories"] == 2
    assert a["repeat_product_rate"] == pytest.approx(0.5)  # p1 in two orders, p2 in one
    assert b["repeat_product_rate"] == pytest.approx(1.0)
    assert a["favourite_brand_share"] == pytest.approx(40 / 60)
    assert a["favourite_channel"] == "store" and b["favourite_channel"] == "app"  # a: one order each
    assert a["margin_rate"] == pytest.approx(0.2) and c["total_margin"] == -10
    assert a["return_rate"] == pytest.approx(0.1) and b["return_rate"] == 0
    assert f.loc["a", ["share_home", "share_fashion", "share_beauty"]].tolist() == pytest.approx([0.5, 0.5, 0.0])
    assert np.allclose(f.filter(regex="^share_").sum(axis=1), 1.0)


def test_parquet_input_matches_dataframe(tx, tmp_path):
    path = tmp_path / "tx.parquet"
    tx.to_parquet(path)
    pd.testing.assert_frame_equal(features.customer_features(path, "2024-03-31"), features.customer_features(tx, "2024-03-31"))


def test_event_features(tx):
    ev = pd.DataFrame({"customer_id": ["a"] * 4 + ["b"], "event_type": ["session", "product_view", "email_open", "email_click", "session"],
                       "timestamp": pd.to_datetime(["2024-01-05"] * 5)})
    f = features.customer_features(tx, "2024-03-31", events=ev)
    assert f.loc["a", "views_per_order"] == pytest.approx(0.5)
    assert f.loc["a", "email_click_rate"] == pytest.approx(1.0)
    assert f.loc["c", "sessions_per_month"] == 0
    assert f.loc["a", "sessions_per_month"] == pytest.approx(1 / (91 / 30.4))


def test_category_share_top_n_and_other(tx):
    f = features.customer_features(tx, "2024-03-31", max_categories=1)
    assert {c for c in f.columns if c.startswith("share_")} - {"favourite_category_share"} == {"share_home", "share_other"}


def test_derived_attributes():
    cust = pd.DataFrame({"age": [25, 40, 70, np.nan], "income": [10, 50, 90, 30.0], "marital_status": ["Single", "Married", "Married", None],
                         "children": [0, 2, 0, np.nan]})
    d = features.derived_attributes(cust)
    assert d["age_band"].tolist()[:3] == ["18-30", "31-42", "66+"] and pd.isna(d["age_band"].iloc[3])
    assert d["income_band"].tolist() == ["low", "middle", "high", "low"]
    assert d["life_stage"].tolist()[:3] == ["Young single", "Family with children", "Retired"]


def test_constant_features_are_left_out_of_the_table_and_named():
    """Without a product category every customer has one category: the table would show 1, 1, 1."""
    feats = pd.DataFrame({"frequency": [1.0, 3.0, 8.0], "n_categories": [1.0, 1.0, 1.0],
                          "favourite_category_share": [1.0, 1.0, None], "favourite_category": ["All", "All", "All"]})
    table = features.describe_features(feats)
    assert table.index.tolist() == ["frequency"]
    assert features.constant_features(feats) == ["n_categories", "favourite_category_share"]
    assert features.constant_note(feats) == ("Left out as the same for every customer: n_categories (1), "
                                             "favourite_category_share (1).")
    assert features.constant_note(feats[["frequency"]]) == ""
    everyone_once = pd.DataFrame({"frequency": [1.0, 1.0], "interpurchase_days": [np.nan, np.nan], "total_spend": [5.0, 2e6]})
    assert features.constant_note(everyone_once) == ("Left out as the same for every customer: frequency (1). "
                                                     "Left out as unknown for every customer: interpurchase_days.")
    assert features.describe_features(everyone_once).index.tolist() == ["total_spend"]
    assert features.constant_note(everyone_once.iloc[:0]) == ""  # no customers: nothing to say
