from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

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


def test_next_best_action_comes_from_the_playbook_and_never_thanks_a_lapsed_valuable_client():
    clients = pd.DataFrame({
        "value_tier": ["Top 20%", "Top 20%", "Rest", "Top 1%"],
        "churn_risk": ["high", "low", "low", "high"],
        "rfm_segment": ["Champions", "Champions", "New", "Champions"],
        "frequency": [9, 9, 1, 12], "recency_days": [300.0, 5.0, 3.0, 200.0], "clv": [500.0, 500.0, 20.0, 900.0],
    }, index=["lapsed_vip", "active_vip", "newcomer", "lapsed_top"])
    nba = clienteling.next_best_action(clients)
    assert nba.loc["active_vip", "next_action"] == "Reward and grow champions"
    assert nba.loc["newcomer", "next_action"] == "Welcome and second purchase"
    # Champions by RFM, but the churn model says lapsed: no active-only (reward, welcome) rule may fire
    assert nba.loc["lapsed_vip", "next_action"] == "Win back valuable customers at risk"
    assert nba["lapsed"].tolist() == [True, False, False, True]
    from analysis.personas.playbook import load_playbook
    active_only = {r.name for r in load_playbook().rules if r.active_only}
    assert not set(nba.loc[nba["lapsed"], "next_action"]) & active_only
    assert nba["action_message"].str.len().gt(0).all() and nba["action_why"].str.len().gt(0).all()


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


@pytest.mark.slow
@pytest.mark.shared_data
def test_online_retail_top_contacts_are_not_all_one_action_and_no_lapsed_vip_is_thanked(tmp_path):
    from analysis import io, workspace
    from analysis.config import load_config
    from analysis.personas.playbook import load_playbook
    from analysis.segment import value

    from .conftest import PROJECT_ROOT, shared_path

    shared_path("online_retail")
    cfg = load_config(PROJECT_ROOT / "config" / "online_retail.yaml")
    run = workspace.Run(config=cfg, folder=io.RunFolder(tmp_path))
    workspace.prepare_run(cfg, run.folder)
    settings = {k: v for k, v in run.params("14_value").items() if k in ("calibration_end", "time_unit", "model")}
    result = value.segment_value(run.table("transactions"), run.customer_features(), as_of=run.as_of, **settings)
    clients = clienteling.client_profiles(run.customer_features(), {"value": result.labels})
    everyone = clienteling.contact_list(clients, top_n=None)
    top = everyone.head(200)
    assert top["next_action"].nunique() > 1, top["next_action"].value_counts().to_dict()
    thank_you = {r.name for r in load_playbook().rules if r.active_only} | {"Thank & grow"}
    lapsed_vips = everyone[(everyone["churn_risk"] == "high") & (everyone["value_tier"] != "Rest")]
    assert len(lapsed_vips) > 0
    assert not lapsed_vips["next_action"].isin(thank_you).any(), lapsed_vips["next_action"].value_counts().to_dict()



def test_traits_are_judged_against_every_client_not_the_shortlist():
    clients = pd.DataFrame({"recency_days": [400.0] * 3 + [5.0] * 97, "frequency": [3] * 100, "clv": [10.0] * 100,
                            "churn_risk": ["low"] * 100, "value_tier": ["Rest"] * 100})
    alone = clienteling.client_facts(clients.head(3))[0]
    judged = clienteling.client_facts(clients.head(3), population=clients)[0]
    effect = {attr: e for kind, attr, _, e in judged["_effects"] if kind == "numeric"}
    assert "recency_days" not in {a for k, a, _, _ in alone["_effects"] if k == "numeric"}  # no spread within the three
    assert effect["recency_days"] > 3


def test_card_shows_interval_next_order_and_reasoned_recommendations():
    tx = pd.DataFrame({"customer_id": ["a", "a", "b", "b", "c"], "product_id": ["p1", "p2", "p1", "p2", "p1"],
                       "timestamp": pd.to_datetime(["2024-01-01"] * 5)})
    names = pd.Series({"p1": "Bread", "p2": "Butter"})
    recs = clienteling.recommend_with_reasons(tx, n=1, customers=pd.Index(["c"]), product_names=names)
    assert recs["reason"].tolist() == ["Bought Bread; clients who buy Bread also buy Butter."]
    clients = pd.DataFrame({"clv": [120.0, 80.0, 50.0], "clv_low": [90.0, 60.0, 30.0], "clv_high": [150.0, 100.0, 70.0],
                            "p_alive": [0.9, 0.8, 0.7], "churn_risk": ["low"] * 3, "value_tier": ["Top 20%", "Rest", "Rest"],
                            "frequency": [2, 2, 1], "recency_days": [10.0, 100.0, 20.0], "interpurchase_days": [30.0, 30.0, None],
                            "total_spend": [100.0, 50.0, 10.0], "favourite_category": ["Bakery"] * 3,
                            "behavioral_segment": ["Loyal", "Lapsed", "New"]}, index=["a", "b", "c"])
    html = clienteling.client_card_html(clients, "c", tx, product_names=names, method="ease")
    assert "50 (30–70)" in html and "Butter" in html and "clients who buy Bread also buy Butter" in html and "Bakery" in html
    assert "no buying rhythm yet" in html and html.count('class="card"') == 1
    assert "Overdue" in clienteling.client_card_html(clients, "b", tx) and "expected within about 20 days" in clienteling.client_card_html(clients, "a", tx)
    unknown = clienteling.client_card_html(clients, "<zz>", tx)
    assert "No client with id &#39;&lt;zz&gt;&#39;" in unknown and 'class="card"' not in unknown
