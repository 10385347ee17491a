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
from scipy.special import gammaln, hyp2f1, logsumexp

from .basic import alive_and_rate, as_float_arrays, elementwise_in_threads, param_arrays

PARAMS = ("r", "alpha", "s", "beta")


def _one_minus_power_over(exponent: np.ndarray, log_base: np.ndarray) -> np.ndarray:
    """``(1 - base**exponent) / exponent``, with its limit ``-log(base)`` at ``exponent = 0``."""
    safe = np.where(exponent == 0.0, 1.0, exponent)
    return np.where(exponent == 0.0, -log_base, -np.expm1(exponent * log_base) / safe)


def log_likelihood(
    params: Mapping[str, Any], frequency: Any, recency: Any, T: Any, quadrature_fallback: bool = True
) -> np.ndarray:
    """Per-customer Pareto/NBD log-likelihood (equation (22) of [1]_, as pymc-marketing computes it).

    Where scipy's Gaussian hypergeometric function overflows (large ``s`` and ``beta`` with the
    argument close to 1, which parameter draws for intervals reach), the same likelihood is taken
    from its integral form by quadrature (:func:`_log_likelihood_by_quadrature`); with
    ``quadrature_fallback=False`` those entries stay non-finite (the fit's search treats them as
    out of bounds).
    """
    r, alpha, s, beta = param_arrays(params, PARAMS)
    x, t_x, T = as_float_arrays(frequency, recency, T)
    # each customer's likelihood on its own, so blocks of customers can go to different cores
    return elementwise_in_threads(_log_likelihood, r, alpha, s, beta, x, t_x, T, quadrature_fallback=quadrature_fallback)


def _log_likelihood(r, alpha, s, beta, x, t_x, T, *, quadrature_fallback: bool) -> np.ndarray:
    rsx = r + s + x
    rx = r + x
    cond = alpha >= beta
    larger = np.where(cond, alpha, beta)
    diff = np.abs(alpha - beta)
    first_b = np.where(cond, s + 1.0, rx)
    second_b = np.where(cond, s, rx + 1.0)
    refactored = rsx * np.log(larger + t_x)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        hyp_t1 = np.log(hyp2f1(rsx, first_b, rsx + 1.0, diff / (larger + t_x)))
        hyp_t2 = np.log(hyp2f1(rsx, second_b, rsx + 1.0, diff / (larger + T))) - rsx * np.log(larger + T) + refactored
        a1 = gammaln(rx) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) - refactored
        a2 = np.log(s) - np.log(rsx) + hyp_t1
        a3 = np.log(rx) - np.log(rsx) + hyp_t2
        out = a1 + np.logaddexp(a2, a3)
    failed = ~np.isfinite(out)
    if quadrature_fallback and failed.any():
        shape = out.shape
        r_, alpha_, s_, beta_, x_, t_x_, T_ = (np.broadcast_to(v, shape)[failed] for v in (r, alpha, s, beta, x, t_x, T))
        out = np.array(out, copy=True)
        out[failed] = _log_likelihood_by_quadrature(r_, alpha_, s_, beta_, x_, t_x_, T_)
    return out


def _log_likelihood_by_quadrature(r, alpha, s, beta, x, t_x, T, n_nodes: int = 64) -> np.ndarray:
    """Pareto/NBD log-likelihood from its integral form, for 1-D arrays of equal length.

    ``L = Gamma(r+x)/Gamma(r) alpha^r beta^s [ (alpha+T)^-(r+x) (beta+T)^-s
    + s * int_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau ]`` (the customer is alive at ``T``,
    or died at ``tau`` between the last purchase and ``T``). The integral is taken with Gauss-Legendre
    nodes after substituting ``w = log((alpha+tau)/(alpha+t_x))`` and ``v = (1 - exp(-lam w))/lam``,
    ``lam`` the integrand's initial rate of decay in ``w``, which leaves a slowly varying integrand.
    """
    rx = r + x
    lam = (rx - 1.0) + (s + 1.0) * (alpha + t_x) / (beta + t_x)
    decays = lam > 1e-9
    lam_safe = np.where(decays, lam, 1.0)
    width = np.log((alpha + T) / (alpha + t_x))
    span = np.where(decays, -np.expm1(-lam_safe * width) / lam_safe, width)
    nodes, weights = np.polynomial.legendre.leggauss(n_nodes)
    v = span[:, None] * (nodes + 1.0) / 2.0
    w = np.where(decays[:, None], -np.log1p(-lam_safe[:, None] * v) / lam_safe[:, None], v)
    log_alpha_tau = np.log(alpha + t_x)[:, None] + w
    tau = np.exp(log_alpha_tau) - alpha[:, None]
    log_integrand = (-(rx[:, None] - 1.0) * log_alpha_tau - (s[:, None] + 1.0) * np.log(beta[:, None] + tau)
                     + np.where(decays[:, None], lam_safe[:, None] * w, 0.0))
    with np.errstate(divide="ignore"):
        log_integral = logsumexp(log_integrand + np.log(weights / 2.0), axis=1) + np.log(span)
        alive_term = -rx * np.log(alpha + T) - s * np.log(beta + T)
        return (gammaln(rx) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
                + np.logaddexp(alive_term, np.log(s) + log_integral))


