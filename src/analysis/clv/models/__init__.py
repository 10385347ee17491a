"""Purchase-model families (one module each) over :mod:`.basic`, and the Gamma-Gamma spend model."""

from __future__ import annotations

from . import beta_geo, gamma_gamma, modified_beta_geo, pareto_nbd
from .basic import FAMILIES, Family, PurchaseModelFit, family, infer_family
from .gamma_gamma import SpendModelFit

__all__ = [
    "FAMILIES",
    "Family",
    "PurchaseModelFit",
    "SpendModelFit",
    "beta_geo",
    "family",
    "gamma_gamma",
    "infer_family",
    "modified_beta_geo",
    "pareto_nbd",
]
