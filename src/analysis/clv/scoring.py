"""Scoring customers with fitted models: CLV and frequency x recency grids.

Every function here works for every purchase-model family (BG/NBD, MBG/NBD, Pareto/NBD): it calls
the family's closed forms through :class:`~analysis.clv.models.basic.PurchaseModelFit`, vectorised
over customers (no per-customer Python loop).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .models.basic import PurchaseModelFit, as_float_arrays, infer_family
from .models.gamma_gamma import SpendModelFit
from .summary import PERIODS_PER_MONTH, TimeUnit, _unit_timedelta

__all__ = [
    "customer_lifetime_value",
    "discount_factors",
    "expected_purchases_matrix",
    "p_alive_matrix",
]

SUMMARY_COLS: tuple[str, ...] = ("customer_id", "frequency", "recency", "T")


def discount_factors(horizon_months: int, discount_rate_annual: float, time_unit: TimeUnit) -> tuple[np.ndarray, np.ndarray]:
    """Month ends in ``time_unit`` and the discount factor of each month, ``(1 + d)^-m``.

    ``d = (1 + discount_rate_annual)^(1/12) - 1``; a month is 4.345 weeks or 30 days, as in
    pymc-marketing's ``customer_lifetime_value``.
    """
    if horizon_months < 1:
        raise ValueError(f"horizon_months: expected a positive integer, found {horizon_months}.")
    if discount_rate_annual <= -1:
        raise ValueError(f"discount_rate_annual: expected > -1, found {discount_rate_annual}.")
    _unit_timedelta(time_unit)
    months = np.arange(1, horizon_months + 1)
    monthly_rate = (1.0 + discount_rate_annual) ** (1.0 / 12.0) - 1.0
    return months * PERIODS_PER_MONTH[time_unit], (1.0 + monthly_rate) ** -months.astype("float64")


def _check_summary(summary: pd.DataFrame, extra: tuple[str, ...] = ()) -> None:
    missing = [col for col in (*SUMMARY_COLS, *extra) if col not in summary.columns]
    if missing:
        raise ValueError(f"summary: column(s) {missing} not found. Found: {list(summary.columns)}.")


def customer_lifetime_value(
    purchase_model: PurchaseModelFit,
    gamma_gamma_fit: SpendModelFit,
    summary: pd.DataFrame,
    *,
    horizon_months: int = 12,
    discount_rate_annual: float = 0.1,
    margin: float = 1.0,
    time_unit: TimeUnit = "W",
) -> pd.DataFrame:
    """Discounted customer lifetime value over a horizon, month by month.

    ``clv = margin * E[spend] * sum_m (E[X(T, T + m)] - E[X(T, T + m - 1)]) / (1 + d)^m``
    for months ``m = 1..horizon_months`` (see :func:`discount_factors`); with the same monthly
    rate it gives the same numbers as pymc-marketing's ``customer_lifetime_value``.

    Parameters
    ----------
    purchase_model : PurchaseModelFit
        Fitted purchase model (any family).
    gamma_gamma_fit : SpendModelFit
        Fitted spend model.
    summary : pandas.DataFrame
        ``customer_id, frequency, recency, T, monetary_value`` per customer, in ``time_unit``.
    horizon_months : int, default 12
        Number of months to project.
    discount_rate_annual : float, default 0.1
        Annual discount rate, converted to an equivalent monthly rate.
    margin : float, default 1.0
        Profit margin applied to revenue.
    time_unit : {"W", "D"}, default "W"
        Unit of ``recency`` and ``T`` in ``summary`` (and of the fitted model).

    Returns
    -------
    pandas.DataFrame
        ``customer_id, expected_purchases`` (over the horizon), ``p_alive``, ``expected_spend``
        (Gamma-Gamma conditional mean value per purchase) and ``clv`` (discounted margin).
    """
    period_ends, discount = discount_factors(horizon_months, discount_rate_annual, time_unit)
    _check_summary(summary, ("monetary_value",))
    x, t_x, T = as_float_arrays(summary["frequency"], summary["recency"], summary["T"])
    # One vectorised evaluation: customers x months, then monthly increments.
    cumulative = purchase_model.expected_purchases(x[:, None], t_x[:, None], T[:, None], period_ends[None, :])
    monthly = np.diff(cumulative, axis=1, prepend=0.0)
    expected_spend = gamma_gamma_fit.expected_spend(x, summary["monetary_value"])
    return pd.DataFrame(
        {
            "customer_id": summary["customer_id"].to_numpy(),
            "expected_purchases": cumulative[:, -1],
            "p_alive": purchase_model.p_alive(x, t_x, T),
            "expected_spend": expected_spend,
            "clv": margin * expected_spend * (monthly @ discount),
        }
    )


def _grid(max_frequency: int, recencies: np.ndarray, T: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frequency = np.arange(max_frequency + 1, dtype="float64")[:, None]
    recency = recencies[None, :]
    impossible = (recency > T) | ((frequency == 0) & (recency > 0))
    return frequency, recency, impossible


def p_alive_matrix(
    params: Mapping[str, float] | PurchaseModelFit,
    T: float,
    max_frequency: int,
    max_recency: int | None = None,
    *,
    model: str | None = None,
) -> pd.DataFrame:
    """P(alive) on a frequency x recency grid for a customer observed for ``T`` periods.

    Parameters
    ----------
    params : mapping or PurchaseModelFit
        A fit of any family, or its parameters (``model`` names the family of a mapping;
        ``r, alpha, s, beta`` mean Pareto/NBD, otherwise BG/NBD).
    T : float
        Customer age (time since first purchase) shared by every cell.
    max_frequency : int
        Largest frequency (rows ``0..max_frequency``).
    max_recency : int, optional
        Largest recency (columns ``0..max_recency`` in steps of 1); defaults to ``floor(T)``.
    model : str, optional
        Family of a plain parameter mapping.

    Returns
    -------
    pandas.DataFrame
        Index ``frequency``, columns ``recency``; NaN where the combination is impossible
        (``recency > T``, or ``frequency == 0`` with ``recency > 0``). Ready for a heatmap.
    """
    if max_frequency < 0:
        raise ValueError(f"max_frequency: expected >= 0, found {max_frequency}.")
    fam, values = infer_family(params, model)
    last_recency = int(np.floor(T)) if max_recency is None else int(max_recency)
    frequency, recency, impossible = _grid(max_frequency, np.arange(last_recency + 1, dtype="float64"), T)
    with np.errstate(invalid="ignore", divide="ignore"):
        alive = fam.formulas.p_alive(values, frequency, recency, np.full_like(recency, float(T)))
    return pd.DataFrame(
        np.where(impossible, np.nan, alive),
        index=pd.Index(np.arange(max_frequency + 1), name="frequency"),
        columns=pd.Index(np.arange(last_recency + 1), name="recency"),
    )


def expected_purchases_matrix(
    params: Mapping[str, float] | PurchaseModelFit,
    T: float,
    t: float,
    max_frequency: int,
    recency_step: float = 1.0,
    *,
    model: str | None = None,
) -> pd.DataFrame:
    """Expected purchases in the next ``t`` periods on a frequency x recency grid (customer age ``T``).

    The "frequency/recency heatmap" of the BTYD literature, for any family (see
    :func:`p_alive_matrix` for ``params`` and ``model``). NaN where the combination is impossible.
    """
    if max_frequency < 0:
        raise ValueError(f"max_frequency: expected >= 0, found {max_frequency}.")
    fam, values = infer_family(params, model)
    frequency, recency, impossible = _grid(max_frequency, np.arange(0.0, float(T) + 1e-9, recency_step), T)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = fam.formulas.conditional_expected_purchases(values, frequency, recency, np.full_like(recency, float(T)), t)
    return pd.DataFrame(
        np.where(impossible, np.nan, expected),
        index=pd.Index(np.arange(max_frequency + 1), name="frequency"),
        columns=pd.Index(np.round(recency[0], 1), name="recency"),
    )
