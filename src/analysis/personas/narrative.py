"""Persona names and narratives, built from the profile table with deterministic rules.

* A **name** joins the name phrases of a persona's two strongest attributes that *hold* for most
  of its members (``holds`` in the profile table: see :mod:`analysis.personas.profiles`), what
  defines the segment first, then its distinguishing traits ("Aged 18-30, single"; "Frequent,
  category-loyal"); when two personas of a run would share a name, the segment label is added.
  Another segmentation's label names a persona only when nothing of its own holds, and then only
  when it holds for two thirds of the members (:data:`SECOND_HAND_MAJORITY`); else the persona
  keeps its segment's name (or, mostly overdue, is called lapsing).
  A persona most of whose customers are overdue (:func:`analysis.segment.behavioral.overdue`:
  recency checked against their own frequency) is named "Lapsing" and never "new". Phrases come
  from the vocabulary (package data).
* A **narrative** is rendered from a Jinja2 template (``analysis/templates/personas/``, package
  data: edit or translate it). Every sentence quotes numbers from the profile table, formatted by
  :func:`fmt_pct`, :func:`fmt_num` and :func:`fmt_times`, so a test can parse them back. What
  formed the segment is told as its definition, apart from the traits found beyond it.
* The **verdict** of the persona's basis travels with it: for a ``weak`` split the card says so;
  for a ``none`` split (no structure beyond chance) the persona gets a short neutral card (size and
  worth, no traits, no name from traits, no narrative, no actions).

No network or language model is involved: the same table always gives the same words.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from ..segment.behavioral import overdue
from .bases import caveat
from .population import Population
from .profiles import NAME_MAJORITY, segment_summary, typical_member
from .vocabulary import level_phrase

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "personas"

WORTH_LABELS = {"revenue": "revenue", "profit": "gross profit", "clv": "predicted value (CLV)"}

#: What a persona card says about the verdict of its basis (weak or no structure).
VERDICT_NOTES = {
    "weak": "Tentative: the data show only weak structure behind this split. Treat it as a convenient grouping, "
            "not as a distinct group of customers.",
    "none": "Not supported by the data: this split is no better separated than data with no groups at all, so no "
            "profile, name or actions are drawn for it.",
}

#: Name phrase of a persona most of whose customers are overdue (past their own buying rhythm).
LAPSING = "lapsing"
#: Share of members another segmentation's label must hold for to name a persona that has no phrase of its own.
#: A bare majority is not enough for a second-hand name: on Online Retail the value tier "Rest" (80 % of
#: customers, 62 % of them at low churn risk) was named "Lapsed" because 52 % of it sat in the Lapsed cluster.
SECOND_HAND_MAJORITY = 2 / 3
#: Vocabulary families that say how long a customer has bought (a "new" phrase) and how recently.
TENURE_FAMILY, RECENCY_FAMILY = "tenure", "recency"


def _unsigned_zero(text: str) -> str:
    """Drop the sign of a number that rounds to zero ("-0", "-0.00%"): a rounding artefact, not a value."""
    return text[1:] if text.startswith("-") and not any(ch in "123456789" for ch in text) else text


def fmt_pct(share: float) -> str:
    """A share (0..1) as a percentage: whole percents, one decimal below 1% and above 99%.

    Examples
    --------
    >>> [fmt_pct(x) for x in (0.6666, 0.004, 0.997, 1.0, 0.0, -0.000001)]
    ['67%', '0.4%', '99.7%', '100%', '0%', '0.0%']
    """
    if share is None or (isinstance(share, float) and math.isnan(share)):
        return "n/a"
    pct = 100.0 * float(share)
    if (0 < abs(pct) < 1) or (99 < pct < 100):
        text = f"{pct:.1f}"
        if text in ("1.0", "100.0"):
            text = f"{pct:.2f}"
        return _unsigned_zero(f"{text}%")
    return _unsigned_zero(f"{pct:.0f}%")


def fmt_num(value: float) -> str:
    """A number with about three significant figures and thousands separators.

    Examples
    --------
    >>> [fmt_num(x) for x in (142731.9, 445.8, 43.03, 18.54, 0.818, 2.0, -0.001)]
    ['142,732', '446', '43', '18.5', '0.82', '2', '0']
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    v = float(value)
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        text = f"{v:.1f}"
    else:
        text = f"{v:.2f}"
    return _unsigned_zero(text.rstrip("0").rstrip(".") if "." in text else text)


def fmt_value(value: float, format: str = "number") -> str:
    """A numeric attribute's value: :func:`fmt_pct` for shares (``format="pct"``), else :func:`fmt_num`."""
    return fmt_pct(value) if format == "pct" else fmt_num(value)


