"""Personas that hold: verdicts on cards and the index, honest traits, names that hold, the lapsed guard.

The planted sample proves the mechanics; the public ``marketing_campaign`` data (marked) show the
names hold where segments are not clean.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis import features, io, personas, report, workspace
from analysis.personas.profiles import NAME_BAND_LIFT, NAME_MAJORITY
from analysis.segment import behavioral, demographic, registry
from analysis.segment.common import lift_table

from .conftest import PROJECT_ROOT, SAMPLE_CONFIG, shared_path

TRUTH = PROJECT_ROOT / "data" / "sample" / "truth.csv"


# ---------------------------------------------------------------------------------------------
# fixtures: the sample with its true behavioral and demographic segments, and payloads like a run's
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    run = workspace.open_run(SAMPLE_CONFIG, tmp_path_factory.mktemp("honest-run"))
    customers = run.table("customers")
    feats = features.customer_features(run.table("transactions"), run.as_of, events=run.table("events"))
    truth = pd.read_csv(TRUTH, dtype=str)
    scores = behavioral.rfm_scores(feats)
    rfm = behavioral.rfm_segments(scores, io.read_yaml(None, "rfm_segments.yaml"))
    behavior = feats.index.to_frame(index=False).astype(str).assign(
        rfm_segment=rfm.to_numpy(), r_score=scores["r_score"].to_numpy(), f_score=scores["f_score"].to_numpy(),
        m_score=scores["m_score"].to_numpy(),
    ).merge(truth[["customer_id", "true_behavioral_segment"]], on="customer_id", how="left").rename(
        columns={"true_behavioral_segment": "behavioral_segment"})
    labels = {
        "behavioral": behavior,
        "demographic": truth[["customer_id"]].assign(demographic_segment=truth["true_demographic_segment"]),
    }
    return {"customers": customers, "features": feats, "labels": labels, "config": run.config}


def _models(behavioral_verdict: str = "clear", demographic_verdict: str = "clear", cluster_inputs=None) -> dict:
    """Payloads shaped as ``run.save_result`` writes them (``models.<basis>``)."""
    reason = {"clear": "Clear structure: silhouette 0.45 against 0.16.", "weak": "Weak structure: silhouette 0.20 against 0.15.",
              "none": "No structure beyond chance: silhouette 0.13 against 0.13."}
    return {
        "behavioral": {"available": True, "features": list(cluster_inputs or behavioral.CLUSTER_FEATURES),
                       "verdict": behavioral_verdict, "verdict_evidence": {"level": behavioral_verdict, "reason": reason[behavioral_verdict]}},
        "demographic": {"available": True, "numeric": ["age", "income", "children"],
                        "categorical": ["gender", "education", "occupation", "marital_status", "life_stage"],
                        "verdict": demographic_verdict,
                        "verdict_evidence": {"level": demographic_verdict, "reason": reason[demographic_verdict]}},
    }


def _population(sample, models=None):
    return personas.build_population(sample["customers"], features=sample["features"], labels=sample["labels"],
                                     models=models, pii_columns=sample["config"].pii_columns)


@pytest.fixture(scope="module")
def honest_book(sample):
    return personas.build_personas(_population(sample, _models()), min_size=30)


# ---------------------------------------------------------------------------------------------
# the registry: personas enumerate it
# ---------------------------------------------------------------------------------------------


def test_segmentations_follow_the_registry(sample):
    pop = _population(sample, _models())
    known = registry.segment_columns()
    assert list(pop.segmentations) == [c for c in known if c in pop.segmentations]
    assert {"demographic_segment", "behavioral_segment", "rfm_segment", "value_tier"} <= set(pop.segmentations)


def test_verdicts_and_inputs_are_read_from_the_payloads():
    models = _models("none", "weak")
    verdicts = personas.segmentation_verdicts(models)
    assert verdicts["behavioral_segment"].level == "none" and verdicts["demographic_segment"].level == "weak"
    assert verdicts["rfm_segment"].level == "rules"  # the extra segmentation is made by rules
    labels = {"behavioral": pd.DataFrame({"customer_id": ["a"], "behavioral_segment": ["x"], "rfm_segment": ["y"],
                                          "r_score": [5], "behavioral_cluster": [0]})}
    inputs = personas.segmentation_inputs(models, labels)
    assert inputs["behavioral_segment"] == list(behavioral.CLUSTER_FEATURES)
    assert inputs["rfm_segment"] == ["r_score"]  # scores saved with the labels; the cluster number is not an input
    assert inputs["demographic_segment"][:3] == ["age", "income", "children"]
    assert personas.segmentation_verdicts({"behavioral": {"available": False, "message": "no data"}}) == {}


# ---------------------------------------------------------------------------------------------
# honest traits: what formed a segment is its definition, not a finding
# ---------------------------------------------------------------------------------------------


def test_no_behavioral_persona_lists_a_clustering_input_as_a_significant_trait(honest_book):
    pop, prof = honest_book.population, honest_book.profiles
    inputs = set(behavioral.cluster_columns(pop.frame))
    assert inputs <= set(pop.segmentations["behavioral_segment"].defined_by)
    beh = prof[prof["segmentation"] == "behavioral_segment"]
    traits = beh[beh["trait_rank"].notna()]
    assert len(traits) and not set(traits["attribute"]) & inputs, traits[["segment", "attribute"]]
    assert not traits["attribute"].isin(pop.segmentations["behavioral_segment"].defined_by).any()
    # the inputs are described as the definition: effect sizes, no p-value, never "significant"
    used = beh[beh["attribute"].isin(inputs)]
    assert used["defines"].all() and used["p_value"].isna().all() and not used["significant"].any()
    assert used["definition_rank"].notna().any()
    for rec in honest_book.records:
        if rec["segmentation"] == "behavioral_segment" and not rec["suppressed"]:
            assert rec["definition"], rec["persona_id"]
            assert not {t["attribute"] for t in rec["traits"] + rec["more_traits"]} & inputs


def test_rfm_segments_are_defined_by_their_scores_and_what_they_score(honest_book):
    defined = set(honest_book.population.segmentations["rfm_segment"].defined_by)
    assert {"r_score", "f_score", "m_score", "recency_days", "frequency", "total_spend"} <= defined
    rfm = honest_book.profiles[honest_book.profiles["segmentation"] == "rfm_segment"]
    assert not rfm.loc[rfm["trait_rank"].notna(), "attribute"].isin(defined).any()


def test_the_same_check_fails_when_inputs_are_unknown(sample):
    """Without the payload the inputs come back as 'significant' traits: the check above can fail."""
    book = personas.build_personas(_population(sample, None), min_size=30)
    beh = book.profiles[(book.profiles["segmentation"] == "behavioral_segment") & book.profiles["trait_rank"].notna()]
    assert beh["attribute"].isin(behavioral.cluster_columns(book.population.frame)).any()
    assert not book.profiles["defines"].any() or book.profiles.loc[book.profiles["defines"], "segmentation"].eq("value_tier").all()


def test_benjamini_hochberg_runs_over_the_tested_attributes_only(honest_book):
    prof = honest_book.profiles
    tested = prof["p_value"].notna()
    assert not (tested & prof["defines"]).any()
    assert np.allclose(prof.loc[tested, "q_value"], personas.benjamini_hochberg(prof.loc[tested, "p_value"]), equal_nan=True)


def test_cards_show_the_definition_apart_from_the_traits(honest_book):
    html = personas.cards_html(honest_book)
    assert "Defined by" in html and "What else sets them apart" in html
    md = personas.cards_markdown(honest_book)
    assert "**Defined by**" in md
    rec = next(r for r in honest_book.records if r["segmentation"] == "behavioral_segment" and r["traits"])
    assert rec["narrative"].count("By definition, ") == 1 and "Beyond that, " in rec["narrative"]


# ---------------------------------------------------------------------------------------------
# verdicts on cards, in the summary and on the index
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def doubtful_book(sample):
    return personas.build_personas(_population(sample, _models(behavioral_verdict="none", demographic_verdict="weak")), min_size=30)


def test_personas_of_a_split_without_structure_get_a_neutral_card(doubtful_book):
    recs = [r for r in doubtful_book.records if r["segmentation"] == "behavioral_segment"]
    assert recs and all(r["unsupported"] for r in recs)
    for rec in recs:
        assert rec["name"] == f"{rec['segment']} (split not supported)"
        assert not rec["traits"] and not rec["definition"] and not rec["typical"] and not rec["actions"]
        assert "Not supported by the data" in rec["verdict_note"]
        assert "Their " not in rec["narrative"] and "By definition" not in rec["narrative"]
    # RFM segments beside the clusters are rules, not judged against noise: described as usual
    rfm = [r for r in doubtful_book.records if r["segmentation"] == "rfm_segment" and not r["suppressed"]]
    assert rfm and all(r["verdict"] == "rules" and r["actions"] and not r["unsupported"] for r in rfm)


def test_weak_and_none_are_said_in_plain_words_everywhere(doubtful_book):
    html = personas.cards_html(doubtful_book)
    assert "No real structure" in html and "Weak structure" in html  # section callouts
    assert html.count("Tentative: the data show only weak structure") == sum(
        r["segmentation"] == "demographic_segment" for r in doubtful_book.records)
    md = personas.cards_markdown(doubtful_book)
    assert "Verdict: **none**" in md and "Verdict: **weak**" in md
    summary = personas.with_verdicts(personas.executive_summary(doubtful_book), doubtful_book.population)
    text = " ".join(summary["lines"])
    assert "Behavioral segments: not supported by the data" in text and "Demographic segments: weak structure" in text
    assert summary["verdicts"]["behavioral_segment"] == "none"
    # a weak or unsupported split never leads the summary and the budget split
    assert personas.lead_segmentation(doubtful_book.population) == "rfm_segment"
    assert personas.lead_segmentation(doubtful_book.population, "demographic_segment") == "demographic_segment"


def test_index_shows_each_basis_verdict(tmp_path):
    folder = io.RunFolder(tmp_path)
    manifest = {
        "run_id": "r1", "config": {"as_of": "2025-01-01", "name": "t"}, "status": "complete", "seconds": 1.0,
        "notebooks": [], "inputs": {}, "versions": {"clientele": "0"}, "created_utc": "now", "git_commit": None,
        "models": _models("none", "weak"),
        "facts": {"summary_13_behavioral": {"title": "Behaviour", "lines": ["4 clusters"], "verdict": "none"},
                  "summary_10_demographic": {"title": "Demographic segments", "lines": ["3 segments"], "verdict": "weak"}},
    }
    page = report.render_index(folder, manifest).read_text(encoding="utf-8")
    assert "Do the segments hold?" in page
    assert "no structure beyond chance: not supported by the data" in page and "weak structure: a convenient split" in page
    assert "No structure beyond chance: silhouette 0.13 against 0.13." in page


# ---------------------------------------------------------------------------------------------
# names that hold
# ---------------------------------------------------------------------------------------------


def _minority_population(seed: int = 0):
    """Two segments; in 'Mixed' 13% are retired (3% elsewhere) and 38% single (10% elsewhere)."""
    rng = np.random.default_rng(seed)
    n = 400
    segment = np.r_[["Mixed"] * n, ["Other"] * n]
    occupation = np.r_[rng.choice(["retired", "teacher", "nurse", "clerk"], n, p=[0.13, 0.29, 0.29, 0.29]),
                       rng.choice(["retired", "teacher", "nurse", "clerk"], n, p=[0.03, 0.32, 0.33, 0.32])]
    marital = np.r_[rng.choice(["Single", "Married", "Divorced"], n, p=[0.38, 0.32, 0.30]),
                    rng.choice(["Single", "Married", "Divorced"], n, p=[0.10, 0.80, 0.10])]
    age = np.r_[rng.normal(52, 6, n), rng.normal(40, 6, n)]
    ids = [f"c{i:04d}" for i in range(2 * n)]
    customers = pd.DataFrame({"customer_id": ids, "occupation": occupation, "marital_status": marital, "age": age})
    labels = {"demographic": pd.DataFrame({"customer_id": ids, "demographic_segment": segment})}
    return personas.build_population(customers, labels=labels)


def test_a_persona_is_not_named_for_a_minority_of_its_members():
    book = personas.build_personas(_minority_population(), min_size=30)
    prof = book.profiles.set_index(["persona_id", "attribute", "level"])
    retired = prof.loc[("demographic_segment=Mixed", "occupation", "retired")]
    single = prof.loc[("demographic_segment=Mixed", "marital_status", "Single")]
    assert retired["significant"] and single["significant"]  # real differences, shown as traits...
    assert not retired["holds"] and not single["holds"]  # ...but each describes a minority
    name = book.record("demographic_segment=Mixed")["name"].lower()
    assert "retired" not in name and "single" not in name, name
    assert "older" in name or "aged" in name  # most are older: that may name them


def test_a_pooled_area_is_not_named_as_its_whole_parent_area():
    """Geographic segments pool small states as "Other <region>"; Florida is in the South too, so the pooled
    segment's persona must not be called "South" (seen on Superstore), while a named state keeps its name."""
    rng = np.random.default_rng(3)
    states = np.repeat(["Florida", "Georgia", "Alabama", "Texas", "Iowa", "Kansas"], [60, 25, 25, 60, 30, 30])
    region = np.where(np.isin(states, ["Florida", "Georgia", "Alabama"]), "South", "Central")
    pooled = {"Georgia": "Other South", "Alabama": "Other South", "Iowa": "Other Central", "Kansas": "Other Central"}
    segment = pd.Series(states).map(pooled).fillna(pd.Series(states)).to_numpy()
    ids = [f"c{i}" for i in range(len(states))]
    customers = pd.DataFrame({"customer_id": ids, "state": states, "region": region, "age": rng.normal(45, 10, len(ids))})
    labels = {"geographic": pd.DataFrame({"customer_id": ids, "geographic_segment": segment})}
    models = {"geographic": {"available": True, "levels": ["region", "state"], "verdict": "rules"}}
    book = personas.build_personas(personas.build_population(customers, labels=labels, models=models), min_size=30)
    names = {rec["segment"]: rec["name"] for rec in book.records}
    assert names["Other South"].startswith("Other South") and names["Other Central"].startswith("Other Central"), names
    assert names["Florida"].startswith("Florida") and names["Texas"].startswith("Texas"), names
    for rec in book.records:
        _assert_name_holds(rec)


