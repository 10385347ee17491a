"""Clienteling: one-to-one follow-up built on the segments.

Segmentation groups customers for campaigns; clienteling serves each client individually. This
module turns a run's per-customer value, behaviour and segment labels into:

* a prioritised contact list (who to contact first, why, and with what next best action),
* product recommendations per client (item-to-item co-purchase, vectorised with sparse
  matrices; popular products fill in for clients with little history),
* client cards (HTML from a Jinja2 template, autoescaped, no PII) an associate can read on a phone,
* a CRM / e-mail tool import file.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .privacy import looks_like_contact
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


def recommend_products(transactions: pd.DataFrame, n: int = 3, customers: pd.Index | None = None, chunk: int = 20_000) -> pd.DataFrame:
    """Top-``n`` product recommendations per client from item-to-item co-purchase.

    Scores are ``X @ S`` where ``X`` is the client x product purchase matrix (1 = bought) and
    ``S`` the product x product cosine similarity of co-purchase; products a client already bought
    are excluded. Clients with no co-purchase signal get the most popular products they do not own.

    Returns one row per client and rank: ``customer_id``, ``rank``, ``product_id``, ``score``.
    """
    tx = transactions[["customer_id", "product_id"]].drop_duplicates()
    cust_codes, cust_index = pd.factorize(tx["customer_id"], sort=True)
    prod_codes, prod_index = pd.factorize(tx["product_id"], sort=True)
    X = sparse.csr_matrix((np.ones(len(tx), dtype=np.float32), (cust_codes, prod_codes)), shape=(len(cust_index), len(prod_index)))
    popularity = np.asarray(X.sum(axis=0)).ravel()
    norms = np.sqrt(popularity)
    co = (X.T @ X).tocsr().astype(np.float32)
    co.setdiag(0)
    inv = sparse.diags(1.0 / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    sim = (inv @ co @ inv).tocsr()
    pop_score = (popularity / max(popularity.max(), 1)) * 1e-3  # tie-breaker and cold-start fill
    wanted = np.arange(len(cust_index)) if customers is None else cust_index.get_indexer(customers.astype(str))
    wanted = wanted[wanted >= 0]
    n = min(n, len(prod_index))
    rows = []
    for start in range(0, len(wanted), chunk):  # chunks of clients bound memory; each chunk is one matrix product
        idx = wanted[start:start + chunk]
        owned = X[idx]
        scores = np.asarray((owned @ sim).todense()) + pop_score
        scores[owned.toarray() > 0] = -np.inf
        top = np.argpartition(-scores, kth=n - 1, axis=1)[:, :n]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top, top_scores = np.take_along_axis(top, order, axis=1), np.take_along_axis(top_scores, order, axis=1)
        rows.append(pd.DataFrame({
            "customer_id": np.repeat(cust_index[idx].to_numpy(), n),
            "rank": np.tile(np.arange(1, n + 1), len(idx)),
            "product_id": prod_index[top.ravel()].to_numpy(),
            "score": top_scores.ravel(),
        }))
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["customer_id", "rank", "product_id", "score"])
    return out[np.isfinite(out["score"])].reset_index(drop=True)


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
