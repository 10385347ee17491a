"""Demographic segmentation: k-prototypes on age, income, household and categorical attributes.

Numeric attributes (age, income, children, teens) and categorical ones (gender, education,
occupation, marital status, and the derived life stage from :func:`analysis.features.derived_attributes`)
are clustered together with kmodes' ``KPrototypes`` (``KModes`` when every attribute is
categorical, scikit-learn ``KMeans`` when every attribute is numeric).

How the data are prepared (:func:`prepare_attributes`), and why:

* **Missing categorical values** become their own category ``"(missing)"``: a blank education is
  information (the customer did not say), and imputing the most common value would invent it.
* **Missing numeric values** are imputed with the median of the column (after the log transform
  of income); the number imputed per column is reported.
* **Rare categories** (under ``min_category_share`` of customers, default 1%) are pooled into
  ``"(other)"``, so typos and one-off values (``"YOLO"`` as a marital status) cannot found a segment.
* Columns that are **entirely missing** or hold **a single value** are dropped with a note: they
  cannot separate customers. Customers with no demographic value at all are not segmented.
* Income is log-transformed (it is skewed); numeric columns are then standardised, so ``gamma``
  (the weight of one categorical mismatch against squared standardised distance) defaults to
  0.5, Huang's rule of half the numeric standard deviation.

Choosing k is shown, not hidden (:mod:`analysis.segment.selection`): for each candidate k the
k-prototypes cost (the elbow), a silhouette on Gower distances (numeric range-scaled absolute
differences and categorical mismatches, averaged) and bootstrap stability (ARI between refits on
80% resamples), all on a stratified selection sample.

Large data: the model is fitted on a stratified sample (``fit_sample_size``, default 20,000;
strata = life stage, or the first categorical attribute) and every customer is then assigned to
the nearest prototype by a vectorised ``predict`` (kmodes' own predict loops over rows in Python).
kmodes fits at about 60 microseconds per row and iteration here, so the sample bounds the cost;
assigning 1M customers takes seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from kmodes.kmodes import KModes
from kmodes.kprototypes import KPrototypes
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ..features import derived_attributes
from .base import BaseSegmenter, InfeasibleK, SegmentationResult
from .common import (
    MISSING,
    OTHER,
    VALUE_COLUMNS,
    customer_value,
    lift_table,
    segment_sizes,
    stratified_sample,
    unique_names,
)

#: Transaction columns :func:`segment_demographic` reads (purchase value per customer only).
TRANSACTION_COLUMNS = VALUE_COLUMNS
#: Numeric attributes used when present (contract names).
DEFAULT_NUMERIC: tuple[str, ...] = ("age", "income", "children", "teens")
#: Categorical attributes used when present (contract names).
DEFAULT_CATEGORICAL: tuple[str, ...] = ("gender", "education", "occupation", "marital_status")
#: Derived attributes (from :func:`analysis.features.derived_attributes`) added to the clustering.
DEFAULT_DERIVED: tuple[str, ...] = ("life_stage",)
#: Derived attributes used to describe segments (lift tables, names) whether clustered or not.
DESCRIPTIVE_DERIVED: tuple[str, ...] = ("age_band", "income_band", "household", "life_stage")
#: Numeric attributes log-transformed before scaling (skewed, non-negative).
LOG_COLUMNS: tuple[str, ...] = ("income",)

#: Columns of the segment profiles (``exports/segments.csv`` rows of basis ``demographic``).
PROFILE_COLUMNS: dict[str, str] = {
    "segment": "segment name, from its most over-represented traits",
    "cluster": "segment number (0 = largest)",
    "customers": "customers in the segment",
    "customers_pct": "% of segmented customers",
    "revenue": "purchase value of the segment's customers",
    "revenue_pct": "% of all purchase value",
    "revenue_per_customer": "purchase value per customer",
    "median_age": "median age",
    "median_income": "median income",
    "mean_children": "average number of children (kids at home)",
    "mean_teens": "average number of teenagers at home",
    "description": "most over-represented traits: share of the segment and lift (x times the overall share)",
}

# How a trait reads inside a segment name.
_TRAIT_TEMPLATES = {
    "age_band": "aged {}",
    "income_band": "{} income",
    "education": "{}-educated",
    "household": "{}",
    "life_stage": "{}",
    "marital_status": "{}",
    "occupation": "{}",
    "gender": "gender {}",
}
# Derived attributes whose labels (the project's own) are capitalised as values ("Family with children")
# and read in lower case within a name or description ("Low income, family with children").
_LOWER_IN_PHRASE = {"life_stage"}
# What each derived attribute is made from (for notes when it cannot be derived).
_DERIVED_INPUTS = {"age_band": "age", "income_band": "income", "household": "children",
                   "life_stage": "age, marital_status and children"}
# A trait of the key attribute makes traits of these attributes redundant in a name.
_REDUNDANT_WITH = {"life_stage": ("marital_status", "household"), "household": ("life_stage",)}


# ------------------------------------------------------------------------------------------
# Preparing the attributes
# ------------------------------------------------------------------------------------------


@dataclass
class DemographicAttributes:
    """Customer attributes ready for clustering, with what was done to them.

    Attributes
    ----------
    frame : DataFrame
        Indexed by ``customer_id``: numeric columns (float, missing kept as NaN; the model imputes
        medians) and categorical columns (missing as ``"(missing)"``, rare as ``"(other)"``).
    numeric, categorical : list of str
        Clustering columns by kind.
    descriptive : DataFrame
        Categorical attributes used to describe segments (clustering categoricals plus age and
        income bands, household and life stage), same index.
    notes : list of str
        Plain-language notes: columns dropped and why, values imputed or pooled.
    dropped : DataFrame
        ``column``, ``reason`` for every candidate column not used.
    without_data : int
        Customers with no demographic value at all (not segmented).
    """

    frame: pd.DataFrame
    numeric: list[str]
    categorical: list[str]
    descriptive: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    dropped: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["column", "reason"]))
    without_data: int = 0

    @property
    def available(self) -> bool:
        return bool(self.numeric or self.categorical) and len(self.frame) > 0


def _pool_rare(values: pd.Series, min_share: float) -> tuple[pd.Series, list[str]]:
    share = values.value_counts(normalize=True)
    rare = [c for c in share.index[share < min_share] if c != MISSING]
    return (values.where(~values.isin(rare), OTHER) if rare else values), rare


def prepare_attributes(
    customers: pd.DataFrame,
    *,
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    derived: Sequence[str] = DEFAULT_DERIVED,
    min_category_share: float = 0.01,
    income_edges: list[float] | None = None,
) -> DemographicAttributes:
    """Select, clean and document the demographic attributes of a customer table.

    Parameters
    ----------
    customers : DataFrame
        Validated customers (contract columns).
    numeric, categorical : list of str, optional
        Columns to use; default :data:`DEFAULT_NUMERIC` / :data:`DEFAULT_CATEGORICAL` where present.
    derived : list of str
        Derived attributes to cluster on (from :func:`analysis.features.derived_attributes`).
    min_category_share : float
        Categories held by fewer customers than this share are pooled into ``"(other)"``.
    income_edges : list of float, optional
        Two inner edges for the income bands (default: terciles of the data).

    Returns
    -------
    DemographicAttributes

    Examples
    --------
    >>> cust = pd.DataFrame({"customer_id": ["a", "b", "c"], "age": [25.0, 40.0, None],
    ...                      "gender": ["F", "F", "F"], "education": ["PhD", None, "Basic"]})
    >>> attrs = prepare_attributes(cust, min_category_share=0)
    >>> attrs.numeric, attrs.categorical
    (['age'], ['education'])
    >>> attrs.frame["education"].tolist()
    ['PhD', '(missing)', 'Basic']
    >>> attrs.dropped.values.tolist()
    [['life_stage', 'cannot be derived: needs age, marital_status and children'], ['gender', "a single value ('F') for every customer: it cannot separate segments"]]
    """
    index = pd.Index(customers["customer_id"].astype(str), name="customer_id")
    explicit_num, explicit_cat = numeric is not None, categorical is not None
    numeric = list(DEFAULT_NUMERIC if numeric is None else numeric)
    categorical = list(DEFAULT_CATEGORICAL if categorical is None else categorical)
    derived_frame = derived_attributes(customers, income_edges=income_edges)
    derived_frame.index = index
    notes: list[str] = []
    dropped: list[dict[str, str]] = []

    def drop(column: str, reason: str) -> None:
        dropped.append({"column": column, "reason": reason})

    raw = pd.DataFrame(index=index)
    for col in numeric:
        if col not in customers:
            if explicit_num:
                drop(col, "not in the customer table")
            continue
        raw[col] = pd.to_numeric(customers[col], errors="coerce").to_numpy(dtype=float)
    for col in list(categorical) + [d for d in derived if d not in categorical]:
        source = customers[col] if col in customers else derived_frame.get(col)
        if source is None:
            if col in _DERIVED_INPUTS and col in derived:
                drop(col, f"cannot be derived: needs {_DERIVED_INPUTS[col]}")
            elif explicit_cat:
                drop(col, "not in the customer table")
            continue
        raw[col] = source.to_numpy(dtype=object)

    num_cols = [c for c in raw.columns if c in numeric]
    cat_cols = [c for c in raw.columns if c not in num_cols]
    has_any = raw.notna().any(axis=1)
    without_data = int((~has_any).sum())
    if without_data:
        notes.append(f"{without_data:,} customers have no demographic value at all and are not segmented.")
    raw = raw.loc[has_any]

    frame = pd.DataFrame(index=raw.index)
    for col in num_cols:
        values = raw[col]
        if values.isna().all():
            drop(col, "all values missing")
            continue
        if values.nunique() < 2:
            drop(col, f"a single value ({values.dropna().iat[0]:g}) for every customer: it cannot separate segments")
            continue
        n_missing = int(values.isna().sum())
        if n_missing:
            notes.append(f"{col}: {n_missing:,} missing values ({100 * n_missing / len(values):.1f}%) imputed with the median.")
        frame[col] = values
    for col in cat_cols:
        values = raw[col]
        if values.isna().all():
            drop(col, "all values missing")
            continue
        text = values.astype(object).where(values.notna(), MISSING).astype(str)
        text, rare = _pool_rare(text, min_category_share)
        if text.nunique() < 2:
            drop(col, f"a single value ('{text.iat[0]}') for every customer: it cannot separate segments")
            continue
        n_missing = int((text == MISSING).sum())
        if n_missing:
            notes.append(f"{col}: {n_missing:,} missing values kept as the category '{MISSING}'.")
        if rare:
            notes.append(f"{col}: rare categories {rare} (under {100 * min_category_share:g}% of customers) pooled into '{OTHER}'.")
        frame[col] = text.to_numpy(dtype=object)
    for row in dropped:
        notes.append(f"{row['column']}: not used ({row['reason']}).")

    descriptive = frame[[c for c in frame.columns if c not in num_cols]].copy()
    for col in DESCRIPTIVE_DERIVED:
        if col in derived_frame and col not in descriptive and derived_frame[col].notna().any():
            descriptive[col] = derived_frame.loc[frame.index, col].to_numpy(dtype=object)
    return DemographicAttributes(
        frame=frame,
        numeric=[c for c in num_cols if c in frame],
        categorical=[c for c in cat_cols if c in frame],
        descriptive=descriptive,
        notes=notes,
        dropped=pd.DataFrame(dropped, columns=["column", "reason"]),
        without_data=without_data,
    )


# ------------------------------------------------------------------------------------------
# Distances
# ------------------------------------------------------------------------------------------


def _mixed_distances(Xnum: np.ndarray, Xcat: np.ndarray, centroids: np.ndarray, modes: np.ndarray, gamma: float) -> np.ndarray:
    """k-prototypes dissimilarity of every row to every prototype (rows x k)."""
    out = np.zeros((len(Xnum) if Xnum.size else len(Xcat), max(len(centroids), len(modes))))
    if Xnum.shape[1]:
        out += ((Xnum[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    if Xcat.shape[1]:
        out += gamma * (Xcat[:, None, :] != modes[None, :, :]).sum(axis=2)
    return out


def assign_prototypes(
    Xnum: np.ndarray, Xcat: np.ndarray, centroids: np.ndarray, modes: np.ndarray, gamma: float, chunk_size: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest prototype of every row, vectorised in chunks of rows.

    Parameters
    ----------
    Xnum : ndarray (n, p)
        Scaled numeric attributes (p may be 0).
    Xcat : ndarray (n, q)
        Integer category codes (q may be 0); unknown codes (-1) match no mode.
    centroids, modes : ndarray (k, p), (k, q)
        Numeric centres and categorical modes of the prototypes.
    gamma : float
        Weight of one categorical mismatch.
    chunk_size : int
        Rows per chunk (bounds memory at chunk x k x max(p, q)).

    Returns
    -------
    labels : ndarray of int (n,)
    distance : ndarray of float (n,)
        Squared numeric distance + gamma x mismatches to the nearest prototype.

    Examples
    --------
    >>> labels, _ = assign_prototypes(np.array([[0.0], [5.0]]), np.array([[1], [0]]),
    ...                               np.array([[0.0], [5.0]]), np.array([[1], [0]]), 0.5)
    >>> labels.tolist()
    [0, 1]
    """
    n = max(len(Xnum), len(Xcat))
    labels = np.empty(n, dtype=np.int64)
    distance = np.empty(n, dtype=float)
    for start in range(0, n, chunk_size):  # chunks of rows, vectorised within
        stop = min(start + chunk_size, n)
        d = _mixed_distances(Xnum[start:stop], Xcat[start:stop], centroids, modes, gamma)
        labels[start:stop] = d.argmin(axis=1)
        distance[start:stop] = d[np.arange(stop - start), labels[start:stop]]
    return labels, distance


