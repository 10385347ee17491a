"""Gamma-Gamma model of mean repeat-transaction value (Fader & Hardie 2013), closed forms and fit record.

A customer's transaction values are Gamma(p, nu) with ``nu ~ Gamma(q, v)`` across customers, and
independent of how often they buy: the model assumes spend per transaction does not depend on
purchase frequency (checked by :func:`analysis.clv.diagnostics.gamma_gamma_check`).

References
----------
.. [1] Fader, P. S. & Hardie, B. G. S. (2013). "The Gamma-Gamma model of monetary value."
   http://www.brucehardie.com/notes/025/gamma_gamma.pdf
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy.special import gammaln

from .basic import as_float_arrays, param_arrays

PARAMS = ("p", "q", "v")


def conditional_expected_spend(params: Mapping[str, Any] | SpendModelFit, frequency: Any, monetary_value: Any) -> np.ndarray:
    """Conditional expected value of a customer's future transactions.

    ``E[Z | x, zbar] = (1 - w) * p v / (q - 1) + w * zbar`` with ``w = p x / (p x + q - 1)``
    (equation 5 of [1]_). Customers with ``x = 0`` get the population mean ``p v / (q - 1)``.

    Examples
    --------
    >>> params = {"p": 6.25, "q": 3.74, "v": 15.44}
    >>> conditional_expected_spend(params, [0, 10], [0.0, 50.0]).round(2)
    array([35.22, 49.38])
    """
    if isinstance(params, SpendModelFit):
        params = params.params_
    p, q, v = param_arrays(params, PARAMS)
    x, z = as_float_arrays(frequency, monetary_value)
    weight = p * x / (p * x + q - 1.0)
    return (1.0 - weight) * (p * v / (q - 1.0)) + weight * np.where(x > 0, z, 0.0)


def log_likelihood(params: Mapping[str, Any], frequency: Any, monetary_value: Any) -> np.ndarray:
    """Per-customer log-likelihood of mean repeat-transaction values (equation 1a of [1]_), ``x > 0``.

    ``ln Gamma(px+q) - ln Gamma(px) - ln Gamma(q) + q ln v + (px-1) ln zbar + px ln x - (px+q) ln(x zbar + v)``
    """
    p, q, v = param_arrays(params, PARAMS)
    x, z = as_float_arrays(frequency, monetary_value)
    px = p * x
    return (
        gammaln(px + q) - gammaln(px) - gammaln(q) + q * np.log(v) + (px - 1.0) * np.log(z)
        + px * np.log(x) - (px + q) * np.log(x * z + v)
    )


def gamma_gamma_log_likelihood(params: Mapping[str, Any] | SpendModelFit, frequency: Any, monetary_value: Any) -> float:
    """Total Gamma-Gamma log-likelihood of repeat buyers (``x > 0``, ``zbar > 0``)."""
    if isinstance(params, SpendModelFit):
        params = params.params_
    return float(np.sum(log_likelihood(params, frequency, monetary_value)))


def spend_draws(params: Mapping[str, Any], frequency: Any, monetary_value: Any, rng: np.random.Generator) -> np.ndarray:
    """One posterior draw of each customer's expected transaction value ``p / nu``.

    ``nu | x, zbar ~ Gamma(q + p x, v + x zbar)``; its mean of ``p / nu`` is :func:`conditional_expected_spend`.
    """
    p, q, v = param_arrays(params, PARAMS)
    x, z = as_float_arrays(frequency, monetary_value)
    z = np.where(x > 0, z, 0.0)
    shape = np.broadcast_shapes(p.shape, x.shape)
    nu = rng.gamma(np.broadcast_to(q + p * x, shape)) / np.broadcast_to(v + x * z, shape)
    return p / nu


@dataclass(frozen=True)
class SpendModelFit:
    """A fitted Gamma-Gamma spend model.

    Attributes
    ----------
    params_ : dict of str to float
        ``p, q, v`` (``v`` is the paper's gamma).
    priors, method : str
        As in :class:`analysis.clv.PurchaseModelFit`.
    log_likelihood_ : float or None
        Gamma-Gamma log-likelihood at ``params_``.
    n_customers_ : int or None
        Number of repeat buyers fitted.
    n_set_aside_ : int
        Repeat buyers set aside because their mean repeat value is not positive (the Gamma-Gamma
        likelihood is undefined for them).
    fit_seconds_ : float or None
        Wall time of the fit, including model compilation.
    log_params_cov_ : ndarray or None
        Covariance of the log-parameters at the estimate, for parameter draws.
    model_ : object or None
        The fitted ``pymc_marketing.clv.GammaGammaModel`` (not pickled).
    """

    params_: dict[str, float]
    priors: str = "flat"
    method: str = "map"
    log_likelihood_: float | None = None
    n_customers_: int | None = None
    n_set_aside_: int = 0
    fit_seconds_: float | None = None
    log_params_cov_: np.ndarray | None = field(default=None, repr=False, compare=False)
    model_: Any = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["model_"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    def without_model(self) -> SpendModelFit:
        return replace(self, model_=None)

    def expected_spend(self, frequency: Any, monetary_value: Any) -> np.ndarray:
        """Conditional expected average transaction value, see :func:`conditional_expected_spend`."""
        return conditional_expected_spend(self.params_, frequency, monetary_value)

    def param_draws(self, n_draws: int, random_state: int | np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """Parameter draws from the normal approximation of the log-parameters (point estimate without one)."""
        rng = np.random.default_rng(random_state)
        centre = np.log([self.params_[name] for name in PARAMS])
        cov = self.log_params_cov_
        if cov is None or not np.all(np.isfinite(cov)):
            logs = np.tile(centre, (n_draws, 1))
        else:
            logs = rng.multivariate_normal(centre, cov, size=n_draws, method="eigh")
        return {name: np.exp(logs[:, i]) for i, name in enumerate(PARAMS)}