def p_alive(params: Mapping[str, Any], frequency: Any, recency: Any, T: Any) -> np.ndarray:
    """Probability that a customer is still active, equation (18) of [2]_ (one-time buyers included)."""
    x, t_x, T = as_float_arrays(frequency, recency, T)
    return _p_alive(params, x, T, log_likelihood(params, x, t_x, T))


def _p_alive(params: Mapping[str, Any], x: np.ndarray, T: np.ndarray, log_lik: np.ndarray) -> np.ndarray:
    r, alpha, s, beta = param_arrays(params, PARAMS)
    log_alive = (
        gammaln(r + x) - gammaln(r) + r * np.log(alpha / (alpha + T)) - x * np.log(alpha + T)
        + s * np.log(beta / (beta + T))
    )
    return np.minimum(np.exp(log_alive - log_lik), 1.0)


def conditional_expected_purchases(params: Mapping[str, Any], frequency: Any, recency: Any, T: Any, t: Any) -> np.ndarray:
    """Expected purchases in ``(T, T+t]`` given a customer's history, equation (41) of [1]_."""
    x, t_x, T, t = as_float_arrays(frequency, recency, T, t)
    return _expected(params, x, T, t, log_likelihood(params, x, t_x, T))


def _expected(params: Mapping[str, Any], x: np.ndarray, T: np.ndarray, t: np.ndarray, log_lik: np.ndarray) -> np.ndarray:
    r, alpha, s, beta = param_arrays(params, PARAMS)
    log_first = (
        gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        - (r + x) * np.log(alpha + T) - s * np.log(beta + T)
    )
    log_second = np.log(r + x) + np.log(beta + T) - np.log(alpha + T)
    third = _one_minus_power_over(s - 1.0, np.log((beta + T) / (beta + T + t)))
    return np.exp(log_first + log_second - log_lik) * third


def alive_and_expected(params: Mapping[str, Any], frequency: Any, recency: Any, T: Any, t: Any) -> tuple[np.ndarray, np.ndarray]:
    """:func:`p_alive` (shape ``(n,)``) and :func:`conditional_expected_purchases` for every customer and
    horizon in ``t`` (shape ``(n, len(t))``), from one likelihood evaluation per customer, which both
    divide by (the costly part of scoring). ``frequency, recency, T``: one value per customer."""
    x, t_x, T, t = as_float_arrays(frequency, recency, T, t)
    log_lik = log_likelihood(params, x, t_x, T)
    return _p_alive(params, x, T, log_lik), _expected(params, x[:, None], T[:, None], t[None, :], log_lik[:, None])


def expected_purchases_new_customer(params: Mapping[str, Any], t: Any) -> np.ndarray:
    """Expected purchases of a new customer in ``(0, t]``, equation (27) of [1]_.

    ``r beta / (alpha (s-1)) * [1 - (beta/(beta+t))^(s-1)]``.
    """
    r, alpha, s, beta = param_arrays(params, PARAMS)
    (t,) = as_float_arrays(t)
    return r * beta / alpha * _one_minus_power_over(s - 1.0, np.log(beta / (beta + t)))


def latent_draws(
    params: Mapping[str, Any], frequency: Any, recency: Any, T: Any, rng: np.random.Generator,
    alive_prob: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One draw of each customer's latent state: (alive, purchase rate, dropout rate).

    Given alive at ``T``: ``lambda ~ Gamma(r+x, alpha+T)`` and ``mu ~ Gamma(s, beta+T)``, independent.
    """
    r, alpha, s, beta = param_arrays(params, PARAMS)
    x, t_x, T = as_float_arrays(frequency, recency, T)
    if alive_prob is None:  # the caller may pass P(alive) at these parameters, already computed
        alive_prob = p_alive(params, x, t_x, T)
    alive, rate, shape = alive_and_rate(alive_prob, r + x, alpha + T, rng)
    dropout = rng.gamma(np.broadcast_to(s, shape)) / np.broadcast_to(beta + T, shape)
    return alive, rate, dropout