def gower_distances(Xnum: np.ndarray, Xcat: np.ndarray) -> np.ndarray:
    """Gower distance matrix: range-scaled absolute differences and mismatches, averaged.

    Parameters
    ----------
    Xnum : ndarray (m, p)
        Numeric attributes (any scale: each is divided by its range in these rows).
    Xcat : ndarray (m, q)
        Categorical codes.

    Returns
    -------
    ndarray (m, m) with values in [0, 1].

    Examples
    --------
    >>> gower_distances(np.array([[0.0], [10.0]]), np.array([[1], [2]])).round(2).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    m = max(len(Xnum), len(Xcat))
    total = np.zeros((m, m))
    n_features = Xnum.shape[1] + Xcat.shape[1]
    for j in range(Xnum.shape[1]):  # one pass per attribute
        col = Xnum[:, j]
        span = col.max() - col.min()
        if span > 0:
            total += np.abs(col[:, None] - col[None, :]) / span
    for j in range(Xcat.shape[1]):
        col = Xcat[:, j]
        total += col[:, None] != col[None, :]
    return total / max(n_features, 1)


def gower_silhouette(Xnum: np.ndarray, Xcat: np.ndarray, labels: np.ndarray, *, sample_size: int = 1000,
                     random_state: int | np.random.RandomState | None = None) -> float:
    """Mean silhouette on Gower distances, on a random sample of rows (NaN with one segment).

    Examples
    --------
    >>> Xn = np.array([[0.0], [0.1], [5.0], [5.1]]); Xc = np.array([[0], [0], [1], [1]])
    >>> round(gower_silhouette(Xn, Xc, np.array([0, 0, 1, 1])), 2)
    0.99
    """
    n = len(labels)
    rs = check_random_state(random_state)
    idx = np.sort(rs.choice(n, size=sample_size, replace=False)) if n > sample_size else np.arange(n)
    sub = labels[idx]
    if not 2 <= len(np.unique(sub)) <= len(sub) - 1:
        return float("nan")
    D = gower_distances(Xnum[idx], Xcat[idx])
    return float(silhouette_score(D, sub, metric="precomputed"))


# ------------------------------------------------------------------------------------------
# The clustering core (one k) and the estimator (k chosen from evidence)
# ------------------------------------------------------------------------------------------


class _Prototypes(ClusterMixin, BaseEstimator):
    """kmodes k-prototypes (or k-modes / k-means) for one k on an encoded matrix.

    ``X`` holds ``n_numeric`` scaled numeric columns followed by integer category codes. The
    fit uses kmodes with a k-means++-style start on the mixed distance (``n_init`` starts, best
    cost kept); ``predict`` is the vectorised :func:`assign_prototypes`.
    """

    def __init__(self, n_clusters: int = 4, n_numeric: int = 0, gamma: float = 0.5, n_init: int = 2,
                 max_iter: int = 30, random_state: int | None = None):
        self.n_clusters = n_clusters
        self.n_numeric = n_numeric
        self.gamma = gamma
        self.n_init = n_init
        self.max_iter = max_iter
        self.random_state = random_state

    def _split(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, dtype=float)
        return X[:, : self.n_numeric], X[:, self.n_numeric:].astype(np.int64)

    def _start(self, Xnum: np.ndarray, Xcat: np.ndarray, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        n = max(len(Xnum), len(Xcat))
        chosen = [int(rs.randint(n))]
        nearest = _mixed_distances(Xnum, Xcat, Xnum[chosen], Xcat[chosen], self.gamma)[:, 0]
        for _ in range(1, self.n_clusters):  # one step per prototype
            total = nearest.sum()
            p = nearest / total if total > 0 else None
            chosen.append(int(rs.choice(n, p=p)))
            nearest = np.minimum(nearest, _mixed_distances(Xnum, Xcat, Xnum[chosen[-1:]], Xcat[chosen[-1:]], self.gamma)[:, 0])
        return Xnum[chosen], Xcat[chosen]

    def fit(self, X: np.ndarray, y: Any = None) -> _Prototypes:
        rs = check_random_state(self.random_state)
        Xnum, Xcat = self._split(X)
        q = Xcat.shape[1]
        best = None
        for _ in range(self.n_init):  # a few restarts, each a full kmodes fit
            seed = int(rs.randint(0, 2**31 - 1))
            init_num, init_cat = self._start(Xnum, Xcat, rs)
            if q == 0:
                model = KMeans(self.n_clusters, init=init_num, n_init=1, max_iter=self.max_iter, random_state=seed).fit(Xnum)
                centroids, modes, cost = model.cluster_centers_, np.zeros((len(model.cluster_centers_), 0), dtype=np.int64), float(model.inertia_)
            else:
                uniques = [np.unique(Xcat[:, j]) for j in range(q)]
                enc = np.column_stack([np.searchsorted(uniques[j], init_cat[:, j]) for j in range(q)]).astype(np.uint16)
                if self.n_numeric == 0:
                    model = KModes(self.n_clusters, init=enc, n_init=1, max_iter=self.max_iter, random_state=seed).fit(Xcat)
                    centroids = np.zeros((len(model.cluster_centroids_), 0))
                    modes = np.asarray(model.cluster_centroids_, dtype=float).astype(np.int64)
                else:
                    model = KPrototypes(self.n_clusters, init=[init_num, enc], n_init=1, gamma=self.gamma,
                                        max_iter=self.max_iter, random_state=seed)
                    model.fit(np.hstack([Xnum, Xcat.astype(float)]), categorical=list(range(self.n_numeric, self.n_numeric + q)))
                    both = np.asarray(model.cluster_centroids_, dtype=float)
                    centroids, modes = both[:, : self.n_numeric], both[:, self.n_numeric:].astype(np.int64)
                cost = float(model.cost_)
            if best is None or cost < best[2]:
                best = (centroids, modes, cost, int(getattr(model, "n_iter_", 0)))
        self.centroids_, self.modes_, self.cost_, self.n_iter_ = best
        self.labels_ = self.predict(X)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        check_is_fitted(self, "centroids_")
        Xnum, Xcat = self._split(X)
        return assign_prototypes(Xnum, Xcat, self.centroids_, self.modes_, self.gamma)[0]


class DemographicSegmenter(BaseSegmenter):
    """k-prototypes segmentation of customer attributes, with k chosen from shown evidence.

    Parameters
    ----------
    n_clusters : int or None
        Fixed k (e.g. from the config); None chooses k from ``k_range``.
    k_range : tuple of int
        Candidate k, inclusive bounds.
    gamma : float or None
        Weight of a categorical mismatch against squared standardised numeric distance;
        None uses 0.5 (Huang's rule: half the numeric standard deviation, here 1).
    n_init : int
        kmodes restarts per fit (best cost kept).
    max_iter : int
        kmodes iterations per restart.
    fit_sample_size : int
        The final model is fitted on a stratified sample of at most this many customers; all
        customers are then assigned by :meth:`predict`.
    selection_sample_size : int
        Customers (a stratified subset of the fit sample) on which each k is evaluated.
    n_bootstrap : int
        Refits per k for the stability score.
    strata : list of str, optional
        Categorical columns to stratify the samples by; default ``life_stage`` when present,
        else the first categorical column.
    min_segment_pct : float
        Candidate k whose smallest segment is below this % of customers are not chosen.
    n_reference : int
        Fits on shuffled data for the verdict (:class:`analysis.segment.base.BaseSegmenter`).
    random_state : int, optional

    Attributes
    ----------
    numeric_, categorical_ : list of str
        Columns used, by kind (from the dtypes of ``X``: numeric dtypes are numeric).
    center_, scale_, medians_ : ndarray
        Numeric transform (log1p for :data:`LOG_COLUMNS`, median imputation, standardisation).
    categories_ : dict of str to list
        Known categories per categorical column (their codes are positions in the list).
    gamma_ : float
    k_choice_ : KChoice
        Evidence per k (cost, Gower silhouette, stability, smallest segment) and the reason.
    notes_ : list of str
        E.g. a k range reduced because there are few distinct customers.
    model_ : _Prototypes
        The final fit; ``model_.centroids_`` / ``model_.modes_`` are the prototypes.
    labels_ : ndarray of int
        Segment of every row of ``X``, 0 = largest segment.
    fit_sample_ : ndarray of int
        Row positions of the fit sample.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"age": np.r_[rng.normal(25, 2, 60), rng.normal(70, 2, 60)],
    ...                   "marital_status": ["Single"] * 60 + ["Widowed"] * 60})
    >>> seg = DemographicSegmenter(k_range=(2, 3), n_bootstrap=2, random_state=0).fit(X)
    >>> seg.k_choice_.k, np.bincount(seg.labels_).tolist()
    (2, [60, 60])
    """

    def __init__(self, n_clusters: int | None = None, k_range: tuple[int, int] = (2, 8), gamma: float | None = None,
                 n_init: int = 2, max_iter: int = 30, fit_sample_size: int = 20_000, selection_sample_size: int = 1_000,
                 n_bootstrap: int = 3, strata: Sequence[str] | None = None, min_segment_pct: float = 2.0,
                 n_reference: int = 3, random_state: int | None = None):
        self.n_clusters = n_clusters
        self.k_range = k_range
        self.gamma = gamma
        self.n_init = n_init
        self.max_iter = max_iter
        self.fit_sample_size = fit_sample_size
        self.selection_sample_size = selection_sample_size
        self.n_bootstrap = n_bootstrap
        self.strata = strata
        self.min_segment_pct = min_segment_pct
        self.n_reference = n_reference
        self.random_state = random_state

    basis = "demographic"
    notebook = "10_demographic"
    _distinct_what = "customer profiles"

    # encoding --------------------------------------------------------------------------------
    def _learn_encoding(self, X: pd.DataFrame) -> None:
        self.numeric_ = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c])]
        self.categorical_ = [c for c in X.columns if c not in self.numeric_]
        if not self.numeric_ and not self.categorical_:
            raise ValueError("demographic segmentation needs at least one attribute column; found none.")
        self.log_columns_ = [c for c in self.numeric_ if c in LOG_COLUMNS and (X[c].dropna() >= 0).all()]
        num = self._numeric_raw(X)
        self.medians_ = np.nanmedian(num, axis=0) if num.shape[1] else np.zeros(0)
        num = np.where(np.isnan(num), self.medians_, num)
        self.center_ = num.mean(axis=0) if num.shape[1] else np.zeros(0)
        scale = num.std(axis=0) if num.shape[1] else np.zeros(0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.categories_ = {c: sorted(X[c].astype(object).where(X[c].notna(), MISSING).astype(str).unique()) for c in self.categorical_}

    def _numeric_raw(self, X: pd.DataFrame) -> np.ndarray:
        # a copy: pandas may hand out a read-only view of a single-dtype block, and the log is taken in place
        num = X[self.numeric_].to_numpy(dtype=float, copy=True) if self.numeric_ else np.zeros((len(X), 0))
        for j, col in enumerate(self.numeric_):
            if col in self.log_columns_:
                num[:, j] = np.log1p(np.clip(num[:, j], 0, None))
        return num

    def encode(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Scaled numeric matrix and category codes (-1 for categories unseen in the fit)."""
        num = self._numeric_raw(X)
        num = (np.where(np.isnan(num), self.medians_, num) - self.center_) / self.scale_
        codes = np.zeros((len(X), len(self.categorical_)), dtype=np.int64)
        for j, col in enumerate(self.categorical_):
            values = X[col].astype(object).where(X[col].notna(), MISSING).astype(str)
            codes[:, j] = pd.Index(self.categories_[col]).get_indexer(values)
        return num, codes

    # fitting: the shared fit of BaseSegmenter, with these hooks ----------------------------
    def _encode(self, X: pd.DataFrame, fit: bool) -> np.ndarray:
        """Scaled numeric columns then category codes, as one float matrix (``n_numeric_`` first)."""
        if fit:
            self._learn_encoding(X)
            self.gamma_ = 0.5 if self.gamma is None else float(self.gamma)
            self.n_numeric_ = len(self.numeric_)
        Xnum, Xcat = self.encode(X)
        return np.hstack([Xnum, Xcat.astype(float)])

    def _rows(self, X: pd.DataFrame, matrix: np.ndarray, rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray]:
        """Choose k on a stratified selection sample of the stratified fit sample."""
        self.fit_sample_ = self._sample(X, np.arange(len(X)), self.fit_sample_size, rs)
        if len(self.fit_sample_) < len(X):
            self.notes_.append(f"fitted on a stratified sample of {len(self.fit_sample_):,} of {len(X):,} customers; "
                               "all are assigned to the nearest prototype.")
        return self._sample(X, self.fit_sample_, self.selection_sample_size, rs), self.fit_sample_

    def _make_model(self, k: int, seed: int) -> _Prototypes:
        return _Prototypes(k, self.n_numeric_, self.gamma_, self.n_init, self.max_iter, seed)

    def _silhouette(self, data: np.ndarray, labels: np.ndarray, rs: np.random.RandomState) -> float:
        n = self.n_numeric_
        return gower_silhouette(data[:, :n], data[:, n:].astype(np.int64), labels, sample_size=self.selection_sample_size, random_state=rs)

    def _strata(self, X: pd.DataFrame) -> pd.DataFrame | None:
        cols = list(self.strata) if self.strata else (["life_stage"] if "life_stage" in self.categorical_ else self.categorical_[:1])
        cols = [c for c in cols if c in X]
        return X[cols] if cols else None

    def _sample(self, X: pd.DataFrame, positions: np.ndarray, n: int, rs: np.random.RandomState) -> np.ndarray:
        strata = self._strata(X.iloc[positions])
        if strata is None:
            return np.sort(rs.choice(positions, size=min(n, len(positions)), replace=False))
        return positions[stratified_sample(strata, n, random_state=rs)]

    def prototypes(self) -> pd.DataFrame:
        """The prototype of each segment in the data's own units (numeric centres, categorical modes)."""
        check_is_fitted(self, "model_")
        k = len(self._order)
        out = pd.DataFrame(index=pd.RangeIndex(k, name="cluster"))
        inverse = np.argsort(self._order)  # row of the raw model for each segment id
        num = self.model_.centroids_[inverse] * self.scale_ + self.center_ if self.numeric_ else np.zeros((k, 0))
        for j, col in enumerate(self.numeric_):
            out[col] = np.expm1(num[:, j]) if col in self.log_columns_ else num[:, j]
        for j, col in enumerate(self.categorical_):
            out[col] = np.asarray(self.categories_[col], dtype=object)[self.model_.modes_[inverse, j]]
        return out


