"""What the purchase-model families share: their registry, the fitted-model record, parameter draws.

Each family module (:mod:`.beta_geo`, :mod:`.modified_beta_geo`, :mod:`.pareto_nbd`) exposes the
same vectorised closed forms, written with numpy / scipy only:

* ``expected_purchases_new_customer(params, t)``
* ``conditional_expected_purchases(params, frequency, recency, T, t)``
* ``p_alive(params, frequency, recency, T)``
* ``log_likelihood(params, frequency, recency, T)`` (per customer)
* ``future_purchases_given_latent(params, frequency, recency, T, t, rng)`` -> a sampler of each
  customer's latent state (alive, purchase rate, dropout) from its posterior, for intervals.

Parameter values may be floats or arrays: every formula broadcasts with numpy rules, so a column
of parameter draws (shape ``(n_draws, 1)``) against a row of customers gives ``(n_draws,
n_customers)`` in one evaluation. That is why scoring uses closed forms rather than the fitted
pymc-marketing model's methods: a saved run scores from stored parameters without PyMC, and the
intervals evaluate every customer under hundreds of parameter draws (pymc-marketing's Pareto/NBD
compiles a PyTensor graph on every call). Each closed form is tested against the library's
``expected_purchases`` / ``expected_probability_alive`` / ``expected_purchases_new_customer``.
"""

from __future__ import annotations

import contextvars
import importlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from itertools import pairwise
from types import ModuleType
from typing import Any, Literal

import numpy as np

__all__ = [
    "FAMILIES",
    "Family",
    "PurchaseModelFit",
    "PurchaseModelKind",
    "as_float_arrays",
    "family",
    "infer_family",
]

PurchaseModelKind = Literal["bgnbd", "pareto_nbd", "mbgnbd"]
ArrayLike = np.ndarray | Any


@dataclass(frozen=True)
class Family:
    """One purchase-model family.

    Attributes
    ----------
    name : str
        Key used in configs (``params.14_value.model``) and manifests.
    title : str
        Name on pages ("BG/NBD").
    param_names : tuple of str
        Parameters in pymc-marketing's naming.
    pymc_class : str
        The ``pymc_marketing.clv`` model class fitted for it.
    module_name : str
        Module of this package holding the family's closed forms.
    dropout_story : str
        One sentence on how customers drop out, for the page.
    """

    name: str
    title: str
    param_names: tuple[str, ...]
    pymc_class: str
    module_name: str
    dropout_story: str

    @property
    def formulas(self) -> ModuleType:
        """The family's closed forms (imported on first use)."""
        return importlib.import_module(f".{self.module_name}", __package__)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("bgnbd", "BG/NBD", ("r", "alpha", "a", "b"), "BetaGeoModel", "beta_geo",
               "after each repeat purchase a customer drops out with probability p ~ Beta(a, b); a customer "
               "who never bought again is counted as alive"),
        Family("mbgnbd", "MBG/NBD", ("r", "alpha", "a", "b"), "ModifiedBetaGeoModel", "modified_beta_geo",
               "after every purchase, the first included, a customer drops out with probability p ~ Beta(a, b), "
               "so one-time buyers can have left"),
        Family("pareto_nbd", "Pareto/NBD", ("r", "alpha", "s", "beta"), "ParetoNBDModel", "pareto_nbd",
               "each customer has an exponential lifetime with rate mu ~ Gamma(s, beta), running from the first "
               "purchase, so one-time buyers can have left"),
    )
}


