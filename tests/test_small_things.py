"""The small things that erode trust (issue 14, item 5), each pinned by a test.

Age bands that hold exactly the ages they name; percentages and signs as a reader writes them;
no machine path on a page; no empty table, duplicated card or empty legend on a run that lacks
a basis or purchases.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analysis import features


def _bounds(label: str) -> tuple[float, float]:
    """The ages a band's label promises: "18-30" -> (18, 30), "66+" -> (66, inf), "under 18" -> (0, 17)."""
    if m := re.fullmatch(r"(\d+)-(\d+)", label):
        return float(m[1]), float(m[2])
    if m := re.fullmatch(r"(\d+)\+", label):
        return float(m[1]), np.inf
    if m := re.fullmatch(r"under (\d+)", label):
        return 0.0, float(m[1]) - 1
    raise AssertionError(f"age band label {label!r} does not say which ages it holds")


def test_age_bands_hold_exactly_the_ages_their_labels_say():
    ages = pd.Series(np.r_[np.arange(0, 121, 0.25), [15, 16, 17, 17.9, 18, 30, 30.9, 31]])
    bands = features.derived_attributes(pd.DataFrame({"age": ages}))["age_band"]
    assert bands.notna().all(), "every age the contract accepts (0-120) falls in a band"
    for label in bands.unique():
        lo, hi = _bounds(label)
        held = np.floor(ages[bands == label])
        assert held.between(lo, hi).all(), f"{label!r} holds ages {sorted(set(held[~held.between(lo, hi)]))}"
    assert set(bands[ages.isin([15, 16, 17, 17.9])]) == {"under 18"}
    assert set(bands[ages.isin([18, 30, 30.9])]) == {"18-30"} and set(bands[ages == 31]) == {"31-42"}
    for label, (lo, hi) in features.AGE_BANDS.items():  # the table and the labels agree
        assert _bounds(label) == (lo, np.inf if hi >= 120 else hi), label


def test_a_config_outside_the_project_shows_by_file_name_only(tmp_path):
    from analysis.config import PROJECT_ROOT, RunConfig

    outside = RunConfig.model_construct(config_path=tmp_path / "private" / "run.yaml")
    assert outside.display_path() == "run.yaml" and str(tmp_path) not in outside.display_path()
    inside = RunConfig.model_construct(config_path=PROJECT_ROOT / "config" / "sample.yaml")
    assert inside.display_path() == "config/sample.yaml"


# ---------------------------------------------------------------------------------------------
# numbers as a reader writes them
# ---------------------------------------------------------------------------------------------


def test_no_negative_zero_and_no_long_percentages_in_persona_words():
    from analysis.personas import fmt_num, fmt_pct, fmt_times
    from analysis.tables import table

    assert [fmt_num(v) for v in (-0.001, -0.0, -0.004)] == ["0", "0", "0"]
    assert fmt_num(-1.07) == "-1.07" and fmt_num(-0.5) == "-0.5"
    assert fmt_times(-0.001) == "0.00" and fmt_pct(-0.001) == "-0.1%" and fmt_pct(-0.000001) == "0.0%"
    assert fmt_pct(0.029703) == "3%" and fmt_pct(0.0029703) == "0.3%"
    html = table(pd.DataFrame({"customers_pct": [2.9703], "median_recency_days": [-0.2]})).to_html()
    assert "3.0%" in html and "2.97" not in html and ">-0<" not in html


def test_a_persona_narrative_never_reads_minus_zero():
    """A factor score whose overall mean is -0.0003 reads "vs 0 overall", never "vs -0 overall"."""
    from analysis import personas

    rng = np.random.default_rng(2)
    n = 400
    ids = [f"c{i:03d}" for i in range(n)]
    segment = np.where(np.arange(n) < 200, "Keen", "Calm")
    score = np.where(segment == "Keen", 1.0, -1.0) + rng.normal(0, 0.3, n)
    score -= score.mean() + 0.0003  # centred like a factor score, a hair below zero
    labels = {"psychographic": pd.DataFrame({"customer_id": ids, "psychographic_segment": segment,
                                             "factor_social_status": score})}
    book = personas.build_personas(personas.build_population(labels=labels), min_size=30)
    text = " ".join(r["narrative"] + " " + " ".join(t["text"] for t in r["definition"] + r["traits"]) for r in book.records)
    assert "vs 0 overall" in text and not re.search(r"(?<![\w.])-0(?![\d.])", text), text


# ---------------------------------------------------------------------------------------------
# runs without a second basis or without purchases
# ---------------------------------------------------------------------------------------------


