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

from ..features import constant_features
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


def tie_aware_edges(values: pd.Series, n: int) -> list[float]:
    """Inner cut points that split ``values`` into ``n`` groups as equal as ties allow.

    Quantile cut points fall inside runs of tied values (52% of CDNOW customers bought once), so
    ranking and cutting collapses scores. Here cuts are placed only *between distinct values*:
    for each target share j/n, the cut between two distinct values whose cumulative share is
    closest, keeping cuts increasing and leaving one distinct value per remaining group. With
    fewer than ``n`` distinct values each value is its own group.

    Parameters
    ----------
    values : Series
        Numeric values (missing values are ignored).
    n : int
        Number of groups.

    Returns
    -------
    list of float
        Ascending inner edges: a value ``<= edges[i]`` falls in group ``i`` or lower.

    Examples
    --------
    >>> tie_aware_edges(pd.Series([1] * 52 + [2] * 20 + [3] * 10 + [4] * 6 + list(range(5, 17))), 5)
    [1.0, 2.0, 3.0, 4.0]
    >>> tie_aware_edges(pd.Series(np.arange(100.0)), 4)
    [24.0, 49.0, 74.0]
    """
    counts = values.dropna().value_counts().sort_index()
    distinct = counts.index.to_numpy(dtype=float)
    if len(distinct) <= n:
        return distinct[:-1].tolist()
    cum = counts.cumsum().to_numpy() / counts.sum()
    edges, prev = [], -1
    for j in range(1, n):  # n - 1 cuts (a handful), each a vectorised search
        lo, hi = prev + 1, len(distinct) - 1 - (n - 1 - j)
        best = lo + int(np.argmin(np.abs(cum[lo:hi] - j / n)))
        edges.append(float(distinct[best]))
        prev = best
    return edges


def _score(values: pd.Series, n: int, edges: list[float], higher_is_better: bool) -> pd.Series:
    group = np.searchsorted(np.asarray(edges, dtype=float), values.to_numpy(dtype=float), side="left") + 1
    score = group if higher_is_better else n + 1 - group
    return pd.Series(np.clip(score, 1, n), index=values.index, dtype=int)


#: The feature each RFM score is read from, and whether a higher value scores higher.
RFM_SOURCES = {"r": ("recency_days", False), "f": ("frequency", True), "m": ("total_spend", True)}


def rfm_scores(features: pd.DataFrame, *, n_scores: int = 5, edges: dict[str, list[float]] | None = None) -> pd.DataFrame:
    """R, F and M scores from ``recency_days``, ``frequency`` and ``total_spend``, robust to ties.

    Scores run 1..``n_scores`` (best = ``n_scores``: most recent, most orders, highest spend).
    Cut points come from :func:`tie_aware_edges` (as equal groups as ties allow) unless fixed
    edges are given. The cut points used are in ``result.attrs["edges"]`` (to score later data
    the same way) and a sentence per score whose levels are not all used in
    ``result.attrs["notes"]``.

    Parameters
    ----------
    features : DataFrame
        Output of :func:`analysis.features.customer_features`.
    n_scores : int
        Number of score levels (5 gives scores 1..5).
    edges : dict, optional
        Fixed inner bin edges per score, e.g. ``{"r": [30, 90, 180, 365], ...}`` (recency in days,
        ascending; a lower recency scores higher). Overrides the data's cut points for that score.

    Returns
    -------
    DataFrame with ``r_score``, ``f_score``, ``m_score`` and ``rfm_cell`` (e.g. ``"545"``).
    """
    fixed = edges or {}
    out = pd.DataFrame(index=features.index)
    used: dict[str, list[float]] = {}
    notes: list[str] = []
    for key, (column, higher_is_better) in RFM_SOURCES.items():
        cuts = list(fixed[key]) if key in fixed else tie_aware_edges(features[column], n_scores)
        n = len(cuts) + 1 if key in fixed else n_scores
        out[f"{key}_score"] = _score(features[column], n, cuts, higher_is_better)
        used[key] = cuts
        levels = out[f"{key}_score"].nunique()
        if key not in fixed and levels < n_scores:
            notes.append(f"{column.replace('_', ' ')} takes only {features[column].nunique()} distinct values, so "
                         f"{key.upper()} uses {levels} of the {n_scores} score levels.")
    out["rfm_cell"] = out["r_score"].astype(str) + out["f_score"].astype(str) + out["m_score"].astype(str)
    out.attrs["edges"] = used
    out.attrs["notes"] = notes
    return out


