"""Value-based segmentation: value tiers, churn risk, concentration of value, resource allocation.

Works on a per-customer frame holding a value measure (predicted ``clv`` from
:mod:`analysis.clv`, or historic ``total_spend``/``total_margin``) and, where available,
``p_alive`` and segment labels from other bases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from .base import SegmentationResult, Verdict, rules_verdict
from .common import add_shares

#: Default tiers: share of customers (by descending value) in each named tier; the rest is "Rest".
DEFAULT_TIERS: dict[str, float] = {"Top 1%": 0.01, "Top 20%": 0.20}
#: The order-line columns :func:`segment_value` reads (``run.table("transactions", columns=...)``), and the one it
#: reads where the data have it.
TRANSACTION_COLUMNS = ("customer_id", "timestamp", "amount")
OPTIONAL_TRANSACTION_COLUMNS = ("margin",)
#: What the value page writes per customer (``labels/value.parquet``); personas profile every column but
#: the id, so each needs its words in the persona vocabulary (the interval ends are never traits).
LABEL_COLUMNS = ("customer_id", "clv", "clv_low", "clv_high", "p_alive", "p_alive_low", "p_alive_high",
                 "expected_purchases", "expected_spend", "value_tier", "churn_risk")


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


def holdout_line(title: str, how: str, mae_model: float, mae_naive: float) -> str:
    """The model check in one line for the run overview; a model that does not beat the naive guess says so.

    Examples
    --------
    >>> holdout_line("BG/NBD", "chosen", 0.38, 0.52)
    'Purchase model BG/NBD (chosen); holdout MAE 0.380 vs naive 0.520 (27% lower).'
    >>> holdout_line("MBG/NBD", "chosen", 0.940, 0.919).split("0.919")[1]
    '; it does not beat the naive guess that everyone keeps buying at their past rate, so read predicted values as rough.'
    """
    head = f"Purchase model {title} ({how}); holdout MAE {mae_model:.3f} vs naive {mae_naive:.3f}"
    if mae_naive > 0 and mae_model < mae_naive:
        gain = 1 - mae_model / mae_naive
        return f"{head} ({gain:.0%} lower)." if gain >= 0.005 else f"{head} (under 1% lower)."
    return (f"{head}; it does not beat the naive guess that everyone keeps buying at their past rate, so read "
            "predicted values as rough.")


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


def margin_rate(transactions: pd.DataFrame | str | Path, override: float | None = None) -> float:
    """Gross margin to apply to predicted spend: ``override``, else the data's margin/revenue, else 1.

    ``transactions``: order lines, or the path of their Parquet file (summed by DuckDB in place).
    """
    return float(override) if override is not None else line_totals(transactions).margin_rate()


def first_purchase(transactions: pd.DataFrame | str | Path) -> pd.Timestamp:
    """The earliest order line's ``timestamp`` (of a DataFrame, or of a Parquet file read by DuckDB in place)."""
    return line_totals(transactions).first


@dataclass(frozen=True)
class LineTotals:
    """What the value page reads of the order lines as a whole, in one pass: see :func:`line_totals`."""

    first: pd.Timestamp  # earliest timestamp (NaT without lines)
    amount: float  # revenue
    margin: float | None  # summed margin; None without a margin value

    def margin_rate(self) -> float:
        """The data's margin / revenue (inf or NaN when revenue sums to 0, as pandas divides), else 1."""
        if self.margin is None:
            return 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(np.float64(self.margin) / np.float64(self.amount))


def line_totals(transactions: pd.DataFrame | str | Path) -> LineTotals:
    """First timestamp, revenue and margin of the order lines: a DataFrame, or a Parquet file that DuckDB sums in
    place in one scan (exact decimals)."""
    if isinstance(transactions, pd.DataFrame):
        has_margin = "margin" in transactions and transactions["margin"].notna().any()
        return LineTotals(first=transactions["timestamp"].min(), amount=transactions["amount"].sum(),
                          margin=transactions["margin"].sum() if has_margin else None)
    from ..engines import DuckDBEngine, exact_sum

    with DuckDBEngine() as engine:
        engine.register("tx", transactions)
        margin = exact_sum("margin") if "margin" in engine.columns("tx") else "NULL"
        first, amount, margin_sum = engine.con_.execute(
            f"SELECT min(timestamp), {exact_sum('amount')}, {margin} FROM tx").fetchone()
    return LineTotals(first=pd.Timestamp(first) if first is not None else pd.NaT, amount=float(amount or 0),
                      margin=None if margin_sum is None else float(margin_sum))


def profitability_tables(frame: pd.DataFrame, value_cols: tuple[str, ...] = ("clv", "total_spend", "total_margin")) -> dict[str, pd.DataFrame]:
    """:func:`value_by_segment` for every segment column of ``frame`` (``*_segment``, tiers, churn risk)."""
    columns = [c for c in frame.columns if c.endswith("_segment")] + [c for c in ("value_tier", "churn_risk") if c in frame]
    return {col: value_by_segment(frame, col, list(value_cols)).round(1) for col in columns}


