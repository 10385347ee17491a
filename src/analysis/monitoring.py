"""Monitoring: segments evolve, so each run is compared with the previous one.

* Migration: how customers present in both runs moved between segments, on every segmentation
  (:func:`migration`): transition matrix (counts and shares), moves up or down in value, new and
  gone customers, and the notable movers (:func:`notable_movers`).
* Drift: how the distribution of each feature moved (population stability index, PSI), called a
  shift only beyond what sampling alone gives at the run's number of customers (:func:`psi_noise`);
  and how each segment's share of customers moved, called a shift only beyond a set number of
  percentage points and what sampling alone gives (:func:`share_drift`).
* Alerts: the shifts that pass those thresholds, in one table for the top of the page and the
  run's index (:func:`drift_alerts`); :func:`compare` does it all for two runs' labels.
* Scoring with saved models: the previous run's fitted models assign this run's customers
  (:mod:`analysis.scoring`), so a segment keeps its meaning between refits (agreement shown).

Pure functions of DataFrames: the monitoring page reads both runs through the run handle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def drift_verdict(psi: float, noise_moderate: float, noise_major: float, bands: tuple[float, float] | None = None) -> str:
    """Band of a PSI with the limits raised to the sampling noise: "stable", "moderate shift",
    "major shift" (or "not comparable" for an undefined PSI). ``bands`` overrides the
    (moderate, major) PSI limits of :data:`PSI_BANDS`."""
    moderate, major = bands or (PSI_BANDS[0][0], PSI_BANDS[1][0])
    if not np.isfinite(psi):
        return "not comparable"
    if psi >= max(major, noise_major):
        return "major shift"
    if psi >= max(moderate, noise_moderate):
        return "moderate shift"
    return "stable"


def drift_table(previous: pd.DataFrame, current: pd.DataFrame, bins: int = 10, bands: tuple[float, float] | None = None) -> pd.DataFrame:
    """PSI, median before/after and a verdict for every numeric column the two frames share.

    A feature is called shifted only when its PSI passes both the usual band (0.1 moderate,
    0.25 major; ``bands`` to set others, e.g. from the config) and what sampling alone would
    give at these numbers of customers (the 95th / 99th percentile of :func:`psi_noise`), so
    small runs do not raise alerts on noise.

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
                     "noise_psi": noise["moderate shift"], "alert_at": max((bands or (PSI_BANDS[0][0],))[0], noise["moderate shift"]),
                     "verdict": drift_verdict(psi, noise["moderate shift"], noise["major shift"], bands)})
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


def model_agreement(rescored: dict[str, pd.DataFrame], refit: dict[str, pd.DataFrame], *, stable_at: float = 0.8) -> pd.DataFrame:
    """Per segmentation: how well the previous run's saved model, applied to this run's customers,
    agrees with this run's refit (adjusted Rand index, 1 = the same segments).

    Returns
    -------
    DataFrame
        ``segmentation``, ``customers``, ``agreement_ari``, ``reading`` ("stable" from
        ``stable_at``, else "segments redrawn").
    """
    saved, now = segmentations(rescored), segmentations(refit)
    rows = []
    for column in [c for c in saved if c in now]:  # a handful of segmentations
        both = _both(saved[column], now[column])
        ari = saved_model_agreement(both["previous"].astype(str), both["current"].astype(str)) if len(both) else float("nan")
        rows.append({"segmentation": column, "customers": len(both), "agreement_ari": round(ari, 3),
                     "reading": "stable" if ari >= stable_at else "segments redrawn"})
    return pd.DataFrame(rows, columns=["segmentation", "customers", "agreement_ari", "reading"])


# --------------------------------------------------------------------------------------------
# Migration on every segmentation
# --------------------------------------------------------------------------------------------

#: Columns that are segmentations besides the registry's (value tiers have a companion).
EXTRA_SEGMENTATIONS = ("churn_risk",)