def check_rules(rules: dict[str, Any], source: str = "the RFM rule table") -> None:
    """Check that the rules give every (r, f, m) score combination exactly one segment.

    Raises
    ------
    ValueError
        Naming the combinations no rule covers, or that several rules cover.
    """
    n = int(rules.get("scores", 5))
    grid = np.array([(r, f, m) for r in range(1, n + 1) for f in range(1, n + 1) for m in range(1, n + 1)])
    hits = np.zeros(len(grid), dtype=int)
    for rule in rules["rules"]:  # one pass per rule (a dozen)
        match = np.ones(len(grid), dtype=bool)
        for j, key in enumerate(("r", "f", "m")):
            if key in rule:
                lo, hi = rule[key]
                match &= (grid[:, j] >= lo) & (grid[:, j] <= hi)
        hits += match
    cells = lambda mask: ", ".join("".join(map(str, c)) for c in grid[mask][:8]) + (" ..." if mask.sum() > 8 else "")
    problems = []
    if (hits == 0).any():
        problems.append(f"{int((hits == 0).sum())} score combinations (r f m) match no rule: {cells(hits == 0)}")
    if (hits > 1).any():
        problems.append(f"{int((hits > 1).sum())} match more than one rule: {cells(hits > 1)}")
    if problems:
        raise ValueError(f"{source}: every combination of scores must match exactly one rule; " + "; ".join(problems)
                         + ". Fix the r/f/m ranges (params.13_behavioral.rfm_rules points at the table).")


def rfm_segments(scores: pd.DataFrame, rules: dict[str, Any]) -> pd.Series:
    """Name each customer's RFM segment from the rule whose score ranges contain theirs.

    The rules must cover every score combination exactly once (:func:`check_rules`).
    """
    check_rules(rules)
    segment = pd.Series(pd.NA, index=scores.index, dtype=object)
    for rule in rules["rules"]:
        match = pd.Series(True, index=scores.index)
        for key in ("r", "f", "m"):
            if key in rule:
                lo, hi = rule[key]
                match &= scores[f"{key}_score"].between(lo, hi)
        segment[match] = rule["segment"]
    return segment.rename("rfm_segment")


def rule_grid(rules: dict[str, Any]) -> pd.DataFrame:
    """The segment of each (F score, R score) cell, for the page; cells split by M list both names.

    Returns
    -------
    DataFrame
        Index F score (highest first), columns R score; values segment names (``"A / B"`` when
        the monetary score decides between A and B).
    """
    n = int(rules.get("scores", 5))
    grid = pd.DataFrame([(r, f, m) for r in range(1, n + 1) for f in range(1, n + 1) for m in range(1, n + 1)],
                        columns=["r_score", "f_score", "m_score"])
    grid["segment"] = rfm_segments(grid, rules).to_numpy()
    names = grid.groupby(["f_score", "r_score"])["segment"].agg(lambda s: " / ".join(dict.fromkeys(s)))
    return names.unstack("r_score").sort_index(ascending=False)


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


def cluster_columns(features: pd.DataFrame, *, vary: bool = True) -> list[str]:
    """Cluster features available in ``features`` (with fewer than half missing) that vary: one with a
    single value for everyone (category loyalty where the data have no category) separates no one.
    ``vary=False`` asks only that they are there (new data scored with a saved model may hold a
    batch where a feature happens to be the same for all)."""
    same = set(constant_features(features)) if vary else set()
    return [c for c in CLUSTER_FEATURES if c in features and features[c].notna().mean() > 0.5 and c not in same]


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
    selection_size : int or None, default 20,000
        With more customers, the evidence for k is taken on a random sample of this many; the
        final model is fitted on everyone (None: evidence on everyone; at a million customers
        that is about a hundred k-means fits on all of them).
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
                 selection_size: int | None = 20_000, random_state: int | None = None):
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.columns = columns
        self.n_bootstrap = n_bootstrap
        self.sample_size = sample_size
        self.selection_size = selection_size
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


def overdue(features: pd.DataFrame, factor: float = 2.0) -> pd.Series:
    """Whether each customer is past their own buying rhythm (recency checked against frequency).

    A customer is overdue when the time since their last order is more than ``factor`` times
    their usual time between orders (``interpurchase_days``); customers with a single order are
    held to the median gap of the repeat customers. Unknown (NA) where the data give no rhythm.

    Examples
    --------
    >>> f = pd.DataFrame({"recency_days": [10.0, 90.0, 90.0], "interpurchase_days": [30.0, 30.0, None]})
    >>> overdue(f).tolist()
    [False, True, True]
    """
    gap = features["interpurchase_days"] if "interpurchase_days" in features else pd.Series(np.nan, index=features.index)
    gap = gap.astype(float).fillna(gap.astype(float).median())
    late = pd.Series(features["recency_days"].astype(float) > factor * gap, index=features.index, dtype="boolean")
    return late.mask(gap.isna() | features["recency_days"].isna())