# ------------------------------------------------------------------------------------------
# Describing segments
# ------------------------------------------------------------------------------------------


def segment_traits(lift: pd.DataFrame, *, min_share_pct: float = 50.0, min_lift: float = 1.25, max_traits: int = 3) -> pd.DataFrame:
    """The most distinctive categories of each segment, for names and descriptions.

    A name must hold for most of the segment's customers, so a trait is a category that is the
    segment's most common value of its attribute (modal) *and* held by at least
    ``min_share_pct`` % of the segment (a majority: "retired" where 13% are retired, or "single"
    where 38% are, never names a segment), and ``min_lift`` times more common there than
    overall. Traits rank by share x log(lift), one per attribute, skipping ``"(missing)"`` /
    ``"(other)"`` and attributes made redundant by a better trait (life stage already says
    marital status and household).

    Returns
    -------
    DataFrame
        ``segment``, ``rank``, ``attribute``, ``category``, ``share_pct``, ``lift``, ``phrase``.

    Examples
    --------
    >>> lift = pd.DataFrame({"segment": [0, 0, 0], "attribute": ["occupation", "occupation", "marital_status"],
    ...     "category": ["manager", "retired", "Single"], "share_pct": [60.0, 13.0, 38.0], "lift": [2.0, 4.0, 1.4]})
    >>> segment_traits(lift)["phrase"].tolist()
    ['manager']
    """
    modal = lift["share_pct"] >= lift.groupby(["segment", "attribute"])["share_pct"].transform("max")
    cand = lift[modal & (lift["share_pct"] >= min_share_pct) & (lift["lift"] >= min_lift)
                & ~lift["category"].isin([MISSING, OTHER])].copy()
    cand["score"] = cand["share_pct"] / 100.0 * np.log(cand["lift"])
    cand = cand.sort_values(["segment", "score"], ascending=[True, False], kind="stable")
    rows = []
    for segment, group in cand.groupby("segment", sort=True):  # one pass per segment (a handful)
        used: set[str] = set()
        said: set[str] = set()
        picked = 0
        for row in group.itertuples(index=False):
            phrase = _TRAIT_TEMPLATES.get(row.attribute, f"{row.attribute.replace('_', ' ')} {{}}").format(row.category)
            if row.attribute in _LOWER_IN_PHRASE and phrase[1:2].islower():  # "Retired", never "DINK"
                phrase = phrase[:1].lower() + phrase[1:]
            if row.attribute in used or phrase.lower() in said:
                continue
            used |= {row.attribute, *_REDUNDANT_WITH.get(row.attribute, ())}
            said.add(phrase.lower())
            picked += 1
            rows.append({"segment": segment, "rank": picked, "attribute": row.attribute, "category": row.category,
                         "share_pct": row.share_pct, "lift": row.lift, "phrase": phrase})
            if picked >= max_traits:
                break
    return pd.DataFrame(rows, columns=["segment", "rank", "attribute", "category", "share_pct", "lift", "phrase"])


