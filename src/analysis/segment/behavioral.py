"""Behavioral segmentation: RFM scores and named RFM segments, and clusters of purchase behaviour.

RFM: recency, frequency and monetary scores 1-5 (quantiles by default, or fixed edges), mapped to
named segments (Champions, Loyal, At risk, ...) by an editable rule table
(``analysis/data/rfm_segments.yaml``).

Clusters: a scikit-learn pipeline (log transform of skewed features, standard scaling, k-means)
on customer features from :mod:`analysis.features`; k is chosen by
:mod:`analysis.segment.selection` and each cluster is described in plain words.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from .common import size_order
from .selection import KChoice, choose_k, evaluate_k

#: Features used for behavioral clusters when present, and whether they are log-transformed.
CLUSTER_FEATURES: dict[str, bool] = {
    "recency_days": True,
    "frequency": True,
    "mean_order_value": True,
    "tenure_days": True,
    "favourite_category_share": False,
    "sessions_per_month": True,
}


# ------------------------------------------------------------------------------------------
# RFM
# ------------------------------------------------------------------------------------------


def _score(values: pd.Series, n: int, edges: list[float] | None, higher_is_better: bool) -> pd.Series:
    if edges is not None:
        score = pd.cut(values, bins=[-np.inf, *edges, np.inf], labels=False).astype(int) + 1
        return score if higher_is_better else (len(edges) + 2 - score)
    # ties share a score: percentile rank of the average position
    pct = values.rank(method="average", pct=True, ascending=higher_is_better)
    return np.ceil(pct * n).clip(1, n).astype(int)


def rfm_scores(features: pd.DataFrame, *, n_scores: int = 5, edges: dict[str, list[float]] | None = None) -> pd.DataFrame:
    """R, F and M scores from ``recency_days``, ``frequency`` and ``total_spend``.

    Parameters
    ----------
    features : DataFrame
        Output of :func:`analysis.features.customer_features`.
    n_scores : int
        Number of quantile bins (5 gives scores 1..5, 5 best).
    edges : dict, optional
        Fixed inner bin edges per score, e.g. ``{"r": [30, 90, 180, 365], ...}`` (recency in days,
        ascending; a lower recency scores higher). Overrides quantiles for that score.

    Returns
    -------
    DataFrame with ``r_score``, ``f_score``, ``m_score`` and ``rfm_cell`` (e.g. ``"545"``).
    """
    edges = edges or {}
    out = pd.DataFrame(index=features.index)
    out["r_score"] = _score(features["recency_days"], n_scores, edges.get("r"), higher_is_better=False)
    out["f_score"] = _score(features["frequency"], n_scores, edges.get("f"), higher_is_better=True)
    out["m_score"] = _score(features["total_spend"], n_scores, edges.get("m"), higher_is_better=True)
    out["rfm_cell"] = out["r_score"].astype(str) + out["f_score"].astype(str) + out["m_score"].astype(str)
    return out


def rfm_segments(scores: pd.DataFrame, rules: dict[str, Any]) -> pd.Series:
    """Name each customer's RFM segment: the first rule whose score ranges contain theirs.

    Customers no rule matches are labelled ``"Other"`` (a rule table can be partial).
    """
    segment = pd.Series(pd.NA, index=scores.index, dtype=object)
    for rule in rules["rules"]:
        match = pd.Series(True, index=scores.index)
        for key in ("r", "f", "m"):
            if key in rule:
                lo, hi = rule[key]
                match &= scores[f"{key}_score"].between(lo, hi)
        segment[match & segment.isna()] = rule["segment"]
    return segment.fillna("Other").rename("rfm_segment")


def segment_summary(labels: pd.Series, features: pd.DataFrame, value_col: str = "total_spend") -> pd.DataFrame:
    """Size, share of customers, revenue share and medians per segment, largest revenue first."""
    frame = features.assign(segment=labels)
    total_value = frame[value_col].sum()
    out = frame.groupby("segment", observed=True).agg(
        customers=("frequency", "size"),
        revenue=(value_col, "sum"),
        median_recency_days=("recency_days", "median"),
        median_orders=("frequency", "median"),
        median_order_value=("mean_order_value", "median"),
    )
    out.insert(1, "customers_pct", 100 * out["customers"] / len(frame))
    out.insert(3, "revenue_pct", 100 * out["revenue"] / total_value if total_value else np.nan)
    return out.sort_values("revenue", ascending=False).round(1)


# ------------------------------------------------------------------------------------------
# Clusters
# ------------------------------------------------------------------------------------------


def cluster_columns(features: pd.DataFrame) -> list[str]:
    """Cluster features available in ``features`` (with fewer than half missing)."""
    return [c for c in CLUSTER_FEATURES if c in features and features[c].notna().mean() > 0.5]


def make_preprocessor(columns: list[str]) -> ColumnTransformer:
    """log1p on skewed features (robust to their long tails), then standard scaling; missing -> median.

    Standard rather than robust scaling after the log: with many one-order customers the
    interquartile range of frequency collapses, and robust scaling lets it dominate the distance.
    """
    from sklearn.impute import SimpleImputer

    logged = [c for c in columns if CLUSTER_FEATURES.get(c, False)]
    plain = [c for c in columns if c not in logged]
    parts = []
    if logged:
        parts.append(("log", make_pipeline(SimpleImputer(strategy="median"), FunctionTransformer(np.log1p, feature_names_out="one-to-one"), StandardScaler()), logged))
    if plain:
        parts.append(("plain", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), plain))
    return ColumnTransformer(parts)


class BehavioralClusters(ClusterMixin, BaseEstimator):
    """K-means on transformed customer features, with k chosen from evidence.

    Parameters
    ----------
    n_clusters : int or None
        Fixed k; None chooses from ``k_range`` by :func:`analysis.segment.selection.choose_k`.
    k_range : tuple
        Candidate k (inclusive bounds).
    columns : list of str, optional
        Feature columns; default :func:`cluster_columns`.
    n_bootstrap, sample_size : int
        Bootstrap refits per k for stability; silhouette sample size.
    random_state : int, optional

    Attributes
    ----------
    labels_ : ndarray
    k_choice_ : KChoice
        Evidence table (cost, silhouette, stability per k) and the reason for k.
    pipeline_ : Pipeline
    columns_ : list of str
    """

    def __init__(self, n_clusters: int | None = None, k_range: tuple[int, int] = (2, 8), columns: list[str] | None = None,
                 n_bootstrap: int = 5, sample_size: int = 3000, random_state: int | None = None):
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.columns = columns
        self.n_bootstrap = n_bootstrap
        self.sample_size = sample_size
        self.random_state = random_state

    def _kmeans(self, k: int, seed: int) -> KMeans:
        return KMeans(n_clusters=k, n_init=10, random_state=seed)

    def fit(self, features: pd.DataFrame, y: Any = None) -> BehavioralClusters:
        self.columns_ = list(self.columns or cluster_columns(features))
        pre = make_preprocessor(self.columns_).fit(features[self.columns_])
        X = pre.transform(features[self.columns_])
        n_distinct = len(np.unique(np.round(X, 9), axis=0))
        lo, hi = self.k_range
        if self.n_clusters is not None and self.n_clusters >= n_distinct:
            raise ValueError(
                f"k={self.n_clusters} behavioral clusters were asked for, but only {n_distinct} customers have distinct "
                f"behaviour. Lower k (params.13_behavioral.k) below {n_distinct}, or leave it empty to choose from the evidence."
            )
        candidates = set(range(lo, hi + 1)) | ({self.n_clusters} if self.n_clusters is not None else set())
        ks = sorted(k for k in candidates if k < n_distinct)
        if not ks:
            raise ValueError(f"behavioral clusters need at least {lo + 1} customers with distinct behaviour; found {n_distinct}.")
        evidence, _ = evaluate_k(self._kmeans, X, ks, n_bootstrap=self.n_bootstrap, sample_size=self.sample_size, random_state=self.random_state)
        self.k_choice_: KChoice = choose_k(evidence, fixed_k=self.n_clusters)
        k = self.k_choice_.k
        kmeans = self._kmeans(k, 0 if self.random_state is None else int(self.random_state)).fit(X)
        self.pipeline_ = Pipeline([("prep", pre), ("kmeans", kmeans)])
        self._order = size_order(kmeans.labels_)
        self.labels_ = self._order[kmeans.labels_]
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "pipeline_")
        raw = self.pipeline_.predict(features[self.columns_])
        return self._order[raw]


def describe_clusters(features: pd.DataFrame, labels: np.ndarray | pd.Series) -> pd.DataFrame:
    """Each cluster in plain words, from its medians relative to all customers.

    Returns one row per cluster with ``segment`` (a readable, unique name), ``description``,
    ``customers``, and the medians behind the words.
    """
    frame = features.assign(_cluster=np.asarray(labels))
    overall = features.median(numeric_only=True)
    med = frame.groupby("_cluster").median(numeric_only=True)
    ratio = med / overall.replace(0, np.nan)  # cluster median relative to all customers
    fav = frame.groupby("_cluster")["favourite_category"].agg(lambda s: s.mode().iat[0]) if "favourite_category" in frame else None
    concentrated = "favourite_category_share" in med and overall.get("favourite_category_share", 1) < 0.95
    rows = []
    for cluster, m in med.iterrows():  # one iteration per cluster (a handful), not per customer
        r = ratio.loc[cluster].fillna(1.0)
        words = []
        if r["recency_days"] > 2:
            words.append(f"lapsed (last order ~{m['recency_days'] / 30.4:.0f} months ago)")
        elif r["tenure_days"] < 0.5:
            words.append("new")
        elif r["recency_days"] < 0.5:
            words.append("recently active")
        if r["frequency"] >= 1.5 or m["frequency"] >= 2 * max(overall["frequency"], 1):
            words.append("frequent")
        elif r["frequency"] <= 0.67:
            words.append("infrequent")
        if r["mean_order_value"] >= 1.5:
            words.append("big baskets")
        elif r["mean_order_value"] <= 0.67:
            words.append("small baskets")
        if concentrated and m["favourite_category_share"] >= 0.7:
            words.append(f"loyal to one category ({fav[cluster]})" if fav is not None else "loyal to one category")
        elif concentrated and m["favourite_category_share"] < 0.5:
            words.append("spread across categories")
        if not words:
            words.append("average buyers")
        rows.append({"cluster": int(cluster), "description": ", ".join(words), "customers": int((frame["_cluster"] == cluster).sum()),
                     **{f"median_{c}": round(float(m[c]), 2) for c in ("recency_days", "frequency", "mean_order_value", "tenure_days") if c in m}})
    out = pd.DataFrame(rows)
    names = out["description"].str.split(" \\(").str[0].str.split(", ").str[:2].str.join(", ").str.capitalize()
    dup = names.duplicated(keep=False)
    out["segment"] = np.where(dup, names + " (" + (out["cluster"] + 1).astype(str) + ")", names)
    return out[["cluster", "segment", "description", "customers"] + [c for c in out.columns if c.startswith("median_")]]


def behavioral_labels(
    index: pd.Index, scores: pd.DataFrame, rfm: pd.Series, clusters: np.ndarray, descriptions: pd.DataFrame
) -> pd.DataFrame:
    """Per-customer labels of this basis, as saved for ``exports/customers.csv``."""
    names = descriptions.set_index("cluster")["segment"]
    return pd.DataFrame(
        {
            "customer_id": index.astype(str),
            "rfm_segment": rfm.to_numpy(),
            "r_score": scores["r_score"].to_numpy(),
            "f_score": scores["f_score"].to_numpy(),
            "m_score": scores["m_score"].to_numpy(),
            "behavioral_cluster": np.asarray(clusters),
            "behavioral_segment": names.reindex(np.asarray(clusters)).to_numpy(),
        }
    )


def segment_profiles(summary: pd.DataFrame, descriptions: dict[str, str] | None = None) -> pd.DataFrame:
    """A :func:`segment_summary` as rows for ``exports/segments.csv`` (``segment`` first)."""
    out = summary.reset_index().rename(columns={summary.index.name or "index": "segment"})
    if descriptions:
        out["description"] = out["segment"].map(descriptions)
    return out


def rfm_headline(summary: pd.DataFrame) -> str:
    """One sentence on where revenue concentrates among RFM segments."""
    top = summary.sort_values("revenue_pct", ascending=False).iloc[0]
    line = f"{top.name} are {top.customers_pct:.0f}% of customers and bring {top.revenue_pct:.0f}% of revenue."
    at_risk = summary.loc[summary.index.isin(["At risk", "Can't lose them"])]
    if len(at_risk):
        line += (
            f" {at_risk['customers'].sum():,.0f} customers who used to buy often have gone quiet (At risk / Can't lose them): "
            f"{at_risk['revenue_pct'].sum():.0f}% of past revenue."
        )
    return line
