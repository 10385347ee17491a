"""Monitoring: segments evolve, so each run is compared with the previous one.

* Migration: how customers present in both runs moved between segments (a matrix per basis).
* Drift: how the distribution of each feature moved (population stability index, PSI), called a
  shift only beyond what sampling alone gives at the run's number of customers (:func:`psi_noise`).
* Scoring with saved models: the previous run's fitted behavioral model assigns this run's
  customers, so a segment keeps its meaning between refits (agreement with the refit shown).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import adjusted_rand_score

#: PSI thresholds used in credit scoring and marketing analytics alike (for large samples).
PSI_BANDS = ((0.1, "stable"), (0.25, "moderate shift"), (np.inf, "major shift"))

#: Levels of the PSI expected from sampling alone above which a moderate / major shift is called.
NOISE_LEVELS = {"moderate shift": 0.95, "major shift": 0.99}


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


def _bin_edges(previous: np.ndarray, bins: int) -> np.ndarray:
    """Inner bin edges per row (rows x ``bins - 1``): the previous sample's quantiles.

    Edges at or below a row's minimum (above its maximum) move to -inf (+inf), so ties at the
    ends do not make bins the previous sample cannot fill; tied inner edges leave empty bins,
    which add nothing to the PSI.
    """
    q = np.quantile(previous, np.linspace(0, 1, bins + 1)[1:-1], axis=1).T
    lo, hi = previous.min(axis=1, keepdims=True), previous.max(axis=1, keepdims=True)
    return np.where(q <= lo, -np.inf, np.where(q >= hi, np.inf, q))


def _bin_shares(values: np.ndarray, edges: np.ndarray, bins: int) -> np.ndarray:
    """Share of each row's values in each bin (rows x bins), bins [e_i, e_i+1)."""
    rows = values.shape[0]
    index = (values[:, :, None] >= edges[:, None, :]).sum(axis=-1)
    flat = (index + bins * np.arange(rows)[:, None]).ravel()
    return np.bincount(flat, minlength=rows * bins).reshape(rows, bins) / values.shape[1]