@pytest.mark.parametrize(("in_lapsed", "named_lapsed"), [(0.55, False), (0.80, True)])
def test_a_second_hand_name_needs_two_thirds_of_the_members(in_lapsed, named_lapsed):
    """A value tier with nothing of its own to be named by takes another segmentation's label only when
    two thirds of it share that label: 52 % in the "Lapsed" cluster named Online Retail's "Rest" tier "Lapsed"."""
    n_rest, n_top = 400, 200
    k = int(in_lapsed * n_rest)
    cluster = ["Lapsed"] * k + ["Active"] * (n_rest - k) + ["Lapsed"] * 20 + ["Active"] * (n_top - 20)
    tier = ["Rest"] * n_rest + ["Top 20%"] * n_top
    ids = [f"c{i}" for i in range(n_rest + n_top)]
    customers = pd.DataFrame({"customer_id": ids})
    labels = {"behavioral": pd.DataFrame({"customer_id": ids, "behavioral_segment": cluster}),
              "value": pd.DataFrame({"customer_id": ids, "value_tier": tier})}
    book = personas.build_personas(personas.build_population(customers, labels=labels), min_size=30)
    rest = book.record("value_tier=Rest")
    assert (rest["name"] == "Lapsed") is named_lapsed and (rest["name"] == "Rest") is (not named_lapsed), rest["name"]


