"""The lead personas: the few a marketing director reads first.

A run can hold thirty personas from six segmentations. The persona page, its summary and the
run's index open with a **lead set** of :data:`MIN_LEAD` to :data:`MAX_LEAD` personas from one
segmentation, chosen by this rule (stated on the page by :func:`rule_sentence`):

1. **Candidates** are the run's segmentations whose split the data support: verdict ``clear`` (a
   fitted basis whose segments are better separated than the same method finds in data with no
   groups) or ``rules`` (a partition defined by rules: RFM segments, value tiers). A segmentation
   without a saved verdict (labels from elsewhere) is a candidate too, ranked last. Splits with a
   ``weak`` or no (``none``) structure never lead.
2. A candidate **qualifies** with at least :data:`MIN_LEAD` segments large enough to profile
   (``min_size`` customers or more).
3. Qualifying candidates rank by verdict (``clear``, then ``rules``, then unknown), then by
   **value spread** (:func:`value_spread`, most first), then by the number of segments they
   profile, then in the run's order.
4. When none qualifies, the **combined segmentation** leads: the most valuable cells of up to three
   bases (:func:`~analysis.personas.combined.target_groups`), profiled as target groups, when there
   are at least :data:`MIN_LEAD` of them. Otherwise the best candidate leads with the few segments
   it has, and the page says so.
5. The **lead set** is that segmentation's profiled personas (suppressed ones excluded), most
   valuable first (share of value, else share of customers), at most :data:`MAX_LEAD`. Every
   persona, lead or not, keeps its full card in the sections by segmentation below.

The run config can name the lead segmentation instead (``params.20_personas.primary_segmentation``).

**Value spread** is the share of value that sits away from where the customers are: half the sum,
over the segments, of the gap between a segment's share of value and its share of customers. It
is 0 when every segment is worth the same per customer, and grows as a split separates valuable
customers from the rest, which is what a lead segmentation is for.

Examples
--------
>>> import pandas as pd
>>> from types import SimpleNamespace as NS
>>> frame = pd.DataFrame({"seg": ["a", "a", "b", "b"], "total_spend": [90.0, 10.0, 0.0, 0.0]})
>>> round(value_spread(NS(frame=frame, value_column="total_spend"), "seg"), 2)
0.5
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .combined import conditions_from_row
from .narrative import fmt_pct

if TYPE_CHECKING:  # pragma: no cover
    from . import PersonaBook
    from .population import Population

#: The fewest and the most personas in the lead set.
MIN_LEAD, MAX_LEAD = 4, 8

#: The segmentation column of the combined segmentation (named target groups).
COMBINED = "target_group"

#: Verdicts that may lead, strongest first; None (no saved verdict) ranks after them.
LEAD_VERDICTS = ("clear", "rules")

#: Action fields a lead card shows, in this order (the full card shows them all).
LEAD_ACTIONS = ("offer", "channel", "budget_priority")


@dataclass(frozen=True)
class LeadChoice:
    """Which segmentation the lead personas come from, and why.

    Attributes
    ----------
    segmentation : str or None
        Segmentation column (``target_group`` for the combined segmentation); None when no split
        of the run is supported by the data.
    label : str
        Its heading ("Behavioral segments").
    reason : str
        One sentence: why this segmentation leads (for the page and the index).
    target_groups : dict
        When the combined segmentation leads: the groups to profile, ``{name: conditions}``
        (pass them to :func:`~analysis.personas.build_personas`); empty otherwise.
    candidates : DataFrame
        Every segmentation with its verdict, segments, profiled segments, value spread and whether
        it qualified, in rank order (the evidence behind the choice).
    """

    segmentation: str | None
    label: str
    reason: str
    target_groups: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    candidates: pd.DataFrame = field(default_factory=pd.DataFrame, compare=False, repr=False)


def value_spread(population: Population | Any, column: str) -> float | None:
    """Share of value away from where the customers are: ``0.5 * sum(|value share - customer share|)``.

    Shares are within the customers the segmentation labels. None when the run has no value
    measure (or no value at all).
    """
    value_col = population.value_column
    frame = population.frame
    if not value_col or column not in frame:
        return None
    known = frame[column].notna()
    values = frame.loc[known, value_col].astype(float).fillna(0.0)
    total = float(values.sum())
    if not known.any() or total <= 0:
        return None
    by_segment = pd.DataFrame({"customers": known[known].groupby(frame.loc[known, column]).size(),
                               "value": values.groupby(frame.loc[known, column]).sum()})
    gap = by_segment["value"] / total - by_segment["customers"] / by_segment["customers"].sum()
    return float(0.5 * gap.abs().sum())


def lead_candidates(population: Population, *, min_size: int = 30) -> pd.DataFrame:
    """Every segmentation of the run with what the lead rule weighs, best first.

    Returns
    -------
    DataFrame
        ``segmentation`` (label), ``column``, ``verdict`` ("" when unknown), ``segments``,
        ``profiled_segments`` (at least ``min_size`` customers), ``value_spread`` (NaN without a
        value measure), ``qualifies`` (supported and at least :data:`MIN_LEAD` profiled segments)
        and ``supported``; qualifying rows first, in the rule's order.
    """
    rows = []
    for order, (column, spec) in enumerate(population.segmentations.items()):
        if column == COMBINED:
            continue
        sizes = population.frame[column].value_counts()
        verdict = spec.verdict.level if spec.verdict is not None else ""
        supported = verdict in LEAD_VERDICTS or verdict == ""
        spread = value_spread(population, column)
        profiled = int((sizes >= min_size).sum())
        rows.append({
            "segmentation": spec.label, "column": column, "verdict": verdict, "segments": len(sizes),
            "profiled_segments": profiled, "value_spread": np.nan if spread is None else spread,
            "supported": supported, "qualifies": supported and profiled >= MIN_LEAD,
            "_verdict_rank": LEAD_VERDICTS.index(verdict) if verdict in LEAD_VERDICTS else len(LEAD_VERDICTS),
            "_order": order,
        })
    columns = ["segmentation", "column", "verdict", "segments", "profiled_segments", "value_spread", "qualifies", "supported"]
    if not rows:
        return pd.DataFrame(columns=columns)
    out = pd.DataFrame(rows)
    out = out.assign(_spread=out["value_spread"].fillna(-1.0)).sort_values(
        ["qualifies", "supported", "_verdict_rank", "_spread", "profiled_segments", "_order"],
        ascending=[False, False, True, False, False, True], kind="stable")
    return out[columns].reset_index(drop=True)


def _why(row: pd.Series, n_qualifying: int) -> str:
    verdict = {"clear": "a clear verdict", "rules": "segments defined by rules", "": "no saved verdict"}[row["verdict"]]
    spread = "" if pd.isna(row["value_spread"]) else f", value spread {fmt_pct(row['value_spread'])}"
    if n_qualifying > 1:
        return (f"{row['segmentation']} lead: {verdict}{spread}, the strongest of the {n_qualifying} segmentations "
                f"with at least {MIN_LEAD} segments large enough to profile.")
    return f"{row['segmentation']} lead: {verdict}{spread}, the only segmentation with at least {MIN_LEAD} segments large enough to profile."


def choose_lead(population: Population, groups: pd.DataFrame | None = None, *, min_size: int = 30,
                preferred: str = "") -> LeadChoice:
    """The segmentation the lead personas come from, by the rule of this module's docstring.

    Parameters
    ----------
    population : Population
    groups : DataFrame, optional
        :func:`~analysis.personas.combined.target_groups` of the run (most valuable first), for
        the combined segmentation.
    min_size : int
        The run's minimum segment size: smaller segments are not profiled.
    preferred : str
        A segmentation column named in the run config; it leads when the run has it.

    Returns
    -------
    LeadChoice
    """
    candidates = lead_candidates(population, min_size=min_size)
    if preferred and preferred in population.segmentations:
        spec = population.segmentations[preferred]
        return LeadChoice(preferred, spec.label, f"{spec.label} lead: named in the run config (primary_segmentation).",
                          candidates=candidates)
    qualifying = candidates[candidates["qualifies"]]
    if len(qualifying):
        best = qualifying.iloc[0]
        return LeadChoice(best["column"], best["segmentation"], _why(best, len(qualifying)), candidates=candidates)
    if groups is not None and len(groups) >= MIN_LEAD and groups.attrs.get("by"):
        by = groups.attrs["by"]
        top = groups.head(MAX_LEAD)
        labels = [population.segmentations[c].label.lower() if c in population.segmentations else c for c in by]
        chosen = {str(row["name"]): conditions_from_row(row, by) for _, row in top.iterrows()}
        return LeadChoice(
            COMBINED, "Target groups",
            f"Target groups lead: no single segmentation has {MIN_LEAD} segments large enough to profile and supported "
            f"by the data, so the lead set is the {len(chosen)} most valuable combinations of {' and '.join(labels)}.",
            target_groups=chosen, candidates=candidates,
        )
    usable = candidates[candidates["supported"] & (candidates["profiled_segments"] > 0)]
    if len(usable):
        best = usable.iloc[0]
        n = int(best["profiled_segments"])
        return LeadChoice(
            best["column"], best["segmentation"],
            f"{best['segmentation']} lead, with only {n} segment{'s' if n != 1 else ''} large enough to profile: no "
            f"segmentation of this run supported by the data has {MIN_LEAD} or more.", candidates=candidates)
    return LeadChoice(None, "", "No lead personas: no split of this run is supported by the data with a segment large "
                      "enough to profile; the sections below show every split with its caveat.", candidates=candidates)


def _worth(record: dict[str, Any]) -> tuple[float, float]:
    value = record.get("value_share")
    return (float(value) if value is not None else -1.0, float(record["customers_share"]))


def lead_personas(book: PersonaBook, choice: LeadChoice, *, max_personas: int = MAX_LEAD) -> list[dict[str, Any]]:
    """The lead set: the chosen segmentation's profiled personas, most valuable first, at most ``max_personas``."""
    if choice.segmentation is None:
        return []
    records = [r for r in book.records if r["segmentation"] == choice.segmentation
               and not r["suppressed"] and not r.get("unsupported")]
    return sorted(records, key=_worth, reverse=True)[:max_personas]


