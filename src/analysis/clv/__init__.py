"""Customer lifetime value: "buy till you die" purchase models, Gamma-Gamma spend, discounted CLV.

A small package laid out like pymc-marketing's ``clv``:

* :mod:`.summary` -- :func:`rfm_summary`, transactions to frequency / recency / T / monetary value
  with an explicit ``observation_period_end`` (and an optional calibration / holdout split);
* :mod:`.models` -- one module of vectorised closed forms per family (:mod:`.models.beta_geo`,
  :mod:`.models.modified_beta_geo`, :mod:`.models.pareto_nbd`, :mod:`.models.gamma_gamma`) over
  :mod:`.models.basic` (family registry, :class:`PurchaseModelFit`);
* :mod:`.fitting` -- maximum likelihood (or pymc-marketing for priors and MCMC) and the
  uncertainty of the estimates;
* :mod:`.scoring` -- CLV, per-customer intervals, P(alive) and expected-purchase grids, contact
  priority: every path works for every family;
* :mod:`.diagnostics` -- holdout validation, model comparison, degenerate-fit diagnostic,
  Gamma-Gamma check, empirical churn rule and calibrated churn bands;
* :mod:`.plotting` -- the page's charts.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers the easy way:
   An alternative to the Pareto/NBD model." Marketing Science 24(2).
.. [2] Fader, P. S. & Hardie, B. G. S. (2013). "The Gamma-Gamma model of monetary value."
.. [3] Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "RFM and CLV: Using iso-value curves
   for customer base analysis." Journal of Marketing Research 42.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from . import diagnostics, fitting, models, scoring, summary
from .diagnostics import (
    ChurnBands,
    EmpiricalChurnRule,
    FitDiagnostic,
    HoldoutPlan,
    compare_models,
    dropout_diagnostic,
    gamma_gamma_check,
    holdout_comparison,
    holdout_metrics,
    holdout_predictions,
    plan_holdout,
    share_lost,
)
from .fitting import fit_bgnbd, fit_gamma_gamma, fit_purchase_model
from .models import FAMILIES, Family, PurchaseModelFit, SpendModelFit, family, infer_family
from .models.gamma_gamma import conditional_expected_spend, gamma_gamma_log_likelihood
from .scoring import (
    clv_intervals,
    contact_priority,
    customer_lifetime_value,
    expected_purchases_matrix,
    p_alive_matrix,
    priority_formula,
)
from .summary import PERIODS_PER_MONTH, rfm_summary, rfm_summary_and_split

__all__ = [
    "FAMILIES",
    "PERIODS_PER_MONTH",
    "ChurnBands",
    "EmpiricalChurnRule",
    "Family",
    "FitDiagnostic",
    "HoldoutPlan",
    "PurchaseModelFit",
    "SpendModelFit",
    "bgnbd_log_likelihood",
    "clv_intervals",
    "compare_models",
    "conditional_expected_purchases",
    "conditional_expected_spend",
    "contact_priority",
    "customer_lifetime_value",
    "diagnostics",
    "dropout_diagnostic",
    "expected_purchases_matrix",
    "expected_purchases_new_customer",
    "family",
    "fit_bgnbd",
    "fit_gamma_gamma",
    "fit_purchase_model",
    "fitting",
    "gamma_gamma_check",
    "gamma_gamma_log_likelihood",
    "holdout_comparison",
    "holdout_metrics",
    "holdout_predictions",
    "infer_family",
    "models",
    "p_alive",
    "p_alive_matrix",
    "plan_holdout",
    "priority_formula",
    "rfm_summary",
    "rfm_summary_and_split",
    "scoring",
    "share_lost",
    "summary",
]

ParamsOrFit = Mapping[str, float] | PurchaseModelFit


def p_alive(params: ParamsOrFit, frequency: Any, recency: Any, T: Any, *, model: str | None = None) -> np.ndarray:
    """P(alive) of each customer under a fit of any family, or under parameters (``model`` names the family).

    Examples
    --------
    >>> params = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    >>> p_alive(params, [0, 2], [0.0, 30.43], [38.86, 38.86]).round(3)
    array([1.   , 0.727])
    """
    fam, values = infer_family(params, model)
    return fam.formulas.p_alive(values, frequency, recency, T)


def conditional_expected_purchases(
    params: ParamsOrFit, frequency: Any, recency: Any, T: Any, t: Any, *, model: str | None = None
) -> np.ndarray:
    """Expected purchases in ``(T, T+t]`` given each customer's history, for any family (see :func:`p_alive`)."""
    fam, values = infer_family(params, model)
    return fam.formulas.conditional_expected_purchases(values, frequency, recency, T, t)


def expected_purchases_new_customer(params: ParamsOrFit, t: Any, *, model: str | None = None) -> np.ndarray:
    """Expected repeat purchases of a new customer in ``(0, t]``, for any family (see :func:`p_alive`)."""
    fam, values = infer_family(params, model)
    return fam.formulas.expected_purchases_new_customer(values, t)


def bgnbd_log_likelihood(params: ParamsOrFit, frequency: Any, recency: Any, T: Any, *, model: str | None = None) -> float:
    """Total log-likelihood of customer histories (BG/NBD for plain ``r, alpha, a, b``; -9582.4 on CDNOW at the MLE)."""
    fam, values = infer_family(params, model)
    return float(np.sum(fam.formulas.log_likelihood(values, frequency, recency, T)))