def _assert_name_holds(rec):
    """Every phrase of a persona's name comes from an attribute that holds for most members (a pooled
    area, "Other South", is named as such)."""
    if rec["suppressed"] or rec["name"] == rec["segment"]:
        return
    allowed = {t["name_phrase"].lower() for t in rec["definition"] + rec["traits"] + rec["more_traits"] if t["holds"]}
    allowed |= {str(rec["segment"]).lower() for p in list(allowed) if str(rec["segment"]).lower() == f"other {p}"}
    text = rec["name"].split(" (")[0].lower()
    for phrase in sorted(allowed | {"lapsing"}, key=len, reverse=True):
        text = text.replace(phrase, "")
    assert set(text) <= set(", "), (rec["persona_id"], rec["name"], allowed)


def test_numeric_phrases_hold_only_for_a_majority_in_the_top_or_bottom_third(honest_book):
    prof = honest_book.profiles
    numeric = prof[(prof["kind"] == "numeric") & prof["holds"]]
    assert len(numeric) and (numeric["holds_share"] >= NAME_MAJORITY).all()
    cat = prof[(prof["kind"] == "category") & prof["holds"]]
    assert cat["is_mode"].all() and (cat["segment_value"] >= NAME_MAJORITY).all()
    for rec in honest_book.records:
        _assert_name_holds(rec)
    assert NAME_BAND_LIFT > 1


