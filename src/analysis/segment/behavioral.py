"""Behavioral segmentation: RFM scores and named RFM segments, and clusters of purchase behaviour.

RFM: recency, frequency and monetary scores 1-5 (quantiles by default, or fixed edges), mapped to
named segments (Champions, Loyal, At risk, ...) by an editable rule table
(``analysis/data/rfm_segments.yaml``).

Clusters: a scikit-learn pipeline (log transform of skewed features, standard scaling, k-means)
on customer features from :mod:`analysis.features`; k is chosen by
:mod:`analysis.segment.selection` and each cluster is described in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted

from .base import BaseSegmenter, SegmentationResult

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
    out.insert(4, "revenue_per_customer", out["revenue"] / out["customers"])
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


class BehavioralClusters(BaseSegmenter):
    """K-means on transformed customer features, with k chosen from evidence.

    The shared fit (candidate k, evidence, verdict against shuffled data, refit, size order) is
    :class:`analysis.segment.base.BaseSegmenter`'s; this class says which features and how they
    are scaled.

    Parameters
    ----------
    n_clusters : int or None
        Fixed k (``params.13_behavioral.k``); None chooses from ``k_range``.
    k_range : tuple
        Candidate k (inclusive bounds).
    columns : list of str, optional
        Feature columns; default :func:`cluster_columns`.
    n_bootstrap, sample_size : int
        Bootstrap refits per k for stability; silhouette sample size.
    min_segment_pct : float
        k whose smallest cluster is under this % of customers are not chosen.
    n_reference : int
        Fits on shuffled data for the verdict.
    random_state : int, optional

    Attributes
    ----------
    labels_ : ndarray
    k_choice_ : KChoice
        Evidence table (cost, silhouette, stability per k) and the reason for k.
    verdict_ : Verdict
    preprocessor_ : ColumnTransformer
    model_ : KMeans
    columns_ : list of str

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> f = pd.DataFrame({"frequency": np.r_[rng.poisson(2, 150), rng.poisson(20, 150)] + 1,
    ...                   "recency_days": np.r_[rng.uniform(200, 400, 150), rng.uniform(1, 30, 150)]})
    >>> model = BehavioralClusters(k_range=(2, 3), n_bootstrap=2, random_state=0).fit(f)
    >>> model.k_choice_.k, model.verdict_.level
    (2, 'clear')
    """

    basis = "behavioral"
    notebook = "13_behavioral"

    def __init__(self, n_clusters: int | None = None, k_range: tuple[int, int] = (2, 8), columns: list[str] | None = None,
                 n_bootstrap: int = 5, sample_size: int = 3000, min_segment_pct: float = 2.0, n_reference: int = 3,
                 random_state: int | None = None):
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.columns = columns
        self.n_bootstrap = n_bootstrap
        self.sample_size = sample_size
        self.min_segment_pct = min_segment_pct
        self.n_reference = n_reference
        self.random_state = random_state

    def _encode(self, features: pd.DataFrame, fit: bool) -> np.ndarray:
        if fit:
            self.columns_ = list(self.columns or cluster_columns(features))
            self.preprocessor_ = make_preprocessor(self.columns_).fit(features[self.columns_])
        return np.asarray(self.preprocessor_.transform(features[self.columns_]), dtype=float)

    def _make_model(self, k: int, seed: int) -> KMeans:
        return KMeans(n_clusters=k, n_init=10, random_state=seed)

    @property
    def pipeline_(self) -> Pipeline:
        """Scaling and k-means as one scikit-learn pipeline (raw cluster ids, not size order)."""
        check_is_fitted(self, "model_")
        return Pipeline([("prep", self.preprocessor_), ("kmeans", self.model_)])


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


# ------------------------------------------------------------------------------------------
# One call for a notebook
# ------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class BehavioralResult(SegmentationResult):
    """RFM segments and behavioral clusters, as the behavioral page shows and saves them.

    ``model`` is the fitted :class:`BehavioralClusters`; ``extra_profiles["rfm"]`` the RFM
    segment profiles.
    """

    basis: ClassVar[str] = "behavioral"
    title: ClassVar[str] = "Behaviour"

    features: pd.DataFrame = field(default_factory=pd.DataFrame)
    rfm_rules: dict[str, Any] = field(default_factory=dict)
    rfm_scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    rfm_segment: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    rfm_summary: pd.DataFrame = field(default_factory=pd.DataFrame)
    descriptions: pd.DataFrame = field(default_factory=pd.DataFrame)
    cluster_summary: pd.DataFrame = field(default_factory=pd.DataFrame)

    def rfm_headline(self) -> str:
        return rfm_headline(self.rfm_summary)

    def summary_lines(self) -> list[str]:
        return [self.rfm_headline(),
                f"{self.k_choice.k} behavioral clusters: " + "; ".join(self.descriptions["segment"]) + "."]

    def payload(self) -> dict[str, Any]:
        return {"method": "kmeans", "features": self.model.columns_,
                "rfm_segments": self.rfm_summary["customers"].astype(int).to_dict()}


def segment_behavioral(
    features: pd.DataFrame,
    *,
    rfm_rules: dict[str, Any],
    k: int | None = None,
    k_range: tuple[int, int] = (2, 8),
    n_bootstrap: int = 5,
    min_segment_size: int = 30,
    random_state: int | None = 42,
) -> BehavioralResult:
    """RFM segments and behavioral clusters of customer features.

    Parameters
    ----------
    features : DataFrame
        Output of :func:`analysis.features.customer_features` (index ``customer_id``).
    rfm_rules : dict
        The RFM rule table (``analysis/data/rfm_segments.yaml`` or the user's own).
    k, k_range, n_bootstrap
        See :class:`BehavioralClusters`.
    min_segment_size : int
        Smallest useful cluster (as a share of customers, at least 2%).
    random_state : int, optional

    Returns
    -------
    BehavioralResult
    """
    if len(features) == 0:
        return BehavioralResult(available=False, message="Behavioral segmentation needs customers with purchases; this run has none.")
    scores = rfm_scores(features, n_scores=rfm_rules.get("scores", 5))
    rfm = rfm_segments(scores, rfm_rules)
    rfm_summary = segment_summary(rfm, features)
    rfm_descriptions = {r["segment"]: r.get("description", "") for r in rfm_rules["rules"]}
    model = BehavioralClusters(n_clusters=k, k_range=k_range, n_bootstrap=n_bootstrap,
                               min_segment_pct=max(2.0, 100.0 * min_segment_size / len(features)), random_state=random_state)
    try:
        model.fit(features)
    except ValueError as exc:
        if k is not None:
            raise
        return BehavioralResult(available=False, message=f"Behavioral clusters are not possible on this data: {exc}",
                                features=features, rfm_rules=rfm_rules, rfm_scores=scores, rfm_segment=rfm, rfm_summary=rfm_summary)
    descriptions = describe_clusters(features, model.labels_)
    names = descriptions.set_index("cluster")["segment"].reindex(model.labels_).set_axis(features.index)
    cluster_summary = segment_summary(names, features)
    return BehavioralResult(
        available=True, notes=list(model.notes_),
        labels=behavioral_labels(features.index, scores, rfm, model.labels_, descriptions),
        profiles=segment_profiles(cluster_summary, descriptions.set_index("segment")["description"].to_dict()),
        extra_profiles={"rfm": segment_profiles(rfm_summary, rfm_descriptions)},
        model=model, features=features, rfm_rules=rfm_rules, rfm_scores=scores, rfm_segment=rfm, rfm_summary=rfm_summary,
        descriptions=descriptions, cluster_summary=cluster_summary,
    )