def fmt_times(ratio: float) -> str:
    """A ratio: one decimal from 1 up ("1.8"), two below 1 ("0.84"), none from 10 up.

    Examples
    --------
    >>> [fmt_times(x) for x in (1.84, 0.0085, 12.3)]
    ['1.8', '0.01', '12']
    """
    if ratio is None or (isinstance(ratio, float) and math.isnan(ratio)):
        return "n/a"
    r = float(ratio)
    return _unsigned_zero(f"{r:.0f}" if abs(r) >= 10 else (f"{r:.1f}" if abs(r) >= 1 else f"{r:.2f}"))


def _lower_first(text: str) -> str:
    """Lower-case a sentence's first letter when a lead-in precedes it ("By definition, their ...")."""
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]


def template_environment(template_dir: str | Path | None = None, *, html: bool = False) -> Environment:
    """Jinja2 environment over the persona templates (a user's folder may override them).

    ``html=True`` turns autoescaping on, so data strings (segment names, categories) render as
    text, never as markup.
    """
    folders = [str(template_dir)] if template_dir else []
    folders.append(str(TEMPLATE_DIR))
    env = Environment(
        loader=FileSystemLoader(folders), autoescape=html, undefined=StrictUndefined,
        trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=False,
    )
    env.globals.update(pct=fmt_pct, num=fmt_num, times=fmt_times, value=fmt_value, lower_first=_lower_first)
    return env


def _also_words(pop: Population, item: str) -> str:
    attr, _, level = item.partition("=")
    info = pop.attributes.get(attr)
    label = info.label if info else attr.replace("_", " ")
    return f"{label} {level}" if level else label


def _trait_record(pop: Population, row: pd.Series, rank_column: str = "trait_rank") -> dict[str, Any]:
    vocab = pop.vocabulary
    info = pop.attributes.get(row["attribute"]) or vocab.describe(row["attribute"], row["kind"])
    rec = {
        "attribute": row["attribute"], "level": row["level"], "kind": row["kind"], "label": info.label,
        "family": info.family,
        "segment_value": float(row["segment_value"]), "overall_value": float(row["overall_value"]),
        "effect_size": float(row["effect_size"]), "lift": float(row["lift"]) if pd.notna(row["lift"]) else None,
        "q_value": float(row["q_value"]), "rank": int(row[rank_column]), "unit": info.unit, "format": info.format,
        "also": [a for a in str(row["also"] or "").split("; ") if a],
        "defines": bool(row["defines"]), "holds": bool(row["holds"]),
        "holds_share": float(row["holds_share"]) if pd.notna(row["holds_share"]) else None,
    }
    rec["also_text"] = "; ".join(_also_words(pop, a) for a in rec["also"])
    rec["is_segmentation"] = row["attribute"] in pop.segmentations
    if row["kind"] == "category":
        level = str(row["level"])
        override = info.levels.get(level, {})
        rec["phrase"] = level_phrase(override.get("sentence") or info.sentence or "{level}", level)
        rec["name_phrase"] = level_phrase(override.get("name") or info.name_template or "{level}", level)
        rec["share_word"] = vocab.share_word(rec["segment_value"])
        rec["text"] = f"{rec['name_phrase']}: {fmt_pct(rec['segment_value'])} vs {fmt_pct(rec['overall_value'])} overall"
    else:
        rec["phrase"] = info.high if rec["effect_size"] > 0 else info.low
        rec["name_phrase"] = rec["phrase"]
        rec["share_word"] = ""
        unit = f" {info.unit}" if info.unit else ""
        # the phrase ("recently active") leads only when it holds for most members; the numbers always show
        lead = f"{rec['name_phrase']}: {info.label}" if rec["holds"] else f"{info.label}:"
        rec["text"] = (f"{lead} {fmt_value(rec['segment_value'], info.format)}{unit} "
                       f"vs {fmt_value(rec['overall_value'], info.format)}")
    return rec


def _typical_text(pop: Population, item: dict[str, Any]) -> dict[str, Any]:
    if item["share"] is not None:
        return {**item, "text": f"{item['value']} ({fmt_pct(item['share'])})"}
    info = pop.attributes.get(item["attribute"])
    unit = f" {info.unit}" if info is not None and info.unit else ""
    return {**item, "text": f"{fmt_value(item['value'], info.format if info else 'number')}{unit} (median)"}