# --------------------------------------------------------------------------------------------
# The value basis: CLV models -> value tiers and churn risk, one call for the value page
# --------------------------------------------------------------------------------------------

#: Families the page fits and compares (``params.14_value.model = "auto"``).
FAMILY_ORDER = ("bgnbd", "mbgnbd", "pareto_nbd")


@dataclass
class ValueModel:
    """What a run needs to score customers later without refitting: fitted models, tier cut points, churn rule.

    Picklable (the fits drop their PyMC objects); saved by ``run.save_result`` as ``models/value.joblib``.

    Attributes
    ----------
    purchase : analysis.clv.PurchaseModelFit
        The chosen purchase model, fitted on the full period.
    spend : analysis.clv.SpendModelFit
        Gamma-Gamma, fitted on the full period.
    time_unit, horizon_months, discount_rate_annual, margin
        How CLV is computed.
    tier_cuts : dict of str to float
        Smallest CLV of each named tier, best tier first; below every cut is ``Rest``.
    churn_path : {"model", "empirical"}
        What drives P(alive) and churn risk.
    churn_rule : analysis.clv.EmpiricalChurnRule or None
        The empirical rule (its population gap) when ``churn_path == "empirical"``.
    bands : analysis.clv.ChurnBands
        Churn-risk cut points on the churn score.
    """

    purchase: Any
    spend: Any
    time_unit: str
    horizon_months: int
    discount_rate_annual: float
    margin: float
    tier_cuts: dict[str, float]
    churn_path: str
    churn_rule: Any
    bands: Any

    def score(self, transactions: pd.DataFrame, as_of: str | pd.Timestamp) -> pd.DataFrame:
        """Per-customer value labels for (new) transactions as of a date, with the stored models.

        Returns ``customer_id, clv, p_alive, expected_purchases, expected_spend, value_tier, churn_risk``.
        """
        from .. import clv

        summary = clv.rfm_summary(transactions, observation_period_end=as_of, time_unit=self.time_unit)
        scores = clv.customer_lifetime_value(self.purchase, self.spend, summary, horizon_months=self.horizon_months,
                                             discount_rate_annual=self.discount_rate_annual, margin=self.margin,
                                             time_unit=self.time_unit)
        if self.churn_path == "empirical":
            scores["p_alive"] = self.churn_rule.score(summary)["activity"].to_numpy()
        scores["value_tier"] = tiers_from_cuts(scores["clv"], self.tier_cuts)
        scores["churn_risk"] = np.asarray(self.bands.assign(scores["p_alive"]), dtype=object)
        scores["customer_id"] = scores["customer_id"].astype(str)
        return scores


def clv_title(model: str) -> str:
    """Page name of a purchase-model family ("BG/NBD")."""
    from ..clv import FAMILIES

    return FAMILIES[model].title if model in FAMILIES else model


def tiers_from_cuts(values: pd.Series, cuts: dict[str, float]) -> pd.Series:
    """Tier of each value from stored cut points (best tier first): the first tier whose cut it reaches, else ``Rest``."""
    out = pd.Series("Rest", index=values.index, dtype=object)
    for name, cut in sorted(cuts.items(), key=lambda kv: kv[1]):  # a few tiers, lowest cut first
        out[values >= cut] = name
    return out.rename("value_tier")


def tier_cuts(values: pd.Series, tiers: pd.Series) -> dict[str, float]:
    """Smallest value in each named tier (``Rest`` excluded), best tier first."""
    named = tiers[tiers != "Rest"]
    cuts = values[named.index].groupby(named).min()
    return {str(k): float(v) for k, v in cuts.sort_values(ascending=False).items()}


def tier_uncertainty(frame: pd.DataFrame, cuts: dict[str, float]) -> pd.DataFrame:
    """Per named tier: members whose CLV interval reaches below its cut, and others whose interval reaches it.

    Columns ``tier``, ``cut``, ``members``, ``could_fall_out`` and ``could_move_in``.
    """
    rows = []
    for name, cut in cuts.items():  # a few tiers
        member = frame["clv"] >= cut
        rows.append({"tier": name, "cut": cut, "members": int(member.sum()),
                     "could_fall_out": int((member & (frame["clv_low"] < cut)).sum()),
                     "could_move_in": int((~member & (frame["clv_high"] >= cut)).sum())})
    return pd.DataFrame(rows)


def interval_of_totals(totals: pd.DataFrame, level: float) -> pd.DataFrame:
    """``clv_low``/``clv_high`` per group from each group's total in every draw (draws x groups)."""
    quantiles = np.quantile(totals.to_numpy(), [(1 - level) / 2, (1 + level) / 2], axis=0)
    return pd.DataFrame({"clv_low": quantiles[0], "clv_high": quantiles[1]}, index=totals.columns)