def family(name: str) -> Family:
    """The family called ``name``; a ``ValueError`` listing the known ones otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(
            f"model: expected one of {sorted(FAMILIES)}, found {name!r}. Set params.14_value.model to one of them."
        ) from None


def infer_family(params: Mapping[str, Any] | PurchaseModelFit, model: str | None = None) -> tuple[Family, dict[str, Any]]:
    """Family and parameter mapping of a fit, or of a plain mapping (``s``/``beta`` -> Pareto/NBD, else BG/NBD)."""
    if isinstance(params, PurchaseModelFit):
        if model is not None and model != params.model:
            raise ValueError(f"model={model!r} given for a {params.model} fit.")
        return params.family, dict(params.params_)
    if model is None:
        model = "pareto_nbd" if {"s", "beta"} <= set(params) else "bgnbd"
    fam = family(model)
    missing = [key for key in fam.param_names if key not in params]
    if missing:
        raise ValueError(f"{fam.title} params: missing {missing}. Found: {sorted(params)}.")
    return fam, {key: params[key] for key in fam.param_names}


def as_float_arrays(*values: ArrayLike) -> list[np.ndarray]:
    """Each value as a float64 array (no copy when it already is one)."""
    return [np.asarray(value, dtype="float64") for value in values]


def param_arrays(params: Mapping[str, Any], names: tuple[str, ...]) -> list[np.ndarray]:
    """The named parameters as float arrays, in order, with a message naming a missing one."""
    missing = [key for key in names if key not in params]
    if missing:
        raise ValueError(f"params: missing {missing}. Found: {sorted(params)}.")
    return as_float_arrays(*(params[key] for key in names))


def alive_and_rate(alive_prob: np.ndarray, rate_shape: np.ndarray, rate_inverse_scale: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """The draws every family's posterior starts with: alive or not, and the purchase rate.

    ``alive ~ Bernoulli(P(alive))`` and ``lambda ~ Gamma(r + x, alpha + T)`` (passed as ``rate_shape``
    and ``rate_inverse_scale``), broadcast together; returns them and their common shape.
    """
    shape = np.broadcast_shapes(np.shape(alive_prob), np.shape(rate_shape))
    alive = rng.random(shape) < alive_prob
    rate = rng.gamma(np.broadcast_to(rate_shape, shape)) / np.broadcast_to(rate_inverse_scale, shape)
    return alive, rate, shape


#: Inputs with fewer elements than this are evaluated on the calling thread (a thread costs ~0.1 ms).
THREADED_ABOVE = 4_096


def worker_threads() -> int:
    """Threads for element-wise formulas: the cores this process may use, at most four."""
    from ...engines import usable_cores

    return usable_cores(4)


def elementwise_in_threads(func: Callable[..., np.ndarray], *arrays: np.ndarray, **kwargs: Any) -> np.ndarray:
    """``func(*arrays, **kwargs)`` for an element-wise ``func``, its elements split over threads.

    The arrays are broadcast together and cut into one contiguous block per thread; numpy and scipy's
    ufuncs release the GIL, so the blocks run on different cores. Every element is computed as in one
    call, so the result is the same to the last bit (tested). Small inputs run on the calling thread.
    """
    shape = np.broadcast_shapes(*(np.shape(a) for a in arrays))
    size = int(np.prod(shape))
    threads = worker_threads()
    if threads == 1 or size < THREADED_ABOVE:
        return func(*arrays, **kwargs)
    flat = [np.broadcast_to(a, shape).reshape(-1) for a in arrays]
    edges = np.linspace(0, size, threads + 1).astype(int)

    def block(lo: int, hi: int) -> np.ndarray:
        return func(*(a[lo:hi] for a in flat), **kwargs)

    with ThreadPoolExecutor(threads) as pool:
        # each block in a copy of the caller's context, so its np.errstate holds in the workers too
        futures = [pool.submit(contextvars.copy_context().run, block, lo, hi) for lo, hi in pairwise(edges)]
        parts = [future.result() for future in futures]
    return np.concatenate(parts).reshape(shape)


def purchases_given_latent(rate: np.ndarray, dropout: np.ndarray, t: float) -> np.ndarray:
    """Expected purchases in ``t`` of an active customer with purchase ``rate`` who leaves at ``dropout`` per period.

    ``rate / dropout * (1 - exp(-dropout * t))``, with the limit ``rate * t`` when the dropout rate is 0 (a
    degenerate fit draws dropout rates that underflow).
    """
    exposure = np.where(dropout > 1e-12, -np.expm1(-dropout * t) / np.maximum(dropout, 1e-300), t)
    return rate * exposure


@dataclass(frozen=True)
class PurchaseModelFit:
    """A fitted purchase-count model (BG/NBD, MBG/NBD or Pareto/NBD).

    Build it with :func:`analysis.clv.fit_bgnbd`, or directly from known parameters
    (``PurchaseModelFit(model="bgnbd", params_={...})``): every scoring method uses the family's
    closed forms, so a fit built from stored parameters scores exactly like a fresh one. Pickling
    drops the pymc-marketing model (``model_``), keeping what scoring needs.

    Attributes
    ----------
    model : {"bgnbd", "mbgnbd", "pareto_nbd"}
        Model family.
    params_ : dict of str to float
        Point estimates (MAP, or posterior means for ``method="mcmc"``):
        ``r, alpha, a, b`` for BG/NBD and MBG/NBD, ``r, alpha, s, beta`` for Pareto/NBD.
    priors : str
        ``"flat"``, ``"default"`` or ``"custom"``.
    method : str
        Fitting method, ``"map"`` or ``"mcmc"``.
    log_likelihood_ : float or None
        Log-likelihood of the fitted data at ``params_`` (the family's closed form).
    n_customers_ : int or None
        Number of customers fitted.
    fit_seconds_ : float or None
        Wall time of the fit, including model compilation.
    log_params_cov_ : ndarray or None
        Covariance of the log-parameters at the estimate (inverse observed information, see
        :func:`analysis.clv.fitting.laplace_covariance`); used to draw parameters for intervals.
    model_ : object or None
        The fitted ``pymc_marketing.clv`` model, kept for its posterior and methods (not pickled).
    """

    model: PurchaseModelKind
    params_: dict[str, float]
    priors: str = "flat"
    method: str = "map"
    log_likelihood_: float | None = None
    n_customers_: int | None = None
    fit_seconds_: float | None = None
    log_params_cov_: np.ndarray | None = field(default=None, repr=False, compare=False)
    model_: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        fam = family(self.model)
        missing = [key for key in fam.param_names if key not in self.params_]
        if missing:
            raise ValueError(f"params_: {self.model} needs {list(fam.param_names)}, missing {missing}.")

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["model_"] = None  # a PyMC model holds compiled graphs; scoring needs only the parameters
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            object.__setattr__(self, key, value)

    @property
    def family(self) -> Family:
        return family(self.model)

    def without_model(self) -> PurchaseModelFit:
        """The same fit without the pymc-marketing model (small, picklable)."""
        return replace(self, model_=None)

    # -- scoring (closed forms, every family) -------------------------------------------------
    def expected_purchases(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, t: ArrayLike) -> np.ndarray:
        """Conditional expected purchases in ``(T, T+t]`` for each customer.

        Parameters
        ----------
        frequency, recency, T : array_like
            Calibration ``x``, ``t_x``, ``T`` (one value per customer).
        t : float or array_like
            Length of the prediction period.

        Returns
        -------
        numpy.ndarray
            One value per customer (broadcast shape of the inputs).
        """
        return self.family.formulas.conditional_expected_purchases(self.params_, frequency, recency, T, t)

    def p_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> np.ndarray:
        """Probability that each customer is still active (see the family's ``p_alive``)."""
        return self.family.formulas.p_alive(self.params_, frequency, recency, T)

    def alive_and_expected(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, t: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`p_alive` (shape ``(n,)``) and :meth:`expected_purchases` for every customer and horizon in
        ``t`` (shape ``(n, len(t))``); a family whose two formulas share a costly term (Pareto/NBD's
        likelihood) computes it once."""
        formulas = self.family.formulas
        own = getattr(formulas, "alive_and_expected", None)
        if own is not None:
            return own(self.params_, frequency, recency, T, t)
        x, t_x, T_, t_ = as_float_arrays(frequency, recency, T, t)
        return (formulas.p_alive(self.params_, x, t_x, T_),
                formulas.conditional_expected_purchases(self.params_, x[:, None], t_x[:, None], T_[:, None], t_[None, :]))

    def expected_purchases_new_customer(self, t: ArrayLike) -> np.ndarray:
        """Expected repeat purchases of a new customer in ``(0, t]``."""
        return self.family.formulas.expected_purchases_new_customer(self.params_, t)

    def log_likelihood(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> float:
        """Total log-likelihood of customer histories at ``params_``."""
        return float(np.sum(self.family.formulas.log_likelihood(self.params_, frequency, recency, T)))

    # -- parameter uncertainty ------------------------------------------------------------------
    def param_draws(self, n_draws: int, random_state: int | np.random.Generator | None = None) -> dict[str, np.ndarray]:
        """Parameter draws from the normal approximation of the log-parameters (shape ``(n_draws,)`` each).

        Without a covariance (a fit built from parameters only) every draw is the point estimate.
        """
        rng = np.random.default_rng(random_state)
        names = self.family.param_names
        centre = np.log([self.params_[name] for name in names])
        cov = self.log_params_cov_
        if cov is None or not np.all(np.isfinite(cov)):
            logs = np.tile(centre, (n_draws, 1))
        else:
            logs = rng.multivariate_normal(centre, cov, size=n_draws, method="eigh")
        return {name: np.exp(logs[:, i]) for i, name in enumerate(names)}
