"""Fitting the purchase and spend models, and the uncertainty of the estimates.

Two engines give the same estimates where both apply:

* ``"closed_form"`` (used for ``priors="flat", method="map"``, the default): maximum likelihood
  with the family's closed-form log-likelihood (tested equal to pymc-marketing's distribution
  ``logp``), optimised with L-BFGS-B on the log-parameters. With flat priors this *is*
  pymc-marketing's MAP estimate, without compiling a PyTensor graph per model: on the bundled
  sample, pymc-marketing's Pareto/NBD MAP ran for more than six minutes and, started at the
  optimum, diverged (r = 1.8e-25); the closed form takes seconds. Tests check both engines agree
  on CDNOW.
* ``"pymc"``: pymc-marketing's own ``fit`` (MAP or NUTS), needed for its priors (``"default"`` or
  custom) and for MCMC; the fitted library model is kept in ``model_``.

PyMC, PyTensor and pymc-marketing are imported lazily, only by the ``"pymc"`` engine, so
``import analysis.clv`` stays fast and scoring from stored parameters never compiles anything.

Priors
------
``priors="flat"`` (the default) puts ``HalfFlat`` priors on every parameter, so the MAP estimate is
the maximum-likelihood estimate of Fader, Hardie & Lee (2005): on CDNOW it reproduces the published
r=0.243, alpha=4.414, a=0.793, b=2.426. ``priors="default"`` uses pymc-marketing's own
weakly-informative priors, which pull the BG/NBD dropout parameters towards smaller values (on CDNOW
a=0.706, b=2.092, 10-14 % below the MLE); that is why they are opt-in.

Uncertainty
-----------
Each fit carries the covariance of its log-parameters, the inverse of the observed information
(the negative Hessian of the closed-form log-likelihood at the estimate, by central differences):
the normal approximation to the sampling distribution of the estimates -- what a bootstrap of the
fit approximates -- and, with flat priors, to the posterior. Directions the data do not identify (a
parameter at its bound, e.g. a dropout that never fires) get a variance of at most 1 on the log
scale instead of an unbounded one; :func:`laplace_covariance` reports how many there were.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from .models import gamma_gamma
from .models.basic import PurchaseModelFit, PurchaseModelKind, family
from .models.gamma_gamma import SpendModelFit

__all__ = ["fit_bgnbd", "fit_gamma_gamma", "fit_purchase_model", "laplace_covariance", "maximum_likelihood"]

PriorChoice = Literal["flat", "default"]
FitMethod = Literal["map", "mcmc"]
Engine = Literal["auto", "closed_form", "pymc"]
SUMMARY_COLS: tuple[str, ...] = ("customer_id", "frequency", "recency", "T")

#: Largest variance of a log-parameter in a direction the data do not identify.
MAX_LOG_VARIANCE = 1.0
#: Bounds of each log-parameter in the closed-form fit (parameters from 2e-9 to 5e8).
LOG_BOUNDS = (-20.0, 20.0)


def fit_purchase_model(
    summary: pd.DataFrame,
    *,
    model: PurchaseModelKind = "bgnbd",
    priors: PriorChoice | Mapping[str, Any] = "flat",
    method: FitMethod = "map",
    engine: Engine = "auto",
    random_state: int | np.random.Generator | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    covariance: bool = True,
) -> PurchaseModelFit:
    """Fit a BG/NBD, MBG/NBD or Pareto/NBD model.

    Parameters
    ----------
    summary : pandas.DataFrame
        Customer summary with ``customer_id, frequency, recency, T`` (as returned by
        :func:`analysis.clv.rfm_summary`; other columns are ignored).
    model : {"bgnbd", "mbgnbd", "pareto_nbd"}, default "bgnbd"
        Model family (pymc-marketing's ``BetaGeoModel``, ``ModifiedBetaGeoModel``, ``ParetoNBDModel``).
    priors : {"flat", "default"} or mapping, default "flat"
        ``"flat"``: ``HalfFlat`` priors on all parameters, so MAP = maximum likelihood and the
        published CDNOW estimates are reproduced. ``"default"``: pymc-marketing's default priors.
        A mapping is passed on as pymc-marketing ``model_config`` (``pymc_extras.prior.Prior`` values).
    method : {"map", "mcmc"}, default "map"
        ``"map"``: the posterior mode; ``"mcmc"``: NUTS, posterior means in ``params_``.
    engine : {"auto", "closed_form", "pymc"}, default "auto"
        ``"auto"``: closed-form maximum likelihood for flat priors and MAP, pymc-marketing otherwise
        (see the module docstring).
    random_state : int, numpy.random.Generator or None
        Seed for pymc-marketing's initial point (MAP) or sampler (MCMC); the closed-form optimiser
        is deterministic.
    fit_kwargs : mapping, optional
        Extra keyword arguments for ``pymc.find_MAP`` / ``pymc.sample`` (pymc engine).
    covariance : bool, default True
        Compute the covariance of the log-parameters (what intervals draw from). A fit used only
        to compare families on a holdout can skip it: for Pareto/NBD it costs as much as a
        quarter of the fit.

    Returns
    -------
    PurchaseModelFit
        Parameters, log-likelihood, covariance of the log-parameters and timing (and the
        pymc-marketing model with the pymc engine).

    Examples
    --------
    >>> fit = fit_purchase_model(summary)  # doctest: +SKIP
    >>> fit.params_  # doctest: +SKIP
    {'r': 0.243, 'alpha': 4.414, 'a': 0.793, 'b': 2.426}
    """
    fam = family(model)
    data = model_frame_from_summary(summary)
    x, t_x, T = (data[col].to_numpy(dtype="float64") for col in ("frequency", "recency", "T"))
    formulas = fam.formulas

    def log_likelihood(params: Mapping[str, Any]) -> np.ndarray:
        return formulas.log_likelihood(params, x, t_x, T)

    def search_likelihood(params: Mapping[str, Any]) -> np.ndarray:
        # Without the quadrature fallback, regions where the hypergeometric term overflows (a flat
        # ridge of ever larger Pareto/NBD s and beta) read as impossible and the search stays out.
        return formulas.log_likelihood(params, x, t_x, T, quadrature_fallback=False)

    started = time.perf_counter()
    params, prior_label, fitted = _estimate(search_likelihood, fam.param_names, fam.pymc_class, data, priors=priors,
                                            method=method, engine=engine, random_state=random_state, fit_kwargs=fit_kwargs)
    cov = laplace_covariance(log_likelihood, params)[0] if covariance else None
    return PurchaseModelFit(
        model=model,
        params_=params,
        priors=prior_label,
        method=method,
        log_likelihood_=float(np.sum(log_likelihood(params))),
        n_customers_=len(data),
        fit_seconds_=time.perf_counter() - started,
        log_params_cov_=cov,
        model_=fitted,
    )


def fit_bgnbd(
    summary: pd.DataFrame,
    *,
    priors: PriorChoice | Mapping[str, Any] = "flat",
    model: PurchaseModelKind = "bgnbd",
    method: FitMethod = "map",
    engine: Engine = "auto",
    random_state: int | np.random.Generator | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
) -> PurchaseModelFit:
    """Fit a BG/NBD (or, with ``model=``, MBG/NBD or Pareto/NBD) model; see :func:`fit_purchase_model`."""
    return fit_purchase_model(
        summary, model=model, priors=priors, method=method, engine=engine, random_state=random_state,
        fit_kwargs=fit_kwargs,
    )


def fit_gamma_gamma(
    summary_repeat_buyers: pd.DataFrame,
    *,
    priors: PriorChoice | Mapping[str, Any] = "flat",
    method: FitMethod = "map",
    engine: Engine = "auto",
    random_state: int | np.random.Generator | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
) -> SpendModelFit:
    """Fit the Gamma-Gamma model of mean repeat-transaction value.

    Parameters
    ----------
    summary_repeat_buyers : pandas.DataFrame
        Customer summary with ``customer_id, frequency, monetary_value``. Customers with
        ``frequency == 0`` are skipped (they carry no spend information); repeat buyers with a
        non-positive ``monetary_value`` are set aside and counted in ``n_set_aside_``.
    priors : {"flat", "default"} or mapping, default "flat"
        ``"flat"``: ``HalfFlat`` on ``p, q, v`` (maximum likelihood). pymc-marketing's own default
        is also ``HalfFlat``, so ``"default"`` gives the same estimates.
    method, engine, random_state, fit_kwargs
        See :func:`fit_purchase_model`.

    Returns
    -------
    SpendModelFit
        ``params_ = {"p", "q", "v"}``, log-likelihood, covariance, counts and timing.
    """
    missing = [col for col in ("customer_id", "frequency", "monetary_value") if col not in summary_repeat_buyers]
    if missing:
        raise ValueError(
            f"summary: column(s) {missing} not found. Found: {list(summary_repeat_buyers.columns)}. "
            "Build it with rfm_summary(..., monetary_value_col=...)."
        )
    repeat = summary_repeat_buyers.loc[summary_repeat_buyers["frequency"] > 0]
    usable = repeat["monetary_value"] > 0
    data = pd.DataFrame(
        {
            "customer_id": repeat.loc[usable, "customer_id"].to_numpy(),
            "frequency": repeat.loc[usable, "frequency"].to_numpy(dtype="float64"),
            "monetary_value": repeat.loc[usable, "monetary_value"].to_numpy(dtype="float64"),
        }
    )
    if data.empty:
        raise ValueError("summary: no repeat buyer with a positive monetary_value; cannot fit Gamma-Gamma.")
    x, z = data["frequency"].to_numpy(), data["monetary_value"].to_numpy()

    def log_likelihood(params: Mapping[str, Any]) -> np.ndarray:
        return gamma_gamma.log_likelihood(params, x, z)

    started = time.perf_counter()
    params, prior_label, fitted = _estimate(log_likelihood, gamma_gamma.PARAMS, "GammaGammaModel", data, priors=priors,
                                            method=method, engine=engine, random_state=random_state, fit_kwargs=fit_kwargs)
    cov, _ = laplace_covariance(log_likelihood, params)
    return SpendModelFit(
        params_=params,
        priors=prior_label,
        method=method,
        log_likelihood_=gamma_gamma.gamma_gamma_log_likelihood(params, x, z),
        n_customers_=len(data),
        n_set_aside_=int((~usable).sum()),
        fit_seconds_=time.perf_counter() - started,
        log_params_cov_=cov,
        model_=fitted,
    )


def _estimate(
    log_likelihood: Callable[[dict[str, np.ndarray]], np.ndarray],
    names: tuple[str, ...],
    pymc_class: str,
    data: pd.DataFrame,
    *,
    priors: PriorChoice | Mapping[str, Any],
    method: FitMethod,
    engine: Engine,
    random_state: int | np.random.Generator | None,
    fit_kwargs: Mapping[str, Any] | None,
) -> tuple[dict[str, float], str, Any]:
    """The estimate of one model: closed-form maximum likelihood, or pymc-marketing's ``fit``.

    Returns the parameters, the prior label and the fitted pymc-marketing model (None for the
    closed form).
    """
    if _use_closed_form(engine, priors, method):
        return maximum_likelihood(log_likelihood, names), "flat", None
    with quiet_pymc(method):
        clv, prior_cls = _import_pymc_marketing()
        model_config, prior_label = _model_config(priors, names, prior_cls)
        fitted = getattr(clv, pymc_class)(model_config=model_config)
        fitted.fit(data=data, method=method, **_fit_arguments(method, random_state, fit_kwargs))
        return _posterior_point(fitted.fit_result, names), prior_label, fitted


def _use_closed_form(engine: str, priors: Any, method: str) -> bool:
    if engine not in ("auto", "closed_form", "pymc"):
        raise ValueError(f"engine: expected 'auto', 'closed_form' or 'pymc', found {engine!r}.")
    if method not in ("map", "mcmc"):
        raise ValueError(f"method: expected 'map' or 'mcmc', found {method!r}.")
    flat_map = isinstance(priors, str) and priors == "flat" and method == "map"
    if engine == "closed_form" and not flat_map:
        raise ValueError("engine='closed_form' fits flat-prior MAP (maximum likelihood) only; use engine='pymc'.")
    return engine == "closed_form" or (engine == "auto" and flat_map)


def maximum_likelihood(
    log_likelihood: Callable[[dict[str, np.ndarray]], np.ndarray],
    names: tuple[str, ...],
    *,
    bounds: tuple[float, float] = LOG_BOUNDS,
) -> dict[str, float]:
    """Maximum-likelihood estimates by L-BFGS-B on the log-parameters (all parameters positive).

    Parameters
    ----------
    log_likelihood : callable
        Maps a parameter mapping to per-customer log-likelihoods.
    names : tuple of str
        Parameter names, in the order they are optimised.
    bounds : (float, float)
        Bounds on each log-parameter; an estimate at a bound means the data do not pin it down
        (see :func:`analysis.clv.diagnostics.dropout_diagnostic`).

    Returns
    -------
    dict of str to float
    """
    from scipy.optimize import minimize

    def negative(theta: np.ndarray) -> float:
        with np.errstate(all="ignore"):
            value = -float(np.sum(log_likelihood(dict(zip(names, np.exp(theta), strict=True)))))
        return value if np.isfinite(value) else 1e300

    best = None
    for start in (np.zeros(len(names)), np.full(len(names), 1.0)):  # a second start if the first fails
        result = minimize(negative, start, method="L-BFGS-B", bounds=[bounds] * len(names))
        if best is None or result.fun < best.fun:
            best = result
        if result.success and result.fun < 1e300:
            break
    if best is None or not np.isfinite(best.fun) or best.fun >= 1e300:
        raise ValueError("maximum likelihood: no finite log-likelihood found; check the customer summary.")
    return {name: float(value) for name, value in zip(names, np.exp(best.x), strict=True)}


def laplace_covariance(
    log_likelihood: Callable[[dict[str, np.ndarray]], np.ndarray],
    params: Mapping[str, float],
    *,
    step: float = 1e-4,
) -> tuple[np.ndarray, int]:
    """Covariance of the log-parameters at an estimate: the inverse observed information.

    The Hessian of the total log-likelihood in log-parameter space is taken by central
    differences, all perturbed parameter sets evaluated in one broadcast call.

    Parameters
    ----------
    log_likelihood : callable
        Maps a parameter mapping (values of shape ``(m, 1)``) to per-customer log-likelihoods of
        shape ``(m, n_customers)``.
    params : mapping
        The estimate.
    step : float
        Finite-difference step on the log scale.

    Returns
    -------
    covariance : ndarray
        ``(k, k)`` for the ``k`` parameters, in the order of ``params``.
    n_unidentified : int
        Directions with (almost) no curvature, whose variance is capped at ``MAX_LOG_VARIANCE``.
    """
    names = list(params)
    k = len(names)
    centre = np.log([float(params[name]) for name in names])
    eye = np.eye(k) * step
    # rows: +i+j, +i-j, -i+j, -i-j for every pair (i, j), i <= j
    pairs = [(i, j) for i in range(k) for j in range(i, k)]
    shifts = np.array([s1 * eye[i] + s2 * eye[j] for i, j in pairs for s1, s2 in ((1, 1), (1, -1), (-1, 1), (-1, -1))])
    logs = centre + shifts
    values = log_likelihood({name: np.exp(logs[:, [c]]) for c, name in enumerate(names)})
    totals = np.asarray(values, dtype="float64").sum(axis=1).reshape(len(pairs), 4)
    second = (totals[:, 0] - totals[:, 1] - totals[:, 2] + totals[:, 3]) / (4 * step * step)
    hessian = np.zeros((k, k))
    for (i, j), value in zip(pairs, second, strict=True):  # k(k+1)/2 entries, k <= 4
        hessian[i, j] = hessian[j, i] = value
    if not np.all(np.isfinite(hessian)):
        return np.diag(np.full(k, MAX_LOG_VARIANCE)), k
    eigenvalues, vectors = np.linalg.eigh(-hessian)
    floor = 1.0 / MAX_LOG_VARIANCE
    n_unidentified = int((eigenvalues < floor).sum())
    covariance = (vectors / np.maximum(eigenvalues, floor)) @ vectors.T
    return covariance, n_unidentified


@contextlib.contextmanager
def quiet_pymc(method: str = "map") -> Iterator[None]:
    """Silence PyTensor/PyMC/ArviZ chatter for the duration of a call, then restore.

    Scoped on purpose: importing this package changes no global warning filter, logger level or
    environment variable. With ``method="mcmc"`` PyMC's warning-level log records (divergences,
    R-hat) still come through; only its informational messages are hidden.
    """
    quiet_level = logging.WARNING if method == "mcmc" else logging.ERROR
    library = r"(pymc|pymc_marketing|pymc_extras|arviz|pytensor)(\.|$)"
    with warnings.catch_warnings():
        # pip-installed PyTensor finds no BLAS to link; irrelevant for these scalar models.
        warnings.filterwarnings("ignore", message=r"PyTensor could not link to a BLAS", category=UserWarning)
        # ArviZ announces its refactor once a day on import.
        warnings.filterwarnings("ignore", message=r"\s*ArviZ is undergoing a major refactor", category=FutureWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, module=library)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=library)
        # Import first: PyMC sets its own logger level on import, which we must not clobber on exit.
        _import_pymc_marketing()
        loggers = [logging.getLogger(name) for name in ("pymc", "pytensor", "pymc_marketing", "arviz")]
        levels = [logger.level for logger in loggers]
        for logger in loggers:
            logger.setLevel(max(quiet_level, logger.getEffectiveLevel()))
        try:
            yield
        finally:
            for logger, level in zip(loggers, levels, strict=True):
                logger.setLevel(level)


def _import_pymc_marketing() -> tuple[Any, Any]:
    """Import pymc-marketing lazily (about 10 s the first time); call inside quiet_pymc."""
    from pymc_extras.prior import Prior
    from pymc_marketing import clv

    return clv, Prior


def _model_config(
    priors: PriorChoice | Mapping[str, Any], param_names: tuple[str, ...], prior_cls: Any
) -> tuple[dict[str, Any] | None, str]:
    if isinstance(priors, Mapping):
        return dict(priors), "custom"
    if priors == "flat":
        return {name: prior_cls("HalfFlat") for name in param_names}, "flat"
    if priors == "default":
        return None, "default"
    raise ValueError(f"priors: expected 'flat', 'default' or a mapping of Prior objects, found {priors!r}.")


def _seed(random_state: int | np.random.Generator | None) -> int | None:
    if random_state is None or isinstance(random_state, (int, np.integer)):
        return None if random_state is None else int(random_state)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    raise TypeError(f"random_state: expected int, numpy Generator or None, found {type(random_state).__name__}.")


def _fit_arguments(
    method: str, random_state: int | np.random.Generator | None, fit_kwargs: Mapping[str, Any] | None
) -> dict[str, Any]:
    seed = _seed(random_state)
    if method == "map":
        arguments: dict[str, Any] = {"progressbar": False, "seed": seed}
    elif method == "mcmc":
        arguments = {"progressbar": False, "random_seed": seed}
    else:
        raise ValueError(f"method: expected 'map' or 'mcmc', found {method!r}.")
    arguments.update(fit_kwargs or {})
    return arguments


def _posterior_point(posterior: Any, names: tuple[str, ...]) -> dict[str, float]:
    """Posterior mean of scalar parameters (the MAP value when there is a single draw)."""
    return {name: float(posterior[name].mean(("chain", "draw"))) for name in names}


def model_frame_from_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """``customer_id, frequency, recency, T`` of a summary, checked (one row per customer, recency <= T)."""
    missing = [col for col in SUMMARY_COLS if col not in summary.columns]
    if missing:
        raise ValueError(
            f"summary: column(s) {missing} not found. Found: {list(summary.columns)}. "
            "Build it with rfm_summary() or rename (e.g. x -> frequency, t_x -> recency)."
        )
    data = summary.loc[:, list(SUMMARY_COLS)].reset_index(drop=True)
    if data["customer_id"].duplicated().any():
        raise ValueError("summary: column 'customer_id' has duplicates; expected one row per customer.")
    bad = int((data["recency"] > data["T"]).sum() + (data["frequency"] < 0).sum())
    if bad:
        raise ValueError(f"summary: {bad} row(s) with recency > T or negative frequency.")
    return data