def test_demographic_segments_are_named_only_by_modal_majority_categories():
    rng = np.random.default_rng(1)
    n = 300
    attrs = pd.DataFrame({
        "occupation": np.r_[rng.choice(["retired", "manager", "clerk"], n, p=[0.13, 0.57, 0.30]),
                            rng.choice(["retired", "manager", "clerk"], n, p=[0.02, 0.18, 0.80])],
        "marital_status": np.r_[rng.choice(["Single", "Married", "Divorced"], n, p=[0.38, 0.31, 0.31]),
                                rng.choice(["Single", "Married", "Divorced"], n, p=[0.05, 0.90, 0.05])],
    })
    seg = pd.Series(np.r_[np.zeros(n, int), np.ones(n, int)], index=attrs.index)
    traits = demographic.segment_traits(lift_table(attrs, seg))
    first = traits[traits["segment"] == 0]
    assert first["category"].tolist() == ["manager"]  # not retired (13%) nor single (38%, modal but a minority)
    assert (traits["share_pct"] >= 50).all()
    names = demographic.name_segments(traits, [0, 1])
    assert "retired" not in names[0].lower() and "single" not in names[0].lower()


def test_a_lapsing_cluster_is_not_named_new():
    rng = np.random.default_rng(2)
    n = 200

    def block(size, recency, tenure, gap, freq):
        return pd.DataFrame({"recency_days": rng.normal(recency, 2, size).clip(1), "tenure_days": rng.normal(tenure, 5, size).clip(1),
                             "interpurchase_days": rng.normal(gap, 1, size).clip(1), "frequency": rng.poisson(freq, size) + 1.0,
                             "mean_order_value": rng.gamma(4, 20, size)})

    # regulars; new and active; joined recently but silent for over twice their usual gap ("About to sleep"),
    # yet not lapsed by the cluster median (under twice the median recency of all customers)
    feats = pd.concat([block(2 * n, 20, 600, 30, 20), block(n, 5, 60, 20, 3), block(n, 36, 80, 15, 2)], ignore_index=True)
    feats["favourite_category"] = np.r_[rng.choice(["A", "B", "C"], 3 * n), rng.choice(["A", "B", "C"], n, p=[0.4, 0.3, 0.3])]
    feats["favourite_category_share"] = np.r_[rng.uniform(0.2, 0.5, 3 * n), rng.uniform(0.75, 0.95, n)]
    labels = np.repeat([0, 1, 2], [2 * n, n, n])
    desc = behavioral.describe_clusters(feats, labels).set_index("cluster")
    assert desc.loc[1, "segment"].startswith("New")
    assert "new" not in desc.loc[2, "description"] and desc.loc[2, "segment"].startswith("Lapsing"), desc.loc[2, "description"]
    # loyal to one category, but no category holds half of the cluster: it is not named
    assert "loyal to one category" in desc.loc[2, "description"] and "(A)" not in desc.loc[2, "description"]