@dataclass
class Migration:
    """How customers in both runs moved between the segments of one segmentation.

    Attributes
    ----------
    segmentation : str
        The label column (``behavioral_segment``, ``rfm_segment``, ``value_tier``, ...).
    counts : DataFrame
        Customers by previous segment (rows) and current segment (columns).
    shares : DataFrame
        The same as % of each row: where last run's members are now.
    summary : dict
        ``customers_in_both``, ``stayed_pct``, ``new_customers``, ``gone_customers``, and with a
        value order ``moved_up``, ``moved_down`` (customers).
    order : list of str
        Segments from most to least valuable (mean value per customer in the previous run), or
        empty when no value measure is known.
    """

    segmentation: str
    counts: pd.DataFrame
    shares: pd.DataFrame
    summary: dict[str, Any]
    order: list[str] = field(default_factory=list)

    def moves(self) -> pd.DataFrame:
        """Every pair of segments with customers, largest flow first: ``from``, ``to``,
        ``customers``, ``share_of_from_pct``, ``direction`` (stayed / up / down / moved)."""
        long = self.counts.stack().rename("customers").reset_index()
        long.columns = ["from", "to", "customers"]
        long = long[long["customers"] > 0]
        long["share_of_from_pct"] = [self.shares.loc[f, t] for f, t in zip(long["from"], long["to"])]
        rank = {name: i for i, name in enumerate(self.order)}
        step = long["to"].map(rank) - long["from"].map(rank)
        long["direction"] = np.select([long["from"] == long["to"], step < 0, step > 0], ["stayed", "up", "down"], default="moved")
        long.insert(0, "segmentation", self.segmentation)
        return long.sort_values(["customers", "from", "to"], ascending=[False, True, True], kind="stable").reset_index(drop=True)

    def largest_moves(self, n: int = 5) -> pd.DataFrame:
        """The ``n`` largest flows between different segments."""
        moves = self.moves()
        return moves[moves["direction"] != "stayed"].head(n).reset_index(drop=True)

    def matrix_text(self) -> pd.DataFrame:
        """The matrix with each cell as "count (share%)" for a page table (rows: previous)."""
        cells = self.counts.map(lambda v: f"{v:,}") + self.shares.map(lambda v: f" ({v:.0f}%)")
        return cells.rename_axis(index="previous segment", columns=None)

    def sentence(self) -> str:
        """One sentence: who stayed, the largest move, moves up and down in value."""
        s = self.summary
        if not s["customers_in_both"]:
            return f"{_name(self.segmentation)}: no customer is in both runs."
        text = f"{_name(self.segmentation)}: {s['stayed_pct']:.0f}% of the {s['customers_in_both']:,} customers in both runs kept their segment"
        top = self.largest_moves(1)
        if len(top):
            m = top.iloc[0]
            text += f"; the largest move is {m['from']} to {m['to']} ({m['customers']:,} customers, {m['share_of_from_pct']:.0f}% of {m['from']})"
        if "moved_up" in s:
            text += f"; {s['moved_up']:,} moved up in value and {s['moved_down']:,} down"
        return text + "."


def _name(column: str) -> str:
    """A segmentation or feature as a reader names it ("RFM segment", "Days since last order")."""
    from .tables import label_for

    return label_for(column)


def _both(previous: pd.Series, current: pd.Series) -> pd.DataFrame:
    return pd.concat({"previous": previous, "current": current}, axis=1, join="inner").dropna()


def segment_order(labels: pd.Series, value: pd.Series | None) -> list[str]:
    """Segments from most to least valuable: mean ``value`` per customer (index-aligned), or
    empty when there is no value measure."""
    if value is None:
        return []
    frame = pd.concat({"segment": labels, "value": value}, axis=1, join="inner").dropna()
    if frame.empty:
        return []
    return frame.groupby("segment")["value"].mean().sort_values(ascending=False, kind="stable").index.astype(str).tolist()


def migration(previous: pd.Series, current: pd.Series, *, value: pd.Series | None = None, name: str | None = None) -> Migration:
    """Migration of one segmentation between two runs.

    Parameters
    ----------
    previous, current : Series
        Segment per customer (index ``customer_id``) in the previous and this run.
    value : Series, optional
        Value per customer in the previous run (e.g. ``clv`` or ``total_spend``): orders the
        segments, so a move to a segment worth more per customer is a move *up*.
    name : str, optional
        The segmentation (default the series' name).

    Returns
    -------
    Migration

    Examples
    --------
    >>> prev = pd.Series({"a": "Top", "b": "Top", "c": "Rest", "d": "Rest"})
    >>> cur = pd.Series({"a": "Top", "b": "Rest", "c": "Top", "e": "Rest"})
    >>> m = migration(prev, cur, value=pd.Series({"a": 10.0, "b": 8.0, "c": 1.0, "d": 2.0}))
    >>> m.summary["moved_up"], m.summary["moved_down"], m.summary["new_customers"]
    (1, 1, 1)
    """
    previous, current = previous.astype(object), current.astype(object)
    both = _both(previous, current)
    counts = migration_matrix(previous, current)
    shares = migration_matrix(previous, current, normalize=True)
    summary: dict[str, Any] = migration_summary(previous, current)
    order = [s for s in segment_order(previous, value) if s in set(counts.index) | set(counts.columns)]
    if order:
        rank = {s: i for i, s in enumerate(order)}
        step = both["current"].map(rank) - both["previous"].map(rank)
        summary.update(moved_up=int((step < 0).sum()), moved_down=int((step > 0).sum()))
    return Migration(name or str(previous.name or current.name or "segment"), counts, shares, summary, order)


