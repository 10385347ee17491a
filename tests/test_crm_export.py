"""The CRM export: one row per contact, tags in one column, contact details only when the config opts in."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest
import yaml

from analysis import clienteling

from .conftest import PROJECT_ROOT


def _contacts():
    return pd.DataFrame({
        "priority_rank": [1, 2], "next_action": ["Win back valuable customers at risk", "Reward and grow champions"],
        "action_message": ["Call.", "Thank."], "priority_score": [120.456, 80.0], "clv": [300.0, 200.0], "p_alive": [0.2, 0.9],
        "churn_risk": ["high", "low"], "value_tier": ["Top 20%", "Top 1%"], "behavioral_segment": ["Lapsed", "Loyal|big"],
        "recommended_1": ["Mug", "Rug"], "recommended_2": ["Tea", None],
    }, index=pd.Index(["C1", "C2"], name="customer_id"))


def test_contact_details_found_by_name_or_by_value():
    original = pd.DataFrame({"CustID": [" C1", "C2"], "E-mail": ["a@example.com", "b@example.org"], "Notes": ["+44 20 7946 0958", "+33 1 23 45 67 89"],
                             "Country": ["UK", "FR"]})
    details = clienteling.contact_details(original, {"customer_id": "CustID"})
    assert details.loc["C1", "email"] == "a@example.com" and details.loc["C2", "phone"] == "+33 1 23 45 67 89"
    assert "Country" not in details


def test_crm_contacts_shape_and_opt_in():
    lists = {"At-risk VIPs": _contacts().iloc[:1]}
    plain = clienteling.crm_contacts(_contacts(), lists=lists)
    assert "email" not in plain and "phone" not in plain
    assert plain["customer_id"].tolist() == ["C1", "C2"] and plain["value_at_stake"].tolist() == [120.46, 80.0]
    assert plain.loc[0, "tags"] == "behavioral:Lapsed|value_tier:Top 20%|churn_risk:high|next_action:Win back valuable customers at risk|list:At-risk VIPs"
    assert "Loyal/big" in plain.loc[1, "tags"]  # the tag delimiter never appears inside a tag
    assert plain["recommended_products"].tolist() == ["Mug; Tea", "Rug"]
    details = pd.DataFrame({"email": ["a@example.com"], "phone": ["+44 20 7946 0958"]}, index=pd.Index(["C1"], name="customer_id"))
    opted = clienteling.crm_contacts(_contacts(), details, lists)
    assert opted.loc[0, "email"] == "a@example.com" and pd.isna(opted.loc[1, "email"])
    assert list(opted.columns[:3]) == ["customer_id", "email", "phone"]


@pytest.mark.slow
def test_opted_in_run_writes_contact_details_to_the_crm_export_only(tmp_path):
    """A sample run whose config opts in: e-mails in crm_contacts.* and nowhere else in the run folder's pages and exports."""
    cfg = yaml.safe_load((PROJECT_ROOT / "config" / "sample.yaml").read_text())
    for source in cfg["sources"].values():
        source["path"] = str((PROJECT_ROOT / "config" / source["path"]).resolve())
    cfg["crm"] = {"include_contact_details": True}
    cfg["contact_lists"] = [{"name": "VIPs per country", "where": {"value_tier": ["Top 1%", "Top 20%"]},
                             "capacity": 5, "per": "country"},
                            {"name": "Second-purchase nudges", "where": {"frequency": "<= 1"}, "capacity": 7}]
    path = tmp_path / "optin.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    reports = tmp_path / "reports"
    proc = subprocess.run([sys.executable, "-m", "analysis", "run", "--config", str(path), "--only", "00_data_prep", "13_behavioral", "14_value",
                           "20_personas", "30_clienteling", "--reports-dir", str(reports), "--run-id", "optin"],
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run = reports / "optin"
    crm = pd.read_csv(next(run.rglob("crm_contacts.csv")))
    assert crm["email"].notna().sum() > 0 and crm["email"].str.contains("@").all()
    assert len(pd.read_json(next(run.rglob("crm_contacts.jsonl")), lines=True)) == len(crm)
    lists = pd.read_csv(next(run.rglob("contact_lists.csv")))
    sizes = lists.groupby("contact_list").size()
    assert set(sizes.index) == {"VIPs per country", "Second-purchase nudges"} and sizes["Second-purchase nudges"] <= 7
    leaks = {}
    for file in run.rglob("*"):
        page_or_export = file.suffix in (".html", ".ipynb") or file.parent.name == "exports"
        if file.is_file() and page_or_export and not file.name.startswith("crm_contacts."):
            found = [v for v in crm["email"].dropna() if v in file.read_text(errors="ignore")]
            if found:
                leaks[str(file.relative_to(run))] = found[:3]
    assert not leaks, leaks


def test_no_contact_details_unless_the_config_opts_in():
    from analysis.config import load_config

    cfg = load_config(PROJECT_ROOT / "config" / "sample.yaml")
    assert cfg.crm.include_contact_details is False and clienteling.opted_in_contact_details(cfg) is None
    opted = cfg.model_copy(update={"crm": cfg.crm.model_copy(update={"include_contact_details": True})})
    details = clienteling.opted_in_contact_details(opted)
    assert details is not None and details["email"].str.contains("@").mean() > 0.9