def test_overdue_checks_recency_against_each_customers_rhythm():
    f = pd.DataFrame({"recency_days": [10.0, 50.0, 50.0, 300.0, np.nan], "interpurchase_days": [30.0, 30.0, 10.0, np.nan, 5.0]})
    assert behavioral.overdue(f).tolist() == [False, False, True, True, pd.NA]


# ---------------------------------------------------------------------------------------------
# the playbook guard: lapsed personas never get onboarding
# ---------------------------------------------------------------------------------------------


def _rules(book, pid):
    return set(book.actions.loc[book.actions["persona_id"] == pid, "rule"])


def test_lapsed_personas_never_get_the_welcome_series(honest_book):
    welcome = "Welcome and second purchase"
    assert next(r for r in honest_book.playbook.rules if r.name == welcome).active_only
    for rec in honest_book.records:
        if rec["overdue_share"] is not None and rec["overdue_share"] >= 0.5:
            assert welcome not in _rules(honest_book, rec["persona_id"]), (rec["persona_id"], rec["overdue_share"])
    sleepy = honest_book.record("rfm_segment=About to sleep")
    assert sleepy["overdue_share"] >= 0.5 and "new" not in sleepy["name"].lower()
    assert sleepy["name"].startswith("Lapsing")
    # the new, still active customers keep it
    assert welcome in _rules(honest_book, "behavioral_segment=New & promising")


