"""Monitoring: segments evolve, so each run is compared with the previous one.

* Migration: how customers present in both runs moved between segments (a matrix per basis).
* Drift: how the distribution of each feature moved (population stability index, PSI).
* Scoring with saved models: the previous run's fitted behavioral model assigns this run's
  customers, so a segment keeps its meaning between refits (agreement with the refit shown).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

#: PSI thresholds used in credit scoring and marketing analytics alike.
PSI_BANDS = ((0.1, "stable"), (0.25, "moderate shift"), (np.inf, "major shift"))


def migration_matrix(previous: pd.Series, current: pd.Series, normalize: bool = False) -> pd.DataFrame:
    """Customers by previous segment (rows) and current segment (columns), for customers in both runs.

    With ``normalize=True`` rows are shares (each row sums to 100): where last run's members are now.
    """
    both = pd.concat({"previous": previous, "current": current}, axis=1, join="inner").dropna()
    table = pd.crosstab(both["previous"], both["current"])
    if normalize:
        table = 100 * table.div(table.sum(axis=1), axis=0)
    return table


def migration_summary(previous: pd.Series, current: pd.Series) -> dict[str, float]:
    """Customers in both runs, share who stayed in a segment of the same name, new and gone customers."""
    both = pd.concat({"previous": previous, "current": current}, axis=1, join="inner").dropna()
    return {
        "customers_in_both": len(both),
        "stayed_pct": float(100 * (both["previous"] == both["current"]).mean()) if len(both) else float("nan"),
        "new_customers": len(current.index.difference(previous.index)),
        "gone_customers": len(previous.index.difference(current.index)),
    }


def population_stability_index(previous: pd.Series, current: pd.Series, bins: int = 10) -> float:
    """PSI of a numeric variable: sum over bins of (cur% - prev%) * ln(cur% / prev%).

    Bins are the previous run's deciles (so the previous distribution is the reference).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> same = population_stability_index(pd.Series(rng.normal(size=5000)), pd.Series(rng.normal(size=5000)))
    >>> shifted = population_stability_index(pd.Series(rng.normal(size=5000)), pd.Series(rng.normal(1, 1, size=5000)))
    >>> bool(same < 0.1 < 0.25 < shifted)
    True
    """
    prev, cur = previous.dropna().to_numpy(float), current.dropna().to_numpy(float)
    if len(prev) == 0 or len(cur) == 0:
        return float("nan")
    edges = np.unique(np.quantile(prev, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        return 0.0 if np.allclose(cur, prev[0]) else float("inf")
    edges[0], edges[-1] = -np.inf, np.inf
    p = np.histogram(prev, edges)[0] / len(prev)
    c = np.histogram(cur, edges)[0] / len(cur)
    p, c = np.clip(p, 1e-4, None), np.clip(c, 1e-4, None)
    return float(np.sum((c - p) * np.log(c / p)))


def drift_table(previous: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """PSI, median before/after and a verdict for every numeric column the two frames share."""
    cols = [c for c in current.select_dtypes("number").columns if c in previous]
    rows = []
    for col in cols:  # one PSI per feature (vectorised inside)
        psi = population_stability_index(previous[col], current[col])
        verdict = next(label for limit, label in PSI_BANDS if psi < limit) if np.isfinite(psi) else "not comparable"
        rows.append({"feature": col, "median_previous": previous[col].median(), "median_current": current[col].median(), "psi": psi, "verdict": verdict})
    return pd.DataFrame(rows).sort_values("psi", ascending=False, kind="stable").round(3).reset_index(drop=True)


def saved_model_agreement(saved_labels: np.ndarray, refit_labels: np.ndarray) -> float:
    """Adjusted Rand index between assignments by the saved model and by this run's refit."""
    return float(adjusted_rand_score(saved_labels, refit_labels))