def psi_many(previous: np.ndarray, current: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """PSI of many pairs of samples at once (vectorised), and the bins each comparison used.

    Parameters
    ----------
    previous : ndarray, shape (n_pairs, n_previous)
        Reference samples, one per row; bins are each row's deciles (for ``bins=10``).
    current : ndarray, shape (n_pairs, n_current)
    bins : int

    Returns
    -------
    psi : ndarray, shape (n_pairs,)
        Sum over bins of (cur% - prev%) * ln(cur% / prev%), shares floored at 0.01%.
    n_bins : ndarray of int, shape (n_pairs,)
        Bins holding part of the previous sample (fewer than ``bins`` when values tie).
    """
    previous = np.atleast_2d(np.asarray(previous, dtype=float))
    current = np.atleast_2d(np.asarray(current, dtype=float))
    edges = _bin_edges(previous, bins)
    p, c = _bin_shares(previous, edges, bins), _bin_shares(current, edges, bins)
    n_bins = (p > 0).sum(axis=1)
    p, c = np.clip(p, 1e-4, None), np.clip(c, 1e-4, None)
    return np.sum((c - p) * np.log(c / p), axis=1), n_bins


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
    return _psi_and_bins(previous, current, bins)[0]


def _psi_and_bins(previous: pd.Series, current: pd.Series, bins: int) -> tuple[float, int]:
    prev, cur = previous.dropna().to_numpy(float), current.dropna().to_numpy(float)
    if len(prev) == 0 or len(cur) == 0:
        return float("nan"), 0
    if np.ptp(prev) == 0:
        return (0.0 if np.allclose(cur, prev[0]) else float("inf")), 1
    psi, n_bins = psi_many(prev[None, :], cur[None, :], bins)
    return float(psi[0]), int(n_bins[0])


def psi_noise(n_previous: int, n_current: int, n_bins: int = 10, level: float = 0.95) -> float:
    """The PSI that sampling alone exceeds with probability ``1 - level``, at these sample sizes.

    For two samples of one distribution, PSI (a symmetrised Kullback-Leibler divergence of the
    binned shares) is to second order the chi-square statistic of a two-sample test scaled by
    (1/n_previous + 1/n_current), so PSI / (1/n_previous + 1/n_current) ~ chi2(n_bins - 1). Its
    mean, (n_bins - 1) (1/n_previous + 1/n_current), is 0.18 for 10 bins and 100 customers in
    each run: above the 0.1 "stable" limit although nothing changed.

    Examples
    --------
    >>> round(psi_noise(100, 100), 3), round(psi_noise(50_000, 50_000), 4)
    (0.338, 0.0007)
    """
    if n_previous <= 0 or n_current <= 0 or n_bins < 2:
        return float("nan")
    return float(stats.chi2.ppf(level, n_bins - 1) * (1.0 / n_previous + 1.0 / n_current))


def drift_verdict(psi: float, noise_moderate: float, noise_major: float) -> str:
    """Band of a PSI with the limits raised to the sampling noise: "stable", "moderate shift",
    "major shift" (or "not comparable" for an undefined PSI)."""
    if not np.isfinite(psi):
        return "not comparable"
    if psi >= max(PSI_BANDS[1][0], noise_major):
        return "major shift"
    if psi >= max(PSI_BANDS[0][0], noise_moderate):
        return "moderate shift"
    return "stable"


def drift_table(previous: pd.DataFrame, current: pd.DataFrame, bins: int = 10) -> pd.DataFrame:
    """PSI, median before/after and a verdict for every numeric column the two frames share.

    A feature is called shifted only when its PSI passes both the usual band (0.1 moderate,
    0.25 major) and what sampling alone would give at these numbers of customers (the 95th /
    99th percentile of :func:`psi_noise`), so small runs do not raise alerts on noise.

    Returns
    -------
    DataFrame
        ``feature``, ``median_previous``, ``median_current``, ``psi``, ``noise_psi`` (the PSI
        sampling alone exceeds 5% of the time), ``alert_at`` (the PSI from which a moderate
        shift is called), ``verdict``; largest PSI first.
    """
    cols = [c for c in current.select_dtypes("number").columns if c in previous]
    rows = []
    for col in cols:  # one PSI per feature (vectorised inside)
        prev, cur = previous[col].dropna(), current[col].dropna()
        psi, n_bins = _psi_and_bins(prev, cur, bins)
        noise = {v: psi_noise(len(prev), len(cur), n_bins, level) for v, level in NOISE_LEVELS.items()}
        rows.append({"feature": col, "median_previous": previous[col].median(), "median_current": current[col].median(), "psi": psi,
                     "noise_psi": noise["moderate shift"], "alert_at": max(PSI_BANDS[0][0], noise["moderate shift"]),
                     "verdict": drift_verdict(psi, noise["moderate shift"], noise["major shift"])})
    columns = ["feature", "median_previous", "median_current", "psi", "noise_psi", "alert_at", "verdict"]
    return pd.DataFrame(rows, columns=columns).sort_values("psi", ascending=False, kind="stable").round(3).reset_index(drop=True)


def drift_sentence(table: pd.DataFrame) -> str:
    """How the verdicts were reached, with this run's numbers (for the monitoring page)."""
    if table.empty:
        return "No numeric feature is shared by the two runs."
    noise = table["noise_psi"].dropna()
    text = ("PSI below 0.1 is usually read as stable, 0.1 to 0.25 as a moderate shift and above 0.25 as a major one. "
            "Those bands assume many customers: two samples of one distribution differ by chance, and the PSI this "
            "gives grows with the number of bins over the number of customers. So a shift is called only when the PSI "
            "also passes what sampling alone exceeds 5% of the time (99% for a major shift) at this run's numbers of customers")
    if len(noise):
        text += f": here {noise.min():.3f}" + (f" to {noise.max():.3f}" if noise.max() > noise.min() + 5e-4 else "")
    shifted = table[table["verdict"].isin(["moderate shift", "major shift"])]
    quiet = table[(table["verdict"] == "stable") & (table["psi"] >= PSI_BANDS[0][0])]
    text += ". " + (f"{len(shifted)} feature(s) shifted beyond sampling noise." if len(shifted) else "No feature shifted beyond sampling noise.")
    if len(quiet):
        text += f" {len(quiet)} feature(s) pass 0.1 but stay within what sampling alone gives, so they are not flagged."
    return text


def saved_model_agreement(saved_labels: np.ndarray, refit_labels: np.ndarray) -> float:
    """Adjusted Rand index between assignments by the saved model and by this run's refit."""
    return float(adjusted_rand_score(saved_labels, refit_labels))