def persona_records(profiles: pd.DataFrame, population: Population, *, n_traits: int = 3, alpha: float = 0.05) -> list[dict[str, Any]]:
    """One record per persona (dicts the templates render), in profile-table order.

    Keys: ``persona_id``, ``segmentation``, ``segmentation_label``, ``segmentation_note``,
    ``basis``, ``segment``, ``customers``, ``customers_share``, ``worth_shares`` (list of
    ``{"measure", "label", "value"}``), ``value_share``, ``value_index``, ``value_label``,
    ``definition`` (what formed the segment: described, not tested), ``traits`` (the top
    ``n_traits`` significant ones among the other attributes), ``more_traits`` (ranks beyond),
    ``typical``, ``suppressed``, ``min_size``, ``alpha``, ``verdict`` (level of the basis's
    verdict or None), ``verdict_reason``, ``caveat`` (a sentence for ``weak`` / ``none``),
    ``unsupported`` (the split has no structure beyond chance) and ``overdue_share`` (share of
    members past their own buying rhythm, None without purchase data). Names and narratives are
    added by :func:`describe_personas`.
    """
    summary = segment_summary(profiles).set_index("persona_id")
    late = overdue(population.frame) if "recency_days" in population.frame else None
    records = []
    for pid, rows in profiles.groupby("persona_id", sort=False):
        head = summary.loc[pid]
        spec = population.segmentations.get(head["segmentation"])
        verdict = spec.verdict if spec else None
        unsupported = verdict is not None and verdict.level == "none"
        ranked = rows[rows["trait_rank"].notna()].sort_values("trait_rank")
        traits = [] if unsupported else [_trait_record(population, r) for _, r in ranked.iterrows()]
        defining = rows[rows["definition_rank"].notna()].sort_values("definition_rank")
        definition = [] if unsupported else [_trait_record(population, r, "definition_rank") for _, r in defining.iterrows()]
        members = population.frame.index[population.frame[head["segmentation"]] == head["segment"]]
        overdue_share = float(late.reindex(members).mean()) if late is not None and len(members) else None
        worth = []
        for measure in ("revenue", "profit", "clv"):
            col = f"{measure}_share"
            if col in head.index and pd.notna(head[col]):
                worth.append({"measure": measure, "label": WORTH_LABELS[measure], "value": float(head[col])})
        value_measure = "clv" if "clv" in population.value_columns else "revenue"
        records.append({
            "persona_id": pid,
            "segmentation": head["segmentation"],
            "segmentation_label": spec.label if spec else head["segmentation"],
            "segmentation_note": spec.note if spec else "",
            "basis": head["basis"],
            "segment": str(head["segment"]),
            "customers": int(head["customers"]),
            "customers_share": float(head["customers_share"]),
            "worth_shares": worth,
            "value_share": float(head[f"{value_measure}_share"]) if f"{value_measure}_share" in head.index and pd.notna(head[f"{value_measure}_share"]) else None,
            "value_index": float(head["value_index"]) if "value_index" in head.index and pd.notna(head["value_index"]) else None,
            "value_label": WORTH_LABELS[value_measure],
            "definition": definition[:n_traits],
            "traits": traits[:n_traits],
            "more_traits": traits[n_traits:],
            "typical": [] if unsupported else [_typical_text(population, item)
                                               for item in typical_member(profiles, pid, numeric=population.vocabulary.typical)],
            "suppressed": bool(head["suppressed"]),
            "min_size": int(rows["min_size"].iloc[0]),
            "alpha": alpha,
            "verdict": verdict.level if verdict is not None else None,
            "verdict_reason": verdict.reason if verdict is not None else "",
            "caveat": caveat(verdict),
            "verdict_note": VERDICT_NOTES.get(verdict.level, "") if verdict is not None else "",
            "unsupported": unsupported,
            "overdue_share": overdue_share if overdue_share is not None and np.isfinite(overdue_share) else None,
        })
    return records


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def is_lapsed(record: dict[str, Any]) -> bool:
    """Whether most of a persona's customers are overdue (past their own buying rhythm)."""
    share = record.get("overdue_share")
    return share is not None and share >= NAME_MAJORITY


