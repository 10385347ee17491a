"""MBG/NBD closed forms (Batislam, Denizel & Filiztekin 2007), vectorised with numpy / scipy.

The MBG/NBD lets a customer drop out right after *every* purchase, the first one included, so a
customer who never bought again can have left (the BG/NBD keeps every one-time buyer alive).

References
----------
.. [1] Batislam, E. P., Denizel, M. & Filiztekin, A. (2007). "Empirical validation and comparison
   of models for customer base analysis." International Journal of Research in Marketing 24(3).
.. [2] Wagner, U. & Hoppe, D. (2008). "Erratum on the MBG/NBD model." IJRM 25(3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import expit, gammaln, hyp2f1

from .basic import alive_and_rate, as_float_arrays, param_arrays

PARAMS = ("r", "alpha", "a", "b")


def _log_odds_dropped(r, alpha, a, b, x, t_x, T) -> np.ndarray:
    return np.log(a / (b + x)) + (r + x) * np.log((alpha + T) / (alpha + t_x))


def expected_purchases_new_customer(params: Mapping[str, Any], t: Any) -> np.ndarray:
    """Expected repeat purchases of a new customer in ``(0, t]``, equation (4) of [1]_.

    ``b/(a-1) * [1 - (alpha/(alpha+t))^r * 2F1(r, b+1; a+b; t/(alpha+t))]``.
    """
    r, alpha, a, b = param_arrays(params, PARAMS)
    (t,) = as_float_arrays(t)
    return b / (a - 1.0) * (1.0 - hyp2f1(r, b + 1.0, a + b, t / (alpha + t)) * (alpha / (alpha + t)) ** r)


def conditional_expected_purchases(params: Mapping[str, Any], frequency: Any, recency: Any, T: Any, t: Any) -> np.ndarray:
    """Expected repeat purchases in ``(T, T+t]`` given a customer's history, equation (6) of [1]_."""
    r, alpha, a, b = param_arrays(params, PARAMS)
    x, t_x, T, t = as_float_arrays(frequency, recency, T, t)
    hyp = hyp2f1(r + x, b + x + 1.0, a + b + x, t / (alpha + T + t))
    numerator = (a + b + x) / (a - 1.0) * (1.0 - hyp * ((alpha + T) / (alpha + T + t)) ** (r + x))
    return numerator * np.exp(-np.logaddexp(0.0, _log_odds_dropped(r, alpha, a, b, x, t_x, T)))


def p_alive(params: Mapping[str, Any], frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """Probability that a customer is still active, equation (5) of [1]_.

    ``P(alive) = 1 / (1 + a/(b+x) * ((alpha+T)/(alpha+t_x))^(r+x))``, below 1 for one-time buyers too.
    """
    r, alpha, a, b = param_arrays(params, PARAMS)
    x, t_x, T = as_float_arrays(frequency, recency, T)
    return expit(-_log_odds_dropped(r, alpha, a, b, x, t_x, T))


def log_likelihood(
    params: Mapping[str, Any], frequency: Any, recency: Any, T: Any, quadrature_fallback: bool = True
) -> np.ndarray:
    """Per-customer MBG/NBD log-likelihood (as pymc-marketing's ``ModifiedBetaGeoNBD.logp``)."""
    r, alpha, a, b = param_arrays(params, PARAMS)
    x, t_x, T = as_float_arrays(frequency, recency, T)
    return (
        gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        + gammaln(a + b) + gammaln(b + x + 1.0) - gammaln(b) - gammaln(a + b + x + 1.0)
        - (r + x) * np.log(alpha + T)
        + np.logaddexp(_log_odds_dropped(r, alpha, a, b, x, t_x, T), 0.0)
    )


def latent_draws(
    params: Mapping[str, Any], frequency: Any, recency: Any, T: Any, rng: np.random.Generator,
    alive_prob: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One draw of each customer's latent state: (alive, purchase rate, dropout rate).

    Given alive at ``T``: ``lambda ~ Gamma(r+x, alpha+T)`` and ``p ~ Beta(a, b+x+1)`` (the customer
    survived ``x+1`` dropout chances); an active customer leaves at rate ``lambda * p``.
    """
    r, alpha, a, b = param_arrays(params, PARAMS)
    x, t_x, T = as_float_arrays(frequency, recency, T)
    if alive_prob is None:  # the caller may pass P(alive) at these parameters, already computed
        alive_prob = p_alive(params, x, t_x, T)
    alive, rate, shape = alive_and_rate(alive_prob, r + x, alpha + T, rng)
    p = rng.beta(np.broadcast_to(a, shape), np.broadcast_to(b + x + 1.0, shape))
    return alive, rate, rate * p
