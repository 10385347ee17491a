"""Value-based segmentation: value tiers, churn risk, concentration of value, resource allocation.

Works on a per-customer frame holding a value measure (predicted ``clv`` from
:mod:`analysis.clv`, or historic ``total_spend``/``total_margin``) and, where available,
``p_alive`` and segment labels from other bases.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Default tiers: share of customers (by descending value) in each named tier; the rest is "Rest".
DEFAULT_TIERS: dict[str, float] = {"Top 1%": 0.01, "Top 20%": 0.20}


def value_tiers(values: pd.Series, tiers: dict[str, float] | None = None, *, skipna: bool = False) -> pd.Series:
    """Name each customer's value tier by rank: e.g. top 1%, next up to top 20%, rest.

    Parameters
    ----------
    values : Series
        Value per customer (higher is better); ties are broken by order of appearance so
        tier sizes are exact.
    tiers : dict
        Tier name -> cumulative share of customers, ascending (default :data:`DEFAULT_TIERS`).
    skipna : bool
        False (default): a missing value counts as a customer in ``Rest``. True: customers
        without a value are left unlabelled (NaN) and tier sizes are shares of those with one.

    Examples
    --------
    >>> value_tiers(pd.Series(range(100), dtype=float)).value_counts().to_dict()
    {'Rest': 80, 'Top 20%': 19, 'Top 1%': 1}
    >>> value_tiers(pd.Series([3.0, None, 1.0]), {"Top 50%": 0.5}, skipna=True).tolist()
    ['Top 50%', nan, 'Rest']
    """
    tiers = tiers or DEFAULT_TIERS
    ranked = values.dropna() if skipna else values
    rank = ranked.rank(method="first", ascending=False) / max(len(ranked), 1)
    out = pd.Series("Rest", index=ranked.index, dtype=object)
    for name, share in sorted(tiers.items(), key=lambda kv: -kv[1]):
        out[rank <= share] = name
    if skipna:
        out = out.reindex(values.index)
    return out.rename("value_tier")


def churn_risk(p_alive: pd.Series, low: float = 0.3, high: float = 0.7) -> pd.Series:
    """``high`` when P(alive) < ``low``, ``low`` when P(alive) >= ``high``, else ``medium``."""
    risk = np.select([p_alive < low, p_alive >= high], ["high", "low"], default="medium")
    return pd.Series(risk, index=p_alive.index, name="churn_risk").where(p_alive.notna())


def lorenz_curve(values: pd.Series) -> pd.DataFrame:
    """Cumulative share of value against share of customers, best customers first.

    Returns ``customers_pct`` (0..100) and ``value_pct`` (0..100); negative values (loss-making
    customers) are kept, so a profit curve can exceed 100% before falling back.
    """
    v = np.sort(values.fillna(0).to_numpy())[::-1]
    total = v.sum()
    cum = np.concatenate([[0.0], np.cumsum(v)]) / (total if total else 1.0)
    return pd.DataFrame({"customers_pct": np.linspace(0, 100, len(v) + 1), "value_pct": 100 * cum})


def top_share(values: pd.Series, share: float) -> float:
    """Percent of total value held by the top ``share`` of customers."""
    curve = lorenz_curve(values)
    return float(np.interp(100 * share, curve["customers_pct"], curve["value_pct"]))


def gini(values: pd.Series) -> float:
    """Gini coefficient of non-negative values (0 = equal, 1 = all value in one customer)."""
    v = np.sort(values.fillna(0).clip(lower=0).to_numpy())
    n = len(v)
    if n == 0 or v.sum() == 0:
        return float("nan")
    return float((2 * np.arange(1, n + 1) - n - 1).dot(v) / (n * v.sum()))


def value_by_segment(frame: pd.DataFrame, segment_col: str, value_cols: list[str]) -> pd.DataFrame:
    """Customers and total/share/mean of each value column per segment, largest first."""
    present = [c for c in value_cols if c in frame]
    grouped = frame.groupby(segment_col, observed=True)
    out = pd.DataFrame({"customers": grouped.size()})
    out["customers_pct"] = 100 * out["customers"] / len(frame)
    for col in present:
        total = frame[col].sum()
        out[col] = grouped[col].sum()
        out[f"{col}_pct"] = 100 * out[col] / total if total else np.nan
        out[f"{col}_per_customer"] = out[col] / out["customers"]
    return out.sort_values(present[0] if present else "customers", ascending=False)


def value_at_risk(frame: pd.DataFrame, *, history_col: str = "total_spend", p_alive_col: str = "p_alive") -> pd.Series | None:
    """Historic value of each customer weighted by the chance they have left: ``history x (1 - p_alive)``.

    None when ``frame`` lacks either column (the run has no churn model).
    """
    if not {history_col, p_alive_col} <= set(frame.columns):
        return None
    return frame[history_col] * (1 - frame[p_alive_col])


def budget_shares(
    value_share: pd.Series,
    risk_share: pd.Series | None = None,
    *,
    retention_weight: float = 0.3,
    priority_weight: pd.Series | None = None,
) -> pd.Series:
    """Suggested budget share per segment from its share of value and of value at risk.

    ``stake = (1 - w) x value_share + w x risk_share`` with ``w = retention_weight``; without
    ``risk_share`` (nothing is known to be at risk) the stake is ``value_share``. With
    ``priority_weight`` (a weight per segment, e.g. from a playbook's budget priority) the
    result is ``priority_weight x stake`` normalised to sum to 1 (NaN when that sum is not
    positive); without it the stake is returned as is.

    Examples
    --------
    >>> budget_shares(pd.Series([0.8, 0.2]), pd.Series([0.0, 1.0])).round(2).tolist()
    [0.56, 0.44]
    >>> budget_shares(pd.Series([0.5, 0.5]), priority_weight=pd.Series([3.0, 1.0])).tolist()
    [0.75, 0.25]
    """
    stake = value_share if risk_share is None else (1 - retention_weight) * value_share + retention_weight * risk_share
    if priority_weight is None:
        return stake
    raw = priority_weight * stake
    return raw / raw.sum() if raw.sum() > 0 else pd.Series(np.nan, index=raw.index)


def resource_allocation(
    frame: pd.DataFrame,
    segment_col: str,
    *,
    value_col: str = "clv",
    history_col: str = "total_spend",
    p_alive_col: str = "p_alive",
    retention_weight: float = 0.3,
) -> pd.DataFrame:
    """Expected value at stake per segment and a suggested share of the marketing budget.

    ``expected_value`` is the segment's total predicted value (``value_col``).
    ``value_at_risk`` is the historic value of its customers weighted by their chance of having
    left (``history_col x (1 - p_alive)``): what retention work could save.
    ``suggested_budget_pct = (1 - w) x expected-value share + w x value-at-risk share`` with
    ``w = retention_weight``: most budget follows future value, a part goes where value is slipping.
    """
    f = frame.copy()
    at_risk = value_at_risk(f, history_col=history_col, p_alive_col=p_alive_col)
    f["_at_risk"] = at_risk if at_risk is not None else pd.Series(0.0, index=f.index)
    g = f.groupby(segment_col, observed=True)
    out = pd.DataFrame(
        {
            "customers": g.size(),
            "expected_value": g[value_col].sum(),
            "value_at_risk": g["_at_risk"].sum(),
        }
    )
    out["expected_value_per_customer"] = out["expected_value"] / out["customers"]
    ev_share = out["expected_value"].clip(lower=0) / max(out["expected_value"].clip(lower=0).sum(), 1e-12)
    risk_total = out["value_at_risk"].sum()
    risk_share = out["value_at_risk"] / risk_total if risk_total > 0 else None
    out["suggested_budget_pct"] = 100 * budget_shares(ev_share, risk_share, retention_weight=retention_weight)
    return out.sort_values("suggested_budget_pct", ascending=False).round(2)


def customer_value_frame(features: pd.DataFrame, scores: pd.DataFrame, labels: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per customer: historic value (spend, margin), predicted value (CLV...) and segment labels.

    ``features`` is indexed by customer_id; ``scores`` has a ``customer_id`` column (output of
    :func:`analysis.clv.customer_lifetime_value`); ``labels`` are other bases' label frames.
    """
    keep = [c for c in ("total_spend", "total_margin", "frequency", "recency_days") if c in features]
    frame = features[keep].join(scores.set_index("customer_id"), how="left")
    for lab in (labels or {}).values():
        cols = [c for c in lab.columns if c.endswith("_segment") and c not in frame]
        if cols:
            frame = frame.join(lab.set_index("customer_id")[cols], how="left")
    return frame


def value_headline(frame: pd.DataFrame, value_col: str = "clv", horizon_months: int = 12) -> str:
    """One sentence on how concentrated predicted value is."""
    total = frame[value_col].sum()
    top20 = top_share(frame[value_col], 0.2)
    top1 = top_share(frame[value_col], 0.01)
    return (
        f"Predicted value over the next {horizon_months} months is {total:,.0f}; the top 20% of customers hold "
        f"{top20:.0f}% of it and the top 1% hold {top1:.0f}%."
    )


def coarsen_columns(matrix: pd.DataFrame, max_columns: int = 14) -> pd.DataFrame:
    """Keep at most ``max_columns`` evenly spaced columns of a grid (for a readable heatmap)."""
    step = max(1, int(np.ceil(matrix.shape[1] / max_columns)))
    return matrix.iloc[:, ::step]


def margin_rate(transactions: pd.DataFrame, override: float | None = None) -> float:
    """Gross margin to apply to predicted spend: ``override``, else the data's margin/revenue, else 1."""
    if override is not None:
        return float(override)
    if "margin" in transactions and transactions["margin"].notna().any():
        return float(transactions["margin"].sum() / transactions["amount"].sum())
    return 1.0


def profitability_tables(frame: pd.DataFrame, value_cols: tuple[str, ...] = ("clv", "total_spend", "total_margin")) -> dict[str, pd.DataFrame]:
    """:func:`value_by_segment` for every segment column of ``frame`` (``*_segment``, tiers, churn risk)."""
    columns = [c for c in frame.columns if c.endswith("_segment")] + [c for c in ("value_tier", "churn_risk") if c in frame]
    return {col: value_by_segment(frame, col, list(value_cols)).round(1) for col in columns}
