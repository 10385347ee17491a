"""Contact lists defined in the run config: filters, capacities, owners, and errors that name the key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis import clienteling


def _clients(n=60, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "clv": rng.lognormal(4, 1, n), "clv_low": rng.lognormal(3, 1, n), "frequency": rng.integers(1, 10, n),
        "recency_days": rng.integers(1, 400, n).astype(float), "total_spend": rng.lognormal(4, 1, n),
        "churn_risk": rng.choice(["low", "medium", "high"], n), "value_tier": rng.choice(["Top 1%", "Top 20%", "Rest"], n),
        "country": rng.choice(["France", "Germany", "Spain"], n), "store": rng.choice(["Lyon", "Paris"], n),
    }, index=[f"c{i}" for i in range(n)])


def test_two_contact_lists_from_the_config_honour_capacities(write_config, tmp_path):
    from analysis.config import load_config

    (tmp_path / "tx.csv").write_text("customer_id,order_id,timestamp,amount\n1,A,2024-01-01,3\n")
    cfg = load_config(write_config({
        "name": "t", "as_of": "2024-06-30", "sources": {"transactions": {"path": "tx.csv"}},
        "contact_lists": [
            {"name": "At-risk VIPs per country", "where": {"churn_risk": "high", "value_tier": ["Top 1%", "Top 20%"]}, "capacity": 2,
             "per": "country", "owner": "store"},
            {"name": "Second-purchase nudges", "where": {"frequency": "<= 1"}, "capacity": 3},
        ],
        "crm": {"include_contact_details": True},
    }))
    assert cfg.crm.include_contact_details and load_config(write_config({"name": "t", "as_of": "2024-06-30",
                                                                         "sources": {"transactions": {"path": "tx.csv"}}}, "b.yaml")).crm.include_contact_details is False
    clients = _clients()
    lists = clienteling.contact_lists(clients, cfg.contact_lists)
    assert list(lists) == ["At-risk VIPs per country", "Second-purchase nudges"]
    vips, nudges = lists.values()
    assert len(vips) and vips.groupby("country").size().max() <= 2 and vips["country"].nunique() > 1
    assert (vips["churn_risk"] == "high").all() and (vips["value_tier"] != "Rest").all()
    assert (vips["owner"] == vips["store"]).all() and len(clienteling.for_owner(vips, "Lyon")) == (vips["store"] == "Lyon").sum()
    assert 0 < len(nudges) <= 3 and (nudges["frequency"] <= 1).all()
    assert nudges["why_on_list"].str.contains("frequency <= 1").all() and nudges["next_action"].notna().all()
    # the most valuable eligible clients are the ones kept
    eligible = clients[clients["frequency"] <= 1]
    assert set(nudges.index) == set(clienteling.contact_priority(eligible).nlargest(3).index)


def test_contact_list_with_unknown_column_names_the_config_key():
    with pytest.raises(ValueError, match=r"contact_lists\[0\].*where\.loyalty_band.*Found"):
        clienteling.contact_lists(_clients(), [{"name": "x", "where": {"loyalty_band": "gold"}}])
    with pytest.raises(Exception, match="capacity"):
        from analysis.config import ContactListConfig
        ContactListConfig(name="x", capacity=0)
