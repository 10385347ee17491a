"""Clienteling: one-to-one follow-up built on the segments.

Segmentation groups customers for campaigns; clienteling serves each client individually. This
module turns a run's per-customer value, behaviour and segment labels into:

* a prioritised contact list (who to contact first, why, and with what next best action),
* product recommendations per client (EASE by default, see :mod:`analysis.recommend`), evaluated
  on a time split against popularity baselines on every run,
* client cards (HTML from a Jinja2 template, autoescaped, no PII) an associate can read on a phone,
* a CRM / e-mail tool import file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .privacy import looks_like_contact
from .recommend import (
    RECOMMENDERS,
    EvaluationResult,
    ItemKNNRecommender,
    PopularityRecommender,
    SegmentPopularityRecommender,
    evaluate_recommenders,
)
from .templating import render_template
from .text import MISSING

#: Next best action per situation, checked in order (first match wins).
ACTIONS: list[tuple[str, str, str]] = [
    # (name, rule as pandas query, message)
    ("Win back", "churn_risk == 'high' and value_tier != 'Rest'", "Personal call or note from their usual associate, with an exclusive offer."),
    ("Retain", "churn_risk == 'medium' and value_tier != 'Rest'", "Check in personally; invite to a preview or event before they drift."),
    ("Thank & grow", "churn_risk == 'low' and value_tier != 'Rest'", "Thank-you and early access; suggest complementary products."),
    ("Second purchase", "frequency <= 1 and churn_risk != 'high'", "Welcome follow-up with a recommendation to earn the second purchase."),
    ("Reactivate", "churn_risk == 'high'", "Low-cost automated reactivation e-mail with a reason to return."),
    ("Nurture", "frequency > 1", "Regular newsletter with recommendations; no personal contact needed."),
]


def next_best_action(clients: pd.DataFrame) -> pd.DataFrame:
    """Action and message per client from value tier, churn risk and order count (first matching rule)."""
    frame = clients.assign(
        value_tier=clients.get("value_tier", pd.Series("Rest", index=clients.index)).fillna("Rest"),
        churn_risk=clients.get("churn_risk", pd.Series("medium", index=clients.index)).fillna("medium"),
    )
    action = pd.Series(pd.NA, index=frame.index, dtype=object)
    message = pd.Series(pd.NA, index=frame.index, dtype=object)
    for name, rule, text in ACTIONS:  # a handful of rules, each vectorised over all clients
        match = frame.eval(rule) & action.isna()
        action[match] = name
        message[match] = text
    return pd.DataFrame({"next_action": action.fillna("Nurture"), "action_message": message.fillna(ACTIONS[-1][2])}, index=frame.index)


def contact_priority(clients: pd.DataFrame, value_col: str = "clv") -> pd.Series:
    """Priority score: value at stake over the CLV horizon, in one unit (formula: :func:`analysis.clv.contact_priority`)."""
    from .clv import contact_priority as value_at_stake  # the formula lives with the value model

    return value_at_stake(clients, value_col=value_col)


def contact_list(clients: pd.DataFrame, top_n: int | None = 200) -> pd.DataFrame:
    """Clients ranked by :func:`contact_priority`, with their next best action."""
    ranked = clients.join(next_best_action(clients)).assign(priority_score=contact_priority(clients))
    ranked = ranked.sort_values(["priority_score"], ascending=False, kind="stable")
    ranked.insert(0, "priority_rank", np.arange(1, len(ranked) + 1))
    return ranked.head(top_n) if top_n else ranked


def recommend_products(transactions: pd.DataFrame, n: int = 3, customers: pd.Index | None = None, chunk: int = 5_000,
                      method: str = "ease") -> pd.DataFrame:
    """Top-``n`` product recommendations per client, never a product the client already bought.

    ``method`` names a recommender in :data:`analysis.recommend.RECOMMENDERS` (default EASE, the
    winner of the time-split evaluation; see :func:`evaluate_recommendations`). Clients with no
    co-purchase signal get the most popular products they do not own.

    Returns one row per client and rank: ``customer_id``, ``rank``, ``product_id``, ``score``.
    """
    return recommender(method).fit(transactions).recommend(customers, n=n, chunk=chunk)


def recommender(method: str = "ease") -> Any:
    """An unfitted recommender by name; an unknown name says which exist and where to set it."""
    if method not in RECOMMENDERS:
        raise ValueError(f"params.30_clienteling.recommender: expected one of {sorted(RECOMMENDERS)}, found {method!r}. "
                         "Set it in the run config under params.30_clienteling.recommender.")
    return RECOMMENDERS[method]()


def segment_for_baseline(clients: pd.DataFrame) -> pd.Series | None:
    """Segment label per client for the segment-popularity baseline (persona first, else the first basis)."""
    for col in ["persona", "persona_name", "behavioral_segment"] + [c for c in clients.columns if str(c).endswith("_segment")] + ["value_tier"]:
        if col in clients and clients[col].notna().any():
            return clients[col].astype(str).rename(col)
    return None


def evaluate_recommendations(transactions: pd.DataFrame, clients: pd.DataFrame, split: str | None = None, k: int = 10,
                             method: str = "ease") -> EvaluationResult:
    """The project's recommender against popularity, segment popularity and plain item-item cosine on a time split.

    Parameters
    ----------
    transactions : ``customer_id``, ``product_id``, ``timestamp``.
    clients : one row per client (index ``customer_id``) with segment labels, for the segment baseline.
    split : first day held out (empty: the last quarter of the period).
    k : list length scored (hit rate@k, recall@k, coverage).
    method : the project's recommender (its row is named ``method`` and goes to the manifest).

    Returns
    -------
    EvaluationResult; ``.manifest(method)`` is ``models.recommendations``.
    """
    models: dict[str, Any] = {method: recommender(method), "item_cosine": ItemKNNRecommender(weighting="cosine", half_life_days=None, neighbours=None),
                              "popularity": PopularityRecommender()}
    segments = segment_for_baseline(clients)
    if segments is not None:
        models["segment_popularity"] = SegmentPopularityRecommender(segments)
    return evaluate_recommenders(transactions, models, split=split or None, k=k)


def recommendations_wide(recs: pd.DataFrame, product_names: pd.Series | None = None) -> pd.DataFrame:
    """One row per client: ``recommended_1..n`` (product names where known)."""
    labels = recs["product_id"]
    if product_names is not None:
        labels = labels.map(product_names).fillna(labels)
    wide = recs.assign(label=labels.astype(str)).pivot(index="customer_id", columns="rank", values="label")
    wide.columns = [f"recommended_{c}" for c in wide.columns]
    return wide


def _basis_label(column: str) -> str:
    """``rfm_segment`` -> ``RFM``, ``behavioral_segment`` -> ``Behavioral``."""
    basis = column.removesuffix("_segment").replace("_", " ")
    return basis.upper() if basis == "rfm" else basis.capitalize()


def _shown(value: Any, fmt: str = "{}") -> str:
    """A value for a card: formatted, or an en dash when missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return MISSING
    return fmt.format(value)


