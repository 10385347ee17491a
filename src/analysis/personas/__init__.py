"""Personas and tailored strategies: profiles, names, grounded narratives, playbook, combined segments.

The step after identifying segments is to describe each one so a stakeholder can act on it, and
to tailor a strategy to it. This package turns whichever segment labels a run has into personas:

1. :func:`build_population` joins customers (no PII), derived attributes, behavioral features
   and every basis's labels; ``*_segment`` and ``value_tier`` columns are segmentations.
2. :func:`profile_segments` builds one tidy profile table: size, worth, typical member and
   distinguishing traits with effect sizes and tests, small segments suppressed.
3. :func:`describe_personas` names each persona from its strongest traits and writes a narrative
   from Jinja2 templates, every sentence quoting the profile table.
4. :func:`load_playbook` / :func:`match_playbook` map persona traits to actions (YAML rules).
5. :mod:`~analysis.personas.combined` crosses bases (value tier x behavior, any two bases) and
   names target groups; :mod:`~analysis.personas.render` draws cards (HTML, Markdown).

:func:`build_personas` runs steps 2-4 and returns a :class:`PersonaBook`.

Examples
--------
>>> import pandas as pd, numpy as np
>>> rng = np.random.default_rng(1)
>>> customers = pd.DataFrame({"customer_id": [f"c{i}" for i in range(120)],
...     "age": np.r_[rng.normal(25, 3, 60), rng.normal(72, 4, 60)].round()})
>>> labels = {"demographic": customers[["customer_id"]].assign(
...     demographic_segment=["Young"] * 60 + ["Old"] * 60)}
>>> book = build_personas(build_population(customers, labels=labels))
>>> [r["name"] for r in book.records]
['Aged 66+', 'Aged 18-30']
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..config import NotApplicable
from .bases import (
    caveat,
    expand_inputs,
    lead_segmentation,
    segmentation_inputs,
    segmentation_verdicts,
    verdict_lines,
    with_verdicts,
)
from .combined import (
    OTHER_CUSTOMERS,
    conditions_from_row,
    crosstab,
    crosstab_defaults,
    default_grid_columns,
    default_target_bases,
    grid_matrix,
    target_group_labels,
    target_groups,
    top_target_group,
    value_grid,
)
from .lead import (
    MAX_LEAD,
    MIN_LEAD,
    LeadChoice,
    choose_lead,
    count_sentence,
    exports_sentence,
    lead_candidates,
    lead_lines,
    lead_personas,
    persona_counts,
    rule_sentence,
    value_spread,
)
from .narrative import describe_personas, fmt_num, fmt_pct, fmt_times, fmt_value, personas_frame
from .playbook import (
    Playbook,
    load_playbook,
    match_playbook,
    parse_playbook,
    playbook_sentence,
    playbook_table,
    unknown_attributes,
)
from .population import Population, Segmentation, add_segmentation, build_population, spend_tiers
from .profiles import PROFILE_COLUMNS, benjamini_hochberg, profile_segments, segment_summary, typical_member
from .render import (
    card_anchors,
    card_sections,
    cards_html,
    cards_markdown,
    glossary_markdown,
    lead_cards,
    lead_html,
    md_escape,
    write_markdown_export,
)
from .summary import (
    allocation_headline,
    crosstab_headline,
    executive_summary,
    grid_headline,
    primary_segmentation,
    resource_allocation,
    share_headline,
    summary_html,
)
from .vocabulary import AttributeInfo, Vocabulary

__all__ = [
    "ACTION_KINDS",
    "ACTION_LABELS",
    "MAX_LEAD",
    "MIN_LEAD",
    "OTHER_CUSTOMERS",
    "PROFILE_COLUMNS",
    "AttributeInfo",
    "LeadChoice",
    "PersonaBook",
    "Playbook",
    "Population",
    "Segmentation",
    "Vocabulary",
    "add_segmentation",
    "allocation_headline",
    "benjamini_hochberg",
    "build_personas",
    "build_population",
    "card_anchors",
    "card_sections",
    "cards_html",
    "cards_markdown",
    "caveat",
    "check_profilable",
    "choose_lead",
    "conditions_from_row",
    "count_sentence",
    "crosstab",
    "crosstab_defaults",
    "crosstab_headline",
    "default_grid_columns",
    "default_target_bases",
    "describe_personas",
    "executive_summary",
    "expand_inputs",
    "exports_sentence",
    "fmt_num",
    "fmt_pct",
    "fmt_times",
    "fmt_value",
    "glossary_markdown",
    "grid_headline",
    "grid_matrix",
    "lead_candidates",
    "lead_cards",
    "lead_html",
    "lead_lines",
    "lead_personas",
    "lead_segmentation",
    "load_playbook",
    "match_playbook",
    "md_escape",
    "parse_playbook",
    "persona_counts",
    "personas_frame",
    "playbook_sentence",
    "playbook_table",
    "primary_segmentation",
    "profile_segments",
    "resource_allocation",
    "rule_sentence",
    "segment_summary",
    "segmentation_inputs",
    "segmentation_verdicts",
    "share_headline",
    "spend_tiers",
    "summary_html",
    "target_group_labels",
    "target_groups",
    "top_target_group",
    "typical_member",
    "unknown_attributes",
    "value_grid",
    "value_spread",
    "verdict_lines",
    "with_verdicts",
    "write_markdown_export",
]

ACTION_LABELS = {
    "channel": "Channel", "offer": "Offer", "tone": "Message tone", "frequency": "Contact frequency",
    "budget_priority": "Budget priority",
}
#: How a page table shows the action columns: as text (``frequency`` here is how often to make contact, not orders).
ACTION_KINDS = dict.fromkeys(ACTION_LABELS, "text")


@dataclass
class PersonaBook:
    """Everything the persona page shows, built by :func:`build_personas`.

    Attributes
    ----------
    population : Population
    profiles : DataFrame
        The tidy profile table (:data:`PROFILE_COLUMNS`).
    records : list of dict
        One per persona: name, narrative, traits, typical member, ``actions`` and ``matched_rules``.
    actions : DataFrame
        Long table of recommended actions and the rules that fired (:func:`match_playbook`).
    playbook : Playbook
    min_size : int
    """

    population: Population
    profiles: pd.DataFrame
    records: list[dict[str, Any]]
    actions: pd.DataFrame
    playbook: Playbook
    min_size: int

    def record(self, persona_id: str) -> dict[str, Any]:
        """The record of one persona (``<segmentation>=<segment>``)."""
        for rec in self.records:
            if rec["persona_id"] == persona_id:
                return rec
        raise KeyError(f"no persona {persona_id!r}; personas: {[r['persona_id'] for r in self.records][:20]}")

    @property
    def personas(self) -> pd.DataFrame:
        """One row per persona with its actions as columns (the ``exports/personas.csv`` table)."""
        frame = personas_frame(self.records)
        chosen = self.actions[self.actions["action"] != "matched"]
        if len(chosen):
            wide = chosen.pivot(index="persona_id", columns="action", values="recommendation")
            rules = chosen.pivot(index="persona_id", columns="action", values="rule").add_suffix("_rule")
            order = [a for a in self.playbook.actions if a in wide.columns]
            wide = wide[order].join(rules[[f"{a}_rule" for a in order]])
            frame = frame.merge(wide, left_on="persona_id", right_index=True, how="left")
        matched = self.actions[self.actions["action"] == "matched"].groupby("persona_id")["rule"].agg("; ".join)
        frame["matched_rules"] = frame["persona_id"].map(matched).fillna("")
        return frame

    def action_table(self) -> pd.DataFrame:
        """Persona name and segment, each action's recommendation, and every rule that matched."""
        frame = self.personas
        cols = ["name", "segmentation", "segment", *self.playbook.actions, "matched_rules"]
        return frame.reindex(columns=cols).fillna("")

    def by_segmentation(self, segmentation: str) -> pd.DataFrame:
        """The personas of one segmentation (rows of :attr:`personas`)."""
        frame = self.personas
        return frame[frame["segmentation"] == segmentation].reset_index(drop=True)


