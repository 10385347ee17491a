"""Checking the models against the data: holdout validation, model choice, degenerate fits, spend check,
and churn risk that holds when the model does not.

* :func:`plan_holdout` holds out the last part of the period (a quarter by default);
  :func:`holdout_comparison` and :func:`holdout_metrics` compare predicted and actual repeat
  purchases there (the classic table of Fader, Hardie & Lee 2005, and MAE against the naive
  "same rate" baseline); :func:`compare_models` does so for every family.
* :func:`dropout_diagnostic` says, in plain words, when a fit has degenerated (a dropout parameter
  at its bound, a dropout process that never fires, no better than naive on the holdout).
* :func:`gamma_gamma_check` reports the frequency-spend correlation the Gamma-Gamma model assumes away.
* :class:`EmpiricalChurnRule` scores how unusual a customer's silence is against their own and
  the population's time between orders: the explained fallback when the model cannot tell.
* :class:`ChurnBands` turns any such score into churn-risk bands calibrated on the holdout: what
  share of each band actually bought again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import hyp2f1

from .models.basic import PurchaseModelFit, as_float_arrays
from .summary import TimeUnit, _unit_timedelta

__all__ = [
    "ChurnBands",
    "EmpiricalChurnRule",
    "FitDiagnostic",
    "HoldoutPlan",
    "compare_models",
    "dropout_diagnostic",
    "gamma_gamma_check",
    "holdout_comparison",
    "holdout_metrics",
    "holdout_predictions",
    "plan_holdout",
    "share_lost",
]

UNIT_NAMES = {"W": "weeks", "D": "days"}


# --------------------------------------------------------------------------------------
# Holdout period
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HoldoutPlan:
    """Where the calibration period ends, or why there is no holdout.

    Attributes
    ----------
    calibration_end : Timestamp or None
        Last day of the calibration period (inclusive); None when the span is too short.
    periods : float
        Length of the holdout in the time unit (0 without a holdout).
    source : {"config", "default", "none"}
        ``calibration_end`` from the config, the default fraction of the span, or no holdout.
    reason : str
        One sentence for the page.
    """

    calibration_end: pd.Timestamp | None
    periods: float
    source: str
    reason: str

    @property
    def available(self) -> bool:
        return self.calibration_end is not None


def plan_holdout(
    first_purchase: pd.Timestamp,
    observation_end: pd.Timestamp,
    *,
    time_unit: TimeUnit = "W",
    fraction: float = 0.25,
    calibration_end: str | pd.Timestamp | None = None,
) -> HoldoutPlan:
    """Hold out the last ``fraction`` of the data span (whole time units, at least one).

    Parameters
    ----------
    first_purchase, observation_end : Timestamp
        First transaction and end of the observation period (the run's as-of date).
    time_unit : {"W", "D"}
        The models' time unit; the holdout is a whole number of them.
    fraction : float, default 0.25
        Share of the span held out (``params.14_value.holdout_fraction``).
    calibration_end : str or Timestamp, optional
        An explicit end of the calibration period (``params.14_value.calibration_end``); overrides
        ``fraction``.

    Returns
    -------
    HoldoutPlan
        No holdout when the span is shorter than two time units.

    Examples
    --------
    >>> plan = plan_holdout(pd.Timestamp("2024-01-01"), pd.Timestamp("2024-12-30"))
    >>> str(plan.calibration_end.date()), plan.periods
    ('2024-09-30', 13.0)
    """
    unit = _unit_timedelta(time_unit)
    unit_name = UNIT_NAMES[time_unit]
    observation_end = pd.Timestamp(observation_end)
    if calibration_end is not None and str(calibration_end).strip():
        end = pd.Timestamp(calibration_end)
        if end.tzinfo is None and observation_end.tzinfo is not None:
            end = end.tz_localize(observation_end.tzinfo)
        if not pd.Timestamp(first_purchase) <= end < observation_end:
            raise ValueError(
                f"params.14_value.calibration_end = {end.date()}: expected a date between the first purchase "
                f"({pd.Timestamp(first_purchase).date()}) and the end of the data ({observation_end.date()}). "
                "Change it, or remove it to hold out the last quarter by default."
            )
        periods = float((observation_end - end) / unit)
        return HoldoutPlan(end, periods, "config",
                           f"Calibration to {end.date()} as configured; the {periods:.0f} {unit_name} after it are the holdout.")
    if not 0 < fraction < 1:
        raise ValueError(f"params.14_value.holdout_fraction = {fraction}: expected a share between 0 and 1, e.g. 0.25.")
    span = float((observation_end - pd.Timestamp(first_purchase)) / unit)
    if span < 2:
        return HoldoutPlan(None, 0.0, "none",
                           f"The data span only {span:.1f} {unit_name}: too short to hold out a period and check the model.")
    periods = float(max(1, round(fraction * span)))
    end = observation_end - periods * unit
    return HoldoutPlan(end, periods, "default",
                       f"The last {periods:.0f} {unit_name} ({fraction:.0%} of the {span:.0f} {unit_name} of data, from "
                       f"{(end + pd.Timedelta(days=1)).date()}) are held out; the models are refitted on the data before them.")


def _holdout_columns(summary_with_holdout: pd.DataFrame) -> list[np.ndarray]:
    required = ["frequency", "recency", "T", "frequency_holdout", "duration_holdout"]
    missing = [col for col in required if col not in summary_with_holdout.columns]
    if missing:
        raise ValueError(
            f"summary_with_holdout: column(s) {missing} not found. Found: {list(summary_with_holdout.columns)}. "
            "Build it with rfm_summary(..., calibration_period_end=...)."
        )
    return as_float_arrays(*(summary_with_holdout[col] for col in required))


def holdout_predictions(fit: PurchaseModelFit, summary_with_holdout: pd.DataFrame) -> pd.DataFrame:
    """Per customer: calibration frequency, actual, predicted and naive holdout purchases (any family).

    The naive benchmark assumes the customer keeps the repeat-purchase rate seen in calibration:
    ``frequency / T * duration_holdout``.
    """
    x, t_x, T, actual, duration = _holdout_columns(summary_with_holdout)
    naive_rate = np.divide(x, T, out=np.zeros_like(x), where=T > 0)
    return pd.DataFrame(
        {
            "frequency": x,
            "actual": actual,
            "predicted": fit.expected_purchases(x, t_x, T, duration),
            "naive": naive_rate * duration,
        }
    )


def holdout_comparison(fit: PurchaseModelFit, summary_with_holdout: pd.DataFrame, *, max_frequency: int = 7) -> pd.DataFrame:
    """Actual vs predicted holdout purchases by calibration-frequency bucket.

    The table of Fader, Hardie & Lee (2005, Figure 4): customers grouped by the number of repeat
    purchases in calibration (0, 1, ..., ``max_frequency``+).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``frequency_bucket`` (``"0"``, ..., ``"7+"``) with ``customers``,
        ``actual_mean``, ``predicted_mean`` and ``naive_mean`` holdout purchases per customer.
    """
    scored = holdout_predictions(fit, summary_with_holdout)
    bucket = np.minimum(scored["frequency"].to_numpy(), max_frequency).astype(int)
    labels = [str(k) for k in range(max_frequency)] + [f"{max_frequency}+"]
    scored["frequency_bucket"] = pd.Categorical.from_codes(bucket, categories=labels, ordered=True)
    table = scored.groupby("frequency_bucket", observed=False).agg(
        customers=("actual", "size"), actual_mean=("actual", "mean"), predicted_mean=("predicted", "mean"),
        naive_mean=("naive", "mean"),
    )
    table.index = pd.Index(table.index.astype(str), name="frequency_bucket")
    return table


def holdout_metrics(fit: PurchaseModelFit, summary_with_holdout: pd.DataFrame) -> dict[str, float]:
    """Aggregate and per-customer accuracy on the holdout period.

    Returns
    -------
    dict of str to float
        ``n_customers``, ``actual_total``, ``predicted_total``, ``naive_total``, ``mae_model``,
        ``mae_naive``, ``rmse_model`` and ``rmse_naive``.
    """
    scored = holdout_predictions(fit, summary_with_holdout)
    model_error = scored["predicted"] - scored["actual"]
    naive_error = scored["naive"] - scored["actual"]
    return {
        "n_customers": float(len(scored)),
        "actual_total": float(scored["actual"].sum()),
        "predicted_total": float(scored["predicted"].sum()),
        "naive_total": float(scored["naive"].sum()),
        "mae_model": float(model_error.abs().mean()),
        "mae_naive": float(naive_error.abs().mean()),
        "rmse_model": float(np.sqrt((model_error**2).mean())),
        "rmse_naive": float(np.sqrt((naive_error**2).mean())),
    }


def compare_models(fits: Mapping[str, PurchaseModelFit], summary_with_holdout: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per fitted family: parameters, log-likelihood and (with a holdout) accuracy there.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``model``: ``title``, ``parameters`` (text), ``log_likelihood`` and, with a
        holdout, ``predicted_total``, ``actual_total``, ``error_pct``, ``mae_model``, ``mae_naive``.
    """
    rows = []
    for name, fit in fits.items():  # three families at most
        row: dict[str, Any] = {
            "model": name, "title": fit.family.title,
            "parameters": ", ".join(f"{k} = {v:.4g}" for k, v in fit.params_.items()),
            "log_likelihood": fit.log_likelihood_,
        }
        if summary_with_holdout is not None:
            metrics = holdout_metrics(fit, summary_with_holdout)
            row.update(
                predicted_total=metrics["predicted_total"], actual_total=metrics["actual_total"],
                error_pct=100 * (metrics["predicted_total"] / metrics["actual_total"] - 1) if metrics["actual_total"] else np.nan,
                mae_model=metrics["mae_model"], mae_naive=metrics["mae_naive"],
            )
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


# --------------------------------------------------------------------------------------
# Degenerate fits
# --------------------------------------------------------------------------------------


def share_lost(fit: PurchaseModelFit | Mapping[str, float], t: float, model: str | None = None) -> float:
    """Share of a cohort of new customers the model expects to have left after ``t`` periods.

    BG/NBD: ``1 - 2F1(r, a; a+b; -t/alpha)`` (dropout after purchases, ``E_p[(alpha/(alpha+p t))^r]``
    survive); MBG/NBD: ``1 - b/(a+b) 2F1(r, a; a+b+1; -t/alpha)`` (dropout also at the first
    purchase); Pareto/NBD: ``1 - (beta/(beta+t))^s``.
    """
    from .models.basic import infer_family

    fam, p = infer_family(fit, model)
    if fam.name == "pareto_nbd":
        survive = (p["beta"] / (p["beta"] + t)) ** p["s"]
    elif fam.name == "mbgnbd":
        survive = p["b"] / (p["a"] + p["b"]) * hyp2f1(p["r"], p["a"], p["a"] + p["b"] + 1.0, -t / p["alpha"])
    else:
        survive = hyp2f1(p["r"], p["a"], p["a"] + p["b"], -t / p["alpha"])
    return float(1.0 - survive)


@dataclass(frozen=True)
class FitDiagnostic:
    """Whether a purchase-model fit can be trusted to say who has left.

    Attributes
    ----------
    model : str
    degenerate : bool
    reasons : list of str
        Plain sentences, one per failed check (empty when the fit is sound).
    evidence : dict
        The numbers behind the checks.
    """

    model: str
    degenerate: bool
    reasons: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def sentence(self) -> str:
        title = self.evidence.get("title", self.model)
        if not self.degenerate:
            return (f"The {title} fit is sound: it expects {self.evidence['share_lost_pct']:.0f}% of new customers to "
                    f"leave within the span of the data, and its dropout parameters are away from their bounds.")
        return f"The {title} fit has degenerated: " + "; ".join(self.reasons) + "."

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "degenerate": self.degenerate, "reasons": list(self.reasons),
                **{k: _plain(v) for k, v in self.evidence.items()}}


