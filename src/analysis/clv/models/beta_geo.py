"""BG/NBD closed forms (Fader, Hardie & Lee 2005), vectorised with numpy / scipy.

Parameters broadcast against customers: floats give one value per customer, a column of draws
(shape ``(n_draws, 1)``) gives ``(n_draws, n_customers)``.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). "Counting your customers the easy way:
   An alternative to the Pareto/NBD model." Marketing Science 24(2).
.. [2] Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2008). "Computing P(alive) using the BG/NBD
   model." http://www.brucehardie.com/notes/021/palive_for_BGNBD.pdf
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import betaln, expit, gammaln, hyp2f1

from .basic import alive_and_rate, as_float_arrays, param_arrays

PARAMS = ("r", "alpha", "a", "b")


def _log_odds_dropped(r, alpha, a, b, x, t_x, T) -> np.ndarray:
    """log[ P(dropped after last purchase) / P(alive) ]; -inf when x = 0."""
    x_safe = np.maximum(x, 1.0)
    log_ratio = (r + x) * np.log((alpha + T) / (alpha + t_x)) + np.log(a / (b + x_safe - 1.0))
    return np.where(x > 0, log_ratio, -np.inf)


def expected_purchases_new_customer(params: Mapping[str, Any], t: Any) -> np.ndarray:
    """Expected repeat purchases of a new customer in ``(0, t]``, equation (9) of [1]_.

    ``E[X(t)] = (a+b-1)/(a-1) * [1 - (alpha/(alpha+t))^r * 2F1(r, b; a+b-1; t/(alpha+t))]``.

    Examples
    --------
    >>> params = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # rounded MLE
    >>> round(float(expected_purchases_new_customer(params, 78.0)), 3)
    1.861
    """
    r, alpha, a, b = param_arrays(params, PARAMS)
    (t,) = as_float_arrays(t)
    hyp = hyp2f1(r, b, a + b - 1.0, t / (alpha + t))
    return (a + b - 1.0) / (a - 1.0) * (1.0 - (alpha / (alpha + t)) ** r * hyp)


def conditional_expected_purchases(params: Mapping[str, Any], frequency: Any, recency: Any, T: Any, t: Any) -> np.ndarray:
    """Expected repeat purchases in ``(T, T+t]`` given a customer's history, equation (10) of [1]_.

    Examples
    --------
    >>> params = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    >>> round(float(conditional_expected_purchases(params, 2, 30.43, 38.86, 39)), 3)
    1.226
    """
    r, alpha, a, b = param_arrays(params, PARAMS)
    x, t_x, T, t = as_float_arrays(frequency, recency, T, t)
    hyp = hyp2f1(r + x, b + x, a + b + x - 1.0, t / (alpha + T + t))
    numerator = (a + b + x - 1.0) / (a - 1.0) * (1.0 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
    return numerator * np.exp(-np.logaddexp(0.0, _log_odds_dropped(r, alpha, a, b, x, t_x, T)))


def p_alive(params: Mapping[str, Any], frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """Probability that a customer with history ``(x, t_x, T)`` is still active, from [2]_.

    ``P(alive) = 1 / (1 + delta(x>0) * a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x))``. A customer
    without repeat purchases is alive with probability 1 under the BG/NBD, since dropout can only
    happen right after a repeat purchase.

    Examples
    --------
    >>> params = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    >>> p_alive(params, [0, 2], [0.0, 30.43], [38.86, 38.86]).round(3)
    array([1.   , 0.727])
    """
    r, alpha, a, b = param_arrays(params, PARAMS)
    x, t_x, T = as_float_arrays(frequency, recency, T)
    return expit(-_log_odds_dropped(r, alpha, a, b, x, t_x, T))


def log_likelihood(
    params: Mapping[str, Any], frequency: Any, recency: Any, T: Any, quadrature_fallback: bool = True
) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood, equation (6) of [1]_.

    ``LL_i = ln B(a, b+x)/B(a, b) + ln Gamma(r+x)/Gamma(r) + r ln(alpha)
    + ln[ (alpha+T)^-(r+x) + delta(x>0) a/(b+x-1) (alpha+t_x)^-(r+x) ]``
    """
    r, alpha, a, b = param_arrays(params, PARAMS)
    x, t_x, T = as_float_arrays(frequency, recency, T)
    x_safe = np.maximum(x, 1.0)
    log_alive_term = -(r + x) * np.log(alpha + T)
    log_dropped_term = np.where(x > 0, np.log(a / (b + x_safe - 1.0)) - (r + x) * np.log(alpha + t_x), -np.inf)
    return (
        betaln(a, b + x) - betaln(a, b) + gammaln(r + x) - gammaln(r) + r * np.log(alpha)
        + np.logaddexp(log_alive_term, log_dropped_term)
    )


def latent_draws(
    params: Mapping[str, Any], frequency: Any, recency: Any, T: Any, rng: np.random.Generator,
    alive_prob: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One draw of each customer's latent state from its posterior: (alive, purchase rate, dropout rate).

    Given alive at ``T``: ``lambda ~ Gamma(r+x, alpha+T)`` and ``p ~ Beta(a, b+x)``; an active customer
    leaves at rate ``lambda * p`` (dropout happens at purchases).
    """
    r, alpha, a, b = param_arrays(params, PARAMS)
    x, t_x, T = as_float_arrays(frequency, recency, T)
    if alive_prob is None:  # the caller may pass P(alive) at these parameters, already computed
        alive_prob = p_alive(params, x, t_x, T)
    alive, rate, shape = alive_and_rate(alive_prob, r + x, alpha + T, rng)
    p = rng.beta(np.broadcast_to(a, shape), np.broadcast_to(b + x, shape))
    return alive, rate, rate * p
