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

import re
from pathlib import Path
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
from .text import MISSING, sentence

#: Category attributes a client's facts carry for playbook conditions (when the run has them).
CLIENT_FACTS = ("value_tier", "churn_risk", "rfm_segment", "favourite_channel", "favourite_category", "life_stage", "income_band", "household")

#: Transaction columns the recommendations read (:func:`evaluate_recommendations`, :func:`recommend_with_reasons`,
#: :func:`client_card_html`): who bought what, and when (the time split); a page passes only these.
TRANSACTION_COLUMNS = ("customer_id", "product_id", "timestamp")
#: Read as well where the data have them: product names shown instead of ids.
OPTIONAL_TRANSACTION_COLUMNS = ("product_name",)

#: Numeric attributes a playbook's ``high`` / ``low`` conditions can see per client (standardised).
CLIENT_TRAITS = ("recency_days", "frequency", "tenure_days", "mean_order_value", "total_spend", "repeat_product_rate", "sessions_per_month")


def client_facts(clients: pd.DataFrame, lapsed: pd.Series | None = None, population: pd.DataFrame | None = None) -> list[dict[str, Any]]:
    """Each client as a one-person persona, in the shape :func:`analysis.personas.playbook.condition_holds` reads.

    Category facts are the client's own levels (``share(attr=level)`` is 1 or 0); a numeric trait's
    effect size is the client's standardised value (so ``high: recency_days`` means well above the
    average client of ``population``, default ``clients``); ``value_index`` is CLV over the average; ``lapsed`` comes from the churn model
    (churn risk "high") or, where it says nothing, from the client's own buying rhythm.
    """
    cats = [c for c in CLIENT_FACTS if c in clients] + [c for c in clients.columns if str(c).endswith("_segment") and c not in CLIENT_FACTS]
    nums = [c for c in CLIENT_TRAITS if c in clients] + [c for c in clients.columns if str(c).startswith("factor_")]
    base = population if population is not None else clients
    nums = [c for c in nums if c in base]
    reference = base[nums].astype(float)
    z = (clients[nums].astype(float) - reference.mean()) / reference.std(ddof=0).replace(0, np.nan)
    value = clients["clv"].astype(float) if "clv" in clients else pd.Series(np.nan, index=clients.index)
    mean_value = base["clv"].astype(float).mean() if "clv" in base else np.nan
    value_index = value / mean_value if mean_value > 0 else pd.Series(np.nan, index=clients.index)
    lapsed = lapsed if lapsed is not None else pd.Series(False, index=clients.index)
    cat_values = clients[cats].astype(object).where(clients[cats].notna(), None).to_numpy()
    z_values = z.to_numpy()
    facts = []
    for i in range(len(clients)):  # one small dict per client; the rule engine reads dicts
        f: dict[str, Any] = {"value_index": float(value_index.iloc[i]), "lapsed": bool(lapsed.iloc[i])}
        shares, effects = {}, []
        for attr, level in zip(cats, cat_values[i]):
            if level is not None:
                f[attr] = str(level)
                shares[(attr, str(level))] = 1.0
                effects.append(("category", attr, str(level), 1.0))
        effects += [("numeric", attr, None, float(v)) for attr, v in zip(nums, z_values[i]) if np.isfinite(v)]
        f["_shares"], f["_effects"] = shares, effects
        facts.append(f)
    return facts


def lapsed_clients(clients: pd.DataFrame) -> pd.Series:
    """Lapsed per the churn model (churn risk "high"); clients it does not score fall back to being overdue on their own rhythm."""
    from .segment.behavioral import overdue  # the buying-rhythm rule the personas use too

    churn = clients["churn_risk"] if "churn_risk" in clients else pd.Series(pd.NA, index=clients.index)
    late = overdue(clients) if "recency_days" in clients else pd.Series(pd.NA, index=clients.index, dtype="boolean")
    return (churn.eq("high")).where(churn.notna(), late.astype("boolean").fillna(False)).astype(bool)


