"""Resource allocation and the executive summary of the persona page.

Resources follow value *and* the playbook: a persona's suggested budget share is its stake
(mostly its share of value, partly its share of value at risk) weighted by the budget priority
its playbook rules give it (``budget_weights`` in the playbook), normalised over the personas of
one segmentation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from ..segment.value import budget_shares, value_at_risk
from ..templating import render_template
from .bases import lead_segmentation
from .lead import LeadChoice, count_sentence, lead_lines, lead_personas, persona_counts
from .narrative import fmt_pct

if TYPE_CHECKING:  # pragma: no cover
    from . import PersonaBook


def primary_segmentation(book: PersonaBook, preferred: str | None = "") -> str | None:
    """The segmentation the summary and the budget split lead with.

    ``preferred`` (the lead segmentation) if the book has it and it is not the combined target
    groups (they do not cover every customer, so they cannot share out a budget); else the first
    whose split the data support (:func:`~analysis.personas.bases.lead_segmentation`); else the
    first in book order.
    """
    cols = list(dict.fromkeys(r["segmentation"] for r in book.records if r["segmentation"] != "target_group"))
    if preferred and preferred in cols:
        return preferred
    supported = lead_segmentation(book.population)
    if supported in cols:
        return supported
    return cols[0] if cols else None


def resource_allocation(book: PersonaBook, segmentation: str | None = None, *, retention_weight: float = 0.3) -> pd.DataFrame:
    """Suggested budget share per persona of one segmentation.

    ``stake = (1 - w) x value_share + w x value_at_risk_share`` with ``w = retention_weight``
    where the run knows who is slipping away (historic revenue x (1 - P(alive)); otherwise
    ``stake = value_share``, and customers share stands in when there is no value measure).
    ``suggested_budget_share = weight(budget_priority) x stake``, normalised to sum to 1.

    Returns
    -------
    DataFrame
        ``persona``, ``segment``, ``customers``, ``customers_share``, ``value_share``,
        ``value_at_risk_share`` (where known), ``value_index``, ``budget_priority``,
        ``budget_rule``, ``suggested_budget_share``; highest suggested share first.
    """
    segmentation = segmentation or primary_segmentation(book)
    recs = [r for r in book.records if r["segmentation"] == segmentation]
    if not recs:
        return pd.DataFrame(columns=["persona", "segment", "customers", "customers_share", "value_share", "value_index",
                                     "budget_priority", "budget_rule", "suggested_budget_share"])
    weights = book.playbook.budget_weights
    rows = []
    for r in recs:
        budget = next((a for a in r["actions"] if a["action"] == "budget_priority"), None)
        rows.append({
            "persona": r["name"], "segment": r["segment"], "customers": r["customers"],
            "customers_share": r["customers_share"], "value_share": r["value_share"], "value_index": r["value_index"],
            "budget_priority": budget["recommendation"] if budget else "",
            "budget_rule": budget["rule"] if budget else "",
        })
    out = pd.DataFrame(rows)
    basis = out["value_share"].astype(float).fillna(out["customers_share"]).clip(lower=0)
    frame = book.population.frame
    at_risk = value_at_risk(frame) if segmentation in frame.columns else None
    risk_share = None
    if at_risk is not None:
        at_risk = at_risk.groupby(frame[segmentation]).sum()
        total = at_risk.sum()
        if total > 0:
            out.insert(5, "value_at_risk_share", out["segment"].map(at_risk / total).fillna(0.0))
            risk_share = out["value_at_risk_share"]
    weight = out["budget_priority"].map(lambda p: weights.get(str(p).strip().lower(), 1.0)).astype(float)
    out["suggested_budget_share"] = budget_shares(basis, risk_share, retention_weight=retention_weight, priority_weight=weight)
    out.attrs["segmentation"] = segmentation
    return out.sort_values("suggested_budget_share", ascending=False, kind="stable").reset_index(drop=True)


def allocation_headline(allocation: pd.DataFrame) -> str:
    """One sentence for the allocation chart's title."""
    if allocation.empty:
        return "No segments to allocate resources to"
    top = allocation.iloc[0]
    return (f"{top['persona']} should get the largest share of the budget "
            f"({fmt_pct(top['suggested_budget_share'])}) for {fmt_pct(top['customers_share'])} of customers")


def share_headline(book: PersonaBook, segmentation: str) -> str:
    """One sentence for the customers-vs-value chart of a segmentation."""
    recs = [r for r in book.records if r["segmentation"] == segmentation and r["value_share"] is not None]
    if not recs:
        return "Share of customers by persona"
    top = max(recs, key=lambda r: (r["value_index"] or 0, r["customers"]))
    return (f"{top['name']}: {fmt_pct(top['customers_share'])} of customers hold "
            f"{fmt_pct(top['value_share'])} of {top['value_label']}")