def name_phrases(record: dict[str, Any]) -> list[str]:
    """The phrases a persona may be named by, strongest first: only those that hold for most members.

    What defines the segment comes first, then its distinguishing traits (a trait that is another
    segmentation's label, such as an RFM segment, only when nothing else holds, and then only for
    :data:`SECOND_HAND_MAJORITY` of the members). A lapsed persona
    (:func:`is_lapsed`) leads with "lapsing" unless a recency phrase already says so, and is
    never called new.
    """
    if record.get("unsupported") or record.get("suppressed"):
        return []
    items = [t for t in record.get("definition", []) + record["traits"] + record["more_traits"] if t.get("holds", True)]
    lapsed = is_lapsed(record)
    if lapsed:
        items = [t for t in items if not (t.get("family") == TENURE_FAMILY and t["effect_size"] < 0)]
    own = [t for t in items if not t.get("is_segmentation")]
    segment = str(record.get("segment", ""))
    definition = {id(t) for t in record.get("definition", [])}

    def phrase(t: dict[str, Any]) -> str:
        # a pooled area ("Other South": the South's smaller states) is named as pooled, never as its whole
        # parent area, which other segments of the same split share (Florida is in the South too)
        pooled = f"other {t['name_phrase']}".lower()
        if id(t) in definition and (segment.lower() == pooled or segment.lower().startswith(pooled + ", ")):
            return segment  # also "Other West, Canada", as area labels tell same-named areas apart
        return t["name_phrase"]

    named = own or [t for t in items if (t.get("holds_share") or 0.0) >= SECOND_HAND_MAJORITY]
    phrases = [phrase(t) for t in named]
    if lapsed and not any(t.get("family") == RECENCY_FAMILY and t["effect_size"] > 0 for t in named):
        phrases.insert(0, LAPSING)
    return phrases


def assign_names(records: list[dict[str, Any]], *, n_phrases: int = 2) -> list[str]:
    """Readable, unique names from each persona's strongest phrases that hold (deterministic).

    Two phrases of :func:`name_phrases` joined by a comma; on a clash within the run, the segment
    label in parentheses; then a number. Personas with no phrase that holds (suppressed, nothing
    describes most members) are named after their segment; personas of a split with no structure
    (verdict ``none``) after their segment, marked as not supported.
    """
    phrases = [name_phrases(rec) for rec in records]

    def base(i: int, k: int) -> str:
        rec = records[i]
        if rec.get("unsupported"):
            return f"{rec['segment']} (split not supported)"
        if not phrases[i]:
            return str(rec["segment"])
        seen: list[str] = []
        for phrase in phrases[i][:k]:
            if phrase.lower() not in (p.lower() for p in seen):
                seen.append(phrase)
        return _capitalize(", ".join(seen))

    names = [base(i, n_phrases) for i in range(len(records))]
    dups = pd.Series(names).str.lower().duplicated(keep=False)
    names = [f"{n} ({records[i]['segment']})" if dups[i] and str(records[i]["segment"]) != n else n for i, n in enumerate(names)]
    seen_count: dict[str, int] = {}
    out = []
    for n in names:
        key = n.lower()
        seen_count[key] = seen_count.get(key, 0) + 1
        out.append(n if seen_count[key] == 1 else f"{n} {seen_count[key]}")
    return out


def render_narrative(record: dict[str, Any], env: Environment | None = None) -> str:
    """The narrative paragraph of one persona record."""
    env = env or template_environment()
    text = env.get_template("narrative.txt.j2").render(p=record)
    return " ".join(text.split())


def describe_personas(
    profiles: pd.DataFrame,
    population: Population,
    *,
    n_traits: int = 3,
    alpha: float = 0.05,
    template_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Persona records with ``name`` and ``narrative`` (see :func:`persona_records`)."""
    records = persona_records(profiles, population, n_traits=n_traits, alpha=alpha)
    env = template_environment(template_dir)
    for rec, name in zip(records, assign_names(records)):
        rec["name"] = name
        rec["narrative"] = render_narrative(rec, env)
    return records


def personas_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The records as a flat table (one row per persona) for ``exports/personas.csv``."""
    rows = []
    for rec in records:
        worth = {f"{w['measure']}_share": w["value"] for w in rec["worth_shares"]}
        rows.append({
            "persona_id": rec["persona_id"],
            "name": rec["name"],
            "segmentation": rec["segmentation"],
            "basis": rec["basis"],
            "segment": rec["segment"],
            "customers": rec["customers"],
            "customers_share": rec["customers_share"],
            **worth,
            "value_index": rec["value_index"],
            "suppressed": rec["suppressed"],
            "verdict": rec["verdict"] or "",
            "defined_by": " | ".join(t["text"] for t in rec["definition"]),
            "top_traits": " | ".join(t["text"] for t in rec["traits"]),
            "typical_member": "; ".join(
                f"{t['label']}: {t['text']}" for t in rec["typical"]
            ),
            "narrative": rec["narrative"],
        })
    out = pd.DataFrame(rows)
    for col in ("revenue_share", "profit_share", "clv_share"):
        if col not in out:
            out[col] = np.nan
    return out
