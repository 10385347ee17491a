from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import clienteling


def test_recommendations_follow_co_purchase_and_skip_owned():
    # bread and butter are bought together; c3 bought bread only -> butter first
    tx = pd.DataFrame({
        "customer_id": ["c1", "c1", "c2", "c2", "c3", "c4", "c5"],
        "product_id": ["bread", "butter", "bread", "butter", "bread", "tv", "tv"],
    })
    recs = clienteling.recommend_products(tx, n=2)
    c3 = recs[recs.customer_id == "c3"].sort_values("rank")
    assert c3["product_id"].tolist()[0] == "butter"
    assert "bread" not in c3["product_id"].tolist()
    owned = tx.groupby("customer_id")["product_id"].agg(set)
    assert not any(p in owned[c] for c, p in zip(recs.customer_id, recs.product_id))
    # chunking gives the same answer
    pd.testing.assert_frame_equal(recs, clienteling.recommend_products(tx, n=2, chunk=1))


def test_next_best_action_rules_in_order():
    clients = pd.DataFrame({
        "value_tier": ["Top 1%", "Top 20%", "Top 20%", "Rest", "Rest", "Rest"],
        "churn_risk": ["high", "medium", "low", "low", "high", "low"],
        "frequency": [5, 5, 5, 1, 3, 4],
    })
    assert clienteling.next_best_action(clients)["next_action"].tolist() == [
        "Win back", "Retain", "Thank & grow", "Second purchase", "Reactivate", "Nurture"]


def test_contact_list_ranks_by_value_at_stake():
    clients = pd.DataFrame({"clv": [10.0, 100.0, 100.0], "clv_low": [5.0, 50.0, 80.0], "churn_risk": ["low", "low", "medium"],
                            "frequency": [2, 2, 2], "total_spend": [0.0, 0.0, 0.0], "p_alive": [1.0, 1.0, 1.0]}, index=["a", "b", "c"])
    ranked = clienteling.contact_list(clients)
    assert ranked.index.tolist() == ["c", "b", "a"] and ranked["priority_rank"].tolist() == [1, 2, 3]


def test_client_cards_escape_html_and_show_no_pii():
    contacts = pd.DataFrame({"priority_rank": [1], "clv": [5.0], "p_alive": [0.5], "churn_risk": ["low"], "frequency": [2],
                             "total_spend": [10.0], "recency_days": [3.0], "behavioral_segment": ["<script>alert(1)</script>"],
                             "next_action": ["Nurture"], "action_message": ["hi & bye"], "recommended_1": ["<b>x</b>"],
                             "email": ["someone@example.com"]}, index=["c<1>"])
    html = clienteling.client_cards_html(contacts, ["behavioral_segment"])
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;x" in html and "c&lt;1&gt;" in html
    assert "someone@example.com" not in html
    assert "email" not in clienteling.crm_export(contacts).columns
    assert np.isfinite(clienteling.contact_priority(contacts)).all()