def client_cards(contacts: pd.DataFrame, segment_cols: list[str], max_cards: int = 24) -> list[dict[str, Any]]:
    """What each client card shows (plain text, formatted), for the cards template.

    A client is named by customer id only. An id that still looks like an e-mail address or a
    phone number (the data contract pseudonymises those, see :mod:`analysis.privacy`) is withheld.
    """
    cards = []
    for client_id, c in contacts.head(max_cards).iterrows():  # at most max_cards cards, for display only
        recs = [str(c[k]) for k in c.index if str(k).startswith("recommended_") and pd.notna(c[k])]
        orders, spend, days = c.get("frequency"), c.get("total_spend"), c.get("recency_days")
        cards.append({
            "rank": _shown(c.get("priority_rank"), "{:.0f}"),
            "client": "(id withheld)" if looks_like_contact(str(client_id)) else str(client_id),
            "value": _shown(c.get("clv"), "{:,.0f}"),
            "p_alive": _shown(c.get("p_alive"), "{:.0%}"),
            "risk": _shown(c.get("churn_risk")),
            "history": f"{_shown(orders, '{:.0f}')} orders, {_shown(spend, '{:,.0f}')} spent, last order {_shown(days, '{:.0f}')} days ago.",
            "segments": [{"basis": _basis_label(col), "label": str(c[col])} for col in segment_cols if col in c and pd.notna(c[col])],
            "action": _shown(c.get("next_action")),
            "message": _shown(c.get("action_message")),
            "suggest": recs,
        })
    return cards


