"""Checking the models against the data: holdout validation and model comparison.

:func:`plan_holdout` holds out the last part of the period (a quarter by default);
:func:`holdout_comparison` and :func:`holdout_metrics` compare predicted and actual repeat
purchases there (the classic table of Fader, Hardie & Lee 2005, and MAE against the naive
"same rate" baseline); :func:`compare_models` does so for every family.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .models.basic import PurchaseModelFit, as_float_arrays
from .summary import TimeUnit, _unit_timedelta

__all__ = [
    "HoldoutPlan",
    "compare_models",
    "holdout_comparison",
    "holdout_metrics",
    "holdout_predictions",
    "plan_holdout",
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
    ('2024-10-07', 12.0)
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