def next_best_action(clients: pd.DataFrame, playbook: Any = None, population: pd.DataFrame | None = None) -> pd.DataFrame:
    """Action per client from the persona playbook, with lapse judged by the churn model.

    Each client is matched as a one-person persona (:func:`client_facts`) against the playbook's
    rules in order; the first rule that sets an ``offer`` (else any action) names the action.
    Rules marked ``active_only`` (welcome, reward-and-grow) never fire for a lapsed client, so a
    lapsed high-value client gets a win-back, never a thank-you.

    Parameters
    ----------
    clients : one row per client with ``churn_risk``, ``value_tier``, ``clv`` and behaviour where known.
    playbook : a :class:`analysis.personas.playbook.Playbook` (default: the package playbook).
    population : every client of the run, against whom "high" and "low" traits are judged (default: ``clients``).

    Returns
    -------
    DataFrame with ``next_action`` (rule name), ``action_message`` (channel and offer),
    ``action_why`` (the rule's reason) and ``lapsed``.
    """
    from .personas.playbook import condition_holds, load_playbook

    book = playbook if playbook is not None else load_playbook()
    lapsed = lapsed_clients(clients)
    actions, messages, whys = [], [], []
    for f in client_facts(clients, lapsed, population):  # rules are few; each client's facts are checked rule by rule
        chosen = None
        for rule in book.rules:
            if rule.active_only and f["lapsed"]:
                continue
            if condition_holds(rule.when, f, book.thresholds):
                if "offer" in rule.do:
                    chosen = rule
                    break
                chosen = chosen or rule
        if chosen is None:
            actions.append("No action")
            messages.append("No playbook rule matches this client; review the playbook.")
            whys.append("")
            continue
        actions.append(chosen.name)
        parts = [chosen.do[k] for k in ("channel", "offer") if k in chosen.do]
        text = "; ".join(parts)
        messages.append(text[:1].upper() + text[1:] + "." if text else "")
        whys.append(chosen.why)
    return pd.DataFrame({"next_action": actions, "action_message": messages, "action_why": whys, "lapsed": lapsed.to_numpy()},
                        index=clients.index)


def contact_priority(clients: pd.DataFrame, value_col: str = "clv") -> pd.Series:
    """Priority score: value at stake over the CLV horizon, in one unit (formula: :func:`analysis.clv.contact_priority`)."""
    from .clv import contact_priority as value_at_stake  # the formula lives with the value model

    return value_at_stake(clients, value_col=value_col)


def contact_list(clients: pd.DataFrame, top_n: int | None = 200, playbook: Any = None) -> pd.DataFrame:
    """Clients ranked by :func:`contact_priority`, with their next best action (:func:`next_best_action`)."""
    ranked = clients.assign(priority_score=contact_priority(clients)).sort_values(["priority_score"], ascending=False, kind="stable")
    ranked.insert(0, "priority_rank", np.arange(1, len(ranked) + 1))
    ranked = ranked.head(top_n) if top_n else ranked
    return ranked.join(next_best_action(ranked, playbook, population=clients))