def persona_counts(book: PersonaBook) -> dict[str, int]:
    """How many personas the book holds: ``personas`` (all, as exported), ``from_segmentations``,
    ``segmentations`` and ``target_groups`` (the combined segmentation). The page, its summary, the
    index and ``exports/personas.csv`` all quote these numbers."""
    target = sum(r["segmentation"] == COMBINED for r in book.records)
    segmentations = {r["segmentation"] for r in book.records if r["segmentation"] != COMBINED}
    return {"personas": len(book.records), "from_segmentations": len(book.records) - target,
            "segmentations": len(segmentations), "target_groups": target}


def count_sentence(book: PersonaBook, *, labels: bool = False) -> str:
    """"32 personas: 31 from 6 segmentations and 1 combined target group." or "4 personas from 1
    segmentation." (the numbers of :func:`persona_counts`).

    ``labels=True`` names the segmentations in brackets after their number.
    """
    c = persona_counts(book)
    text = f"{c['personas']} persona{'s' if c['personas'] != 1 else ''}"
    if not c["personas"]:
        return f"{text}."
    named = ""
    if labels:
        columns = list(dict.fromkeys(r["segmentation"] for r in book.records if r["segmentation"] != COMBINED))
        specs = book.population.segmentations
        named = " (" + ", ".join(specs[col].label if col in specs else col for col in columns) + ")"
    source = f"{c['segmentations']} segmentation{'s' if c['segmentations'] != 1 else ''}{named}"
    if not c["target_groups"]:
        return f"{text} from {source}."
    groups = f"{c['target_groups']} combined target group{'s' if c['target_groups'] != 1 else ''}"
    return f"{text}: {c['from_segmentations']} from {source} and {groups}."