def name_segments(traits: pd.DataFrame, segments: Sequence[Any]) -> pd.Series:
    """A readable, unique name per segment from its traits (``"Mixed profile"`` when none stand out)."""
    phrases = traits.sort_values(["segment", "rank"]).groupby("segment")["phrase"].agg(", ".join)
    names = pd.Series([phrases.get(s, "Mixed profile") for s in segments], index=list(segments))
    names = names.str[:1].str.upper() + names.str[1:]
    return unique_names(names)


def profile_segments(attributes: DemographicAttributes, labels: pd.Series, value: pd.Series | None = None,
                     lift: pd.DataFrame | None = None, traits: pd.DataFrame | None = None) -> pd.DataFrame:
    """Profiles with the columns of :data:`PROFILE_COLUMNS`, one row per segment (largest first).

    Parameters
    ----------
    attributes : DemographicAttributes
    labels : Series
        Segment name per customer (index ``customer_id``).
    value : Series, optional
        Purchase value per customer.
    lift, traits : DataFrame, optional
        From :func:`analysis.segment.common.lift_table` / :func:`segment_traits` keyed by the
        same segment names (computed when not given).
    """
    out = segment_sizes(labels, value)
    frame = attributes.frame.loc[labels.index]
    stats = {"median_age": ("age", "median"), "median_income": ("income", "median"),
             "mean_children": ("children", "mean"), "mean_teens": ("teens", "mean")}
    numeric = frame[[c for c in ("age", "income", "children", "teens") if c in frame]].assign(segment=labels.to_numpy())
    grouped = numeric.groupby("segment")
    for name, (col, how) in stats.items():
        if col in numeric:
            out[name] = out["segment"].map(grouped[col].agg(how))
    if traits is None:
        lift = lift if lift is not None else lift_table(attributes.descriptive.loc[labels.index], labels)
        traits = segment_traits(lift)
    text = traits.assign(text=traits["phrase"].astype(str) + " " + traits["share_pct"].round(0).astype(int).astype(str)
                         + "% (x" + traits["lift"].round(1).astype(str) + ")").groupby("segment")["text"].agg("; ".join)
    out["description"] = out["segment"].map(text).fillna("no trait stands out")
    return out