@dataclass(kw_only=True)
class ValueResult(SegmentationResult):
    """Value tiers by predicted CLV, churn risk, and the evidence behind them (the value page).

    Besides the shared ``labels`` / ``profiles`` / ``model``: ``rfm`` (the customer summary),
    ``holdout`` (:class:`analysis.clv.HoldoutPlan`), ``holdout_table`` (predicted vs actual by
    calibration frequency), ``comparison`` (every family on the holdout), ``fits`` (calibration
    and full-period fits), ``diagnostic`` (:class:`analysis.clv.FitDiagnostic` of the chosen fit),
    ``gamma_gamma`` (independence check), ``bands`` (:class:`analysis.clv.ChurnBands`),
    ``worth`` (one row per customer: value, history, segments), ``tier_uncertainty``.
    """

    basis: ClassVar[str] = "value"
    title: ClassVar[str] = "Customer value (CLV) and profitability"

    rfm: pd.DataFrame = field(default_factory=pd.DataFrame)
    settings: dict[str, Any] = field(default_factory=dict)
    holdout: Any = None
    holdout_table: pd.DataFrame | None = None
    holdout_metrics: dict[str, float] | None = None
    comparison: pd.DataFrame = field(default_factory=pd.DataFrame)
    chosen: str = ""
    choice_reason: str = ""
    fits: dict[str, dict[str, Any]] = field(default_factory=dict)
    diagnostics: dict[str, Any] = field(default_factory=dict)
    diagnostic: Any = None
    churn_path: str = "model"
    churn_reason: str = ""
    gamma_gamma: dict[str, Any] = field(default_factory=dict)
    bands: Any = None
    worth: pd.DataFrame = field(default_factory=pd.DataFrame)
    tier_uncertainty: pd.DataFrame = field(default_factory=pd.DataFrame)
    timings: dict[str, float] = field(default_factory=dict)

    def _rules_verdict(self) -> Verdict | None:
        return rules_verdict("value tiers by predicted CLV")

    @property
    def verdict(self) -> Verdict | None:
        """Value tiers are rules (ranks of predicted CLV), whatever model scored the customers."""
        return self._rules_verdict() if self.available else None

    # -- sentences for the page -----------------------------------------------------------------
    @property
    def unit_name(self) -> str:
        return {"W": "weeks", "D": "days"}[self.settings.get("time_unit", "W")]

    def headline(self) -> str:
        return value_headline(self.worth, horizon_months=self.settings["horizon_months"]) + (
            f" CLV uses a margin of {self.settings['margin']:.0%} and a {self.settings['discount_rate_annual']:.0%} yearly "
            "discount rate; amounts are in the data's currency.")

    def holdout_sentence(self) -> str:
        plan = self.holdout
        if plan is None or not plan.available:
            return (plan.reason if plan is not None else "No holdout period.") + " The model is not checked against later data."
        m = self.holdout_metrics or {}
        if not m:
            return plan.reason
        title = clv_title(self.chosen)
        change = 100 * (m["predicted_total"] / m["actual_total"] - 1) if m["actual_total"] else float("nan")
        better = "beats" if m["mae_model"] < m["mae_naive"] else "does not beat"
        return (f"{plan.reason} Actual repeat purchases in the holdout: **{m['actual_total']:,.0f}**; {title} predicted "
                f"**{m['predicted_total']:,.0f}** ({change:+.1f}%). Mean absolute error per customer: model "
                f"**{m['mae_model']:.3f}** vs naive same-rate baseline **{m['mae_naive']:.3f}**, so the model {better} it.")

    def choice_sentence(self) -> str:
        fitted, everyone = self.settings.get("fit_customers"), len(self.rfm) if self.rfm is not None else None
        if fitted is None or everyone is None or fitted >= everyone:
            return self.choice_reason
        return (f"{self.choice_reason} The models were fitted, and compared on the holdout, on a random sample of "
                f"{fitted:,} of the {everyone:,} customers (params.14_value.fit_sample_size); every customer is scored "
                "with the fitted parameters, whose uncertainty (and so every interval) is that of the sample.")

    def churn_sentences(self) -> list[str]:
        lines = [self.diagnostic.sentence() if self.diagnostic is not None else "", self.churn_reason]
        if self.bands is not None:
            lines += self.bands.sentences("P(alive)" if self.churn_path == "model" else "activity score")
        return [line for line in lines if line]

    def tier_sentence(self) -> str:
        if self.tier_uncertainty.empty:
            return ""
        level = self.settings["interval_level"]
        parts = [f"{row.tier}: {row.members:,} customers (CLV from {row.cut:,.0f}); {row.could_fall_out:,} of them have a "
                 f"{level:.0%} interval reaching below that, and {row.could_move_in:,} customers outside reach into it"
                 for row in self.tier_uncertainty.itertuples()]
        return "Tier membership is uncertain near the cuts. " + ". ".join(parts) + "."

    def priority_sentence(self) -> str:
        from ..clv import priority_formula

        return priority_formula(self.settings["horizon_months"], self.settings["discount_rate_annual"], self.settings["margin"],
                                self.settings["interval_level"])

    def parameter_table(self) -> pd.DataFrame:
        """Calibration and full-period parameters of every fitted model, one row per fit."""
        rows = [{"model": fit["title"], "fitted_on": fit["fitted_on"], "customers": fit["customers"],
                 "parameters": ", ".join(f"{k} = {v:.4g}" for k, v in fit["params"].items()),
                 "log_likelihood": fit["log_likelihood"]}
                for period in ("calibration", "full") for fit in self.fits.get(period, {}).values()]
        return pd.DataFrame(rows)

    def p_alive_grid(self) -> tuple[pd.DataFrame, str]:
        """P(alive) on a frequency x recency grid for a typical customer age, and its title."""
        from .. import clv

        typical_T = float(self.rfm["T"].quantile(0.75))
        grid = coarsen_columns(clv.p_alive_matrix(self.model.purchase, typical_T, max_frequency=10))
        return grid, f"P(alive) under the {clv_title(self.chosen)} fit (customer for {typical_T:.0f} {self.unit_name})"

    def tier_table(self) -> pd.DataFrame:
        """Value tiers: customers, past revenue and predicted CLV with its interval (totals)."""
        columns = ["customers", "customers_pct", "revenue", "revenue_pct", "clv", "clv_low", "clv_high", "clv_pct",
                   "clv_per_customer"]
        table = self.profiles.set_index("segment")
        return table[[c for c in columns if c in table]].round(1)

    def comparison_table(self) -> pd.DataFrame:
        """Every fitted family on the holdout (or by log-likelihood without one), chosen one marked."""
        table = self.comparison.copy()
        table.insert(0, "chosen", table.index == self.chosen)
        rounding = {"predicted_total": 0, "actual_total": 0, "error_pct": 1, "mae_model": 3, "mae_naive": 3, "log_likelihood": 2}
        table = table.set_index("title").round({k: v for k, v in rounding.items() if k in table})
        return table.rename(columns={"predicted_total": "Predicted repeat purchases", "actual_total": "Actual repeat purchases",
                                     "mae_model": "MAE per customer, model", "mae_naive": "MAE per customer, naive"})

    def churn_band_table(self) -> pd.DataFrame:
        """Churn-risk levels now (customers, share) and, when calibrated, the holdout repurchase rate behind each."""
        now = self.labels["churn_risk"].value_counts().reindex(["high", "medium", "low"]).fillna(0).astype(int)
        table = pd.DataFrame({"customers": now, "customers_pct": (100 * now / max(len(self.labels), 1)).round(1)})
        if self.bands is not None and self.bands.table_ is not None:
            table["holdout_repurchase_pct"] = (100 * self.bands.table_["repurchase_rate"]).round(1)
            table["holdout_customers"] = self.bands.table_["customers"]
        table.index.name = "churn_risk"
        return table

    def top_customers(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` customers with the highest CLV, with their intervals, P(alive) and churn risk."""
        columns = ["clv", "clv_low", "clv_high", "p_alive", "p_alive_low", "p_alive_high", "churn_risk", "value_tier",
                   "frequency", "total_spend"]
        top = self.worth.sort_values("clv", ascending=False).head(n)
        return top[[c for c in columns if c in top]].round({"clv": 0, "clv_low": 0, "clv_high": 0, "p_alive": 3,
                                                            "p_alive_low": 3, "p_alive_high": 3, "total_spend": 0})

    def lorenz_curves(self) -> dict[str, pd.DataFrame]:
        curves = {"predicted value (CLV)": lorenz_curve(self.worth["clv"])}
        for column, label in (("total_spend", "past revenue"), ("total_margin", "past profit")):
            if column in self.worth:
                curves[label] = lorenz_curve(self.worth[column])
        return curves

    def concentration_sentence(self) -> str:
        if "total_spend" not in self.worth:
            return ""
        spend = self.worth["total_spend"]
        return (f"The top 20% of customers brought {top_share(spend, 0.2):.0f}% of past revenue (Gini {gini(spend):.2f}); "
                f"they are predicted to bring {top_share(self.worth['clv'], 0.2):.0f}% of the next "
                f"{self.settings['horizon_months']} months' value.")

    def profitability(self) -> dict[str, pd.DataFrame]:
        return profitability_tables(self.worth)

    def profitability_table(self, basis: str) -> pd.DataFrame:
        tables = self.profitability()
        return tables[basis if basis in tables else "value_tier"]

    def allocation(self, basis: str) -> pd.DataFrame:
        return resource_allocation(self.worth, basis if basis in self.worth else "value_tier")

    def summary_lines(self) -> list[str]:
        lines = [value_headline(self.worth, horizon_months=self.settings["horizon_months"])]
        title = clv_title(self.chosen)
        if self.holdout_metrics:
            how = self.choice_reason.split(":")[0].lower() if self.choice_reason else "chosen"
            lines.append(holdout_line(title, how, self.holdout_metrics["mae_model"], self.holdout_metrics["mae_naive"]))
        if self.churn_path == "empirical":
            lines.append("Churn risk from time since last order (the purchase model's dropout fit degenerated).")
        if self.gamma_gamma.get("warn"):
            lines.append(f"Spend model warning: frequency-spend correlation {self.gamma_gamma['pearson']:.2f} among repeat buyers.")
        return lines

    def payload(self) -> dict[str, Any]:
        return {
            "settings": self.settings,
            "chosen_model": self.chosen,
            "model_choice": self.choice_reason,
            "holdout": None if self.holdout is None else {
                "calibration_end": None if self.holdout.calibration_end is None else str(self.holdout.calibration_end.date()),
                "periods": self.holdout.periods, "source": self.holdout.source, "reason": self.holdout.reason,
                "metrics": self.holdout_metrics,
                "by_calibration_frequency": None if self.holdout_table is None else self.holdout_table.round(4).reset_index().to_dict(orient="records"),
            },
            "calibration_fits": self.fits.get("calibration", {}),
            "full_period_fits": self.fits.get("full", {}),
            "comparison": self.comparison.round(4).reset_index().to_dict(orient="records") if len(self.comparison) else [],
            "degenerate_fit": self.diagnostic.to_dict() if self.diagnostic is not None else None,
            "family_diagnostics": self.diagnostics,
            "churn": {"path": self.churn_path, "reason": self.churn_reason,
                      "bands": self.bands.to_dict() if self.bands is not None else None},
            "gamma_gamma_check": self.gamma_gamma,
            "tiers": {"cuts": self.model.tier_cuts if self.model is not None else {},
                      "uncertainty": self.tier_uncertainty.to_dict(orient="records")},
            "priority": {"formula": self.priority_sentence(), "horizon_months": self.settings.get("horizon_months")},
            # no timings here: the manifest's models are what a run reproduces (two runs, same models)
        }


def fit_sample(customer_ids: pd.Series, size: int | None, random_state: int) -> np.ndarray | None:
    """Positions of a random sample of ``size`` customers, in their original order (None: fit on all).

    Examples
    --------
    >>> ids = pd.Series([f"C{i}" for i in range(1000)])
    >>> fit_sample(ids, None, 0) is None, fit_sample(ids, 2000, 0) is None, len(fit_sample(ids, 400, 0))
    (True, True, 400)
    """
    if size is None or len(customer_ids) <= size:
        return None
    if size < 100:
        raise ValueError(f"params.14_value.fit_sample_size = {size}: too few customers to fit the purchase models on; "
                         "use at least 100 (the default is 20000), or null to fit on every customer.")
    rng = np.random.default_rng(random_state)
    return np.sort(rng.choice(len(customer_ids), size=size, replace=False))


def _fit_record(fit: Any, fitted_on: str, metrics: dict[str, float] | None = None) -> dict[str, Any]:
    record = {"model": getattr(fit, "model", "gamma_gamma"),
              "title": fit.family.title if hasattr(fit, "family") else "Gamma-Gamma",
              "fitted_on": fitted_on, "customers": fit.n_customers_, "params": dict(fit.params_),
              "log_likelihood": fit.log_likelihood_, "priors": fit.priors}
    if metrics is not None:
        record["holdout"] = metrics
    return record


def segment_value(
    transactions: pd.DataFrame | str | Path,
    features: pd.DataFrame,
    *,
    as_of: str | pd.Timestamp,
    labels: dict[str, pd.DataFrame] | None = None,
    time_unit: str = "W",
    model: str = "auto",
    calibration_end: str | None = None,
    holdout_fraction: float = 0.25,
    horizon_months: int = 12,
    discount_rate_annual: float = 0.10,
    margin: float | None = None,
    priors: str = "flat",
    gamma_gamma_max_correlation: float = 0.3,
    interval_level: float = 0.9,
    n_draws: int = 200,
    tiers: dict[str, float] | None = None,
    fit_sample_size: int | None = 20_000,
    random_state: int = 42,
) -> ValueResult:
    """Value tiers by predicted CLV and churn risk, checked on a holdout period.

    1. Summarise the transactions (:func:`analysis.clv.rfm_summary`) and hold out the last
       ``holdout_fraction`` of the span (``calibration_end`` overrides it).
    2. Fit BG/NBD, MBG/NBD and Pareto/NBD on the calibration period (or only ``model``), compare
       their holdout predictions and choose the one with the lowest mean absolute error among
       fits that have not degenerated (:func:`analysis.clv.dropout_diagnostic`).
    3. Refit the chosen family and Gamma-Gamma on the full period; score CLV with per-customer
       intervals (:func:`analysis.clv.clv_intervals`).
    4. Churn risk: the chosen fit's P(alive), or, when that fit has degenerated, the empirical
       rule (:class:`analysis.clv.EmpiricalChurnRule`); banded by :class:`analysis.clv.ChurnBands`
       calibrated on the holdout.
    5. Value tiers by CLV rank, with tier totals and the customers whose intervals straddle a cut.

    Parameters
    ----------
    transactions : DataFrame or path to Parquet
        Validated order lines (``customer_id``, ``timestamp``, ``amount``, optionally ``margin``), or
        the run's Parquet file of them (``run.parquet("transactions")``), which DuckDB then reads in place:
        the step never holds the order lines in memory (at a million customers that is the
        difference between 4.7 and 2 GB).
    features : DataFrame
        Customer features indexed by ``customer_id`` (``total_spend`` ...), from the behavioral page.
    as_of : str or Timestamp
        End of the observation period.
    labels : dict of DataFrame, optional
        Other bases' labels (for profitability and allocation by their segments).
    time_unit : {"W", "D"}
    model : {"auto", "bgnbd", "mbgnbd", "pareto_nbd"}
        ``auto`` compares the three on the holdout; a family name forces it.
    calibration_end : str, optional
        End of the calibration period (``YYYY-MM-DD``); empty = the default holdout.
    holdout_fraction : float
        Share of the data span held out by default.
    horizon_months, discount_rate_annual : CLV horizon and discounting.
    margin : float, optional
        Gross margin applied to spend; None = the data's margin rate, else 1.
    priors : {"flat", "default"}
    gamma_gamma_max_correlation : float
        Threshold of the Gamma-Gamma frequency-spend check.
    interval_level : float
        Probability of the per-customer intervals.
    n_draws : int
        Posterior draws behind the intervals.
    tiers : dict, optional
        Tier name -> cumulative share of customers (default :data:`DEFAULT_TIERS`).
    fit_sample_size : int or None, default 20,000
        With more customers than this, the purchase and spend models are fitted (and compared on the
        holdout) on a random sample of this many customers, drawn with ``random_state``; every
        customer is then scored with the fitted parameters. The parameters' uncertainty is that of
        the sample, so intervals are, if anything, wider. ``None`` fits on everyone.
    random_state : int

    Returns
    -------
    ValueResult
    """
    import time

    from .. import clv

    timings: dict[str, float] = {}
    clock = time.perf_counter()
    families = FAMILY_ORDER if model == "auto" else (clv.family(model).name,)
    tiers = tiers or DEFAULT_TIERS
    as_of = pd.Timestamp(as_of)
    totals = line_totals(transactions)  # one pass for the first purchase and the margin rate
    first = totals.first
    # The holdout is planned first so that both summaries come from one pass; a plan the config makes impossible
    # is reported after the summary's own errors and the repeat-buyer check, as when they were computed apart.
    plan, plan_error = None, None
    if pd.notna(first):  # no order lines at all: the summary says so
        try:
            plan = clv.plan_holdout(first, as_of, time_unit=time_unit, fraction=holdout_fraction,
                                    calibration_end=calibration_end or None)
        except ValueError as error:
            plan_error = error
    if plan is not None and plan.available:  # the full-period summary and the calibration/holdout split, from one pass
        summary, split = clv.rfm_summary_and_split(transactions, observation_period_end=as_of, time_unit=time_unit,
                                                   calibration_period_end=plan.calibration_end)
    else:
        summary, split = clv.rfm_summary(transactions, observation_period_end=as_of, time_unit=time_unit), None
    fitted_ids = fit_sample(summary["customer_id"], fit_sample_size, random_state)
    fit_summary = summary if fitted_ids is None else summary.iloc[fitted_ids].reset_index(drop=True)
    repeat = int((summary["frequency"] > 0).sum())
    if repeat < 10:
        return ValueResult(available=False, message=(
            f"Only {repeat} customers bought more than once by {as_of.date()}: the purchase models need repeat buyers "
            "to estimate how often customers buy and when they leave. Add more history to the transactions."))
    if plan_error is not None:
        raise plan_error
    margin_used = float(margin) if margin is not None else totals.margin_rate()
    unit = {"W": "weeks", "D": "days"}[time_unit]
    span = float((as_of - first) / pd.Timedelta(1, unit=time_unit))
    settings = {"time_unit": time_unit, "model": model, "horizon_months": horizon_months,
                "discount_rate_annual": discount_rate_annual, "margin": margin_used, "priors": priors,
                "holdout_fraction": holdout_fraction, "gamma_gamma_max_correlation": gamma_gamma_max_correlation,
                "interval_level": interval_level, "n_draws": n_draws, "interval_method": (
                    "posterior draws: parameters from the normal approximation of their log-likelihood, then each "
                    "customer's latent purchase rate, dropout and spend from their posterior"),
                "fit_sample_size": fit_sample_size, "fit_customers": len(fit_summary), "random_state": random_state}
    timings["summary"] = time.perf_counter() - clock

    # -- calibration fits, holdout comparison, choice -------------------------------------------
    clock = time.perf_counter()
    calibration: dict[str, Any] = {}
    records: dict[str, dict[str, Any]] = {"calibration": {}, "full": {}}
    diagnostics: dict[str, Any] = {}
    comparison = pd.DataFrame()
    if plan.available:
        split_fit = split if fitted_ids is None else split.loc[split["customer_id"].isin(fit_summary["customer_id"])].reset_index(drop=True)
        calibration_span = span - plan.periods
        for name in families:  # three families at most
            fit = clv.fit_purchase_model(split_fit, model=name, priors=priors, random_state=random_state, covariance=False)
            metrics = clv.holdout_metrics(fit, split_fit)
            calibration[name] = fit
            records["calibration"][name] = _fit_record(fit, f"calibration period to {plan.calibration_end.date()}", metrics)
            diagnostics[name] = clv.dropout_diagnostic(fit, split_fit, span=calibration_span, metrics=metrics,
                                                       time_unit=time_unit).to_dict()
        comparison = clv.compare_models(calibration, split_fit)
        comparison["degenerate"] = [diagnostics[name]["degenerate"] for name in comparison.index]
        if model == "auto":
            sound = comparison.loc[~comparison["degenerate"]]
            pool = sound if len(sound) else comparison
            chosen = str(pool["mae_model"].idxmin())
            why = ("lowest mean absolute error on the holdout" + ("" if len(sound) else
                   ", although every family's fit degenerated") + (" among the fits that did not degenerate"
                   if len(sound) < len(comparison) and len(sound) else ""))
            reason = (f"Chosen: {clv.family(chosen).title}, the {why} ({comparison.loc[chosen, 'mae_model']:.3f} purchases per "
                      f"customer; naive {comparison.loc[chosen, 'mae_naive']:.3f}).")
        else:
            chosen = families[0]
            reason = f"Chosen: {clv.family(chosen).title}, as set in params.14_value.model."
        holdout_table = clv.holdout_comparison(calibration[chosen], split_fit)
        holdout_metrics = records["calibration"][chosen]["holdout"]
        spend_calibration = clv.fit_gamma_gamma(split_fit, priors=priors, random_state=random_state)
        records["calibration"]["gamma_gamma"] = _fit_record(spend_calibration, f"calibration period to {plan.calibration_end.date()}")
    else:
        holdout_table, holdout_metrics = None, None
        fits_full = {name: clv.fit_purchase_model(fit_summary, model=name, priors=priors, random_state=random_state,
                                                  covariance=False) for name in families}
        chosen = max(fits_full, key=lambda name: fits_full[name].log_likelihood_)
        comparison = clv.compare_models(fits_full)
        reason = (f"Chosen: {clv.family(chosen).title}, " + ("the highest log-likelihood on the full period (no holdout to "
                  "compare predictions on)." if model == "auto" else "as set in params.14_value.model."))
    timings["calibration_fits"] = time.perf_counter() - clock

    # -- full-period fits and scores -------------------------------------------------------------
    clock = time.perf_counter()
    purchase = clv.fit_purchase_model(fit_summary, model=chosen, priors=priors, random_state=random_state)
    spend = clv.fit_gamma_gamma(fit_summary, priors=priors, random_state=random_state)
    records["full"][chosen] = _fit_record(purchase, f"all data to {as_of.date()}")
    records["full"]["gamma_gamma"] = _fit_record(spend, f"all data to {as_of.date()}")
    diagnostic = clv.dropout_diagnostic(purchase, fit_summary, span=span, metrics=holdout_metrics, time_unit=time_unit)
    timings["full_fits"] = time.perf_counter() - clock

    clock = time.perf_counter()
    clv_settings = {"horizon_months": horizon_months, "discount_rate_annual": discount_rate_annual,
                    "margin": margin_used, "time_unit": time_unit}
    scores = clv.customer_lifetime_value(purchase, spend, summary, **clv_settings)
    scores["customer_id"] = scores["customer_id"].astype(str)
    # Tiers come from the point CLV; the intervals then sum each tier's draws as they go.
    tier_of = value_tiers(scores.set_index("customer_id")["clv"].reindex(features.index), tiers)  # the frame's clv column
    tier_of_scored = tier_of.reindex(scores["customer_id"].to_numpy()).fillna("Rest").rename("value_tier")
    intervals, tier_draws = clv.clv_intervals(purchase, spend, summary, level=interval_level, n_draws=n_draws,
                                              random_state=random_state, groups=tier_of_scored.to_numpy(),
                                              p_alive=scores["p_alive"].to_numpy(), **clv_settings)
    settings["p_alive_draws"] = dict(intervals.attrs.get("p_alive_draws", {}))
    intervals["customer_id"] = intervals["customer_id"].astype(str)
    scores = scores.merge(intervals, on="customer_id", how="left", validate="one_to_one")
    timings["scores_and_intervals"] = time.perf_counter() - clock

    # -- churn path and calibrated bands --------------------------------------------------------
    clock = time.perf_counter()
    rule = None
    if diagnostic.degenerate:
        churn_path = "empirical"
        rule = clv.EmpiricalChurnRule().fit(summary)
        activity = rule.score(summary, level=interval_level)
        scores["p_alive"] = activity["activity"].to_numpy()
        scores["p_alive_low"] = activity["activity_low"].to_numpy()
        scores["p_alive_high"] = activity["activity_high"].to_numpy()
        churn_reason = (
            "So churn risk does not come from the model's P(alive). It falls back to an explained rule: each customer's "
            "time since their last order is set against their own usual time between orders, pulled towards the "
            f"population's typical gap of {rule.population_gap_:.1f} {unit} (one-order customers get the population's). "
            "The `p_alive` column then holds this activity score: the chance that a customer still buying at their usual "
            "rate would have been silent this long. CLV still comes from the model, which assumes nobody leaves: read the "
            "value of long-silent customers as an upper bound.")
    else:
        churn_path = "model"
        churn_reason = f"Churn risk comes from the {clv.family(chosen).title} fit's P(alive)."
    if split is not None:
        if churn_path == "empirical":
            score_calibration = clv.EmpiricalChurnRule().fit(split).score(split_fit)["activity"].to_numpy()
        else:
            score_calibration = calibration[chosen].p_alive(split_fit["frequency"], split_fit["recency"], split_fit["T"])
        bands = clv.ChurnBands(time_unit=time_unit).fit(score_calibration, split_fit["frequency_holdout"].to_numpy() > 0,
                                                        window=plan.periods)
    else:
        bands = clv.ChurnBands.fixed(time_unit)
    scores["churn_risk"] = np.asarray(bands.assign(scores["p_alive"]), dtype=object)
    timings["churn"] = time.perf_counter() - clock

    # -- tiers, profiles, labels ----------------------------------------------------------------
    worth = customer_value_frame(features, scores, labels)
    worth["value_tier"] = tier_of.reindex(worth.index)
    cuts = tier_cuts(worth["clv"], worth["value_tier"])
    uncertainty = tier_uncertainty(worth, cuts)
    tier_totals = interval_of_totals(tier_draws.rename_axis(columns="value_tier"), interval_level)
    profile = segment_sizes_frame(worth, "value_tier")
    profile = profile.join(tier_totals, on="segment")
    profile["clv_pct"] = 100 * profile["clv"] / profile["clv"].sum() if profile["clv"].sum() else np.nan
    order = [*cuts, "Rest"]
    profile = profile.set_index("segment").reindex([t for t in order if t in set(profile["segment"])]).reset_index()

    frame_out = worth.reset_index().rename(columns={"index": "customer_id"})
    labels_out = frame_out[[c for c in LABEL_COLUMNS if c in frame_out]].copy()
    labels_out["customer_id"] = labels_out["customer_id"].astype(str)

    value_model = ValueModel(purchase=purchase.without_model(), spend=spend.without_model(), time_unit=time_unit,
                             horizon_months=horizon_months, discount_rate_annual=discount_rate_annual, margin=margin_used,
                             tier_cuts=cuts, churn_path=churn_path, churn_rule=rule, bands=bands)
    return ValueResult(
        available=True,
        notes=[],
        labels=labels_out,
        profiles=profile,
        model=value_model,
        rfm=summary,
        settings=settings,
        holdout=plan,
        holdout_table=holdout_table,
        holdout_metrics=holdout_metrics,
        comparison=comparison,
        chosen=chosen,
        choice_reason=reason,
        fits=records,
        diagnostics=diagnostics,
        diagnostic=diagnostic,
        churn_path=churn_path,
        churn_reason=churn_reason,
        gamma_gamma=clv.gamma_gamma_check(summary, max_abs_correlation=gamma_gamma_max_correlation),
        bands=bands,
        worth=worth,
        tier_uncertainty=uncertainty,
        timings=timings,
    )


def segment_sizes_frame(worth: pd.DataFrame, column: str) -> pd.DataFrame:
    """Profiles of one segmentation of ``worth``: the common columns (revenue = historic spend) plus CLV."""
    grouped = worth.groupby(column, observed=True, sort=False)
    out = pd.DataFrame({"customers": grouped.size(),
                        "revenue": grouped["total_spend"].sum() if "total_spend" in worth else np.nan,
                        "clv": grouped["clv"].sum()})
    if "total_margin" in worth:
        out["margin"] = grouped["total_margin"].sum()
    add_shares(out, len(worth), has_value="total_spend" in worth)
    out["clv_per_customer"] = out["clv"] / out["customers"]
    out = out.reset_index().rename(columns={column: "segment"})
    front = ["segment", "customers", "customers_pct", "revenue", "revenue_pct", "revenue_per_customer"]
    return out[front + [c for c in out.columns if c not in front]]
