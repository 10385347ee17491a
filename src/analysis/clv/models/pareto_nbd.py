"""Pareto/NBD closed forms (Schmittlein, Morrison & Colombo 1987), vectorised with numpy / scipy.

The likelihood follows pymc-marketing's ``ParetoNBD.logp`` (Fader & Hardie's 2005 note, with the
Gaussian hypergeometric term taken on the side of the larger of ``alpha`` and ``beta`` for
numerical stability); P(alive) and conditional expectations divide by it, as the library does.

References
----------
.. [1] Fader, P. S. & Hardie, B. G. S. (2005). "A note on deriving the Pareto/NBD model and related
   expressions." http://brucehardie.com/notes/009/pareto_nbd_derivations_2005-11-05.pdf
.. [2] Fader, P. S. & Hardie, B. G. S. (2014). "Additional results for the Pareto/NBD model."
   https://www.brucehardie.com/notes/015/additional_pareto_nbd_results.pdf
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.special import gammaln, hyp2f1

from .basic import as_float_arrays, param_arrays

PARAMS = ("r", "alpha", "s", "beta")


def _one_minus_power_over(exponent: np.ndarray, log_base: np.ndarray) -> np.ndarray:
    """``(1 - base**exponent) / exponent``, with its limit ``-log(base)`` at ``exponent = 0``."""
    safe = np.where(exponent == 0.0, 1.0, exponent)
    return np.where(exponent == 0.0, -log_base, -np.expm1(exponent * log_base) / safe)


def log_likelihood(params: Mapping[str, Any], frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """Per-customer Pareto/NBD log-likelihood (equation (22) of [1]_, as pymc-marketing computes it)."""
    r, alpha, s, beta = param_arrays(params, PARAMS)
    x, t_x, T = as_float_arrays(frequency, recency, T)
    rsx = r + s + x
    rx = r + x
    cond = alpha >= beta
    larger = np.where(cond, alpha, beta)
    diff = np.abs(alpha - beta)
    first_b = np.where(cond, s + 1.0, rx)
    second_b = np.where(cond, s, rx + 1.0)
    refactored = rsx * np.log(larger + t_x)
    with np.errstate(divide="ignore"):
        hyp_t1 = np.log(hyp2f1(rsx, first_b, rsx + 1.0, diff / (larger + t_x)))
        hyp_t2 = np.log(hyp2f1(rsx, second_b, rsx + 1.0, diff / (larger + T))) - rsx * np.log(larger + T) + refactored
        a1 = gammaln(rx) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) - refactored
        a2 = np.log(s) - np.log(rsx) + hyp_t1
    a3 = np.log(rx) - np.log(rsx) + hyp_t2
    return a1 + np.logaddexp(a2, a3)


def p_alive(params: Mapping[str, Any], frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """Probability that a customer is still active, equation (18) of [2]_ (one-time buyers included)."""
    r, alpha, s, beta = param_arrays(params, PARAMS)
    x, t_x, T = as_float_arrays(frequency, recency, T)
    log_alive = (
        gammaln(r + x) - gammaln(r) + r * np.log(alpha / (alpha + T)) - x * np.log(alpha + T)
        + s * np.log(beta / (beta + T))
    )
    return np.minimum(np.exp(log_alive - log_likelihood(params, x, t_x, T)), 1.0)


def conditional_expected_purchases(params: Mapping[str, Any], frequency: Any, recency: Any, T: Any, t: Any) -> np.ndarray:
    """Expected purchases in ``(T, T+t]`` given a customer's history, equation (41) of [1]_."""
    r, alpha, s, beta = param_arrays(params, PARAMS)
    x, t_x, T, t = as_float_arrays(frequency, recency, T, t)
    log_first = (
        gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        - (r + x) * np.log(alpha + T) - s * np.log(beta + T)
    )
    log_second = np.log(r + x) + np.log(beta + T) - np.log(alpha + T)
    third = _one_minus_power_over(s - 1.0, np.log((beta + T) / (beta + T + t)))
    return np.exp(log_first + log_second - log_likelihood(params, x, t_x, T)) * third


def expected_purchases_new_customer(params: Mapping[str, Any], t: Any) -> np.ndarray:
    """Expected purchases of a new customer in ``(0, t]``, equation (27) of [1]_.

    ``r beta / (alpha (s-1)) * [1 - (beta/(beta+t))^(s-1)]``.
    """
    r, alpha, s, beta = param_arrays(params, PARAMS)
    (t,) = as_float_arrays(t)
    return r * beta / alpha * _one_minus_power_over(s - 1.0, np.log(beta / (beta + t)))


def latent_draws(
    params: Mapping[str, Any], frequency: Any, recency: Any, T: Any, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One draw of each customer's latent state: (alive, purchase rate, dropout rate).

    Given alive at ``T``: ``lambda ~ Gamma(r+x, alpha+T)`` and ``mu ~ Gamma(s, beta+T)``, independent.
    """
    r, alpha, s, beta = param_arrays(params, PARAMS)
    x, t_x, T = as_float_arrays(frequency, recency, T)
    alive_prob = p_alive(params, x, t_x, T)
    shape = alive_prob.shape
    alive = rng.random(shape) < alive_prob
    rate = rng.gamma(np.broadcast_to(r + x, shape)) / np.broadcast_to(alpha + T, shape)
    dropout = rng.gamma(np.broadcast_to(s, shape)) / np.broadcast_to(beta + T, shape)
    return alive, rate, dropout