# ------------------------------------------------------------------------------------------
# One call for a notebook
# ------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class DemographicResult(SegmentationResult):
    """Everything the demographic page shows and saves.

    ``available`` is False (with ``message``) when the data hold no usable demographic attribute;
    the other fields are then empty.
    """

    basis: ClassVar[str] = "demographic"
    title: ClassVar[str] = "Demographic segments"

    attributes: DemographicAttributes | None = None
    model: DemographicSegmenter | None = None
    labels: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["customer_id", "demographic_segment"]))
    lift: pd.DataFrame = field(default_factory=pd.DataFrame)
    traits: pd.DataFrame = field(default_factory=pd.DataFrame)
    prototypes: pd.DataFrame = field(default_factory=pd.DataFrame)
    value_source: str = ""

    def attributes_used(self) -> pd.DataFrame:
        """The attributes clustered on: kind, how complete, distinct values and how gaps were handled."""
        a = self.attributes
        rows = []
        for col in a.numeric + a.categorical:
            values = a.frame[col]
            numeric = col in a.numeric
            missing = int(values.isna().sum()) if numeric else int((values == MISSING).sum())
            handling = ("log, then standardised; " if col in LOG_COLUMNS else "standardised; ") if numeric else ""
            handling += (f"{missing:,} missing -> median" if numeric else f"{missing:,} missing -> '{MISSING}'") if missing else "complete"
            if not numeric and (values == OTHER).any():
                handling += f"; rare categories -> '{OTHER}'"
            rows.append({"attribute": col, "kind": "numeric" if numeric else "categorical",
                         "filled_pct": round(100.0 * (1 - missing / max(len(values), 1)), 1),
                         "distinct": int(values.nunique()), "handling": handling})
        return pd.DataFrame(rows, columns=["attribute", "kind", "filled_pct", "distinct", "handling"])

    def lift_matrices(self, top: int = 20, min_overall_pct: float = 2.0) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Lift of the most segment-specific categories: (log2 lift for colours, lift for labels).

        Rows ``attribute = category`` (the ``top`` with the largest absolute log lift in any
        segment, among categories held by at least ``min_overall_pct`` % of customers), columns
        segments in profile order.
        """
        lift = self.lift[(self.lift["overall_pct"] >= min_overall_pct) & ~self.lift["category"].isin([MISSING, OTHER])]
        lift = lift.assign(row=lift["attribute"].str.replace("_", " ") + " = " + lift["category"].astype(str))
        wide = lift.pivot_table(index="row", columns="segment", values="lift", aggfunc="first")
        wide = wide.reindex(columns=[s for s in self.profiles["segment"] if s in wide.columns])
        log_lift = np.log2(wide.clip(lower=1 / 8, upper=8))  # colours saturate at 8x over / under
        strength = log_lift.abs().max(axis=1)
        keep = strength.sort_values(ascending=False).index[:top].sort_values()
        return log_lift.loc[keep], wide.loc[keep]

    def interpretation(self) -> str:
        """One or two sentences on what the segments show, computed from the profiles."""
        if not self.available:
            return self.message
        p = self.profiles
        largest = p.iloc[0]
        text = f"The largest segment, '{largest.segment}', holds {largest.customers_pct:.0f}% of customers"
        if p["revenue"].notna().any() and p["revenue"].sum() > 0:
            text += f" and {largest.revenue_pct:.0f}% of purchase value"
            avg = p["revenue"].sum() / p["customers"].sum()
            best = p.loc[p["revenue_per_customer"].idxmax()]
            who = "it is also" if best.segment == largest.segment else f"'{best.segment}' is"
            text += f"; {who} worth the most per customer ({best.revenue_per_customer / avg:.1f}x the average)"
        return text + "."

    def summary_lines(self) -> list[str]:
        ev = self.evidence.set_index("k").loc[self.k_choice.k]
        lines = [(f"{len(self.profiles)} demographic segments of {int(self.profiles['customers'].sum()):,} customers "
                  f"(k chosen from evidence: silhouette {ev['silhouette']:.2f}, stability {ev['stability_ari']:.2f}).")]
        lines += [f"{r.segment}: {r.customers_pct:.0f}% of customers" + (f", {r.revenue_pct:.0f}% of value" if pd.notna(r.revenue_pct) else "")
                  for r in self.profiles.itertuples()]
        return lines

    def payload(self) -> dict[str, Any]:
        m = self.model
        return {
            "method": "kprototypes" if m.numeric_ and m.categorical_ else ("kmodes" if m.categorical_ else "kmeans"),
            "gamma": m.gamma_,
            "numeric": m.numeric_,
            "log_transformed": m.log_columns_,
            "categorical": m.categorical_,
            "numeric_center": dict(zip(m.numeric_, m.center_.tolist())),
            "numeric_scale": dict(zip(m.numeric_, m.scale_.tolist())),
            "numeric_median": dict(zip(m.numeric_, m.medians_.tolist())),
            "fit_sample": len(m.fit_sample_),
            "prototypes": self.prototypes.to_dict(orient="records"),
        }


def segment_demographic(
    customers: pd.DataFrame,
    transactions: pd.DataFrame | str | Path | None = None,
    *,
    spend: pd.Series | None = None,
    k: int | None = None,
    k_range: tuple[int, int] = (2, 8),
    numeric: Sequence[str] | None = None,
    categorical: Sequence[str] | None = None,
    derived: Sequence[str] = DEFAULT_DERIVED,
    min_category_share: float = 0.01,
    min_segment_size: int = 30,
    fit_sample_size: int = 20_000,
    selection_sample_size: int = 1_000,
    n_bootstrap: int = 3,
    n_init: int = 2,
    gamma: float | None = None,
    random_state: int | None = 42,
) -> DemographicResult:
    """Demographic segments of a customer table: prepare, choose k, fit, name and profile.

    Parameters
    ----------
    customers : DataFrame
        Validated customers.
    transactions : DataFrame or path to Parquet, optional
        Validated order lines, for revenue per segment; only :data:`TRANSACTION_COLUMNS` are read.
        The page passes the run's file (``run.parquet("transactions")``), summed by DuckDB in place.
    spend : Series, optional
        Value per customer when there are no transactions (see
        :func:`analysis.segment.common.spend_from_columns`).
    k : int, optional
        Fixed number of segments; default chosen from ``k_range``.
    k_range : tuple of int
        Candidate k.
    numeric, categorical, derived, min_category_share
        See :func:`prepare_attributes`.
    min_segment_size : int
        The config's smallest useful segment; k whose smallest segment is smaller (as a share of
        customers, at least 2%) are not chosen.
    fit_sample_size, selection_sample_size, n_bootstrap, n_init, gamma
        See :class:`DemographicSegmenter`.
    random_state : int, optional

    Returns
    -------
    DemographicResult
    """
    attributes = prepare_attributes(customers, numeric=numeric, categorical=categorical, derived=derived,
                                    min_category_share=min_category_share)
    notes = list(attributes.notes)
    if not attributes.available:
        considered = list(numeric or DEFAULT_NUMERIC) + list(categorical or DEFAULT_CATEGORICAL)
        return DemographicResult(available=False, message=(
            "Demographic segmentation is not available in this data: none of the attributes "
            f"{considered} is present with at least two distinct values. Map them under columns.customers "
            "in the run config to enable this page."), notes=notes, attributes=attributes)
    n = len(attributes.frame)
    model = DemographicSegmenter(
        n_clusters=k, k_range=k_range, gamma=gamma, n_init=n_init, fit_sample_size=fit_sample_size,
        selection_sample_size=selection_sample_size, n_bootstrap=n_bootstrap,
        min_segment_pct=max(2.0, 100.0 * min_segment_size / n), random_state=random_state,
    )
    try:
        model.fit(attributes.frame)
    except InfeasibleK:
        raise
    except ValueError as exc:
        return DemographicResult(available=False, message=f"Demographic segmentation is not possible on this data: {exc}",
                                 notes=notes, attributes=attributes)
    notes += model.notes_
    clusters = pd.Series(model.labels_, index=attributes.frame.index)
    lift = lift_table(attributes.descriptive, clusters)
    traits = segment_traits(lift)
    names = name_segments(traits, range(len(model._order)))
    labels = clusters.map(names)
    value, value_source = customer_value(customers, transactions, spend)
    value = value.reindex(attributes.frame.index) if value is not None else None
    lift_named = lift.assign(segment=lift["segment"].map(names))
    traits_named = traits.assign(segment=traits["segment"].map(names))
    profiles = profile_segments(attributes, labels, value, traits=traits_named)
    profiles.insert(1, "cluster", profiles["segment"].map({v: k_ for k_, v in names.items()}).astype(int))
    prototypes = model.prototypes()
    prototypes.insert(0, "segment", names.reindex(prototypes.index).to_numpy())
    out_labels = pd.DataFrame({"customer_id": labels.index.to_numpy(), "demographic_segment": labels.to_numpy()})
    return DemographicResult(available=True, notes=notes, attributes=attributes, model=model, labels=out_labels,
                             profiles=profiles, lift=lift_named, traits=traits_named, prototypes=prototypes,
                             value_source=value_source)