def test_the_guard_is_what_keeps_the_welcome_series_away(honest_book):
    """Without ``active_only`` the About-to-sleep persona (low tenure) would get the welcome series."""
    pb = personas.load_playbook()
    for rule in pb.rules:
        rule.active_only = False
    actions = personas.match_playbook(pb, honest_book.profiles, honest_book.records)
    assert "Welcome and second purchase" in set(actions.loc[actions["persona_id"] == "rfm_segment=About to sleep", "rule"])


def test_playbook_rejects_a_non_boolean_active_only(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: Hi\n    active_only: maybe\n    when: {}\n    do: {channel: e-mail}\n", encoding="utf-8")
    with pytest.raises(Exception, match="active_only must be true or false"):
        personas.load_playbook(bad)


# ---------------------------------------------------------------------------------------------
# public data: the names hold on marketing_campaign
# ---------------------------------------------------------------------------------------------


@pytest.mark.shared_data
@pytest.mark.slow
def test_marketing_campaign_segment_and_persona_names_hold(tmp_path):
    """iFood marketing campaign: demographic segments and their personas are named only by what most members share."""
    shared_path("marketing_campaign", "marketing_campaign.csv")
    run = workspace.open_run(PROJECT_ROOT / "config" / "marketing_campaign.yaml", tmp_path)
    customers = run.table("customers")
    result = demographic.segment_demographic(customers, k=3, n_bootstrap=2, random_state=42)
    traits = result.traits
    assert len(traits) and (traits["share_pct"] >= 50).all(), traits
    labels = {"demographic": result.labels}
    models = {"demographic": json.loads(json.dumps(result.model_payload(), default=str))}
    pop = personas.build_population(customers, labels=labels, models=models, pii_columns=run.config.pii_columns)
    book = personas.build_personas(pop, min_size=30)
    prof = book.profiles
    assert not prof.loc[prof["trait_rank"].notna(), "attribute"].isin(pop.segmentations["demographic_segment"].defined_by).any()
    for rec in book.records:
        _assert_name_holds(rec)


# ---------------------------------------------------------------------------------------------
# the full sample run: fitted segments, saved payloads, the page and the index
# ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sample_run_personas_are_honest_and_show_verdicts(sample_run):
    """On the sample run no behavioral persona lists a clustering input as a significant trait; verdicts are shown."""
    proc, reports = sample_run
    run = reports / "ci-sample"
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    status = {nb["name"]: nb["status"] for nb in manifest["notebooks"]}
    assert status.get("20_personas") == "ok", (status, proc.stdout[-2000:])
    inputs = set(manifest["models"]["behavioral"]["features"])
    assert {"recency_days", "frequency", "mean_order_value"} <= inputs
    prof = pd.read_csv(run / "exports" / "persona_profiles.csv")
    beh = prof[prof["segmentation"] == "behavioral_segment"]
    assert beh["trait_rank"].notna().any()
    assert not beh.loc[beh["trait_rank"].notna(), "attribute"].isin(inputs).any()
    assert beh.loc[beh["attribute"].isin(inputs), "defines"].all() and beh.loc[beh["attribute"].isin(inputs), "p_value"].isna().all()
    exported = pd.read_csv(run / "exports" / "personas.csv")
    assert set(exported.loc[exported["segmentation"] == "behavioral_segment", "verdict"]) == {manifest["models"]["behavioral"]["verdict"]}
    index = (run / "index.html").read_text(encoding="utf-8")
    assert "Do the segments hold?" in index
    for basis in ("demographic", "behavioral"):
        assert manifest["models"][basis]["verdict_evidence"]["reason"] in index
    assert "Verdicts:" in " ".join(manifest["facts"]["summary_20_personas"]["lines"])