def client_cards_html(contacts: pd.DataFrame, segment_cols: list[str], max_cards: int = 24) -> str:
    """Client cards as HTML (``card-grid`` of ``card``): value, risk, segments, history, action, products.

    Rendered from the ``clienteling_cards.html.j2`` template with autoescaping, so segment, product
    and action strings show as text. Only the columns named here are shown (no names or contact
    details; see :func:`client_cards`).
    """
    return render_template("clienteling_cards.html.j2", cards=client_cards(contacts, segment_cols, max_cards))


def crm_export(contacts: pd.DataFrame, extra: list[str] | None = None) -> pd.DataFrame:
    """Columns a CRM or e-mail tool can import: id, rank, action, value, risk, segments, recommendations."""
    base = ["priority_rank", "next_action", "action_message", "priority_score", "clv", "p_alive", "churn_risk", "value_tier"]
    cols = [c for c in base if c in contacts] + [c for c in contacts.columns if c.endswith("_segment") or c.startswith("recommended_")] + list(extra or [])
    out = contacts[cols].reset_index().rename(columns={"index": "customer_id"})
    return out.round({"priority_score": 2, "clv": 2, "p_alive": 4})


def summary_lines(contacts: pd.DataFrame) -> dict[str, Any]:
    """Headline for the run's front page."""
    counts = contacts["next_action"].value_counts()
    return {"title": "Clienteling", "lines": [
        f"{len(contacts):,} clients on the contact list; first actions: " + ", ".join(f"{k} {v}" for k, v in counts.head(3).items()) + ".",
    ]}


def client_profiles(features: pd.DataFrame, labels: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per client: purchase history features joined with every basis's labels and scores.

    Without a value page in the run, ``clv`` falls back to historic spend (so priorities still work).
    """
    keep = [c for c in ("frequency", "recency_days", "tenure_days", "total_spend", "mean_order_value", "favourite_category", "favourite_channel") if c in features]
    frame = features[keep].copy()
    for lab in labels.values():
        extra = [c for c in lab.columns if c != "customer_id" and c not in frame and not c.startswith(("r_score", "f_score", "m_score"))]
        frame = frame.join(lab.set_index("customer_id")[extra], how="left")
    if "clv" not in frame:
        frame["clv"] = frame["total_spend"]
    return frame


def evaluation_sentence(evaluation: EvaluationResult, method: str = "ease") -> str:
    """What the evaluation shows, in one or two sentences built from its numbers."""
    t = evaluation.table.set_index("recommender")
    k, mine, pop = evaluation.k, t.loc[method, "hit_rate"], t.loc["popularity", "hit_rate"]
    text = (f"Held out from {evaluation.split.date()}: for {evaluation.n_test_clients:,} returning clients, {mine:.0%} bought at least one "
            f"of the {k} products suggested by `{method}`, against {pop:.0%} for the most popular products")
    if "segment_popularity" in t.index:
        text += f" and {t.loc['segment_popularity', 'hit_rate']:.0%} for the most popular in their segment"
    lift = mine / pop if pop > 0 else float("nan")
    verdict = ("it earns its place on the cards" if lift >= 1.2 else
               "it barely beats popularity here: treat the suggestions as popular picks")
    return text + f" ({lift:.2f}× popularity): {verdict}."
