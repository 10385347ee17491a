"""Persona cards as HTML and Markdown, the glossary, and the Markdown export.

HTML is rendered with Jinja2 autoescaping, so a segment or product name such as
``<script>alert(1)</script>`` shows as text. Markdown escapes HTML and Markdown syntax in data
strings the same way.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bases import caveat
from .lead import LEAD_ACTIONS, LeadChoice, rule_sentence
from .narrative import template_environment

if TYPE_CHECKING:  # pragma: no cover
    from . import PersonaBook

_MD_SPECIAL = re.compile(r"([\\`*_\[\]|#])")


def md_escape(text: Any) -> str:
    """Escape a data string for Markdown: ``<`` and ``>`` as entities, Markdown syntax with a backslash.

    Examples
    --------
    >>> md_escape("<script>a|b*</script>")
    '&lt;script&gt;a\\\\|b\\\\*&lt;/script&gt;'
    """
    out = str(text).replace("<", "&lt;").replace(">", "&gt;")
    out = _MD_SPECIAL.sub(r"\\\1", out)
    return " ".join(out.split())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def card_anchors(book: PersonaBook) -> dict[str, str]:
    """Persona id -> the HTML id of its full card (``persona-<segmentation>-<n>``), unique on the page."""
    anchors: dict[str, str] = {}
    counts: dict[str, int] = {}
    for rec in book.records:
        col = rec["segmentation"]
        counts[col] = counts.get(col, 0) + 1
        anchors[rec["persona_id"]] = f"persona-{_slug(col)}-{counts[col]}"
    return anchors


def card_sections(book: PersonaBook, segmentations: list[str] | None = None, *, lead: str | None = None) -> list[dict[str, Any]]:
    """Personas grouped by segmentation (``lead`` first, then book order), for the card templates.

    Each section carries its basis's ``verdict`` and, for a weak or absent structure, its
    ``caveat`` sentence; each persona its card's ``anchor`` (:func:`card_anchors`).
    """
    wanted = segmentations or list(dict.fromkeys(r["segmentation"] for r in book.records))
    if lead in wanted:
        wanted = [lead] + [c for c in wanted if c != lead]
    anchors = card_anchors(book)
    sections = []
    for col in wanted:
        personas = [{**r, "anchor": anchors[r["persona_id"]]} for r in book.records if r["segmentation"] == col]
        if not personas:
            continue
        spec = book.population.segmentations.get(col)
        verdict = spec.verdict if spec else None
        sections.append({
            "column": col, "slug": _slug(col), "label": spec.label if spec else col,
            "basis": spec.basis if spec else "", "note": spec.note if spec else "", "personas": personas,
            "verdict": verdict.level if verdict is not None else "", "caveat": caveat(verdict),
        })
    return sections


def cards_html(book: PersonaBook, segmentations: list[str] | None = None, *, lead: str | None = None,
               collapsed: bool = False, template_dir: str | Path | None = None) -> str:
    """Persona cards (``card`` elements inside ``card-grid`` divs), one section per segmentation.

    ``collapsed=True`` puts each section in a closed ``<details>`` whose summary line names the
    segmentation, its verdict and how many personas it holds (a link to a card opens its section).
    """
    sections = card_sections(book, segmentations, lead=lead)
    if not sections:
        return '<p class="callout warn">No personas: this run has no segments to describe.</p>'
    env = template_environment(template_dir, html=True)
    return env.get_template("cards.html.j2").render(sections=sections, collapsed=collapsed)


def _bar_width(share: Any) -> str:
    """A share (0..1) as a CSS width in percent, clipped to 0..100 (a bar never leaves its track)."""
    try:
        value = float(share)
    except (TypeError, ValueError):
        return "0"
    if math.isnan(value):
        return "0"
    return f"{min(max(value, 0.0), 1.0) * 100:.1f}"


def lead_cards(lead: list[dict[str, Any]], anchors: dict[str, str], *, n_traits: int = 3) -> list[dict[str, Any]]:
    """What a lead card shows of each persona: bars, its top traits and its key actions."""
    cards = []
    for rec in lead:
        traits = (rec.get("definition", [])[:2] + rec.get("traits", []))[:n_traits]
        by_action = {a["action"]: a for a in rec.get("actions", [])}
        actions = [by_action[a] for a in LEAD_ACTIONS if a in by_action]
        cards.append({**rec, "anchor": anchors.get(rec["persona_id"], ""), "top_traits": traits, "key_actions": actions,
                      "value_name": "Value (CLV)" if "CLV" in str(rec.get("value_label")) else str(rec.get("value_label", "value")).capitalize(),
                      "customers_width": _bar_width(rec["customers_share"]),
                      "value_width": _bar_width(rec.get("value_share"))})
    return cards


def lead_html(book: PersonaBook, lead: list[dict[str, Any]], choice: LeadChoice, *, template_dir: str | Path | None = None) -> str:
    """The lead personas as visual cards (share bars, top traits, key actions), with why they lead."""
    env = template_environment(template_dir, html=True)
    return env.get_template("lead.html.j2").render(cards=lead_cards(lead, card_anchors(book)), reason=choice.reason,
                                                   rule=rule_sentence())


def cards_markdown(book: PersonaBook, title: str = "Personas", *, segmentations: list[str] | None = None,
                   lead: str | None = None, lead_set: list[dict[str, Any]] | None = None, lead_reason: str = "",
                   template_dir: str | Path | None = None) -> str:
    """All persona cards as one Markdown document (for slide decks), opening with the lead set when given."""
    env = template_environment(template_dir)
    env.filters["md"] = md_escape
    text = env.get_template("cards.md.j2").render(title=title, sections=card_sections(book, segmentations, lead=lead),
                                                  lead_set=lead_set or [], lead_reason=lead_reason)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def glossary_markdown(template_dir: str | Path | None = None) -> str:
    """Segmentation vs clienteling; customer vs market segmentation (from the domain notes)."""
    return template_environment(template_dir).get_template("glossary.md.j2").render().strip() + "\n"


def write_markdown_export(folder: Any, name: str, text: str) -> Path:
    """Write a Markdown export into the run folder's ``exports/`` (``folder`` is an ``io.RunFolder``)."""
    if Path(name).name != name or not name.endswith(".md"):
        raise ValueError(f"export name {name!r}: give a plain file name ending in .md, e.g. 'personas.md'.")
    path = folder.export_path(name)
    path.write_text(text, encoding="utf-8")
    return path