def grid_headline(grid: pd.DataFrame) -> str:
    """One sentence for the value grid: the cell that holds most value."""
    if grid.empty or grid.attrs.get("rows") is None:
        return "No grid: this run has fewer than two segmentations to cross"
    key = "value_share" if "value_share" in grid else "customers"
    top = grid.sort_values(key, ascending=False).iloc[0]
    rows, cols = grid.attrs["rows"], grid.attrs["columns"]
    what = f"{fmt_pct(top['value_share'])} of value" if key == "value_share" else f"{int(top['customers']):,} customers"
    return f"{top[rows]} / {top[cols]} holds {what} with {fmt_pct(top['customers_share'])} of customers"


def crosstab_headline(cross: pd.DataFrame) -> str:
    """One sentence for the cross-tab of two bases; says why there is none when it is empty."""
    if cross.empty or cross.attrs.get("rows") is None:
        return ("No other pair of segmentations to cross: this run has fewer than two segmentations the data support "
                "besides the pair the grid above shows.")
    rows, cols = cross.attrs["rows"], cross.attrs["columns"]
    return f"Customers per cell of {rows.replace('_', ' ')} and {cols.replace('_', ' ')}."


def executive_summary(
    book: PersonaBook,
    *,
    primary: str | None = None,
    groups: pd.DataFrame | None = None,
    allocation: pd.DataFrame | None = None,
    lead: LeadChoice | None = None,
) -> dict[str, Any]:
    """A handful of plain sentences for the top of the page and the run's index (``title``, ``lines``).

    The first line counts the personas as the page and ``exports/personas.csv`` do
    (:func:`~analysis.personas.lead.count_sentence`); with ``lead``, the lead personas follow
    (:func:`~analysis.personas.lead.lead_lines`) and the summary carries ``lead`` (their names)
    and ``counts``.
    """
    lines: list[str] = []
    recs = [r for r in book.records if r["segmentation"] != "target_group"]
    if not recs:
        return {"title": "Personas", "lines": ["No segments in this run yet: run the segmentation pages first."],
                "counts": persona_counts(book), "lead": []}
    small = [r for r in book.records if r["suppressed"]]
    line = count_sentence(book, labels=True)
    if small:
        line += (f" {len(small)} of them {'has' if len(small) == 1 else 'have'} fewer than {book.min_size} customers and "
                 f"{'is' if len(small) == 1 else 'are'} not profiled in detail.")
    lines.append(line)
    lead_set = lead_personas(book, lead) if lead is not None else []
    if lead is not None:
        lines.extend(lead_lines(lead, lead_set))
    primary = primary or primary_segmentation(book)
    prim = [r for r in recs if r["segmentation"] == primary and r["value_share"] is not None]
    if prim and not (lead_set and lead_set[0]["segmentation"] == primary):  # the lead lines already say it
        top = max(prim, key=lambda r: r["value_share"])
        lines.append(
            f"Value concentrates in \u201c{top['name']}\u201d ({top['segment']}): {fmt_pct(top['customers_share'])} of customers, "
            f"{fmt_pct(top['value_share'])} of {top['value_label']}."
        )
    if groups is not None and len(groups) and "value_share" in groups:
        g = groups.iloc[0]
        lines.append(
            f"Most valuable combined target group: {g['name']} ({int(g['customers']):,} customers, "
            f"{fmt_pct(g['customers_share'])}) holding {fmt_pct(g['value_share'])} of value."
        )
    weights = book.playbook.budget_weights
    budget = {r["persona_id"]: next((a for a in r["actions"] if a["action"] == "budget_priority"), None) for r in recs}
    ranked = [(weights.get(str(b["recommendation"]).lower(), 0.0), r, b) for r in recs if (b := budget[r["persona_id"]])]
    if ranked and len({w for w, _, _ in ranked}) > 1:  # only worth saying when priorities differ
        best = max(w for w, _, _ in ranked)
        top = [(r, b) for w, r, b in ranked if w == best and not r["suppressed"]][:3]
        if top:
            names = "; ".join(f"\u201c{r['name']}\u201d (rule \u201c{b['rule']}\u201d)" for r, b in top)
            lines.append(f"Highest budget priority ({top[0][1]['recommendation']}): {names}.")
    if allocation is not None and len(allocation):
        top3 = allocation.head(3)
        parts = [f"{p} {fmt_pct(s)}" for p, s in zip(top3["persona"], top3["suggested_budget_share"])]
        lines.append("Suggested budget split: " + "; ".join(parts) + ".")
    if book.population.notes:
        lines.extend(book.population.notes)
    return {"title": "Personas", "lines": lines, "counts": persona_counts(book), "lead": [r["name"] for r in lead_set]}


def summary_html(summary: dict[str, Any]) -> str:
    """The executive summary as an HTML callout (template ``personas/summary.html.j2``, autoescaped)."""
    return render_template("personas/summary.html.j2", title=str(summary.get("title", "Summary")),
                           lines=[str(line) for line in summary.get("lines", [])])