def notable_movers(previous: pd.DataFrame, current: pd.DataFrame, value: str, *, top: int = 20) -> pd.DataFrame:
    """Customers in both runs whose value changed most, with their segments before and after.

    Parameters
    ----------
    previous, current : DataFrame
        One row per customer (index ``customer_id``): the value column and segment columns.
    value : str
        The value column (e.g. ``clv`` or ``total_spend``).
    top : int
        Movers shown: the largest rises and falls, half each.

    Returns
    -------
    DataFrame
        ``customer_id``, ``<value>_previous``, ``<value>_now``, ``change``, then
        ``<segmentation>: previous -> now`` (by its reader's name, e.g. "Value tier") for each
        segmentation that changed for someone shown.
    """
    if value not in previous or value not in current:
        return pd.DataFrame(columns=["customer_id", f"{value}_previous", f"{value}_now", "change"])
    both = previous.join(current, how="inner", lsuffix="_previous", rsuffix="_now")
    change = both[f"{value}_now"] - both[f"{value}_previous"]
    half = max(top // 2, 1)
    rises, falls = change.nlargest(half), change.nsmallest(half)
    chosen = pd.concat([rises[rises > 0], falls[falls < 0]]).index.unique()
    out = pd.DataFrame({f"{value}_previous": both.loc[chosen, f"{value}_previous"], f"{value}_now": both.loc[chosen, f"{value}_now"],
                        "change": change.loc[chosen]})
    segments = [c for c in previous.columns if c != value and c in current.columns]
    for col in segments:  # a handful of segmentations, each vectorised
        before, after = both.loc[chosen, f"{col}_previous"].astype(str), both.loc[chosen, f"{col}_now"].astype(str)
        if (before != after).any():
            out[f"{_name(col)}: previous -> now"] = np.where(before == after, before, before + " -> " + after)
    out = out.reindex(out["change"].abs().sort_values(ascending=False, kind="stable").index)
    return out.rename_axis("customer_id").reset_index()


# --------------------------------------------------------------------------------------------
# Drift of segment shares, and alerts
# --------------------------------------------------------------------------------------------


def share_drift(previous: pd.Series, current: pd.Series, *, min_change_pp: float = 3.0, level: float = 0.99) -> pd.DataFrame:
    """How each segment's share of customers moved, and whether that is beyond sampling noise.

    A segment's share is called shifted when it changed by at least ``min_change_pp``
    percentage points *and* by more than sampling alone moves it at these numbers of customers:
    the two-proportion noise ``z * sqrt(p (1 - p) (1/n_previous + 1/n_current))`` at ``level``
    (two-sided; ``p`` pooled). With the same customers scored twice the noise is smaller still,
    so the rule errs on the quiet side.

    Parameters
    ----------
    previous, current : Series
        Segment per customer in each run (every customer of the run, not only those in both).
    min_change_pp : float
        Smallest change worth an alert, in percentage points (``params.40_monitoring.share_alert_pp``).
    level : float
        Confidence of the noise allowance.

    Returns
    -------
    DataFrame
        ``segment``, ``share_previous_pct``, ``share_now_pct``, ``change_pp``, ``noise_pp``,
        ``alert``; largest absolute change first.

    Examples
    --------
    >>> prev = pd.Series(["A"] * 500 + ["B"] * 500)
    >>> now = pd.Series(["A"] * 400 + ["B"] * 600)
    >>> share_drift(prev, now).set_index("segment")["alert"].to_dict()
    {'A': True, 'B': True}
    """
    previous, current = previous.dropna().astype(str), current.dropna().astype(str)
    n1, n2 = len(previous), len(current)
    p1 = previous.value_counts(normalize=True)
    p2 = current.value_counts(normalize=True)
    segments = p1.index.union(p2.index)
    p1, p2 = p1.reindex(segments, fill_value=0.0), p2.reindex(segments, fill_value=0.0)
    pooled = (p1 * n1 + p2 * n2) / max(n1 + n2, 1)
    z = stats.norm.ppf(0.5 + level / 2)
    noise = 100 * z * np.sqrt(pooled * (1 - pooled) * ((1 / n1 if n1 else np.inf) + (1 / n2 if n2 else np.inf)))
    change = 100 * (p2 - p1)
    out = pd.DataFrame({"segment": segments, "share_previous_pct": 100 * p1.to_numpy(), "share_now_pct": 100 * p2.to_numpy(),
                        "change_pp": change.to_numpy(), "noise_pp": noise.to_numpy()})
    out["alert"] = (out["change_pp"].abs() >= np.maximum(min_change_pp, out["noise_pp"])) & (n1 > 0) & (n2 > 0)
    return out.reindex(out["change_pp"].abs().sort_values(ascending=False, kind="stable").index).round(3).reset_index(drop=True)


ALERT_COLUMNS = ["severity", "kind", "where", "what"]


def drift_alerts(features: pd.DataFrame | None, shares: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The shifts that pass their thresholds, most severe first: one row each.

    Parameters
    ----------
    features : DataFrame or None
        A :func:`drift_table`.
    shares : dict
        Segmentation -> :func:`share_drift` table.

    Returns
    -------
    DataFrame
        ``severity`` ("major" / "moderate"), ``kind`` ("feature drift" / "segment share"),
        ``where`` (feature or segmentation), ``what`` (a sentence with the numbers).
    """
    rows = []
    if features is not None and len(features):
        for r in features[features["verdict"].isin(["moderate shift", "major shift"])].itertuples():  # shifted features only
            rows.append({"severity": r.verdict.split()[0], "kind": "feature drift", "where": r.feature,
                         "what": f"{_name(r.feature)} shifted (PSI {r.psi:.2f}, alert from {r.alert_at:.2f}): median "
                                 f"{r.median_previous:,.4g} then, {r.median_current:,.4g} now."})
    for segmentation, table in shares.items():
        for r in table[table["alert"]].itertuples():  # flagged segments only
            severity = "major" if abs(r.change_pp) >= 2 * max(r.noise_pp, 1e-9) and abs(r.change_pp) >= 10 else "moderate"
            rows.append({"severity": severity, "kind": "segment share", "where": segmentation,
                         "what": f"{_name(segmentation)} '{r.segment}': {r.share_now_pct:.1f}% of customers now, "
                                 f"{'up' if r.change_pp > 0 else 'down'} from {r.share_previous_pct:.1f}% ({r.change_pp:+.1f} points; "
                                 f"sampling alone moves it up to {r.noise_pp:.1f})."})
    out = pd.DataFrame(rows, columns=ALERT_COLUMNS)
    return out.sort_values("severity", key=lambda s: s.map({"major": 0, "moderate": 1}), kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Two runs compared
# --------------------------------------------------------------------------------------------


def segmentations(labels: dict[str, pd.DataFrame]) -> dict[str, pd.Series]:
    """Every segmentation column in a run's labels (registry order), as Series by ``customer_id``."""
    from .segment.registry import segment_columns  # the registry imports no model code

    found: dict[str, pd.Series] = {}
    for column in [*segment_columns(), *EXTRA_SEGMENTATIONS]:  # a dozen columns at most
        for frame in labels.values():
            if column in frame.columns and column not in found:
                found[column] = frame.set_index(frame["customer_id"].astype(str))[column]
    return found


def value_measure(labels: dict[str, pd.DataFrame], features: pd.DataFrame | None, column: str | None = None) -> tuple[str | None, pd.Series | None]:
    """The value per customer migration is read against: predicted ``clv`` when the run has it,
    else past ``total_spend``; (None, None) without either. ``column`` asks for one of the two."""
    if column in (None, "clv"):
        for frame in labels.values():
            if "clv" in frame.columns:
                return "clv", frame.set_index(frame["customer_id"].astype(str))["clv"].astype(float)
    if column in (None, "total_spend") and features is not None and "total_spend" in features:
        frame = features.reset_index() if "customer_id" not in features.columns else features
        return "total_spend", frame.set_index(frame["customer_id"].astype(str))["total_spend"].astype(float)
    return None, None


@dataclass
class Comparison:
    """Two runs compared: migration and share drift per segmentation, feature drift, alerts.

    Built by :func:`compare`; every table is a DataFrame for the page, :meth:`summary` the
    index fact.
    """

    previous_run: str
    migrations: dict[str, Migration]
    shares: dict[str, pd.DataFrame]
    features: pd.DataFrame | None
    alerts: pd.DataFrame
    movers: pd.DataFrame
    value_column: str | None
    notes: list[str] = field(default_factory=list)

    def headline(self) -> pd.DataFrame:
        """One row per segmentation (by its reader's name): customers in both runs, stayed, new, gone,
        up, down, and segment-share alerts."""
        rows = []
        for name, m in self.migrations.items():  # a handful of segmentations
            s = m.summary
            rows.append({"segmentation": _name(name), "customers_in_both": s["customers_in_both"], "stayed_pct": s["stayed_pct"],
                         "new_customers": s["new_customers"], "gone_customers": s["gone_customers"],
                         "moved_up": s.get("moved_up"), "moved_down": s.get("moved_down"),
                         "alerts": int(self.shares[name]["alert"].sum()) if name in self.shares else 0})
        return pd.DataFrame(rows)

    def transitions(self) -> pd.DataFrame:
        """Every flow of every segmentation (long table, for the export)."""
        frames = [m.moves() for m in self.migrations.values()]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def largest_moves(self, n: int = 10) -> pd.DataFrame:
        """The largest flows between different segments, over all segmentations."""
        frames = [m.largest_moves(n) for m in self.migrations.values()]
        moves = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["segmentation", "customers"])
        moves["segmentation"] = moves["segmentation"].map(_name)
        return moves.sort_values("customers", ascending=False, kind="stable").head(n).reset_index(drop=True)

    def matrices(self) -> dict[str, pd.DataFrame]:
        """Transition counts per segmentation, by its reader's name (for the flow charts)."""
        return {_name(name): m.counts for name, m in self.migrations.items()}

    def share_table(self) -> pd.DataFrame:
        """Every segment's share of customers then and now, with the noise allowance (long table)."""
        frames = [t.assign(segmentation=_name(name)) for name, t in self.shares.items()]
        if not frames:
            return pd.DataFrame()
        table = pd.concat(frames, ignore_index=True)
        return table[["segmentation", *[c for c in table.columns if c != "segmentation"]]]

    def sentences_markdown(self) -> str:
        """One line per segmentation: who stayed, the largest move, moves up and down in value."""
        lines = [f"- {m.sentence()}" for m in self.migrations.values()]
        if self.value_column:
            lines.append(f"\nUp and down are read against {self.value_column.replace('_', ' ')} per customer in the previous run: "
                         "a move to a segment whose members were worth more on average is a move up.")
        return "\n".join(lines) or "No segmentation is in both runs."

    def matrices_html(self) -> str:
        """Every transition matrix as a page table: customers, and in brackets the share of the row
        (where last run's members of a segment are now)."""
        from .tables import table

        parts = [table(m.matrix_text(), caption=f"{_name(name)}: customers by previous segment (rows) and segment now (columns)",
                       max_rows=40).to_html() for name, m in self.migrations.items()]
        return "\n".join(parts)

    def alert_lines(self) -> list[str]:
        if self.alerts.empty:
            return [f"No drift alert against run {self.previous_run}: no feature and no segment share moved beyond its threshold."]
        return [f"{r.severity.capitalize()} {r.kind}: {r.what}" for r in self.alerts.itertuples()]

    def alerts_markdown(self) -> str:
        """The alerts as a Markdown list, for the top of the page."""
        head = (f"**{len(self.alerts)} drift alert(s)** against run {self.previous_run}:" if len(self.alerts)
                else "**No drift alerts.**")
        body = "\n".join(f"- {line}" for line in self.alert_lines()) if len(self.alerts) else self.alert_lines()[0]
        return f"{head}\n\n{body}"

    def facts(self) -> dict[str, Any]:
        """The manifest fact (``facts.monitoring``): per segmentation (column name) the migration
        summary and share alerts, and every alert."""
        rows = [{"segmentation": name, **m.summary, "share_alerts": int(self.shares[name]["alert"].sum())}
                for name, m in self.migrations.items()]
        return {"previous_run": self.previous_run, "value_measure": self.value_column, "segmentations": rows,
                "alerts": self.alerts.to_dict(orient="records")}

    def summary(self) -> dict[str, Any]:
        """The index fact (``summary_40_monitoring``): alerts first, then the largest moves."""
        lines = self.alert_lines()
        lines += [m.sentence() for m in list(self.migrations.values())[:3]]
        return {"title": "Monitoring: drift and migration", "lines": lines, "verdict": None,
                "alerts": self.alerts.to_dict(orient="records"), "previous_run": self.previous_run}


def compare(
    previous_labels: dict[str, pd.DataFrame],
    current_labels: dict[str, pd.DataFrame],
    previous_features: pd.DataFrame | None = None,
    current_features: pd.DataFrame | None = None,
    *,
    previous_run: str = "the previous run",
    share_alert_pp: float = 3.0,
    share_level: float = 0.99,
    psi_bands: tuple[float, float] | None = None,
    top_movers: int = 20,
) -> Comparison:
    """Compare two runs: migration and share drift on every segmentation both have, feature
    drift, alerts and notable movers.

    Parameters
    ----------
    previous_labels, current_labels : dict
        Basis -> labels frame (``customer_id`` and segment columns), as the run folder holds them.
        For migration on fixed segment definitions pass this run's data scored with the previous
        run's models (:func:`analysis.scoring.rescore`) as ``current_labels``.
    previous_features, current_features : DataFrame, optional
        Customer features (for feature drift and the value of movers).
    previous_run : str
        Its name, for sentences.
    share_alert_pp, share_level : float
        See :func:`share_drift`.
    psi_bands : tuple, optional
        (moderate, major) PSI limits; default :data:`PSI_BANDS`.
    top_movers : int
        Rows of the notable movers table.

    Returns
    -------
    Comparison
    """
    before, now = segmentations(previous_labels), segmentations(current_labels)
    common = [c for c in before if c in now]
    value_column, value = value_measure(previous_labels, previous_features)
    value_now = value_measure(current_labels, current_features, value_column)[1] if value_column else None
    if value_column == "clv" and value_now is None:  # this run has no CLV: read both runs by past spend
        value_column, value = value_measure(previous_labels, previous_features, "total_spend")
        value_now = value_measure(current_labels, current_features, "total_spend")[1] if value_column else None
    migrations = {c: migration(before[c], now[c], value=value, name=c) for c in common}
    shares = {c: share_drift(before[c], now[c], min_change_pp=share_alert_pp, level=share_level) for c in common}
    notes = []
    if not common:
        notes.append("The two runs share no segmentation: nothing to compare segment by segment.")
    drift = None
    if previous_features is not None and current_features is not None:
        drift = drift_table(previous_features, current_features, bands=psi_bands)
    else:
        notes.append("Feature drift needs customer features (from transactions) in both runs; one of them has none.")
    movers = pd.DataFrame()
    if value_column is not None and value_now is not None:
        frame = lambda v, segs: pd.concat({value_column: v, **{c: segs[c] for c in common}}, axis=1)
        movers = notable_movers(frame(value, before), frame(value_now, now), value_column, top=top_movers)
    return Comparison(previous_run, migrations, shares, drift, drift_alerts(drift, shares), movers, value_column, notes)


def no_comparison_message(config_display: str, run_folder: str | Path, *, has_transactions: bool, previous_exists: bool = False) -> str:
    """What the monitoring page says when there is nothing to compare with, and how to get something.

    Parameters
    ----------
    config_display : str
        The run's config as a user types it.
    run_folder : str or Path
        This run's folder (its name, less the runner's ``-<pid>`` staging suffix, is the run id).
    has_transactions : bool
        Whether this run has transactions (feature drift needs them).
    previous_exists : bool
        Whether an earlier run exists but shares nothing with this one.
    """
    folder = Path(run_folder)
    run_id = re.sub(r"-\d+$", "", folder.name) if folder.parent.name == ".staging" else folder.name
    why = ("the earlier runs of this config hold no segments this run has" if previous_exists
           else "this is the first complete run of this config in its reports folder")
    text = (f"There is nothing to compare with yet: {why}. To get a comparison, either run this config again once newer "
            f"data are in (`analysis run --config {config_display}`; this page then compares the two runs), or score newer "
            f"data with this run's saved models: `analysis score --model-run {run_id} --config <config of the newer data>` "
            f"(segments keep this run's definitions, so migration is read on fixed segments). A specific earlier run can be "
            f"named with params.40_monitoring.previous_run.")
    if not has_transactions:
        text += (" This run has no transactions, so a comparison will show migration and segment shares on the bases the "
                 "data allow (demographic, geographic, psychographic) but no drift of purchase features.")
    return text