def _plain(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def dropout_diagnostic(
    fit: PurchaseModelFit,
    summary: pd.DataFrame,
    *,
    span: float,
    metrics: Mapping[str, float] | None = None,
    time_unit: TimeUnit = "W",
    bound: float = 0.01,
    min_share_lost: float = 0.05,
) -> FitDiagnostic:
    """Detect a fit whose dropout process says nothing: the cases where P(alive) cannot drive churn risk.

    Three checks, each a reason in plain words when it fails:

    * a dropout parameter at its lower bound (``a`` for BG/NBD and MBG/NBD, ``s`` for Pareto/NBD
      below ``bound``): the model found no evidence that customers leave;
    * a dropout process that never fires: the model expects fewer than ``min_share_lost`` of new
      customers to leave over the whole ``span`` of the data (:func:`share_lost`);
    * no better than naive on the holdout (``metrics`` from :func:`holdout_metrics`).

    Parameters
    ----------
    fit : PurchaseModelFit
    summary : DataFrame
        The customers the fit describes (for the share with P(alive) near 1).
    span : float
        Length of the data in the time unit.
    metrics : mapping, optional
        Holdout metrics of the same family fitted on the calibration period.
    """
    fam = fit.family
    dropout_param = "s" if fam.name == "pareto_nbd" else "a"
    lost = share_lost(fit, span)
    alive = fit.p_alive(*as_float_arrays(summary["frequency"], summary["recency"], summary["T"]))
    evidence: dict[str, Any] = {
        "title": fam.title, "params": dict(fit.params_), "dropout_parameter": dropout_param,
        "span": span, "share_lost_pct": 100 * lost,
        "share_p_alive_above_0_9_pct": float(100 * np.mean(alive > 0.9)) if len(alive) else np.nan,
        "mean_p_alive": float(np.mean(alive)) if len(alive) else np.nan,
    }
    unit = UNIT_NAMES[time_unit]
    reasons = []
    value = fit.params_[dropout_param]
    if value < bound:
        reasons.append(f"its dropout parameter {dropout_param} = {value:.2g} sits at its lower bound of 0, so the model "
                       "found no evidence that customers ever leave")
    if lost < min_share_lost:
        reasons.append(f"it expects only {100 * lost:.1f}% of new customers to leave over the {span:.0f} {unit} of data, so "
                       f"P(alive) is near 1 for everyone ({evidence['share_p_alive_above_0_9_pct']:.1f}% of customers above 0.9)")
    if metrics is not None:
        evidence.update(mae_model=metrics["mae_model"], mae_naive=metrics["mae_naive"])
        if metrics["mae_model"] >= metrics["mae_naive"]:
            reasons.append(f"on the holdout it predicts repeat purchases no better than assuming each customer keeps their "
                           f"past rate (mean absolute error {metrics['mae_model']:.3f} vs {metrics['mae_naive']:.3f})")
    return FitDiagnostic(fit.model, bool(reasons), reasons, evidence)


# --------------------------------------------------------------------------------------
# Gamma-Gamma independence
# --------------------------------------------------------------------------------------


def gamma_gamma_check(summary: pd.DataFrame, *, max_abs_correlation: float = 0.3) -> dict[str, Any]:
    """Correlation of purchase frequency and mean spend among repeat buyers, which Gamma-Gamma assumes is 0.

    Parameters
    ----------
    summary : DataFrame
        ``frequency`` and ``monetary_value`` per customer.
    max_abs_correlation : float, default 0.3
        Above this absolute Pearson correlation the check warns (``params.14_value.gamma_gamma_max_correlation``).

    Returns
    -------
    dict
        ``repeat_buyers``, ``pearson``, ``spearman``, ``threshold``, ``warn`` and ``sentence`` (what
        the correlation does to the spend estimates).
    """
    repeat = summary.loc[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    n = len(repeat)
    if n < 3:
        return {"repeat_buyers": n, "pearson": None, "spearman": None, "threshold": max_abs_correlation, "warn": False,
                "sentence": "Too few repeat buyers to check the spend model's independence assumption."}
    pearson = float(np.corrcoef(repeat["frequency"], repeat["monetary_value"])[0, 1])
    spearman = float(stats.spearmanr(repeat["frequency"], repeat["monetary_value"]).statistic)
    warn = bool(abs(pearson) > max_abs_correlation)
    measured = (f"Among the {n:,} repeat buyers, the correlation of purchase frequency and average spend per order is "
                f"{pearson:.2f} (Spearman {spearman:.2f})")
    if not warn:
        sentence = (f"{measured}, within ±{max_abs_correlation:.2f}: the spend model's assumption that spend per order "
                    "does not depend on how often a customer buys holds well enough.")
    else:
        direction = "less" if pearson < 0 else "more"
        skew = ("infrequent buyers' spend is pulled down towards an average that frequent, cheaper orders drag down, "
                "and the value of the most frequent buyers is overstated" if pearson < 0 else
                "infrequent buyers' spend is pulled up towards an average that frequent, larger orders push up, "
                "and the value of the most frequent buyers is understated")
        sentence = (f"Warning: {measured}, beyond ±{max_abs_correlation:.2f}. Customers who buy more often spend {direction} "
                    "per order, but the Gamma-Gamma spend model assumes the two are independent: its estimates shrink every "
                    f"customer towards one population average, so {skew}. Read CLV as a ranking more than as amounts.")
    return {"repeat_buyers": n, "pearson": pearson, "spearman": spearman, "threshold": max_abs_correlation,
            "warn": warn, "sentence": sentence}


# --------------------------------------------------------------------------------------
# Churn risk: empirical fallback and calibrated bands
# --------------------------------------------------------------------------------------


@dataclass
class EmpiricalChurnRule:
    """How unusual each customer's silence is, given their own and the population's time between orders.

    A customer's buying rate is estimated from their own gaps between orders, pulled towards the
    population's typical gap by ``prior_gaps`` pseudo-gaps (so one-order customers get the
    population's): ``rate ~ Gamma(x + k, t_x + k g)`` with ``x`` repeat orders spanning ``t_x``,
    ``g`` the population's median gap and ``k = prior_gaps``. The score is the chance that a customer
    still buying at that rate would have gone as long without an order as they have::

        activity = ((t_x + k g) / (t_x + k g + s)) ** (x + k),   s = T - t_x (time since the last order)

    Near 1: the silence is ordinary for them; near 0: far longer than their rhythm. Its interval
    comes from the quantiles of the rate.

    Attributes
    ----------
    prior_gaps : float
    population_gap_ : float
        Median of the repeat buyers' mean gaps, in the time unit (set by :meth:`fit`).
    """

    prior_gaps: float = 1.0
    population_gap_: float | None = None

    def fit(self, summary: pd.DataFrame) -> EmpiricalChurnRule:
        repeat = summary.loc[summary["frequency"] > 0]
        gaps = repeat["recency"] / repeat["frequency"]
        gaps = gaps[gaps > 0]
        if gaps.empty:  # nobody bought twice: half the observed span is all we know
            self.population_gap_ = float(max(summary["T"].max() / 2, 1.0))
        else:
            self.population_gap_ = float(gaps.median())
        return self

    def score(self, summary: pd.DataFrame, *, level: float = 0.9) -> pd.DataFrame:
        """``activity``, ``activity_low``, ``activity_high``, ``expected_gap`` and ``silence`` per customer."""
        if self.population_gap_ is None:
            raise ValueError("EmpiricalChurnRule: call fit(summary) before score().")
        x, t_x, T = as_float_arrays(summary["frequency"], summary["recency"], summary["T"])
        k, g = self.prior_gaps, self.population_gap_
        shape, exposure = x + k, t_x + k * g
        silence = np.maximum(T - t_x, 0.0)
        activity = (exposure / (exposure + silence)) ** shape
        rate_high, rate_low = (stats.gamma.ppf(q, shape) / exposure for q in ((1 + level) / 2, (1 - level) / 2))
        return pd.DataFrame(
            {
                "activity": activity,
                "activity_low": np.exp(-rate_high * silence),
                "activity_high": np.exp(-rate_low * silence),
                "expected_gap": exposure / shape,
                "silence": silence,
            },
            index=summary.index,
        )


@dataclass
class ChurnBands:
    """Churn-risk bands from a score (P(alive), or the empirical activity), calibrated on the holdout.

    :meth:`fit` learns, by isotonic regression on the calibration-period customers, how the score
    maps to the chance of buying again in the holdout window, then cuts where that chance falls
    below half the average (``high`` risk) and where it reaches the average (``low`` risk). The
    cut points are kept on the score scale, so later scores are banded without refitting.
    Without a holdout, :meth:`fixed` bands P(alive) at 0.3 and 0.7, and says so.

    Attributes
    ----------
    high_below_, low_from_ : float
        Score cut points (``high`` below the first, ``low`` from the second).
    base_rate_ : float or None
        Share of calibration customers who bought again in the holdout.
    window : float
        Holdout length, in the time unit.
    table_ : DataFrame or None
        Per band, on the holdout: customers, share, observed repurchase rate.
    calibrated : bool
    """

    high_below_: float = 0.3
    low_from_: float = 0.7
    base_rate_: float | None = None
    window: float = 0.0
    time_unit: str = "W"
    table_: pd.DataFrame | None = None
    calibrated: bool = False

    @classmethod
    def fixed(cls, time_unit: str = "W") -> ChurnBands:
        return cls(time_unit=time_unit)

    def fit(self, score: np.ndarray, bought_again: np.ndarray, *, window: float) -> ChurnBands:
        """Calibrate on calibration-period scores and whether each customer bought in the holdout."""
        from sklearn.isotonic import IsotonicRegression

        score = np.asarray(score, dtype=float)
        outcome = np.asarray(bought_again, dtype=float)
        self.window = float(window)
        self.base_rate_ = float(outcome.mean())
        chance = IsotonicRegression(increasing=True, out_of_bounds="clip", y_min=0, y_max=1).fit_transform(score, outcome)
        order = np.argsort(score, kind="stable")
        sorted_score, sorted_chance = score[order], chance[order]

        def first_score_reaching(threshold: float) -> float:
            hit = np.flatnonzero(sorted_chance >= threshold)
            return float(sorted_score[hit[0]]) if len(hit) else float("inf")

        self.high_below_ = first_score_reaching(self.base_rate_ / 2)
        self.low_from_ = max(first_score_reaching(self.base_rate_), self.high_below_)
        self.calibrated = True
        bands = self.assign(score)
        table = pd.DataFrame({"band": bands, "bought": outcome}).groupby("band", observed=False).agg(
            customers=("bought", "size"), repurchase_rate=("bought", "mean"))
        table["customers_pct"] = 100 * table["customers"] / len(score)
        self.table_ = table.reindex(["high", "medium", "low"])
        return self

    def assign(self, score: np.ndarray | pd.Series) -> pd.Categorical:
        values = np.asarray(score, dtype=float)
        labels = np.select([values < self.high_below_, values >= self.low_from_], ["high", "low"], default="medium")
        return pd.Categorical(np.where(np.isnan(values), None, labels), categories=["high", "medium", "low"])

    def sentences(self, score_name: str) -> list[str]:
        """What the bands mean, in observed repurchase rates (or that they are fixed cut-offs)."""
        if not self.calibrated or self.table_ is None or self.base_rate_ is None:
            return [(f"Churn risk bands are fixed cut-offs of {score_name} (high below 0.3, low from 0.7): the data span "
                    "is too short to calibrate them on a holdout period.")]
        unit = UNIT_NAMES.get(self.time_unit, self.time_unit)
        article = "an" if score_name[:1].lower() in "aeiou" else "a"
        rates = self.table_["repurchase_rate"]
        out = [(f"Churn risk is calibrated on the holdout: on average {self.base_rate_:.0%} of customers bought again within "
               f"{self.window:.0f} {unit}. **High** risk: {article} {score_name} at which customers were less than half as likely "
               f"as that to buy again (under {self.base_rate_ / 2:.0%}); **low** risk: at which they were at least as likely "
               f"({self.base_rate_:.0%} or more); medium in between.")]
        parts = [f"{band} {rates[band]:.0%} of {int(self.table_.loc[band, 'customers']):,}"
                 for band in ("high", "medium", "low") if self.table_.loc[band, "customers"] > 0]
        out.append("Observed on the holdout, share who bought again by band: " + "; ".join(parts) + ".")
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"calibrated": self.calibrated, "high_below": _plain(self.high_below_),
                               "low_from": _plain(self.low_from_), "base_rate": self.base_rate_, "window": self.window}
        if self.table_ is not None:
            out["holdout_bands"] = {band: {k: _plain(v) for k, v in row.items()} for band, row in self.table_.iterrows()}
        return out
