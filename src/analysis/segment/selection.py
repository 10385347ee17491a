"""Choosing the number of segments, shown rather than hidden.

For each candidate ``k``: the fit's cost (inertia for k-means, cost for k-prototypes: the
"elbow"), a silhouette score (on a sample for large data) and bootstrap stability (mean
adjusted Rand index between the full fit and refits on resamples). The rule: among the ``k``
whose stability is at least ``min_stability``, take the best silhouette; if none is stable, the
most stable. The evidence table says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.utils import check_random_state


class Clusterer(Protocol):
    def fit(self, X: Any) -> Any: ...
    def predict(self, X: Any) -> np.ndarray: ...


@dataclass
class KChoice:
    """The chosen k and the evidence behind it."""

    k: int
    evidence: pd.DataFrame
    reason: str


def candidate_ks(k_range: tuple[int, int], n_clusters: int | None, n_distinct: int) -> tuple[list[int], list[int]]:
    """The k to compare and those the data allow.

    Parameters
    ----------
    k_range : tuple of int
        Inclusive range of candidate k.
    n_clusters : int, optional
        A k set in the config; added to the candidates when outside ``k_range``.
    n_distinct : int
        Distinct rows in the data: only k below it are feasible.

    Returns
    -------
    (candidates, feasible) : tuple of list of int

    Examples
    --------
    >>> candidate_ks((2, 5), 8, n_distinct=4)
    ([2, 3, 4, 5, 8], [2, 3])
    """
    lo, hi = k_range
    ks = list(range(lo, hi + 1))
    if n_clusters is not None and n_clusters not in ks:
        ks = sorted(set(ks) | {int(n_clusters)})
    return ks, [k for k in ks if k < n_distinct]


def _take(X: Any, idx: np.ndarray) -> Any:
    return X.iloc[idx] if isinstance(X, (pd.DataFrame, pd.Series)) else X[idx]


def bootstrap_stability(
    make_model: Callable[[int, int], Clusterer],
    X: Any,
    k: int,
    reference: np.ndarray,
    *,
    n_bootstrap: int = 5,
    fraction: float = 0.8,
    random_state: int | np.random.RandomState | None = None,
) -> float:
    """Mean ARI between ``reference`` labels and refits on random subsamples, predicted on all rows."""
    rs = check_random_state(random_state)
    n = len(reference)
    scores = []
    for _ in range(n_bootstrap):
        idx = rs.choice(n, size=max(k + 1, int(fraction * n)), replace=False)
        model = make_model(k, int(rs.randint(0, 2**31 - 1)))
        model.fit(_take(X, idx))
        scores.append(adjusted_rand_score(reference, model.predict(X)))
    return float(np.mean(scores))


def evaluate_k(
    make_model: Callable[[int, int], Clusterer],
    X: Any,
    ks: range | list[int],
    *,
    cost: Callable[[Clusterer], float] = lambda m: float(getattr(m, "inertia_", getattr(m, "cost_", np.nan))),
    silhouette: Callable[[Any, np.ndarray, np.random.RandomState], float] | None = None,
    n_bootstrap: int = 5,
    sample_size: int = 3000,
    random_state: int | None = None,
) -> tuple[pd.DataFrame, dict[int, np.ndarray]]:
    """Cost, silhouette and stability for each k; also returns the full-data labels per k.

    ``silhouette(X, labels, rs)`` defaults to the Euclidean silhouette on a sample of
    ``sample_size`` rows (numeric X).
    """
    rs = check_random_state(random_state)
    n = len(X)
    ks = [k for k in ks if 2 <= k < n]
    if not ks:
        raise ValueError(f"need more than 2 distinct rows to segment; found {n}")

    def default_silhouette(data: Any, labels: np.ndarray, r: np.random.RandomState) -> float:
        if len(np.unique(labels)) < 2:
            return float("nan")
        size = min(sample_size, len(labels))
        return float(silhouette_score(np.asarray(data), labels, sample_size=size, random_state=r))

    sil = silhouette or default_silhouette
    rows, labels_by_k = [], {}
    for k in ks:
        model = make_model(k, int(rs.randint(0, 2**31 - 1)))
        model.fit(X)
        labels = np.asarray(model.predict(X))
        labels_by_k[k] = labels
        rows.append(
            {
                "k": k,
                "cost": cost(model),
                "silhouette": sil(X, labels, rs),
                "stability_ari": bootstrap_stability(make_model, X, k, labels, n_bootstrap=n_bootstrap, random_state=rs),
                "smallest_segment_pct": 100.0 * np.bincount(labels).min() / len(labels) if labels.min() >= 0 else np.nan,
            }
        )
    return pd.DataFrame(rows), labels_by_k


def choose_k(evidence: pd.DataFrame, *, min_stability: float = 0.75, min_segment_pct: float = 2.0, fixed_k: int | None = None) -> KChoice:
    """Apply the selection rule to an evidence table from :func:`evaluate_k`."""
    ev = evidence.copy()
    if fixed_k is not None:
        if fixed_k not in set(ev["k"]):
            raise ValueError(f"k={fixed_k} was not evaluated; candidates: {ev['k'].tolist()}")
        ev["chosen"] = ev["k"] == fixed_k
        return KChoice(fixed_k, ev, f"k={fixed_k} was set in the config.")
    ok = ev[(ev["stability_ari"] >= min_stability) & (ev["smallest_segment_pct"].fillna(100) >= min_segment_pct)]
    if len(ok) and ok["silhouette"].notna().any():
        best = ok.loc[ok["silhouette"].idxmax()]
        reason = (
            f"k={int(best.k)} has the best silhouette ({best.silhouette:.2f}) among the solutions that are stable "
            f"(bootstrap ARI >= {min_stability}; here {best.stability_ari:.2f}) and have no segment under {min_segment_pct:g}% of customers."
        )
    else:
        best = ev.loc[ev["stability_ari"].idxmax()]
        reason = (
            f"No candidate reached stability {min_stability}; k={int(best.k)} is the most stable "
            f"(bootstrap ARI {best.stability_ari:.2f}). Treat these segments as tentative."
        )
    ev["chosen"] = ev["k"] == int(best.k)
    return KChoice(int(best.k), ev, reason)
