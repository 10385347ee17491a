"""Personas: planted traits recovered, grounded narratives, playbook, suppression, escaping, exports."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from analysis import personas, sample, workspace
from analysis.config import ConfigError
from analysis.features import customer_features
from analysis.personas.vocabulary import Vocabulary

from .conftest import PROJECT_ROOT, SAMPLE_CONFIG, analysis, background_run

TRUTH = PROJECT_ROOT / "data" / "sample" / "truth.csv"

# Planted trait names -> profile columns (the generator's vocabulary vs the package's).
FACTOR_COLUMNS = {
    "Adventure/novelty": "factor_adventure",
    "Price consciousness": "factor_price_consciousness",
    "Eco/ethical values": "factor_eco_values",
    "Social/status": "factor_social_status",
}
BEHAVIOR_COLUMNS = {
    "frequency": "frequency",
    "category_concentration": "favourite_category_share",
    "mean_order_value": "mean_order_value",
    "recency_days": "recency_days",
    "tenure_days": "tenure_days",
}
PLANTED = {
    "demographic": sample.DEMOGRAPHIC_SEGMENTS,
    "geographic": sample.GEOGRAPHIC_REGIONS,
    "psychographic": sample.PSYCHOGRAPHIC_SEGMENTS,
    "behavioral": sample.BEHAVIORAL_SEGMENTS,
}


# ---------------------------------------------------------------------------------------------
# fixtures: the sample with its TRUE segments as labels
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_tables(tmp_path_factory):
    run = workspace.open_run(SAMPLE_CONFIG, tmp_path_factory.mktemp("persona-run"))
    tables = {name: run.table(name) for name in ("customers", "transactions", "survey", "events")}
    tables["features"] = customer_features(tables["transactions"], run.as_of, events=tables["events"])
    tables["config"] = run.config
    return tables


def true_labels(tables) -> dict[str, pd.DataFrame]:
    truth = pd.read_csv(TRUTH, dtype=str)
    survey = tables["survey"].set_index("customer_id")
    factors = pd.DataFrame({f"factor_{name}": survey[items].mean(axis=1) for name, items in tables["config"].survey.scales.items()})
    ids = truth[["customer_id"]]
    return {
        "demographic": ids.assign(demographic_segment=truth["true_demographic_segment"]),
        "geographic": ids.assign(geographic_segment=truth["true_geographic_segment"]),
        "psychographic": ids.assign(psychographic_segment=truth["true_psychographic_segment"]).merge(
            factors, left_on="customer_id", right_index=True, how="left"),
        "behavioral": ids.assign(behavioral_segment=truth["true_behavioral_segment"]),
    }


@pytest.fixture(scope="module")
def true_population(sample_tables):
    cfg = sample_tables["config"]
    return personas.build_population(
        sample_tables["customers"], features=sample_tables["features"], labels=true_labels(sample_tables),
        pii_columns=cfg.pii_columns, income_edges=[sample.INCOME_BANDS["middle"][0], sample.INCOME_BANDS["high"][0]],
    )


@pytest.fixture(scope="module")
def true_book(true_population):
    return personas.build_personas(true_population, min_size=30)


def _covered(profile: pd.DataFrame, attr: str, level: str | None, direction: str | None, top: int = 3) -> bool:
    rows = profile[profile["attribute"] == attr]
    if level is not None:
        rows = rows[rows["level"] == level]
    elif direction is not None:
        rows = rows[np.sign(rows["effect_size"]) == (1 if direction == "high" else -1)]
    in_top = rows["trait_rank"].le(top) | rows["folded_into"].le(top)
    return bool(in_top.any())


def _planted(basis: str, traits: dict) -> list[tuple[str, str | None, str | None]]:
    out = []
    for key, value in traits.items():
        if basis in ("demographic", "geographic"):
            out.append((key, str(value), None))
        elif basis == "psychographic":
            out.append((FACTOR_COLUMNS[key], None, value))
        else:
            out.append((BEHAVIOR_COLUMNS[key], None, value))
    return out


# ---------------------------------------------------------------------------------------------
# planted traits
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("basis", list(PLANTED))
def test_planted_traits_are_among_the_top_three(true_book, basis):
    """Each planted segment's top three traits (or what they fold in) cover most of its planted traits.

    Planted demographic/geographic traits are *modal* values, and behavioral ones "highest/lowest
    among segments"; not all of them distinguish a segment (Andalusia is 42% urban against 56%
    overall), so at least half of each segment's planted traits must be covered (and 80% over
    all bases, next test).
    """
    for segment, spec in PLANTED[basis].items():
        profile = true_book.profiles[true_book.profiles["persona_id"] == f"{basis}_segment={segment}"]
        assert len(profile), f"no persona for planted segment {segment}"
        planted = _planted(basis, spec["traits"])
        hits = [p for p in planted if _covered(profile, *p)]
        assert len(hits) >= math.ceil(len(planted) / 2), (segment, planted, hits)
        assert _covered(profile, *planted[0]), f"{segment}: its first planted trait {planted[0]} is not in the top three"


def test_most_planted_traits_are_covered_overall(true_book):
    hits, total = 0, 0
    for basis, segments in PLANTED.items():
        for segment, spec in segments.items():
            profile = true_book.profiles[true_book.profiles["persona_id"] == f"{basis}_segment={segment}"]
            planted = _planted(basis, spec["traits"])
            hits += sum(_covered(profile, *p) for p in planted)
            total += len(planted)
    assert hits / total >= 0.8, f"{hits}/{total}"


def test_planted_traits_fail_for_a_wrong_segment(true_book):
    """The check above can fail: Retirees' planted traits are not Young urban singles' top traits."""
    profile = true_book.profiles[true_book.profiles["persona_id"] == "demographic_segment=Young urban singles"]
    planted = _planted("demographic", sample.DEMOGRAPHIC_SEGMENTS["Retirees"]["traits"])
    assert sum(_covered(profile, *p) for p in planted) < math.ceil(len(planted) / 2)
    assert not _covered(profile, *planted[0])


@pytest.mark.parametrize("basis", ["demographic", "geographic"])
def test_planted_modal_values_are_the_typical_member(true_book, basis):
    for segment, spec in PLANTED[basis].items():
        profile = true_book.profiles[true_book.profiles["persona_id"] == f"{basis}_segment={segment}"]
        modes = set(zip(profile.loc[profile["is_mode"], "attribute"], profile.loc[profile["is_mode"], "level"]))
        for attr, level in spec["traits"].items():
            assert (attr, str(level)) in modes, (segment, attr, level)


# ---------------------------------------------------------------------------------------------
# narratives are grounded in the profile table
# ---------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(%?)")


def _candidates(profile: pd.DataFrame) -> list[float]:
    values = pd.concat([profile["segment_value"], profile["overall_value"], profile["customers"], profile["min_size"]])
    return [float(v) for v in values.dropna().unique()]


def _matches(token: tuple[str, str, str], candidates: list[float]) -> bool:
    whole, frac, pct = token
    number = float(whole.replace(",", "") + frac)
    decimals = len(frac) - 1 if frac else 0
    tol = 0.5 * 10 ** (-decimals) + 1e-9
    scale = 100.0 if pct else 1.0
    return any(abs(c * scale - number) <= tol for c in candidates)


def _strip_levels(text: str, profile: pd.DataFrame) -> str:
    levels = set(profile["level"].dropna().astype(str)) | set(profile["segment"].astype(str))
    for level in sorted((lv for lv in levels if lv), key=len, reverse=True):
        text = text.replace(level, " ")
    return text


def test_every_narrative_number_is_in_the_profile_table(true_book):
    checked = 0
    for rec in true_book.records:
        profile = true_book.profiles[true_book.profiles["persona_id"] == rec["persona_id"]]
        candidates = _candidates(profile)
        sentences = [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z])", rec["narrative"]) if s.strip()]
        assert sentences, rec["persona_id"]
        for sentence in sentences:
            tokens = _NUMBER.findall(_strip_levels(sentence, profile))
            assert tokens, f"{rec['persona_id']}: sentence without a number: {sentence!r}"
            for token in tokens:
                assert _matches(token, candidates), f"{rec['persona_id']}: {''.join(token)!r} not in the profile table ({sentence!r})"
                checked += 1
    assert checked > 100


def test_narrative_check_catches_a_wrong_number(true_book):
    rec = true_book.records[0]
    profile = true_book.profiles[true_book.profiles["persona_id"] == rec["persona_id"]]
    assert not _matches(("87", ".3", "%"), _candidates(profile))
    assert _matches((personas.fmt_pct(rec["customers_share"])[:-1], "", "%"), _candidates(profile))


def test_narratives_are_unique_and_not_empty_and_names_unique(true_book):
    narratives = [r["narrative"] for r in true_book.records]
    assert all(len(n) > 40 for n in narratives)
    assert len(set(narratives)) == len(narratives)
    names = [r["name"].lower() for r in true_book.records]
    assert len(set(names)) == len(names)


def test_names_are_deterministic_and_read_like_traits(true_population, true_book):
    again = personas.build_personas(true_population, min_size=30)
    assert [r["name"] for r in again.records] == [r["name"] for r in true_book.records]
    assert true_book.record("demographic_segment=Retirees")["name"].startswith("Aged 66+")
    assert true_book.record("psychographic_segment=Eco-conscious")["name"].startswith("Eco-minded")


def test_narrative_templates_can_be_replaced(true_population, tmp_path):
    (tmp_path / "narrative.txt.j2").write_text("Ce groupe compte {{ num(p.customers) }} clients.", encoding="utf-8")
    book = personas.build_personas(true_population, min_size=30, template_dir=tmp_path)
    assert book.records[0]["narrative"] == f"Ce groupe compte {personas.fmt_num(book.records[0]['customers'])} clients."


# ---------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------


def test_tests_and_effect_sizes_match_scipy(true_population, true_book):
    frame = true_population.frame
    seg = frame["demographic_segment"]
    members = seg == "Retirees"
    row = true_book.profiles.query("persona_id == 'demographic_segment=Retirees' and attribute == 'mean_order_value'").iloc[0]
    a, b = frame.loc[members, "mean_order_value"].dropna(), frame.loc[~members & seg.notna(), "mean_order_value"].dropna()
    assert row["p_value"] == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-6, abs=1e-300)
    pooled = np.sqrt(((len(a) - 1) * a.var() + (len(b) - 1) * b.var()) / (len(a) + len(b) - 2))
    assert row["effect_size"] == pytest.approx((a.mean() - b.mean()) / pooled, rel=1e-9)

    row = true_book.profiles.query("persona_id == 'demographic_segment=Retirees' and attribute == 'gender' and level == 'F'").iloc[0]
    known = frame["gender"].notna() & seg.notna()
    table = pd.crosstab(members[known], frame.loc[known, "gender"] == "F")
    assert row["p_value"] == pytest.approx(stats.chi2_contingency(table, correction=False)[1], rel=1e-6)
    assert row["segment_value"] == pytest.approx((frame.loc[members, "gender"] == "F").mean())


def test_benjamini_hochberg_matches_the_definition():
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, np.nan])
    q = personas.benjamini_hochberg(p)
    expected = [0.008, 0.032, 0.0672, 0.0672, 0.0672, 0.08, 0.0846, 0.205]
    assert np.allclose(q[:-1], expected, atol=1e-4) and np.isnan(q[-1])


# ---------------------------------------------------------------------------------------------
# suppression, PII and escaping
# ---------------------------------------------------------------------------------------------


def _toy(n_small: int = 10, seed: int = 0, names=("Big", "Other", "Small")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = [200, 150, n_small]
    rows = []
    for name, size, age in zip(names, sizes, (30, 55, 70)):
        for _ in range(size):
            rows.append({"segment": name, "age": rng.normal(age, 5), "city": rng.choice(["A", "B", "C"]),
                         "spend": rng.gamma(2, 50 + age)})
    frame = pd.DataFrame(rows)
    frame["customer_id"] = [f"c{i:04d}" for i in range(len(frame))]
    frame["email"] = frame["customer_id"] + "@example.org"
    frame["name"] = "Person " + frame["customer_id"]
    return frame


def _toy_population(frame: pd.DataFrame) -> personas.Population:
    customers = frame[["customer_id", "name", "email", "age", "city"]]
    features = frame[["customer_id"]].assign(total_spend=frame["spend"], frequency=np.ceil(frame["spend"] / 40))
    labels = {"demographic": frame[["customer_id"]].assign(demographic_segment=frame["segment"])}
    return personas.build_population(customers, features=features, labels=labels, pii_columns=["name", "email"])


def test_segments_below_min_size_are_suppressed():
    pop = _toy_population(_toy(n_small=12))
    book = personas.build_personas(pop, min_size=30)
    small = book.profiles[book.profiles["segment"] == "Small"]
    assert small["suppressed"].all()
    assert set(small["kind"]) <= {"size", "worth"}
    assert small["trait_rank"].isna().all()
    rec = book.record("demographic_segment=Small")
    assert rec["suppressed"] and not rec["traits"] and not rec["typical"]
    assert "too few" in rec["narrative"] and "12 customers" in rec["narrative"]
    assert not book.profiles.loc[book.profiles["segment"] == "Big", "suppressed"].any()
    # the same segment is profiled once the minimum allows it
    lenient = personas.build_personas(pop, min_size=10)
    assert not lenient.record("demographic_segment=Small")["suppressed"]
    assert lenient.profiles.query("segment == 'Small' and attribute == 'age_band'").shape[0] > 0


def test_pii_never_reaches_profiles_or_exports(tmp_path):
    frame = _toy(n_small=40)
    book = personas.build_personas(_toy_population(frame), min_size=30)
    assert not {"name", "email", "customer_id"} & set(book.population.frame.columns)
    assert not {"name", "email"} & set(book.profiles["attribute"])
    text = book.personas.to_csv() + book.profiles.to_csv() + personas.cards_markdown(book) + personas.cards_html(book)
    assert "@example.org" not in text and "Person c0" not in text and "c0001" not in text


def test_html_and_markdown_escape_data_strings():
    evil = "<script>alert(1)</script>"
    frame = _toy(n_small=40, names=(evil, "O'Brien & <b>Sons</b>", "Small"))
    frame.loc[frame["segment"] == evil, "city"] = "<img src=x onerror=alert(2)>"
    book = personas.build_personas(_toy_population(frame), min_size=30)
    html = personas.cards_html(book)
    assert "<script>" not in html and "<img" not in html and "<b>Sons" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'class="card-grid"' in html and html.count('class="card"') == len(book.records)
    md = personas.cards_markdown(book)
    assert "<script>" not in md and "<img" not in md and "&lt;script&gt;" in md
    summary = personas.summary_html(personas.executive_summary(book))
    assert "<script>" not in summary


# ---------------------------------------------------------------------------------------------
# playbook
# ---------------------------------------------------------------------------------------------


def _actions(book, pid):
    return {a["action"]: (a["recommendation"], a["rule"]) for a in book.record(pid)["actions"]}


def test_default_playbook_matches_sensible_rules(true_book):
    assert _actions(true_book, "behavioral_segment=Lapsed")["budget_priority"] == ("low", "Low-cost reactivation")
    assert _actions(true_book, "behavioral_segment=New & promising")["offer"][1] == "Welcome and second purchase"
    assert _actions(true_book, "psychographic_segment=Eco-conscious")["offer"][1] == "Eco-minded"
    assert _actions(true_book, "demographic_segment=Retirees")["channel"][1] == "Store-first shoppers"
    for rec in true_book.records:  # the Default rule fills every action
        assert {a["action"] for a in rec["actions"]} == set(true_book.playbook.actions)


def test_changing_the_playbook_yaml_changes_the_actions(true_population, tmp_path):
    spec = yaml.safe_load((PROJECT_ROOT / "src" / "analysis" / "data" / "playbook.yaml").read_text(encoding="utf-8"))
    eco = next(r for r in spec["rules"] if r["name"] == "Eco-minded")
    eco["do"]["offer"] = "refill station vouchers"
    eco["do"]["channel"] = "carrier pigeon"
    path = tmp_path / "my_playbook.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    book = personas.build_personas(true_population, min_size=30, playbook=personas.load_playbook(path))
    acts = _actions(book, "psychographic_segment=Eco-conscious")
    assert acts["offer"] == ("refill station vouchers", "Eco-minded")
    assert acts["channel"] == ("carrier pigeon", "Eco-minded")
    assert "refill station vouchers" in book.personas.set_index("persona_id").at["psychographic_segment=Eco-conscious", "offer"]


def test_playbook_errors_name_the_rule_and_the_fix(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: Oops\n    when: {high: frequency}\n    do: {chanel: e-mail}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad.yaml: rules\[1\] \('Oops'\): unknown action\(s\) \['chanel'\]"):
        personas.load_playbook(bad)
    bad.write_text("rules:\n  - name: Share\n    when: {\"share(churn_risk)\": '>= 0.4'}\n    do: {channel: x}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"share\(<attribute>=<level>\)"):
        personas.load_playbook(bad)


def test_rule_conditions():
    facts = {"value_tier": "Top 20%", "value_index": 2.5, "_shares": {("churn_risk", "high"): 0.45},
             "_effects": [("numeric", "factor_price_consciousness", "", 1.2), ("category", "favourite_channel", "app", 0.4)]}
    th = {"high": 0.5, "over": 0.3}
    holds = personas.playbook.condition_holds
    assert holds({"value_tier": ["Top 1%", "Top 20%"], "value_index": ">= 2"}, facts, th)
    assert holds({"share(churn_risk=high)": ">= 0.4", "high": "factor_*price*", "over": "favourite_channel=app"}, facts, th)
    assert not holds({"low": "factor_*price*"}, facts, th)
    assert not holds({"churn_risk": "high"}, facts, th)  # unknown fact: false, not an error
    assert holds({"any": [{"churn_risk": "high"}, {"value_tier": "Top 20%"}]}, facts, th)
    assert holds({"not": {"value_index": "< 1"}}, facts, th)
    assert holds({}, facts, th)


def test_trait_conditions_match_attribute_names_on_whole_words():
    """``factor_*eco*`` is eco values, never an 'economy' factor; the package rules read the same way."""
    th = {"high": 0.5, "over": 0.3}
    holds = personas.playbook.condition_holds

    def effect(attr, size, kind="numeric", level=""):
        return {"_effects": [(kind, attr, level, size)]}

    economy, eco = effect("factor_foreign_languages_economy_management", 1.2), effect("factor_eco_values", 1.2)
    assert holds({"high": "factor_*eco*"}, eco, th) and not holds({"high": "factor_*eco*"}, economy, th)
    assert not holds({"over": "channel_*app*=yes"}, effect("channel_application", 0.5, "category", "yes"), th)
    assert holds({"over": "channel_*app*=yes"}, effect("channel_app_share", 0.5, "category", "yes"), th)
    rules = {r.name: r.when for r in personas.load_playbook().rules}
    assert holds(rules["Eco-minded"], eco, th) and not holds(rules["Eco-minded"], economy, th)
    for name in ("factor_adventure", "factor_adventure_novelty", "factor_novelty_seeking"):
        assert holds(rules["Status and novelty seekers"], effect(name, 0.9), th), name
        assert holds(rules["Routine-loving"], effect(name, -0.9), th), name
    assert not holds(rules["Routine-loving"], effect("factor_adventitious_items", -0.9), th)
    assert not holds(rules["Value seekers"], effect("factor_priceless_moments", 0.9), th)
    assert personas.unknown_attributes(personas.load_playbook(), {"factor_economy"}).count("factor_*eco*") == 1


# ---------------------------------------------------------------------------------------------
# combined segmentation, allocation, summary
# ---------------------------------------------------------------------------------------------


def test_value_grid_and_crosstab_add_up(true_population):
    frame = true_population.frame
    grid = personas.value_grid(true_population, "value_tier", "behavioral_segment", min_size=30)
    assert grid["customers"].sum() == frame[["value_tier", "behavioral_segment"]].notna().all(axis=1).sum()
    shown = grid[~grid["suppressed"]]
    direct = frame.groupby(["value_tier", "behavioral_segment"])["total_spend"].sum() / frame["total_spend"].sum()
    assert np.allclose(shown["value_share"], [direct[(a, b)] for a, b in zip(shown["value_tier"], shown["behavioral_segment"])])
    assert grid.loc[grid["suppressed"], "value_share"].isna().all() and (grid.loc[grid["suppressed"], "customers"] < 30).all()
    assert grid["suppressed"].any()  # Top 1% cells are small
    top = grid.loc[grid["value_share"].idxmax()]
    assert personas.grid_headline(grid).startswith(f"{top['value_tier']} / {top['behavioral_segment']}")
    cross = personas.crosstab(true_population, "demographic_segment", "geographic_segment", min_size=30)
    assert cross["customers"].sum() == 2000
    assert personas.grid_matrix(cross, "customers").to_numpy().sum() == 2000


def test_named_target_group_is_profiled_without_restating_its_definition(true_population):
    groups = {"High-value urban professionals": {"value_tier": ["Top 1%", "Top 20%"], "urban_rural": "urban",
                                                  "demographic_segment": "Affluent professionals"}}
    labels = personas.target_group_labels(true_population, groups)
    frame = true_population.frame
    expected = frame["value_tier"].isin(["Top 1%", "Top 20%"]) & frame["urban_rural"].eq("urban") & frame["demographic_segment"].eq("Affluent professionals")
    assert (labels == "High-value urban professionals").sum() == expected.sum() > 30
    book = personas.build_personas(true_population, min_size=30, target_groups=groups)
    rec = book.record("target_group=High-value urban professionals")
    assert rec["customers"] == expected.sum()
    assert not {"value_tier", "urban_rural", "demographic_segment"} & {t["attribute"] for t in rec["traits"]}
    assert all(r["segment"] != personas.OTHER_CUSTOMERS for r in book.records)
    with pytest.raises(ValueError, match="column 'urbanicity' not found"):
        personas.target_group_labels(true_population, {"x": {"urbanicity": "urban"}})


def test_target_groups_rank_valuable_cells_first(true_population):
    groups = personas.target_groups(true_population, min_size=30)
    assert (groups["customers"] >= 30).all()
    above = groups["value_index"] >= 1
    assert above.iloc[0] and list(above) == sorted(above, reverse=True)  # all above-average cells come first


def test_resource_allocation_follows_value_and_priority(true_book):
    alloc = personas.resource_allocation(true_book, "behavioral_segment")
    assert alloc["suggested_budget_share"].sum() == pytest.approx(1.0)
    weights = true_book.playbook.budget_weights
    raw = alloc["budget_priority"].map(weights) * alloc["value_share"]
    assert np.allclose(alloc["suggested_budget_share"], raw / raw.sum())
    summary = personas.executive_summary(true_book, allocation=alloc)
    assert summary["title"] == "Personas" and len(summary["lines"]) >= 3


def test_population_without_labels_uses_spend_tiers(sample_tables):
    pop = personas.build_population(sample_tables["customers"], features=sample_tables["features"])
    assert list(pop.segmentations) == ["value_tier"] and pop.segmentations["value_tier"].basis == "spend"
    assert pop.frame["value_tier"].value_counts().to_dict() == {"Rest": 1600, "Top 20%": 380, "Top 1%": 20}
    book = personas.build_personas(pop)
    assert len(book.records) == 3
    assert personas.value_grid(pop).empty


def test_markdown_export_helper_writes_into_exports(tmp_path):
    from analysis.io import RunFolder

    path = personas.write_markdown_export(RunFolder(tmp_path), "personas.md", "# hi\n")
    assert path == tmp_path / "exports" / "personas.md" and path.read_text() == "# hi\n"
    with pytest.raises(ValueError, match="plain file name"):
        personas.write_markdown_export(RunFolder(tmp_path), "../x.md", "")


# ---------------------------------------------------------------------------------------------
# the notebook, through the real CLI
# ---------------------------------------------------------------------------------------------


def _playbook_config(root: Path) -> Path:
    """The sample's config with a user playbook (one rule's tone changed, with markup in it)."""
    spec = yaml.safe_load((PROJECT_ROOT / "src" / "analysis" / "data" / "playbook.yaml").read_text(encoding="utf-8"))
    top = next(r for r in spec["rules"] if r["name"] == "Clienteling for the top 1%")
    top["do"]["tone"] = "cheerful test tone <b>bold</b>"
    (root / "playbook.yaml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    cfg = yaml.safe_load(SAMPLE_CONFIG.read_text(encoding="utf-8"))
    for src in cfg["sources"].values():
        src["path"] = str((SAMPLE_CONFIG.parent / src["path"]).resolve())
    cfg["params"] = {"20_personas": {"playbook": str(root / "playbook.yaml")}}
    (root / "run.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return root / "run.yaml"


def _execute_playbook_run(root: Path, config_path: Path):
    proc = analysis("run", "--config", str(config_path), "--run-id", "personas-playbook", "--reports-dir", str(root / "reports"),
                    "--only", "00_data_prep", "20_personas", timeout=900)
    return proc, root / "reports" / "personas-playbook"


background_run("playbook_run", _execute_playbook_run, prepare=_playbook_config)


@pytest.fixture(scope="module")
def playbook_run(background_runs):
    """00 + 20 on the sample with a user playbook set in the run config (no labels: spend tiers), in the background."""
    return background_runs.result("playbook_run")


@pytest.mark.slow
def test_notebook_run_shows_the_users_playbook(playbook_run):
    proc, run = playbook_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    exported = pd.read_csv(run / "exports" / "personas.csv")
    assert (exported["tone"] == "cheerful test tone <b>bold</b>").any()
    assert "cheerful test tone &lt;b&gt;bold&lt;/b&gt;" in (run / "exports" / "personas.md").read_text(encoding="utf-8")
    page = (run / "20_personas.html").read_text(encoding="utf-8")
    assert "cheerful test tone &lt;b&gt;bold&lt;/b&gt;" in page and "<b>bold</b>" not in page
    assert 'class="card-grid"' in page and 'class="card"' in page


@pytest.mark.slow
def test_notebook_run_exports_and_summary(playbook_run):
    proc, run = playbook_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((run / "manifest.json").read_text())
    summary = manifest["facts"]["summary_20_personas"]
    assert summary["title"] == "Personas" and summary["lines"]
    profiles = pd.read_csv(run / "exports" / "persona_profiles.csv")
    assert set(personas.PROFILE_COLUMNS) <= set(profiles.columns)
    text = "".join((run / "exports" / f).read_text(encoding="utf-8") for f in ("personas.csv", "persona_profiles.csv", "personas.md"))
    customers = pd.read_csv(PROJECT_ROOT / "data" / "sample" / "customers.csv", dtype=str)
    assert not any(email in text for email in customers["email"].head(200))


# ---------------------------------------------------------------------------------------------
# recovered segments (the full sample run) and the page on a phone
# ---------------------------------------------------------------------------------------------

RECOVERED_FACTOR_PATTERNS = {"Adventure/novelty": "advent", "Price consciousness": "price", "Eco/ethical values": "eco",
                             "Social/status": "status"}


def _sample_run_folder(sample_run) -> Path:
    proc, reports = sample_run
    run = reports / "ci-sample"
    manifest = json.loads((run / "manifest.json").read_text())
    status = {nb["name"]: nb["status"] for nb in manifest["notebooks"]}
    if status.get("20_personas") != "ok":
        pytest.fail(f"20_personas did not run: {status}\n{proc.stdout[-2000:]}")
    return run


@pytest.mark.slow
def test_planted_traits_from_recovered_labels(sample_run, sample_tables):
    """Personas built from the segments the basis pages recovered show the planted traits too.

    Each recovered segment is matched to the planted segment most of its customers truly belong
    to; segments at least 80% pure must cover at least half of that planted segment's traits.
    """
    run = _sample_run_folder(sample_run)
    from analysis.io import RunFolder

    folder = RunFolder(run)
    labels = folder.read_labels()
    pop = personas.build_population(
        sample_tables["customers"], features=folder.read_table("features"), labels=labels,
        pii_columns=sample_tables["config"].pii_columns, income_edges=[45_000, 90_000],
    )
    book = personas.build_personas(pop, min_size=30)
    truth = pd.read_csv(TRUTH, dtype=str).set_index("customer_id")
    checked = 0
    for basis in PLANTED:
        col = f"{basis}_segment"
        if col not in pop.segmentations:
            continue
        factor_cols = [c for c in pop.frame.columns if c.startswith("factor_")]
        joined = pop.frame[[col]].join(truth[f"true_{basis}_segment"]).dropna()
        for segment, rows in joined.groupby(col):
            share = rows[f"true_{basis}_segment"].value_counts(normalize=True)
            if share.iloc[0] < 0.8 or len(rows) < 30:
                continue
            planted_spec = PLANTED[basis][share.index[0]]["traits"]
            planted = []
            for attr, level, direction in _planted(basis, planted_spec):
                if basis == "psychographic":
                    key = next(k for k, v in FACTOR_COLUMNS.items() if v == attr)
                    attr = next((c for c in factor_cols if RECOVERED_FACTOR_PATTERNS[key] in c), attr)
                planted.append((attr, level, direction))
            profile = book.profiles[book.profiles["persona_id"] == f"{col}={segment}"]
            hits = [p for p in planted if _covered(profile, *p)]
            assert len(hits) >= math.ceil(len(planted) / 2), (basis, segment, share.index[0], planted, hits)
            checked += 1
    assert checked >= 10, f"only {checked} recovered segments were pure enough to check"


@pytest.mark.slow
@pytest.mark.browser
def test_persona_cards_fit_a_phone(sample_run):
    """At 390 px: no horizontal scrolling of the page, and no card wider than its box."""
    run = _sample_run_folder(sample_run)
    sync_api = pytest.importorskip("playwright.sync_api")
    import shutil

    with sync_api.sync_playwright() as p:
        try:
            browser = p.chromium.launch()
        except sync_api.Error:
            exe = shutil.which("chromium") or shutil.which("chromium-browser")
            if not exe:
                pytest.skip("no chromium for playwright (run `playwright install chromium`)")
            browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto((run / "20_personas.html").as_uri())
        page_width = page.evaluate("document.documentElement.scrollWidth")
        cards = page.evaluate("document.querySelectorAll('.card-grid .card').length")
        overflowing = page.evaluate(
            "Array.from(document.querySelectorAll('.card')).filter(c => c.scrollWidth > c.clientWidth + 1"
            " || c.getBoundingClientRect().right > window.innerWidth + 1).length"
        )
        browser.close()
    assert cards >= 10
    assert page_width <= 390
    assert overflowing == 0


@pytest.mark.slow
def test_every_label_column_of_the_sample_run_has_words(sample_run):
    """Every column a basis page writes to ``labels/`` is profiled by the personas, so each needs its
    words in the package vocabulary: without them it would be named by its column ("low p alive high")."""
    run = _sample_run_folder(sample_run)
    vocab = Vocabulary.load()
    files = sorted((run / "labels").glob("*.parquet"))
    assert {f.stem for f in files} >= {"behavioral", "demographic", "geographic", "psychographic", "value"}
    without = {f.stem: [c for c in pd.read_parquet(f).columns if c != "customer_id" and not vocab.entry(c)] for f in files}
    assert {basis: cols for basis, cols in without.items() if cols} == {}