def describe_clusters(features: pd.DataFrame, labels: np.ndarray | pd.Series) -> pd.DataFrame:
    """Each cluster in plain words, from its medians relative to all customers.

    Words hold for most of a cluster's customers: each is read off the cluster's *median* (so at
    least half its customers are beyond the threshold), a favourite category is named only when at
    least half the cluster has it, and a cluster most of whose customers are :func:`overdue` is
    "lapsing", never "new" (a lapsed group must not read, or be treated, as one to onboard).

    Returns one row per cluster with ``segment`` (a readable, unique name), ``description``,
    ``customers``, and the medians behind the words.
    """
    frame = features.assign(_cluster=np.asarray(labels))
    overall = features.median(numeric_only=True)
    med = frame.groupby("_cluster").median(numeric_only=True)
    ratio = med / overall.replace(0, np.nan)  # cluster median relative to all customers
    late = overdue(features).groupby(frame["_cluster"].to_numpy()).mean() if "recency_days" in features else pd.Series(dtype=float)
    fav, fav_share = None, None
    if "favourite_category" in frame:
        counts = frame.groupby("_cluster")["favourite_category"].value_counts(normalize=True)
        fav = counts.groupby(level=0).idxmax().str[1]
        fav_share = counts.groupby(level=0).max()
    concentrated = "favourite_category_share" in med and overall.get("favourite_category_share", 1) < 0.95
    rows = []
    for cluster, m in med.iterrows():  # one iteration per cluster (a handful), not per customer
        r = ratio.loc[cluster].fillna(1.0)
        words = []
        if r["recency_days"] > 2:
            words.append(f"lapsed (last order ~{m['recency_days'] / 30.4:.0f} months ago)")
        elif late.get(cluster, 0.0) >= 0.5:
            words.append("lapsing")
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
            named = fav is not None and fav_share[cluster] >= 0.5
            words.append(f"loyal to one category ({fav[cluster]})" if named else "loyal to one category")
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

    def rfm_grid(self) -> pd.DataFrame:
        """The segment each (F, R) score cell gets under this run's rule table."""
        return rule_grid(self.rfm_rules)

    def rfm_notes(self) -> str:
        """How the scores were cut, and any score whose levels are not all used."""
        edges = self.rfm_scores.attrs.get("edges", {})
        cut = "; ".join(f"{RFM_SOURCES[k][0].replace('_', ' ')} at {', '.join(f'{e:,.4g}' for e in v)}" for k, v in edges.items() if v)
        text = f"Cut points (between distinct values, so tied customers share a score): {cut}." if cut else ""
        return " ".join([text, *self.rfm_scores.attrs.get("notes", [])]).strip()

    def summary_lines(self) -> list[str]:
        return [self.rfm_headline(),
                f"{self.k_choice.k} behavioral clusters: " + "; ".join(self.descriptions["segment"]) + "."]

    def payload(self) -> dict[str, Any]:
        return {"method": "kmeans", "features": self.model.columns_,
                "rfm_edges": self.rfm_scores.attrs.get("edges", {}),
                "rfm_segments": self.rfm_summary["customers"].astype(int).to_dict()}


def segment_behavioral(
    features: pd.DataFrame,
    *,
    rfm_rules: dict[str, Any],
    k: int | None = None,
    k_range: tuple[int, int] = (2, 8),
    n_bootstrap: int = 5,
    min_segment_size: int = 30,
    selection_size: int | None = 20_000,
    random_state: int | None = 42,
) -> BehavioralResult:
    """RFM segments and behavioral clusters of customer features.

    Parameters
    ----------
    features : DataFrame
        Output of :func:`analysis.features.customer_features` (index ``customer_id``).
    rfm_rules : dict
        The RFM rule table (``analysis/data/rfm_segments.yaml`` or the user's own).
    k, k_range, n_bootstrap, selection_size
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
    model = BehavioralClusters(n_clusters=k, k_range=k_range, n_bootstrap=n_bootstrap, selection_size=selection_size,
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
        available=True, notes=list(model.notes_) + list(scores.attrs.get("notes", [])),
        labels=behavioral_labels(features.index, scores, rfm, model.labels_, descriptions),
        profiles=segment_profiles(cluster_summary, descriptions.set_index("segment")["description"].to_dict()),
        extra_profiles={"rfm": segment_profiles(rfm_summary, rfm_descriptions)},
        model=model, features=features, rfm_rules=rfm_rules, rfm_scores=scores, rfm_segment=rfm, rfm_summary=rfm_summary,
        descriptions=descriptions, cluster_summary=cluster_summary,
    )