def exports_sentence(book: PersonaBook) -> str:
    """The closing sentence of the page: what was written to ``exports/``, counted as everywhere else."""
    return (f"Wrote {count_sentence(book).removesuffix('.')} to `exports/personas.csv` (one row each) and "
            f"`exports/personas.md`, and the profile table behind every card ({len(book.profiles):,} rows) to "
            "`exports/persona_profiles.csv`.")


def lead_lines(choice: LeadChoice, lead: list[dict[str, Any]]) -> list[str]:
    """Sentences for the summary and the index: why this lead set, then one line per lead persona."""
    if not lead:
        return [choice.reason]
    lines = [f"Lead personas ({len(lead)}): {choice.reason}"]
    for rec in lead:
        worth = f", {fmt_pct(rec['value_share'])} of {rec['value_label']}" if rec.get("value_share") is not None else ""
        lines.append(f"\u201c{rec['name']}\u201d: {fmt_pct(rec['customers_share'])} of customers{worth}.")
    return lines


def rule_sentence() -> str:
    """The lead rule in plain words, for the page (the same rule as this module's docstring)."""
    return (
        f"The lead set is {MIN_LEAD} to {MAX_LEAD} personas from one segmentation: among the splits the data support "
        f"(a clear verdict, or segments defined by rules such as RFM) with at least {MIN_LEAD} segments large enough to "
        "profile, a clear verdict first, then the one with the most value spread (the share of value that sits away from "
        "where the customers are: 0 when every segment is worth the same per customer). When no split qualifies, the "
        "most valuable combinations of bases (target groups) lead. Within the set, the most valuable personas come first; "
        "every persona keeps its full card in the sections below."
    )