def test_an_empty_cross_tab_is_a_sentence_not_an_empty_table():
    from analysis import personas
    from analysis.tables import table

    ids = [f"c{i:03d}" for i in range(300)]
    labels = {"demographic": pd.DataFrame({"customer_id": ids, "demographic_segment": np.array(["A", "B", "C"])[np.arange(300) % 3]})}
    pop = personas.build_population(pd.DataFrame({"customer_id": ids, "age": np.linspace(20, 70, 300)}), labels=labels)
    cross = personas.crosstab(pop)
    assert cross.empty
    html = table(personas.grid_matrix(cross, "customers"), empty=personas.crosstab_headline(cross)).to_html()
    assert "<table" not in html and "No other pair of segmentations to cross" in html
    groups = personas.target_groups(pop)
    assert groups.empty and "<table" not in table(groups, empty="No target groups.").to_html()
    assert "<table" not in table(pd.DataFrame(columns=["customers"])).to_html()


def test_the_cross_tab_never_repeats_the_value_grid():
    """With two segmentations (demographic and spend tiers) the grid crosses them; the cross-tab does not again."""
    from analysis import personas

    n = 300
    ids = [f"c{i:03d}" for i in range(n)]
    labels = {"demographic": pd.DataFrame({"customer_id": ids, "demographic_segment": np.array(["A", "B", "C"])[np.arange(n) % 3]})}
    pop = personas.build_population(pd.DataFrame({"customer_id": ids, "age": np.linspace(20, 70, n)}),
                                    features=pd.DataFrame({"customer_id": ids, "total_spend": np.linspace(1, 100, n)}), labels=labels)
    grid = personas.value_grid(pop)
    assert {grid.attrs["rows"], grid.attrs["columns"]} == {"value_tier", "demographic_segment"}
    assert personas.crosstab(pop).empty and personas.crosstab_defaults(pop) == (None, None)


def test_demographic_share_chart_has_no_empty_purchase_value_legend():
    """Notebook 10's share chart, run on profiles without purchase value (no transactions, no spend columns)."""
    from types import SimpleNamespace

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nbformat

    from analysis import plots

    from .conftest import PROJECT_ROOT

    nb = nbformat.read(PROJECT_ROOT / "notebooks" / "10_demographic.ipynb", as_version=4)
    cell = next(c.source for c in nb.cells if c.cell_type == "code" and "plots.share_bars(" in c.source)
    for revenue, expected in (([np.nan, np.nan], ["share of customers"]), ([30.0, 70.0], ["share of customers", "share of purchase value"])):
        profiles = pd.DataFrame({"segment": ["A", "B"], "customers_pct": [60.0, 40.0], "revenue_pct": revenue})
        exec(cell, {"plots": plots, "result": SimpleNamespace(profiles=profiles)})  # noqa: S102 - the notebook's own cell
        legend = plt.gca().get_legend()
        assert [t.get_text() for t in legend.get_texts()] == expected
        plt.close("all")


def test_a_users_playbook_is_named_without_the_machines_path(tmp_path):
    from analysis import personas
    from analysis.config import PROJECT_ROOT

    path = tmp_path / "deep" / "my_playbook.yaml"
    path.parent.mkdir()
    path.write_text((PROJECT_ROOT / "src" / "analysis" / "data" / "playbook.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    book = personas.load_playbook(path)
    assert book.source == "my_playbook.yaml"
    sentence = personas.playbook_sentence(book, {"frequency"})
    assert str(tmp_path) not in sentence and "factor\\_\\*eco\\*" in sentence  # a glob is text, not emphasis


# ---------------------------------------------------------------------------------------------
# every page of the sample run
# ---------------------------------------------------------------------------------------------

_LONG_PERCENT = re.compile(r"(?<![\d.])\d+\.\d{2,}\s?%")
_MINUS_ZERO = re.compile(r"(?<![\w.\d-])[-\u2212]0(?:\.0+)?(?![\d.])%?")


def number_problems(text: str) -> list[str]:
    """Percentages with more than one decimal ("2.9703%") and signed zeros ("-0", "-0.0%") in a page's text."""
    return [f"long percentage {m.group(0)!r}" for m in _LONG_PERCENT.finditer(text)] + [
        f"signed zero {text[max(m.start() - 30, 0):m.end() + 10]!r}" for m in _MINUS_ZERO.finditer(text)]


def test_the_number_scan_catches_what_it_should():
    assert number_problems("2.9703% of customers; score -0 vs 0.33; -0.0% change") and len(
        number_problems("2.9703% of customers; score -0 vs 0.33; -0.0% change")) == 3
    assert number_problems("3% of customers, 0.4%, -1.07 vs 0, 2025-01-01, 18-30, x-0y, 10.5%") == []


@pytest.mark.slow
def test_sample_pages_show_no_long_percentages_or_signed_zeros(sample_run):
    import html as html_lib

    _, reports = sample_run
    problems = {}
    for page in sorted((reports / "ci-sample").glob("*.html")):
        body = page.read_text(encoding="utf-8").split("<body", 1)[-1]
        body = re.sub(r"<(style|script)\b.*?</\1>", "", body, flags=re.DOTALL)
        found = number_problems(" ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", body)).split()))
        if found:
            problems[page.name] = found[:5]
    assert not problems, problems