def build_personas(
    population: Population,
    *,
    playbook: Playbook | None = None,
    min_size: int = 30,
    alpha: float = 0.05,
    n_traits: int = 3,
    max_traits: int = 5,
    segmentations: list[str] | None = None,
    target_groups: dict[str, dict[str, Any]] | None = None,
    template_dir: str | Path | None = None,
) -> PersonaBook:
    """Profile, name, narrate and match every segment of a population to the playbook.

    Parameters
    ----------
    population : Population
        From :func:`build_population`.
    playbook : Playbook, optional
        Default: the package playbook (:func:`load_playbook`).
    min_size : int
        Segments below this size are suppressed (the run config's ``min_segment_size``).
    alpha : float
        Significance level (Benjamini-Hochberg adjusted).
    n_traits, max_traits : int
        Traits shown per persona (names and narratives use these) / ranked in the profile table.
    segmentations : list of str, optional
        Which segmentations to describe (default all).
    target_groups : dict, optional
        Named target groups ``{name: {column: values}}`` profiled as extra personas
        (segmentation ``target_group``; see :func:`target_group_labels`). The attributes that
        define a group (and what defines the segmentations it names) are its definition:
        described, never tested as traits, which would only restate it.
    template_dir : path, optional
        A folder with your own copies of the templates (translations, different wording).

    Returns
    -------
    PersonaBook
    """
    pop = population
    exclude: dict[str, list[str]] = {}
    chosen = list(segmentations or pop.segmentations)
    if target_groups:
        conditions = sorted({c for cond in target_groups.values() for c in cond})
        defined = expand_inputs(conditions, pop.attributes, pop.vocabulary.derived)
        defined += [a for c in conditions if c in pop.segmentations for a in pop.segmentations[c].defined_by]
        pop = add_segmentation(pop, target_group_labels(pop, target_groups), column="target_group",
                               label="Target groups", basis="combined", defined_by=list(dict.fromkeys(defined)))
        chosen.append("target_group")
        exclude.update({c: ["target_group"] for c in chosen if c != "target_group"})
    profiles = profile_segments(pop, segmentations=chosen, min_size=min_size, alpha=alpha, max_traits=max_traits, exclude=exclude)
    profiles = profiles[~((profiles["segmentation"] == "target_group") & (profiles["segment"] == OTHER_CUSTOMERS))].reset_index(drop=True)
    records = describe_personas(profiles, pop, n_traits=n_traits, alpha=alpha, template_dir=template_dir)
    playbook = playbook or load_playbook()
    actions = match_playbook(playbook, profiles, records)
    for rec in records:
        mine = actions[actions["persona_id"] == rec["persona_id"]]
        rec["actions"] = [
            {"action": a, "label": ACTION_LABELS.get(a, a.replace("_", " ").capitalize()), "recommendation": r, "rule": rule, "why": why}
            for a, r, rule, why in zip(mine["action"], mine["recommendation"], mine["rule"], mine["why"]) if a != "matched"
        ]
        rec["matched_rules"] = mine.loc[mine["action"] == "matched", "rule"].tolist()
    return PersonaBook(population=pop, profiles=profiles, records=records, actions=actions, playbook=playbook, min_size=min_size)


def check_profilable(population: Population, min_size: int) -> None:
    """Refuse (as not applicable) when no segment of any segmentation reaches ``min_size`` customers.

    Personas describe segments large enough to act on; with none, every profile would be suppressed.
    """
    largest = max((int(population.frame[col].value_counts().max()) for col in population.segmentations
                   if population.frame[col].notna().any()), default=0)
    if largest < min_size:
        raise NotApplicable(
            f"personas need at least one segment of {min_size} customers or more (min_segment_size); the largest "
            f"segment in this run has {largest} customer(s) out of {len(population.frame)}. Add data or lower "
            f"min_segment_size in the run config."
        )