def recommend_products(transactions: pd.DataFrame | str | Path, n: int = 3, customers: pd.Index | None = None, chunk: int = 5_000,
                      method: str = "ease") -> pd.DataFrame:
    """Top-``n`` product recommendations per client, never a product the client already bought.

    ``transactions``: order lines, or the path of their Parquet file (read in place by DuckDB; at a
    million clients 2.3 GB peak instead of 3.7 GB with the lines loaded).

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
    transactions : ``customer_id``, ``product_id``, ``timestamp`` (:data:`TRANSACTION_COLUMNS`).
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


def recommend_with_reasons(transactions: pd.DataFrame, n: int = 3, customers: pd.Index | None = None, method: str = "ease",
                           product_names: pd.Series | None = None) -> pd.DataFrame:
    """Recommendations (:func:`recommend_products`) with the reason an associate can say out loud.

    Adds ``because`` (the client's own product that weighs most towards the suggestion) and
    ``reason`` ("Bought X; clients who buy X also buy Y."), product names where known.
    """
    model = recommender(method).fit(transactions)
    recs = model.recommend(customers, n=n)
    because = model.because(recs)
    name = (lambda ids: ids.map(product_names).fillna(ids)) if product_names is not None else (lambda ids: ids)
    shown, bought = name(recs["product_id"]).astype(str), name(because)
    reason = [f"Bought {b}; clients who buy {b} also buy {p}." if isinstance(b, str) else f"Popular with clients like this: {p}."
              for b, p in zip(bought, shown)]
    return recs.assign(because=because, reason=reason)


def recommendations_wide(recs: pd.DataFrame, product_names: pd.Series | None = None) -> pd.DataFrame:
    """One row per client: ``recommended_1..n`` (product names where known), and ``reason_1..n`` when the recommendations carry reasons."""
    labels = recs["product_id"]
    if product_names is not None:
        labels = labels.map(product_names).fillna(labels)
    wide = recs.assign(label=labels.astype(str)).pivot(index="customer_id", columns="rank", values="label")
    wide.columns = [f"recommended_{c}" for c in wide.columns]
    if "reason" in recs:
        reasons = recs.pivot(index="customer_id", columns="rank", values="reason")
        reasons.columns = [f"reason_{c}" for c in reasons.columns]
        wide = wide.join(reasons)
    return wide


#: Config names a list filter may use for a client column.
FILTER_ALIASES = {"days_since_last_order": "recency_days", "segment": "behavioral_segment", "store": "store", "region": "region"}

_COMPARISON = re.compile(r"^\s*(>=|<=|>|<|==|!=)\s*(-?\d+(?:\.\d+)?)\s*$")
_OPERATORS = {">=": "ge", "<=": "le", ">": "gt", "<": "lt", "==": "eq", "!=": "ne"}


def _filter_mask(clients: pd.DataFrame, where: dict[str, Any], list_name: str, position: int) -> tuple[pd.Series, list[str]]:
    """Which clients pass a list's ``where`` filters, and each filter in words."""
    mask = pd.Series(True, index=clients.index)
    words = []
    for key, wanted in where.items():
        col = FILTER_ALIASES.get(key, key) if key not in clients else key
        if col not in clients:
            known = sorted(c for c in clients.columns if not str(c).startswith(("share_", "factor_")))
            raise ValueError(f"contact_lists[{position}] ('{list_name}'): where.{key}: column not found among the run's clients. "
                             f"Found: {known}. Filter on one of these in the run config under contact_lists[{position}].where.")
        values = clients[col]
        m = _COMPARISON.match(str(wanted)) if isinstance(wanted, str) else None
        if m:
            mask &= getattr(pd.to_numeric(values, errors="coerce"), _OPERATORS[m[1]])(float(m[2])).fillna(False)
            words.append(f"{key.replace('_', ' ')} {m[1]} {m[2]}")
        else:
            levels = [str(w) for w in (wanted if isinstance(wanted, list) else [wanted])]
            mask &= values.astype(str).isin(levels)
            words.append(f"{key.replace('_', ' ')} {' or '.join(levels)}")
    return mask, words


def contact_lists(clients: pd.DataFrame, lists: list[Any], playbook: Any = None) -> dict[str, pd.DataFrame]:
    """The config's contact lists: clients who pass each list's filters, by value at stake, capacity honoured.

    Parameters
    ----------
    clients : one row per client (:func:`client_profiles`).
    lists : ``contact_lists`` of the run config (:class:`analysis.config.ContactListConfig` or dicts with
        ``name``, ``where``, ``capacity``, ``per``, ``owner``).
    playbook : for the next best action (default: the package playbook).

    Returns
    -------
    dict
        List name -> ranked clients with ``list_rank``, ``why_on_list`` (the filters in words),
        ``next_action``, ``action_message`` and ``owner`` (when the list names an owner column).
    """
    out = {}
    for position, spec in enumerate(lists):  # a handful of lists from the config
        spec = spec if isinstance(spec, dict) else spec.model_dump()
        name, capacity, per = spec["name"], int(spec.get("capacity") or 50), spec.get("per")
        mask, words = _filter_mask(clients, spec.get("where") or {}, name, position)
        chosen = clients[mask].assign(priority_score=contact_priority(clients[mask]))
        chosen = chosen.sort_values("priority_score", ascending=False, kind="stable")
        if per:
            if per not in chosen:
                raise ValueError(f"contact_lists[{position}] ('{name}'): per: column '{per}' not found among the run's clients; "
                                 f"set contact_lists[{position}].per to a column such as country, region or store.")
            chosen = chosen.groupby(per, sort=False, dropna=False).head(capacity)
        else:
            chosen = chosen.head(capacity)
        chosen = chosen.join(next_best_action(chosen, playbook, population=clients))
        reason = "; ".join(words) if words else "highest value at stake"
        chosen.insert(0, "list_rank", np.arange(1, len(chosen) + 1))
        chosen.insert(1, "why_on_list", [f"On '{name}': {reason}; value at stake {v:,.0f}." for v in chosen["priority_score"]])
        owner = spec.get("owner")
        if owner and owner in chosen:
            chosen.insert(2, "owner", chosen[owner])
        out[name] = chosen
    return out


def for_owner(contacts: pd.DataFrame, owner: str) -> pd.DataFrame:
    """One associate's or store's part of a list (the ``owner`` column); empty when nobody by that name."""
    return contacts[contacts["owner"].astype(str) == str(owner)] if "owner" in contacts else contacts.iloc[0:0]


def _basis_label(column: str) -> str:
    """``rfm_segment`` -> ``RFM``, ``behavioral_segment`` -> ``Behavioral``."""
    basis = column.removesuffix("_segment").replace("_", " ")
    return basis.upper() if basis == "rfm" else basis.capitalize()


def _shown(value: Any, fmt: str = "{}") -> str:
    """A value for a card: formatted, or an en dash when missing."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return MISSING
    return fmt.format(value)


def _next_order(c: pd.Series) -> str:
    """Expected next-purchase window from the client's own rhythm (or overdue)."""
    gap, since = c.get("interpurchase_days"), c.get("recency_days")
    if gap is None or since is None or pd.isna(gap) or pd.isna(since):
        return "Next order: no buying rhythm yet (one order)."
    due = float(gap) - float(since)
    if due >= 0:
        return f"Next order expected within about {max(due, 1):.0f} days (usual gap {float(gap):.0f} days)."
    return f"Overdue: usual gap {float(gap):.0f} days, last order {float(since):.0f} days ago."


def client_cards(contacts: pd.DataFrame, segment_cols: list[str], max_cards: int = 24) -> list[dict[str, Any]]:
    """What each client card shows (plain text, formatted), for the cards template.

    Segments on every basis, value (CLV with its interval), P(alive) and churn risk, the expected
    next-purchase window, favourite category, the next best action with the playbook's reason, and
    recommendations with their reason. A client is named by customer id only. An id that still
    looks like an e-mail address or a phone number (the data contract pseudonymises those, see
    :mod:`analysis.privacy`) is withheld.
    """
    cards = []
    for client_id, c in contacts.head(max_cards).iterrows():  # at most max_cards cards, for display only
        ranks = sorted(int(str(k).rsplit("_", 1)[1]) for k in c.index if str(k).startswith("recommended_") and pd.notna(c[k]))
        suggest = [{"product": str(c[f"recommended_{r}"]), "reason": str(c[f"reason_{r}"]) if pd.notna(c.get(f"reason_{r}")) else ""}
                   for r in ranks]
        orders, spend, days = c.get("frequency"), c.get("total_spend"), c.get("recency_days")
        low, high = c.get("clv_low"), c.get("clv_high")
        interval = f" ({_shown(low, '{:,.0f}')}–{_shown(high, '{:,.0f}')})" if low is not None and high is not None and pd.notna(low) and pd.notna(high) else ""
        cards.append({
            "rank": _shown(c.get("priority_rank"), "{:.0f}"),
            "client": "(id withheld)" if looks_like_contact(str(client_id)) else str(client_id),
            "value": _shown(c.get("clv"), "{:,.0f}") + interval,
            "p_alive": _shown(c.get("p_alive"), "{:.0%}"),
            "risk": _shown(c.get("churn_risk")),
            "tier": _shown(c.get("value_tier")),
            "history": f"{_shown(orders, '{:.0f}')} orders, {_shown(spend, '{:,.0f}')} spent, last order {_shown(days, '{:.0f}')} days ago.",
            "next_order": _next_order(c),
            "favourite": _shown(c.get("favourite_category")),
            "segments": [{"basis": _basis_label(col), "label": str(c[col])} for col in segment_cols if col in c and pd.notna(c[col])],
            "action": _shown(c.get("next_action")),
            "message": _shown(c.get("action_message")),
            "why": "" if pd.isna(c.get("action_why", "")) else str(c.get("action_why", "")),
            "suggest": suggest,
        })
    return cards


def client_cards_html(contacts: pd.DataFrame, segment_cols: list[str], max_cards: int = 24, missing: str = "") -> str:
    """Client cards as HTML (``card-grid`` of ``card``): value, risk, segments, history, action, products.

    Rendered from the ``clienteling_cards.html.j2`` template with autoescaping, so segment, product
    and action strings show as text. Only the columns named here are shown (no names or contact
    details; see :func:`client_cards`). ``missing`` is shown instead when there is no card.
    """
    return render_template("clienteling_cards.html.j2", cards=client_cards(contacts, segment_cols, max_cards), missing=missing)


def client_card_html(clients: pd.DataFrame, customer_id: str, transactions: pd.DataFrame, playbook: Any = None,
                     method: str = "ease", n: int = 3, product_names: pd.Series | None = None) -> str:
    """One client's card by customer id (a notebook parameter); an unknown id gives a sentence instead."""
    if not customer_id:
        return render_template("clienteling_cards.html.j2", cards=[], missing="Set the customer_id parameter to see one client's card.")
    if str(customer_id) not in clients.index.astype(str):
        return render_template("clienteling_cards.html.j2", cards=[],
                               missing=f"No client with id '{customer_id}' in this run: check the id (ids are as in the data, e.g. "
                                       f"'{clients.index[0] if len(clients) else '?'}').")
    ranked = contact_list(clients, top_n=None, playbook=playbook)
    one = ranked[ranked.index.astype(str) == str(customer_id)]
    recs = recommend_with_reasons(transactions, n=n, customers=one.index, method=method, product_names=product_names)
    one = one.join(recommendations_wide(recs, product_names)) if len(recs) else one
    return client_cards_html(one, [c for c in one.columns if str(c).endswith("_segment")], max_cards=1)


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


#: Customer columns a contact list may filter on or name an owner by (never contact details).
CLIENT_LOCATION = ("country", "region", "state", "city", "store", "owner", "associate")


def client_profiles(features: pd.DataFrame, labels: dict[str, pd.DataFrame], customers: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per client: purchase history features joined with every basis's labels and scores.

    ``customers`` (optional) adds location, store and owner columns, for contact lists.

    Without a value page in the run, ``clv`` falls back to historic spend (so priorities still work).
    """
    keep = [c for c in ("frequency", "recency_days", "interpurchase_days", "tenure_days", "total_spend", "mean_order_value", "favourite_category", "favourite_channel") if c in features]
    frame = features[keep].copy()
    for lab in labels.values():
        extra = [c for c in lab.columns if c != "customer_id" and c not in frame and not c.startswith(("r_score", "f_score", "m_score"))]
        frame = frame.join(lab.set_index("customer_id")[extra], how="left")
    if customers is not None and "customer_id" in customers:
        where = [c for c in CLIENT_LOCATION if c in customers and c not in frame]
        if where:
            frame = frame.join(customers.drop_duplicates("customer_id").set_index("customer_id")[where], how="left")
    if "clv" not in frame:
        frame["clv"] = frame["total_spend"]
    return frame


def evaluation_sentence(evaluation: EvaluationResult, method: str = "ease") -> str:
    """What the evaluation shows, in one or two sentences built from its numbers."""
    t = evaluation.table.set_index("recommender")
    k, mine, pop = evaluation.k, t.loc[method, "hit_rate"], t.loc["popularity", "hit_rate"]
    text = sentence("Held out from {day}: for {n:,} returning clients, {mine:.0%} bought at least one of the {k} products "
                    "suggested by {method}, against {pop:.0%} for the most popular products",
                    day=str(evaluation.split.date()), n=evaluation.n_test_clients, mine=mine, k=k, method=method, pop=pop)
    if "segment_popularity" in t.index:
        text += sentence(" and {seg:.0%} for the most popular in their segment", seg=t.loc["segment_popularity", "hit_rate"])
    lift = mine / pop if pop > 0 else float("nan")
    verdict = ("it earns its place on the cards" if lift >= 1.2 else
               "it barely beats popularity here: treat the suggestions as popular picks")
    return text + f" ({lift:.2f}× popularity): {verdict}."


def lists_table(lists: dict[str, pd.DataFrame], owner: str = "") -> pd.DataFrame:
    """Every contact list in one table (``contact_list`` first), optionally cut to one associate or store (``owner``)."""
    keep = ["list_rank", "why_on_list", "owner", "next_action", "action_message", "priority_score", "churn_risk", "value_tier"]
    parts = []
    for name, frame in lists.items():  # a handful of lists
        part = for_owner(frame, owner) if owner else frame
        parts.append(part[[c for c in keep if c in part]].assign(contact_list=name))
    if not parts:
        return pd.DataFrame(columns=["contact_list", "customer_id"] + keep)
    table = pd.concat(parts).rename_axis("customer_id").reset_index()
    return table[["contact_list", "customer_id"] + [c for c in keep if c in table]]


def lists_sentence(lists: dict[str, pd.DataFrame], capacities: dict[str, int] | None = None) -> str:
    """How many clients each configured list holds, in words; or how to define lists when there are none."""
    if not lists:
        return ("No contact lists are defined for this run. Add them to the run config under `contact_lists:` "
                "(name, where, capacity, per, owner), e.g. at-risk VIPs per country or second-purchase nudges.")
    parts = [sentence("**{name}**: {n:,} clients", name=name, n=len(frame))
             + (sentence(" (capacity {c:,})", c=capacities[name]) if capacities and name in capacities else "")
             for name, frame in lists.items()]
    return "Contact lists from the run config: " + "; ".join(parts) + "."


#: Contact-detail columns the opt-in CRM export may carry, by kind (see :func:`analysis.privacy.column_name_kind`).
CONTACT_KINDS = {"e-mail": "email", "phone": "phone"}


def contact_details(original: pd.DataFrame, mapping: dict[str, str]) -> pd.DataFrame:
    """E-mail and phone per customer from a raw customers table, for the opt-in CRM export only.

    Kept in memory and written nowhere but ``exports/crm_contacts.*`` (see :func:`crm_contacts`).
    A column counts as a contact detail by its name (``email``, ``phone``, ``mobile`` ...) or when most of
    its values are e-mail addresses or phone numbers.

    Returns one row per ``customer_id`` with ``email`` and/or ``phone`` (empty frame when there are none).
    """
    from .privacy import column_name_kind, email_mask, phone_mask

    id_col = mapping.get("customer_id", "customer_id")
    if id_col not in original:
        return pd.DataFrame(columns=["customer_id"])
    out = pd.DataFrame({"customer_id": original[id_col].astype(str).str.strip()})
    for col in original.columns:  # a customers file has a few dozen columns at most
        if col == id_col:
            continue
        values = original[col]
        kind = CONTACT_KINDS.get(column_name_kind(str(col)) or "")
        if kind is None:
            sample = values.dropna().astype(str).head(500)
            kind = "email" if len(sample) and email_mask(sample).mean() > 0.5 else "phone" if len(sample) and phone_mask(sample).mean() > 0.5 else None
        if kind is not None and kind not in out:
            out[kind] = values.astype("string").str.strip()
    return out.drop_duplicates("customer_id").set_index("customer_id")


def crm_contacts(contacts: pd.DataFrame, details: pd.DataFrame | None = None, lists: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per contact in the shape CRM and e-mail tools import (``exports/crm_contacts.csv`` / ``.jsonl``).

    Columns: ``customer_id``, ``email`` and ``phone`` (only when ``details`` is given, i.e. the config
    opts in with ``crm.include_contact_details``), ``priority_rank``, ``next_action``,
    ``action_message``, ``value_at_stake``, ``clv``, ``p_alive``, ``churn_risk``, ``value_tier``,
    ``recommended_products`` ("; "-separated) and ``tags`` ("|"-separated ``key:value`` tags: segments,
    tier, risk, action and the contact lists the client is on).
    """
    frame = contacts.copy()
    on_lists = pd.Series([[] for _ in range(len(frame))], index=frame.index, dtype=object)
    for name, members in (lists or {}).items():
        for cid in members.index.intersection(frame.index):
            on_lists[cid] = on_lists[cid] + [name]
    tag_cols = [c for c in frame.columns if str(c).endswith("_segment")] + [c for c in ("value_tier", "churn_risk", "next_action") if c in frame]
    tags = []
    for i, cid in enumerate(frame.index):  # one short string per contact
        parts = [f"{c.removesuffix('_segment')}:{frame[c].iloc[i]}" for c in tag_cols if pd.notna(frame[c].iloc[i])]
        parts += [f"list:{name}" for name in on_lists[cid]]
        tags.append("|".join(str(p).replace("|", "/") for p in parts))
    recs = [c for c in frame.columns if str(c).startswith("recommended_")]
    out = pd.DataFrame({"customer_id": frame.index.astype(str)}, index=frame.index)
    if details is not None and len(details.columns):
        out = out.join(details.reindex(frame.index.astype(str)).set_axis(frame.index)[[c for c in ("email", "phone") if c in details]])
    for col, src in (("priority_rank", "priority_rank"), ("next_action", "next_action"), ("action_message", "action_message"),
                     ("value_at_stake", "priority_score"), ("clv", "clv"), ("p_alive", "p_alive"), ("churn_risk", "churn_risk"),
                     ("value_tier", "value_tier")):
        if src in frame:
            out[col] = frame[src]
    out["recommended_products"] = frame[recs].apply(lambda r: "; ".join(str(v) for v in r if pd.notna(v)), axis=1) if recs else ""
    out["tags"] = tags
    return out.reset_index(drop=True).round({"value_at_stake": 2, "clv": 2, "p_alive": 4})


def opted_in_contact_details(cfg: Any) -> pd.DataFrame | None:
    """Contact details for the CRM export, read afresh from the customers source, only when the config opts in.

    ``None`` unless ``crm.include_contact_details`` is true and the run has a customers source. The
    frame lives in memory only; the one place it may be written is ``exports/crm_contacts.*``.
    """
    if not cfg.crm.include_contact_details or "customers" not in cfg.sources:
        return None
    from .io import read_source  # the raw file again: the prepared tables never hold contact details

    raw = read_source(cfg, "customers")
    return contact_details(raw.original, raw.mapping)


def crm_sentence(crm: pd.DataFrame, opted_in: bool) -> str:
    """What the CRM export holds, without showing any contact detail."""
    detail = [c for c in ("email", "phone") if c in crm]
    if opted_in and detail:
        have = int(crm[detail].notna().any(axis=1).sum())
        privacy = (f"Contact details ({', '.join(detail)}) are included for {have:,} of them because the run config opts in "
                   "(`crm.include_contact_details: true`); this is the only file that carries them.")
    elif opted_in:
        privacy = "The config opts in to contact details, but the customers source has no e-mail or phone column."
    else:
        privacy = ("No contact details: join on `customer_id` in your CRM, or opt in with `crm.include_contact_details: true` "
                   "in the run config.")
    return (f"Wrote {len(crm):,} contacts to `crm_contacts.csv` and `crm_contacts.jsonl` (one row per contact; tags in one "
            f"`|`-separated column). {privacy}")
