"""Persona names and narratives, built from the profile table with deterministic rules.

* A **name** joins the name phrases of a persona's two strongest traits ("Aged 18-30, single";
  "Frequent, category-loyal"); when two personas of a run would share a name, the next trait is
  added, then the segment label. Phrases come from the vocabulary (package data).
* A **narrative** is rendered from a Jinja2 template (``analysis/templates/personas/``, package
  data: edit or translate it). Every sentence quotes numbers from the profile table, formatted by
  :func:`fmt_pct`, :func:`fmt_num` and :func:`fmt_times`, so a test can parse them back.

No network or language model is involved: the same table always gives the same words.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from .population import Population
from .profiles import segment_summary, typical_member
from .vocabulary import level_phrase

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "personas"

WORTH_LABELS = {"revenue": "revenue", "profit": "gross profit", "clv": "predicted value (CLV)"}


def fmt_pct(share: float) -> str:
    """A share (0..1) as a percentage: whole percents, one decimal below 1% and above 99%.

    Examples
    --------
    >>> [fmt_pct(x) for x in (0.6666, 0.004, 0.997, 1.0, 0.0)]
    ['67%', '0.4%', '99.7%', '100%', '0%']
    """
    if share is None or (isinstance(share, float) and math.isnan(share)):
        return "n/a"
    pct = 100.0 * float(share)
    if (0 < abs(pct) < 1) or (99 < pct < 100):
        text = f"{pct:.1f}"
        if text in ("1.0", "100.0"):
            text = f"{pct:.2f}"
        return f"{text}%"
    return f"{pct:.0f}%"


def fmt_num(value: float) -> str:
    """A number with about three significant figures and thousands separators.

    Examples
    --------
    >>> [fmt_num(x) for x in (142731.9, 445.8, 43.03, 18.54, 0.818, 2.0)]
    ['142,732', '446', '43', '18.5', '0.82', '2']
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
    return text.rstrip("0").rstrip(".") if "." in text else text


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
    return f"{r:.0f}" if abs(r) >= 10 else (f"{r:.1f}" if abs(r) >= 1 else f"{r:.2f}")


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
    env.globals.update(pct=fmt_pct, num=fmt_num, times=fmt_times, value=fmt_value)
    return env


def _also_words(pop: Population, item: str) -> str:
    attr, _, level = item.partition("=")
    info = pop.attributes.get(attr)
    label = info.label if info else attr.replace("_", " ")
    return f"{label} {level}" if level else label


def _trait_record(pop: Population, row: pd.Series) -> dict[str, Any]:
    vocab = pop.vocabulary
    info = pop.attributes.get(row["attribute"]) or vocab.describe(row["attribute"], row["kind"])
    rec = {
        "attribute": row["attribute"], "level": row["level"], "kind": row["kind"], "label": info.label,
        "segment_value": float(row["segment_value"]), "overall_value": float(row["overall_value"]),
        "effect_size": float(row["effect_size"]), "lift": float(row["lift"]) if pd.notna(row["lift"]) else None,
        "q_value": float(row["q_value"]), "rank": int(row["trait_rank"]), "unit": info.unit, "format": info.format,
        "also": [a for a in str(row["also"] or "").split("; ") if a],
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
        rec["text"] = (f"{rec['name_phrase']}: {info.label} {fmt_value(rec['segment_value'], info.format)}{unit} "
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
    ``traits`` (the top ``n_traits``), ``more_traits`` (ranks beyond), ``typical``,
    ``suppressed``, ``min_size``, ``alpha``. Names and narratives are added by
    :func:`describe_personas`.
    """
    summary = segment_summary(profiles).set_index("persona_id")
    records = []
    for pid, rows in profiles.groupby("persona_id", sort=False):
        head = summary.loc[pid]
        spec = population.segmentations.get(head["segmentation"])
        ranked = rows[rows["trait_rank"].notna()].sort_values("trait_rank")
        traits = [_trait_record(population, r) for _, r in ranked.iterrows()]
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
            "traits": traits[:n_traits],
            "more_traits": traits[n_traits:],
            "typical": [_typical_text(population, item)
                        for item in typical_member(profiles, pid, numeric=population.vocabulary.typical)],
            "suppressed": bool(head["suppressed"]),
            "min_size": int(rows["min_size"].iloc[0]),
            "alpha": alpha,
        })
    return records


def _capitalize(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def assign_names(records: list[dict[str, Any]], *, n_phrases: int = 2) -> list[str]:
    """Readable, unique names from each persona's strongest traits (deterministic).

    Two trait phrases joined by a comma (traits that are another segmentation's label, such as
    an RFM segment, only when nothing else sets the persona apart); on a clash within the run,
    the segment label in parentheses; then a number. Personas without traits (suppressed, or
    nothing significant) are named after their segment.
    """
    phrases = []
    for rec in records:
        traits = rec["traits"] + rec["more_traits"]
        own = [t["name_phrase"] for t in traits if not t.get("is_segmentation")]
        phrases.append(own or [t["name_phrase"] for t in traits])

    def base(i: int, k: int) -> str:
        rec = records[i]
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
