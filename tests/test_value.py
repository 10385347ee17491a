from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.segment import value


def test_value_tiers_exact_sizes():
    tiers = value.value_tiers(pd.Series(np.arange(1000.0)))
    assert tiers.value_counts().to_dict() == {"Rest": 800, "Top 20%": 190, "Top 1%": 10}
    assert tiers.iloc[-1] == "Top 1%" and tiers.iloc[0] == "Rest"


def test_lorenz_top_share_and_gini():
    v = pd.Series([0.0] * 80 + [1.0] * 20)
    assert value.top_share(v, 0.2) == pytest.approx(100.0)
    assert value.gini(pd.Series([1.0] * 10)) == pytest.approx(0.0)
    assert value.gini(v) == pytest.approx(0.8)
    curve = value.lorenz_curve(pd.Series([3.0, 1.0]))
    assert curve["value_pct"].tolist() == [0.0, 75.0, 100.0]


def test_churn_risk_bands():
    assert value.churn_risk(pd.Series([0.1, 0.5, 0.9])).tolist() == ["high", "medium", "low"]


def test_resource_allocation_shares_sum_to_100():
    frame = pd.DataFrame({"seg": ["A", "A", "B", "C"], "clv": [100.0, 100.0, 50.0, 0.0], "total_spend": [10.0, 10.0, 10.0, 100.0],
                          "p_alive": [1.0, 1.0, 1.0, 0.0]})
    out = value.resource_allocation(frame, "seg")
    assert out["suggested_budget_pct"].sum() == pytest.approx(100.0, abs=0.05)
    # A: 0.7*0.8 = 56; B: 0.7*0.2 = 14; C: all value at risk -> 30
    assert out.loc[["A", "B", "C"], "suggested_budget_pct"].tolist() == pytest.approx([56.0, 14.0, 30.0])
    assert out.loc["C", "value_at_risk"] == 100.0


def test_value_tiers_skipna_leaves_missing_unlabelled():
    values = pd.Series([5.0, np.nan, 3.0, 1.0, np.nan, 4.0], index=list("abcdef"))
    kept = value.value_tiers(values, {"Top 50%": 0.5})
    assert kept.tolist() == ["Top 50%", "Rest", "Top 50%", "Rest", "Rest", "Top 50%"]  # missing count as Rest
    skipped = value.value_tiers(values, {"Top 50%": 0.5}, skipna=True)
    assert skipped.isna().tolist() == [False, True, False, False, True, False]
    assert skipped.dropna().to_dict() == {"a": "Top 50%", "c": "Rest", "d": "Rest", "f": "Top 50%"}
    assert skipped.name == "value_tier"


def test_value_at_risk_needs_history_and_p_alive():
    frame = pd.DataFrame({"total_spend": [100.0, 50.0], "p_alive": [0.25, 1.0]})
    assert value.value_at_risk(frame).tolist() == [75.0, 0.0]
    assert value.value_at_risk(frame.drop(columns="p_alive")) is None


def test_budget_shares_mix_and_priority_weights():
    value_share = pd.Series([0.8, 0.2, 0.0])
    risk_share = pd.Series([0.0, 0.0, 1.0])
    assert value.budget_shares(value_share).tolist() == value_share.tolist()
    assert value.budget_shares(value_share, risk_share).tolist() == pytest.approx([0.56, 0.14, 0.30])
    weighted = value.budget_shares(value_share, risk_share, priority_weight=pd.Series([1.0, 2.0, 0.0]))
    assert weighted.tolist() == pytest.approx([0.56 / 0.84, 0.28 / 0.84, 0.0])
    assert value.budget_shares(value_share, priority_weight=pd.Series([0.0, 0.0, 1.0])).isna().all()
