"""Lead personas: the rule that picks them, their cards, and counts that agree everywhere.

Synthetic populations with planted value spread and verdicts: the rule must pick the clear split
with the most value spread (never a weak one, rules-defined splits only after clear ones), fall
back to the combined segmentation when no basis has four segments to profile, and never show
more than eight. Cards show the shares they are given; the per-basis sections are collapsed;
the page, its summary and the exports count the same personas.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analysis import personas, tables
from analysis.personas import lead as lead_module


def _payload(verdict: str, features: list[str]) -> dict:
    return {"available": True, "verdict": verdict, "features": features,
            "verdict_evidence": {"reason": f"Planted {verdict} verdict."}}


def _population(verdicts: dict[str, str], *, n: int = 1200, seed: int = 3):
    """Customers with four value-neutral demographic segments, five behavioral segments with a
    large planted value spread, four geographic segments with an even larger one, and RFM cells
    (rules) with the largest of all."""
    rng = np.random.default_rng(seed)
    ids = [f"c{i:05d}" for i in range(n)]
    spend = rng.gamma(2.0, 100.0, n)
    behavioral = np.array([f"B{i % 5}" for i in range(n)])
    spend *= np.select([behavioral == "B0", behavioral == "B1"], [4.0, 2.0], 1.0)
    geographic = np.where(spend > np.quantile(spend, 0.75), "Rich area", np.array([f"G{i % 3}" for i in range(n)]))
    rfm = pd.qcut(pd.Series(spend).rank(method="first"), 6, labels=[f"R{i}" for i in range(6)]).astype(str).to_numpy()
    demographic = np.array([f"D{(i // 7) % 4}" for i in range(n)])
    customers = pd.DataFrame({"customer_id": ids, "age": rng.integers(20, 80, n).astype(float)})
    features = pd.DataFrame({"customer_id": ids, "total_spend": spend, "frequency": rng.integers(1, 20, n)})
    labels = {
        "demographic": pd.DataFrame({"customer_id": ids, "demographic_segment": demographic}),
        "behavioral": pd.DataFrame({"customer_id": ids, "behavioral_segment": behavioral, "rfm_segment": rfm}),
        "geographic": pd.DataFrame({"customer_id": ids, "geographic_segment": geographic}),
    }
    models = {basis: _payload(verdict, ["age"] if basis == "demographic" else ["frequency"]) for basis, verdict in verdicts.items()}
    return personas.build_population(customers, features=features, labels=labels, models=models)


def test_value_spread_is_the_share_of_value_away_from_the_customers():
    pop = _population({"demographic": "clear", "behavioral": "clear", "geographic": "clear"})
    frame = pop.frame
    for column in ("demographic_segment", "behavioral_segment", "geographic_segment"):
        shares = frame.groupby(column).agg(customers=("total_spend", "size"), value=("total_spend", "sum"))
        expected = 0.5 * (shares["value"] / shares["value"].sum() - shares["customers"] / len(frame)).abs().sum()
        assert personas.value_spread(pop, column) == pytest.approx(expected)
    assert personas.value_spread(pop, "demographic_segment") < 0.05 < personas.value_spread(pop, "behavioral_segment")


def test_the_clear_split_with_most_value_spread_leads_never_a_weak_one():
    pop = _population({"demographic": "clear", "behavioral": "clear", "geographic": "weak"})
    spread = {c: personas.value_spread(pop, c) for c in ("geographic_segment", "rfm_segment", "behavioral_segment")}
    assert spread["geographic_segment"] > spread["behavioral_segment"] and spread["rfm_segment"] > spread["behavioral_segment"]
    choice = personas.choose_lead(pop, min_size=30)
    # geographic has more spread but a weak verdict; RFM more spread but segments defined by rules
    assert choice.segmentation == "behavioral_segment", choice
    assert "clear verdict" in choice.reason and "value spread" in choice.reason
    table = choice.candidates.set_index("column")
    assert not table.at["geographic_segment", "qualifies"] and table.at["rfm_segment", "qualifies"]
    assert list(choice.candidates["column"])[:2] == ["behavioral_segment", "demographic_segment"]
    # without a clear split, the rules-defined one with the most spread leads
    none = _population({"demographic": "weak", "behavioral": "none", "geographic": "weak"})
    assert personas.choose_lead(none, min_size=30).segmentation == "rfm_segment"
    # the run config can name the lead
    assert personas.choose_lead(pop, min_size=30, preferred="demographic_segment").segmentation == "demographic_segment"


def test_the_lead_set_is_the_most_valuable_profiled_personas_at_most_eight():
    pop = _population({"demographic": "clear", "behavioral": "clear", "geographic": "clear"})
    book = personas.build_personas(pop, min_size=30)
    choice = personas.choose_lead(pop, min_size=30)
    lead = personas.lead_personas(book, choice)
    assert personas.MIN_LEAD <= len(lead) <= personas.MAX_LEAD
    assert {r["segmentation"] for r in lead} == {choice.segmentation}
    shares = [r["value_share"] for r in lead]
    assert shares == sorted(shares, reverse=True) and not any(r["suppressed"] for r in lead)
    # a segmentation with more than eight segments to profile shows its eight most valuable
    many = personas.lead_personas(book, lead_module.LeadChoice("rfm_segment", "RFM", "test"), max_personas=4)
    rfm = sorted((r for r in book.records if r["segmentation"] == "rfm_segment"), key=lambda r: -r["value_share"])
    assert [r["persona_id"] for r in many] == [r["persona_id"] for r in rfm[:4]]


def test_combined_target_groups_lead_when_no_basis_has_four_segments():
    rng = np.random.default_rng(5)
    n = 900
    ids = [f"c{i:04d}" for i in range(n)]
    segment = np.array(["Young", "Middle", "Old"])[np.arange(n) % 3]
    spend = rng.gamma(2.0, 100.0, n) * np.where(segment == "Old", 2.0, 1.0)
    pop = personas.build_population(
        pd.DataFrame({"customer_id": ids, "age": rng.integers(20, 80, n).astype(float)}),
        features=pd.DataFrame({"customer_id": ids, "total_spend": spend}),
        labels={"demographic": pd.DataFrame({"customer_id": ids, "demographic_segment": segment})},
        models={"demographic": _payload("clear", ["age"])},
    )
    groups = personas.target_groups(pop, min_size=30)
    choice = personas.choose_lead(pop, groups, min_size=30)
    assert choice.segmentation == "target_group" and "no single segmentation" in choice.reason
    assert personas.MIN_LEAD <= len(choice.target_groups) <= personas.MAX_LEAD
    book = personas.build_personas(pop, min_size=30, target_groups=choice.target_groups)
    lead = personas.lead_personas(book, choice)
    assert [r["segment"] for r in lead] == list(groups["name"].head(len(lead)))
    # with fewer groups than four, the best basis leads with the segments it has, and says so
    few = personas.choose_lead(pop, groups.head(2), min_size=30)
    assert few.segmentation == "demographic_segment" and "only 3 segments" in few.reason


def test_a_target_group_that_repeats_a_whole_segment_is_left_out():
    """Every Top-20% customer is in segment A: "Top 20% / A" would be a second card for the Top-20% persona."""
    n = 400
    ids = [f"c{i:03d}" for i in range(n)]
    segment = np.where(np.arange(n) < 200, "A", "B")
    spend = np.where(np.arange(n) < 80, 1000.0, 10.0) + np.arange(n) * 0.01
    pop = personas.build_population(
        pd.DataFrame({"customer_id": ids, "age": np.linspace(20, 80, n)}),
        features=pd.DataFrame({"customer_id": ids, "total_spend": spend}),
        labels={"demographic": pd.DataFrame({"customer_id": ids, "demographic_segment": segment})},
    )
    groups = personas.target_groups(pop, min_size=30)
    assert "Top 20% / A" not in set(groups["name"]) and "Rest / B" not in set(groups["name"])
    assert set(groups["name"]) == {"Rest / A"}
    book = personas.build_personas(pop, min_size=30, target_groups=personas.top_target_group(groups))
    members = {r["persona_id"]: frozenset(book.population.frame.index[book.population.frame[r["segmentation"]] == r["segment"]])
               for r in book.records}
    assert len(set(members.values())) == len(members), "two persona cards describe the same customers"


def test_lead_cards_show_the_shares_link_to_full_cards_and_sections_fold_away():
    pop = _population({"demographic": "clear", "behavioral": "clear", "geographic": "clear"})
    book = personas.build_personas(pop, min_size=30)
    choice = personas.choose_lead(pop, min_size=30)
    lead = personas.lead_personas(book, choice)
    html = personas.lead_html(book, lead, choice)
    assert html.count('class="card lead-card"') == len(lead)
    for rec in lead:
        assert f'width:{100 * rec["customers_share"]:.1f}%' in html and f'width:{100 * rec["value_share"]:.1f}%' in html
        assert f"<b>{personas.fmt_pct(rec['value_share'])}</b>" in html
    assert "How the lead set is chosen" in html and choice.reason in html
    cards = personas.cards_html(book, lead=choice.segmentation, collapsed=True)
    sections = re.findall(r"<details class=\"persona-section\"[^>]*>", cards)
    assert len(sections) == len({r["segmentation"] for r in book.records}) and not any("open" in s for s in sections)
    targets = re.findall(r'href="#([^"]+)"', html)
    assert len(targets) == len(lead) and all(f'id="{t}"' in cards for t in targets)
    assert re.search(r"<summary><h3>Behavioral segments</h3> <span[^>]*>&middot; 5 personas", cards)


def test_bars_stay_inside_their_track():
    assert personas.render._bar_width(1.7) == "100.0" and personas.render._bar_width(-0.2) == "0.0"
    assert personas.render._bar_width(None) == "0" and personas.render._bar_width(float("nan")) == "0"


def test_counts_agree_on_the_page_the_summary_and_the_exports():
    pop = _population({"demographic": "clear", "behavioral": "clear", "geographic": "weak"})
    groups = personas.target_groups(pop, min_size=30)
    choice = personas.choose_lead(pop, groups, min_size=30)
    book = personas.build_personas(pop, min_size=30, target_groups=personas.top_target_group(groups))
    counts = personas.persona_counts(book)
    assert counts["personas"] == len(book.personas) == counts["from_segmentations"] + counts["target_groups"]
    # demographic, geographic, behavioral, RFM and value tiers (from spend), and the top target group
    assert counts["target_groups"] == 1 and counts["segmentations"] == 5
    summary = personas.executive_summary(book, groups=groups, lead=choice)
    first = summary["lines"][0]
    assert first.startswith(f"{counts['personas']} personas: {counts['from_segmentations']} from 5 segmentations (")
    assert first.split(") and ")[1].startswith("1 combined target group.")
    assert summary["counts"] == counts and summary["lead"] == [r["name"] for r in personas.lead_personas(book, choice)]
    assert personas.exports_sentence(book).startswith(f"Wrote {counts['personas']} personas: ")
    lead_line = next(line for line in summary["lines"] if line.startswith("Lead personas"))
    assert lead_line.startswith(f"Lead personas ({len(summary['lead'])}): ")
    md = personas.cards_markdown(book, lead_set=personas.lead_personas(book, choice), lead_reason=choice.reason)
    assert md.count("\n### ") == counts["personas"] and "## Lead personas" in md


def test_lead_rule_evidence_table_reads_like_a_report():
    choice = personas.choose_lead(_population({"demographic": "clear", "behavioral": "clear", "geographic": "weak"}), min_size=30)
    html = tables.table(choice.candidates, columns=["segmentation", "verdict", "segments", "profiled_segments", "value_spread",
                                                   "qualifies"], collapsed="How each segmentation fared").to_html()
    assert html.startswith('<details class="table-details">') and "<details open" not in html
    for header in ("Segmentation", "Segments large enough to profile", "Value spread", "Qualifies to lead"):
        assert f">{header}</th>" in html, header
    assert not [h for h in re.findall(r"<th[^>]*>([^<]*)</th>", html) if tables.is_snake_case(h)]


# ---------------------------------------------------------------------------------------------
# the sample run: the page, the index and the exports count the same personas
# ---------------------------------------------------------------------------------------------


def _visible_text(path) -> str:
    import html as html_lib

    body = path.read_text(encoding="utf-8").split("<body", 1)[-1]
    body = re.sub(r"<(style|script)\b.*?</\1>", "", body, flags=re.DOTALL)
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", body)).split())


@pytest.mark.slow
def test_sample_run_counts_and_lead_set_agree_on_page_index_and_exports(sample_run):
    import json

    proc, reports = sample_run
    run = reports / "ci-sample"
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    status = {nb["name"]: nb["status"] for nb in manifest["notebooks"]}
    assert status.get("20_personas") == "ok", (status, proc.stdout[-2000:])
    summary = manifest["facts"]["summary_20_personas"]
    counts = summary["counts"]
    exported = pd.read_csv(run / "exports" / "personas.csv")
    assert counts["personas"] == len(exported) == manifest["models"]["personas"]["personas"]
    assert counts["target_groups"] == int((exported["segmentation"] == "target_group").sum())
    page, index = _visible_text(run / "20_personas.html"), _visible_text(run / "index.html")
    first = " ".join(summary["lines"][0].split())
    assert first.startswith(f"{counts['personas']} personas") and first in page and first in index
    assert [int(n) for n in re.findall(r"Wrote (\d+) personas", page)] == [counts["personas"]]
    sections = [int(n) for n in re.findall(r"· (\d+) personas? ·", page)]
    assert sum(sections) == counts["personas"], sections
    lead = summary["lead"]
    html = (run / "20_personas.html").read_text(encoding="utf-8")
    assert personas.MIN_LEAD <= len(lead) <= personas.MAX_LEAD and html.count('class="card lead-card"') == len(lead)
    assert manifest["models"]["personas"]["lead"] and len(manifest["models"]["personas"]["lead"]) == len(lead)
    for name in lead:
        assert f"\u201c{name}\u201d" in index and name in page
    # the profile table lives in exports/, not on the page
    assert "Q value" not in page and "rows ×" not in page and "exports/persona_profiles.csv" in page


def test_the_count_reads_plainly_without_target_groups():
    pop = _population({"demographic": "clear", "behavioral": "clear", "geographic": "clear"})
    book = personas.build_personas(pop, min_size=30, segmentations=["demographic_segment"])
    assert personas.count_sentence(book) == "4 personas from 1 segmentation."
    assert personas.count_sentence(book, labels=True) == "4 personas from 1 segmentation (Demographic segments)."
    assert personas.exports_sentence(book).startswith("Wrote 4 personas from 1 segmentation to `exports/personas.csv`")


@pytest.mark.slow
@pytest.mark.browser
def test_collapsed_sections_print_open(tmp_path):
    """On screen the per-basis sections are closed; printed (PDF), every card shows."""
    from pathlib import Path

    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("no /usr/bin/chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    pop = _population({"demographic": "clear", "behavioral": "clear", "geographic": "clear"})
    book = personas.build_personas(pop, min_size=30)
    page_file = tmp_path / "cards.html"
    page_file.write_text(f"<html><body>{personas.cards_html(book, collapsed=True)}</body></html>", encoding="utf-8")
    visible = "() => [...document.querySelectorAll('.card')].filter(c => c.checkVisibility()).length"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(page_file.as_uri())
        on_screen = page.evaluate(visible)
        page.emulate_media(media="print")
        printed = page.evaluate(visible)
        browser.close()
    assert on_screen == 0 and printed == len(book.records)
